"""Secrets and configs end to end: a real server on Docker, the HTTP API, the CLI, and containers
that see the resolved values (env secretRef, secret volume, config volume, image_pull_secret)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.engines import (
    AUTH_PASSWORD,
    AUTH_REGISTRY,
    AUTH_USER,
    IMAGE_V1,
    PRIVATE_IMAGE,
)
from tests.support.server import IDLE_COMMAND, RingServer

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("test_secrets_configs")]

PROBLEM = "application/problem+json"
VALUE = "pa$$w0rd-é-" + "x" * 20


def problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    return response.json()


def busybox(name: str, namespace: str, **fields) -> dict:
    return {"name": name, "namespace": namespace, "runtime": "docker", "image": IMAGE_V1,
            "command": IDLE_COMMAND, **fields}


def docker_exec(container: str, *command: str) -> str:
    result = subprocess.run(["docker", "exec", container, *command], capture_output=True, text=True, timeout=30,
                            check=False)
    assert result.returncode == 0, f"docker exec {command}: {result.returncode} {result.stderr}"
    return result.stdout


def docker_auths(registry: str, user: str, password: str) -> str:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return json.dumps({"auths": {registry: {"auth": token}}})


def ring(server: RingServer, token: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RING_")}
    env.update(RING_CONFIG_DIR=str(server.dir), RING_TOKEN=token, NO_COLOR="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                      os.environ.get("PYTHONPATH")]))
    script = Path(sys.executable).parent / "ring-actors"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "ring_actors.cli.main"]
    return subprocess.run([*command, *args], capture_output=True, text=True, env=env, cwd=cwd or server.dir,
                          timeout=120, stdin=subprocess.DEVNULL, check=False)


# --------------------------------------------------------------------------- secrets API


def test_secret_create_list_get_never_return_the_value(api: httpx.Client) -> None:
    """Verify Ring's shapes (201 without updated_at, list/get with it), and that no answer holds the value."""
    assert api.post("/namespaces", json={"name": "sec-a"}).status_code == 201
    response = api.post("/secrets", json={"namespace": "sec-a", "name": "db-password", "value": VALUE})
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == {"id", "created_at", "namespace", "name"}
    assert (created["namespace"], created["name"]) == ("sec-a", "db-password")
    listed = api.get("/secrets", params={"namespace": "sec-a"})
    fetched = api.get(f"/secrets/{created['id']}")
    assert fetched.json() == {**created, "updated_at": None}
    assert listed.json() == [fetched.json()]
    for answer in (response, listed, fetched):
        assert VALUE not in answer.text and "pa$$" not in answer.text
    assert api.get("/secrets", params={"namespace": "nobody-here"}).json() == []
    audit = api.get("/namespaces/sec-a/audit").json()
    assert (audit[0]["action"], audit[0]["target_type"], audit[0]["target_name"]) == ("create", "secret", "db-password")


def test_secret_errors_are_problems(api: httpx.Client) -> None:
    """Verify missing namespace 404, duplicate 409, every violation in one 422, unknown id 404 with Ring's key."""
    body = problem(api.post("/secrets", json={"namespace": "no-such-ns", "name": "x1", "value": "v"}), 404)
    assert body["detail"] == "namespace 'no-such-ns' does not exist"
    api.post("/namespaces", json={"name": "sec-b"})
    assert api.post("/secrets", json={"namespace": "sec-b", "name": "dup", "value": "v"}).status_code == 201
    body = problem(api.post("/secrets", json={"namespace": "sec-b", "name": "dup", "value": "w"}), 409)
    assert body["detail"] == "secret 'dup' already exists in namespace 'sec-b'"
    body = problem(api.post("/secrets", json={"namespace": "B", "name": "-", "value": ""}), 422)
    assert sorted(v["code"] for v in body["violations"]) == [
        "secret.name.format", "secret.name.length", "secret.namespace.format", "secret.namespace.length",
        "secret.value.length",
    ]
    problem(api.post("/secrets", json={"namespace": "sec-b", "name": "novalue"}), 422)
    missing = "00000000-0000-4000-8000-000000000000"
    assert problem(api.get(f"/secrets/{missing}"), 404)["error"] == "Secret not found"
    assert problem(api.delete(f"/secrets/{missing}"), 404)["error"] == "Secret not found"


def test_secret_delete_protection_sees_all_three_uses(server: RingServer, api: httpx.Client) -> None:
    """Verify 409 lists deployments using the secret via env, volume or image_pull_secret; force deletes."""
    api.post("/namespaces", json={"name": "sec-refs"})
    secret = api.post("/secrets", json={"namespace": "sec-refs", "name": "shared",
                                        "value": docker_auths("127.0.0.1:5000", "u", "p")}).json()
    free = api.post("/secrets", json={"namespace": "sec-refs", "name": "free", "value": "v"}).json()
    users = [
        server.deploy(api, busybox("by-env", "sec-refs", environment={"S": {"secretRef": "shared"}})),
        server.deploy(api, busybox("by-volume", "sec-refs",
                                   volumes=[{"type": "secret", "source": "shared", "destination": "/run/s"}])),
        server.deploy(api, busybox("by-pull", "sec-refs", config={"image_pull_secret": "shared"})),
    ]
    body = problem(api.delete(f"/secrets/{secret['id']}"), 409)
    assert body["error"] == "Secret is referenced by deployments"
    assert body["deployments"] == ["sec-refs/by-env", "sec-refs/by-pull", "sec-refs/by-volume"]
    assert body["hint"] == "Use ?force=true to delete anyway"
    assert sorted(r["use"] for r in body["references"]) == [
        "config.image_pull_secret", "environment.S", "volumes[0]"]
    assert api.get(f"/secrets/{secret['id']}").status_code == 200
    assert api.delete(f"/secrets/{free['id']}").status_code == 204
    for user in users:
        server.wait_for_status(api, user["id"], "running")  # every reference resolved (incl. the pull secret)
    assert api.delete(f"/deployments/{users[0]['id']}").status_code == 204
    still = problem(api.delete(f"/secrets/{secret['id']}"), 409)
    assert still["deployments"] == ["sec-refs/by-pull", "sec-refs/by-volume"]
    assert api.delete(f"/secrets/{secret['id']}", params={"force": "true"}).status_code == 204
    assert api.get(f"/secrets/{secret['id']}").status_code == 404
    actions = [(e["action"], e["target_type"], e["target_name"]) for e in api.get("/namespaces/sec-refs/audit").json()]
    assert actions[0] == ("delete", "secret", "shared")
    assert ("delete", "secret", "free") in actions


# --------------------------------------------------------------------------- configs API


def test_config_create_update_list_and_audit(api: httpx.Client) -> None:
    """Verify POST (namespace need not exist), filters, PUT full replacement, 404/409/422 problems, audit."""
    data = json.dumps({"site.conf": "server { listen 80; }"})
    response = api.post("/configs", json={"namespace": "cfg-a", "name": "nginx", "data": data, "labels": "tier=edge"})
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == {"id", "created_at", "updated_at", "namespace", "name", "data", "labels"}
    assert (created["data"], created["labels"], created["updated_at"]) == (data, "tier=edge", None)
    bare = api.post("/configs", json={"namespace": "cfg-a", "name": "bare", "data": "{}"}).json()
    assert bare["labels"] == ""
    body = problem(api.post("/configs", json={"namespace": "cfg-a", "name": "nginx", "data": "{}"}), 409)
    assert body["detail"] == "configuration 'nginx' already exists in namespace 'cfg-a'"
    body = problem(api.post("/configs", json={"namespace": "cfg-a", "name": "bad", "data": "not json"}), 422)
    assert [v["code"] for v in body["violations"]] == ["config.data.invalid_json"]
    assert [c["name"] for c in api.get("/configs", params={"namespace": "cfg-a"}).json()] == ["bare", "nginx"]
    assert [c["id"] for c in api.get("/configs", params={"namespace[]": "cfg-a", "name": "nginx"}).json()] == [
        created["id"]]
    assert api.get(f"/configs/{created['id']}").json() == created
    new_data = json.dumps({"site.conf": "server { listen 8080; }"})
    response = api.put(f"/configs/{created['id']}", json={"name": "nginx", "data": new_data})
    assert response.status_code == 200, response.text
    updated = response.json()
    assert (updated["data"], updated["labels"], updated["namespace"]) == (new_data, "", "cfg-a")
    assert updated["updated_at"] is not None and updated["created_at"] == created["created_at"]
    problem(api.put(f"/configs/{created['id']}", json={"name": "bare", "data": "{}"}), 409)
    missing = "00000000-0000-4000-8000-000000000000"
    assert problem(api.put(f"/configs/{missing}", json={"name": "x", "data": "{}"}), 404)["detail"] == (
        f"configuration '{missing}' does not exist")
    problem(api.get(f"/configs/{missing}"), 404)
    assert api.delete(f"/configs/{bare['id']}").status_code == 204
    problem(api.delete(f"/configs/{bare['id']}"), 404)
    api.post("/namespaces", json={"name": "cfg-a"})  # the audit trail is read through the namespace
    actions = [(e["action"], e["target_type"], e["target_name"]) for e in api.get("/namespaces/cfg-a/audit").json()]
    assert actions[1:5] == [("delete", "config", "bare"), ("update", "config", "nginx"),
                            ("create", "config", "bare"), ("create", "config", "nginx")]


def test_namespace_with_secret_or_config_is_not_deleted(api: httpx.Client) -> None:
    """Verify DELETE /namespaces answers 409 while a secret or a config remains, 204 once both are gone."""
    api.post("/namespaces", json={"name": "sec-ns"})
    secret = api.post("/secrets", json={"namespace": "sec-ns", "name": "s1", "value": "v"}).json()
    config = api.post("/configs", json={"namespace": "sec-ns", "name": "c1", "data": "{}"}).json()
    assert problem(api.delete("/namespaces/sec-ns"), 409)["remaining"] == 2
    api.delete(f"/secrets/{secret['id']}")
    assert problem(api.delete("/namespaces/sec-ns"), 409)["remaining"] == 1
    api.delete(f"/configs/{config['id']}")
    assert api.delete("/namespaces/sec-ns").status_code == 204


def test_scopes_and_namespace_boundary(server: RingServer, api: httpx.Client) -> None:
    """Verify read scopes cannot write, and a namespace-restricted token sees and touches only its namespace."""
    for ns in ("sec-in", "sec-out"):
        api.post("/namespaces", json={"name": ns})
        api.post("/secrets", json={"namespace": ns, "name": "s1", "value": "v"})
        api.post("/configs", json={"namespace": ns, "name": "c1", "data": "{}"})
    outside_secret = api.get("/secrets", params={"namespace": "sec-out"}).json()[0]
    outside_config = api.get("/configs", params={"namespace": "sec-out"}).json()[0]
    reader = server.pat(["secrets:read", "configs:read"], name="sec-reader")
    with server.client(reader) as client:
        assert len(client.get("/secrets").json()) >= 2
        denied = client.post("/secrets", json={"namespace": "sec-in", "name": "s2", "value": "v"})
        assert denied.status_code == 403 and denied.json()["error"] == "token lacks required scope 'secrets:write'"
        assert client.delete(f"/configs/{outside_config['id']}").status_code == 403
    scoped = server.pat(["secrets:read", "secrets:write", "configs:read", "configs:write"],
                        namespaces=["sec-in"], name="sec-scoped")
    with server.client(scoped) as client:
        assert {s["namespace"] for s in client.get("/secrets").json()} == {"sec-in"}
        assert {c["namespace"] for c in client.get("/configs").json()} == {"sec-in"}
        assert client.get("/secrets", params={"namespace": "sec-out"}).json() == []
        assert client.get(f"/secrets/{outside_secret['id']}").status_code == 403
        assert client.delete(f"/secrets/{outside_secret['id']}").status_code == 403
        assert client.put(f"/configs/{outside_config['id']}", json={"name": "c1", "data": "{}"}).status_code == 403
        assert client.post("/secrets", json={"namespace": "sec-out", "name": "s3", "value": "v"}).status_code == 403
        assert client.post("/configs", json={"namespace": "sec-out", "name": "c3", "data": "{}"}).status_code == 403
        assert client.post("/secrets", json={"namespace": "sec-in", "name": "s3", "value": "v"}).status_code == 201


# --------------------------------------------------------------------------- on Docker


def test_container_sees_env_secret_volume_and_config_volume(server: RingServer, api: httpx.Client) -> None:
    """Verify a running container gets the secretRef in its env and both payload files, read-only."""
    api.post("/namespaces", json={"name": "sec-run"})
    api.post("/secrets", json={"namespace": "sec-run", "name": "db-pass", "value": VALUE})
    api.post("/secrets", json={"namespace": "sec-run", "name": "tls-key", "value": "-----KEY-----\nline2\n"})
    api.post("/configs", json={"namespace": "sec-run", "name": "app",
                               "data": json.dumps({"app.conf": "port = 8080\nmode = prod\n", "n": 3})})
    created = server.deploy(api, busybox(
        "consumer", "sec-run",
        environment={"DB_PASSWORD": {"secretRef": "db-pass"}, "PLAIN": "plain"},
        volumes=[
            {"type": "secret", "source": "tls-key", "destination": "/run/secrets/tls.key"},
            {"type": "config", "source": "app", "key": "app.conf", "destination": "/etc/app/app.conf"},
            {"type": "config", "source": "app", "key": "n", "destination": "/etc/app/n"},
        ],
    ))
    running = server.wait_for_status(api, created["id"], "running")
    [instance] = running["instances"]
    env = docker_exec(instance["id"], "env")
    assert f"DB_PASSWORD={VALUE}\n" in env and "PLAIN=plain\n" in env
    assert docker_exec(instance["id"], "cat", "/run/secrets/tls.key") == "-----KEY-----\nline2\n"
    assert docker_exec(instance["id"], "cat", "/etc/app/app.conf") == "port = 8080\nmode = prod\n"
    assert docker_exec(instance["id"], "cat", "/etc/app/n") == "3"
    refused = subprocess.run(["docker", "exec", instance["id"], "sh", "-c", "echo x > /run/secrets/tls.key"],
                             capture_output=True, text=True, timeout=30, check=False)
    assert refused.returncode != 0 and "Read-only" in refused.stderr
    shown = api.get(f"/deployments/{created['id']}").text
    assert VALUE not in shown  # the API shows the reference, never the resolved value
    assert api.delete(f"/deployments/{created['id']}").status_code == 204


def test_missing_secret_is_an_event_then_recovers_when_created(
    server: RingServer, api: httpx.Client, admin_token: str
) -> None:
    """Verify the §5 event and config_error status (restart_count untouched), then running once the
    secret exists, without a re-apply."""
    api.post("/namespaces", json={"name": "sec-late"})
    with server.stream("/events", admin_token, follow="true") as stream:  # open first: no status is missed
        created = server.deploy(api, busybox("late", "sec-late", environment={"TOKEN": {"secretRef": "later"}}))
        mine = created["id"]
        failed = stream.next(
            lambda m: m["type"] == "event" and m["deployment_id"] == mine and m["event"]["level"] == "error",
            timeout=30,
        )
        assert failed["event"]["reason"] == "secret_resolution_error"
        assert "secret 'later' not found in namespace 'sec-late'" in failed["event"]["message"]
        stream.next(lambda m: m["type"] == "status" and m["deployment_id"] == mine
                    and m["new_status"] == "config_error", timeout=30)
        assert api.get(f"/deployments/{mine}").json()["restart_count"] == 0
        assert api.post("/secrets", json={"namespace": "sec-late", "name": "later", "value": "arrived"}).status_code == 201
        stream.next(lambda m: m["type"] == "status" and m["deployment_id"] == mine
                    and m["new_status"] == "running", timeout=60)
    [instance] = api.get(f"/deployments/{created['id']}").json()["instances"]
    assert "TOKEN=arrived\n" in docker_exec(instance["id"], "env")


def test_image_pull_secret_authenticates_a_private_pull(
    server: RingServer, api: httpx.Client, admin_token: str
) -> None:
    """Verify image_pull_secret feeds the auth registry's credentials to the pull; a secret without an
    entry for that registry is an image_pull_secret_resolution_error event."""
    api.post("/namespaces", json={"name": "sec-pull"})
    api.post("/secrets", json={"namespace": "sec-pull", "name": "regcred",
                               "value": docker_auths(AUTH_REGISTRY, AUTH_USER, AUTH_PASSWORD)})
    api.post("/secrets", json={"namespace": "sec-pull", "name": "wrong-registry",
                               "value": docker_auths("elsewhere.example", AUTH_USER, AUTH_PASSWORD)})
    good = server.deploy(api, {**busybox("private", "sec-pull", config={"image_pull_secret": "regcred",
                                                                        "image_pull_policy": "Always"}),
                               "image": PRIVATE_IMAGE})
    server.wait_for_status(api, good["id"], "running")
    with server.stream("/events", admin_token, follow="true") as stream:
        anonymous = server.deploy(api, {**busybox("anonymous", "sec-pull"), "image": PRIVATE_IMAGE})
        refused = stream.next(lambda m: m["type"] == "event" and m["deployment_id"] == anonymous["id"]
                              and m["event"]["level"] == "error", timeout=60)
        assert refused["event"]["reason"] == "image_pull_back_off"  # the registry does need the credentials
        bad = server.deploy(api, {**busybox("no-entry", "sec-pull", config={"image_pull_secret": "wrong-registry"}),
                                  "image": PRIVATE_IMAGE})
        failed = stream.next(lambda m: m["type"] == "event" and m["deployment_id"] == bad["id"]
                             and m["event"]["level"] == "error", timeout=30)
    assert failed["event"]["reason"] == "image_pull_secret_resolution_error"
    assert f"no usable entry for registry '{AUTH_REGISTRY}'" in failed["event"]["message"]
    assert AUTH_PASSWORD not in failed["event"]["message"]


# --------------------------------------------------------------------------- CLI


def test_cli_secret_and_config_commands(server: RingServer, api: httpx.Client, admin_token: str,
                                        tmp_path: Path) -> None:
    """Verify `secret create/list/delete` (409 -> exit 5 with the users, --force), `config list/inspect/delete`,
    and `apply` with an inline configs block creating then updating a config."""
    api.post("/namespaces", json={"name": "sec-cli"})
    done = ring(server, admin_token, "secret", "create", "cli-token", "-n", "sec-cli", "-v", "cli-value")
    assert done.returncode == 0, done.stderr
    assert "Secret 'cli-token' created in namespace 'sec-cli'" in done.stdout
    listed = ring(server, admin_token, "secret", "list", "-n", "sec-cli")
    assert listed.returncode == 0 and "cli-token" in listed.stdout and "cli-value" not in listed.stdout
    assert ring(server, admin_token, "secret", "create", "cli-token", "-n", "sec-cli", "-v", "x").returncode == 5
    (tmp_path / "site.conf").write_text("listen 80;\n")
    manifest = tmp_path / "ring.yaml"
    manifest.write_text(f"""
configs:
  site:
    namespace: sec-cli
    name: site
    data: '{{"greeting": "hello"}}'
    files:
      site.conf: site.conf
deployments:
  web:
    name: web
    namespace: sec-cli
    runtime: docker
    image: {IMAGE_V1}
    command: {json.dumps(IDLE_COMMAND)}
    environment:
      TOKEN:
        secretRef: cli-token
    volumes:
      - type: config
        source: site
        key: site.conf
        destination: /etc/site.conf
""")
    applied = ring(server, admin_token, "apply", "-f", str(manifest), cwd=tmp_path)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Config 'site' created in namespace 'sec-cli'" in applied.stdout
    [config] = api.get("/configs", params={"namespace": "sec-cli", "name": "site"}).json()
    assert json.loads(config["data"]) == {"greeting": "hello", "site.conf": "listen 80;\n"}
    [deployment] = [d for d in api.get("/deployments", params={"namespace": "sec-cli"}).json() if d["name"] == "web"]
    server.track(deployment["id"])
    (tmp_path / "site.conf").write_text("listen 8080;\n")
    reapplied = ring(server, admin_token, "apply", "-f", str(manifest), cwd=tmp_path)
    assert "Config 'site' updated in namespace 'sec-cli'" in reapplied.stdout, reapplied.stdout + reapplied.stderr
    for d in api.get("/deployments", params={"namespace": "sec-cli"}).json():
        server.track(d["id"])
    assert json.loads(api.get(f"/configs/{config['id']}").json()["data"])["site.conf"] == "listen 8080;\n"
    inspected = ring(server, admin_token, "config", "inspect", config["id"])
    assert inspected.returncode == 0 and "listen 8080;" in inspected.stdout
    assert "site" in ring(server, admin_token, "config", "list", "-n", "sec-cli").stdout
    secret_id = api.get("/secrets", params={"namespace": "sec-cli"}).json()[0]["id"]
    refused = ring(server, admin_token, "secret", "delete", secret_id)
    assert refused.returncode == 5 and "sec-cli/web" in refused.stderr
    refused = ring(server, admin_token, "config", "delete", config["id"])
    assert refused.returncode == 5 and "sec-cli/web" in refused.stderr
    assert ring(server, admin_token, "secret", "delete", secret_id, "--force").returncode == 0
    assert ring(server, admin_token, "config", "delete", config["id"], "--force").returncode == 0
    assert api.get("/secrets", params={"namespace": "sec-cli"}).json() == []
    missing = ring(server, admin_token, "config", "inspect", config["id"])
    assert missing.returncode == 4 and f"config '{config['id']}' not found" in missing.stderr
