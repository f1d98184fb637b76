"""CLI commands against a fake API (httpx.MockTransport): requests sent, output, exit codes.

The real server is exercised by tests/e2e/test_cli_*.py; these tests pin the
client-side behaviour (messages, exit codes, --wait over SSE) exactly.
"""

from __future__ import annotations

import io
import json
import stat
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from ring_actors.cli.client import Session
from ring_actors.cli.main import build_parser, run

DEP_ID = "f3a8b2c4-5d6e-4f70-8a9b-0c1d2e3f4a5b"
PROBLEM = "application/problem+json"

Reply = httpx.Response | Callable[[httpx.Request], Any]


class FakeApi:
    """Routes (method, path) to canned responses and records every request."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Reply]] = {}
        self.requests: list[httpx.Request] = []

    def on(self, method: str, path: str, *replies: Reply) -> FakeApi:
        self.routes.setdefault((method, path), []).extend(replies)
        return self

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        replies = self.routes.get((request.method, request.url.path))
        if not replies:
            return httpx.Response(404)
        reply = replies.pop(0) if len(replies) > 1 else replies[0]
        if callable(reply) and not isinstance(reply, httpx.Response):
            reply = reply(request)
            if hasattr(reply, "__await__"):
                reply = await reply
        return reply

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def sent(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path == path]


def problem(status: int, title: str, detail: str = "", violations: list | None = None) -> httpx.Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, "violations": violations or []}
    return httpx.Response(status, headers={"content-type": PROBLEM}, content=json.dumps(body))


def sse(*events: dict[str, Any], keep_open: bool = False, event: str | None = None) -> httpx.Response:
    async def body() -> AsyncIterator[bytes]:
        yield b": keep-alive\n\n"
        for data in events:
            prefix = f"event: {event}\n" if event else ""
            yield f"{prefix}data: {json.dumps(data)}\n\n".encode()
        if keep_open:
            await trio.sleep_forever()

    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())


def status_msg(deployment_id: str, old: str, new: str) -> dict[str, Any]:
    return {"type": "status", "deployment_id": deployment_id, "namespace": "prod", "old_status": old, "new_status": new}


def event_msg(deployment_id: str, level: str, reason: str, message: str, event_id: str = "e1") -> dict[str, Any]:
    event = {
        "id": event_id,
        "deployment_id": deployment_id,
        "timestamp": "2026-04-15T10:30:05Z",
        "level": level,
        "message": message,
        "component": "docker",
        "reason": reason,
    }
    return {"type": "event", "deployment_id": deployment_id, "namespace": "prod", "event": event}


def deployment(status: str = "creating", **extra: Any) -> dict[str, Any]:
    return {
        "id": DEP_ID,
        "created_at": "2026-05-03T22:22:21.5Z",
        "updated_at": "2026-05-03T22:22:25Z",
        "status": status,
        "restart_count": 0,
        "name": "web",
        "namespace": "prod",
        "runtime": "docker",
        "kind": "worker",
        "image": "busybox:v1",
        "replicas": 2,
        "instances": [{"id": "c1"}],
        "labels": {"app": "web"},
        "volumes": [],
        **extra,
    }


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RING_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("RING_TOKEN", "ring_pat_test")
    monkeypatch.delenv("RING_CONFIG_FILE", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return tmp_path


# --------------------------------------------------------------------------- login / logout


def test_login_stores_token_mode_0600(tmp_path: Path, monkeypatch, capsys) -> None:
    """Verify login posts the credentials and merges the token into auth.json, readable by the owner only."""
    monkeypatch.setenv("RING_CONFIG_DIR", str(tmp_path))
    monkeypatch.delenv("RING_TOKEN", raising=False)
    (tmp_path / "auth.json").write_text('{"prod": {"token": "other"}}')
    api = FakeApi().on("POST", "/login", httpx.Response(200, json={"token": "ring_pat_abc"}))
    assert run(["login", "-u", "admin", "-p", "changeme"], transport=api.transport) == 0
    assert json.loads(api.requests[0].content) == {"username": "admin", "password": "changeme"}
    auth = tmp_path / "auth.json"
    assert json.loads(auth.read_text()) == {"prod": {"token": "other"}, "default": {"token": "ring_pat_abc"}}
    assert stat.S_IMODE(auth.stat().st_mode) == 0o600
    assert "Logging in as admin" in capsys.readouterr().out


def test_login_wrong_password_exits_2(cli_env: Path, capsys) -> None:
    """Verify a 401 is rendered as Ring does (`Login failed: Unauthorized (401)` + detail) with exit 2."""
    api = FakeApi().on("POST", "/login", problem(401, "Unauthorized", "invalid credentials"))
    assert run(["login", "-u", "admin", "-p", "nope"], transport=api.transport) == 2
    err = capsys.readouterr().err
    assert "Login failed: Unauthorized (401)\n  invalid credentials" in err
    assert not (cli_env / "auth.json").exists()


def test_login_without_tty_needs_flags(cli_env: Path, monkeypatch, capsys) -> None:
    """Verify login does not hang waiting for input when stdin is not a terminal."""
    monkeypatch.setattr("sys.stdin", io.StringIO())
    assert run(["login", "-p", "x"]) == 1
    assert "error: username required; pass --username or run in a terminal" in capsys.readouterr().err


def test_logout_revokes_the_stored_session_only(cli_env: Path, capsys) -> None:
    """Verify logout posts /logout with the auth.json token (not RING_TOKEN) and removes only that entry."""
    (cli_env / "auth.json").write_text('{"default": {"token": "ring_pat_session"}, "prod": {"token": "p"}}')
    api = FakeApi().on("POST", "/logout", httpx.Response(204))
    assert run(["logout"], transport=api.transport) == 0
    assert api.requests[0].headers["authorization"] == "Bearer ring_pat_session"
    assert json.loads((cli_env / "auth.json").read_text()) == {"prod": {"token": "p"}}
    assert "Logged out of context 'default'" in capsys.readouterr().out


def test_token_from_auth_json_when_no_RING_TOKEN(cli_env: Path, monkeypatch) -> None:
    """Verify RING_TOKEN wins, and the context's auth.json entry is used otherwise."""
    (cli_env / "auth.json").write_text('{"default": {"token": "ring_pat_file"}}')
    api = FakeApi().on("GET", "/deployments", httpx.Response(200, json=[]))
    run(["deployment", "list"], transport=api.transport)
    monkeypatch.delenv("RING_TOKEN")
    run(["deployment", "list"], transport=api.transport)
    assert [r.headers["authorization"] for r in api.requests] == ["Bearer ring_pat_test", "Bearer ring_pat_file"]


# --------------------------------------------------------------------------- apply


def _manifest(tmp: Path, body: str) -> str:
    path = tmp / "ring.yaml"
    path.write_text(body)
    return str(path)


MANIFEST = """
namespaces:
  a: {name: prod}
configs:
  site: {namespace: prod, name: site, data: '{"k": "v"}'}
deployments:
  web: {name: web, namespace: prod, image: busybox:v1}
  worker: {name: worker, namespace: prod, image: busybox:v1, replicas: 3}
"""


def test_apply_sends_namespaces_configs_then_deployments(cli_env: Path, capsys) -> None:
    """Verify the apply sequence, 409 handling (namespace skip, config GET+PUT) and Ring's output lines."""
    api = (
        FakeApi()
        .on("POST", "/namespaces", problem(409, "Conflict", "namespace 'prod' already exists"))
        .on("POST", "/configs", problem(409, "Conflict", "exists"))
        .on("GET", "/configs", httpx.Response(200, json=[{"id": "cfg1", "name": "site", "namespace": "prod"}]))
        .on("PUT", "/configs/cfg1", httpx.Response(200, json={}))
        .on("POST", "/deployments", lambda req: httpx.Response(201, json={**json.loads(req.content), "id": "x"}))
    )
    assert run(["apply", "-f", _manifest(cli_env, MANIFEST), "--force"], transport=api.transport) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "Namespace 'prod' already exists, skipping",
        "Config 'site' updated in namespace 'prod'",
        "Processing deployment 'web'",
        "Deployment 'web' created",
        "Processing deployment 'worker'",
        "Deployment 'worker' created",
        "",
        "Summary:",
        "  Successful: 2",
    ]
    assert api.sent("GET", "/configs")[0].url.params.multi_items() == [("namespace", "prod"), ("name", "site")]
    assert json.loads(api.sent("PUT", "/configs/cfg1")[0].content) == {"name": "site", "data": '{"k": "v"}'}
    posts = api.sent("POST", "/deployments")
    assert [json.loads(p.content)["replicas"] for p in posts] == [1, 3]
    assert all(p.url.params["force"] == "true" for p in posts)


def test_apply_renders_violations_and_exits_with_first_failure(cli_env: Path, capsys) -> None:
    """Verify a 422 problem is printed one violation per line with its code, others continue, first code wins."""
    violations = [
        {
            "property_path": "ports[0].published",
            "message": "must be between 1 and 65535",
            "code": "deployment.ports.published.out_of_range",
        },
        {
            "property_path": "runtime",
            "message": "runtime 'podman' is not enabled",
            "code": "deployment.runtime.not_enabled",
        },
    ]
    api = (
        FakeApi()
        .on("POST", "/namespaces", httpx.Response(201, json={}))
        .on("POST", "/configs", httpx.Response(201, json={}))
        .on(
            "POST",
            "/deployments",
            problem(422, "Validation failed", "x", violations),
            httpx.Response(403, json={"error": "token lacks required scope 'deployments:write'"}),
        )
    )
    assert run(["apply", "-f", _manifest(cli_env, MANIFEST)], transport=api.transport) == 1
    out, err = capsys.readouterr()
    assert "Namespace 'prod' created" in out and "Config 'site' created in namespace 'prod'" in out
    assert "Summary:\n  Successful: 0\n  Failed: 2" in out
    assert err.splitlines() == [
        "Unable to apply deployment 'web': Validation failed (422)",
        "  * ports[0].published: must be between 1 and 65535 [deployment.ports.published.out_of_range]",
        "  * runtime: runtime 'podman' is not enabled [deployment.runtime.not_enabled]",
        "Unable to apply deployment 'worker': 403 Forbidden",
        "  token lacks required scope 'deployments:write'",
    ]


def test_apply_server_down_exits_3(cli_env: Path, capsys) -> None:
    """Verify a refused connection stops apply with exit 3 and says how to start the server."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    api = FakeApi().on("POST", "/namespaces", refuse)
    assert run(["apply", "-f", _manifest(cli_env, MANIFEST)], transport=api.transport) == 3
    assert capsys.readouterr().err.strip() == (
        "error: cannot reach the ring-actors server at http://127.0.0.1:3030: is it running? "
        "Start it with `ring-actors serve`"
    )


def _apply_one(api: FakeApi) -> FakeApi:
    return api.on("POST", "/deployments", httpx.Response(201, json=deployment("creating")))


ONE = "deployments:\n  web: {name: web, namespace: prod, image: busybox:v1}\n"


def test_apply_wait_follows_the_event_stream_until_running(cli_env: Path, capsys) -> None:
    """Verify --wait subscribes first, reads the current status, then follows SSE status changes to running."""
    api = _apply_one(FakeApi())
    api.on(
        "GET",
        "/events",
        sse(
            status_msg("other", "creating", "failed"),
            event_msg(DEP_ID, "info", "scale_up", "Scaled up"),
            status_msg(DEP_ID, "creating", "running"),
            keep_open=True,
        ),
    )
    api.on("GET", f"/deployments/{DEP_ID}", httpx.Response(200, json=deployment("creating")))
    assert run(["apply", "-f", _manifest(cli_env, ONE), "--wait", "--timeout", "5"], transport=api.transport) == 0
    out = capsys.readouterr().out
    assert "Waiting for 1 deployment(s) to be running (timeout 5s)..." in out
    assert "  prod/web: creating\n" in out
    assert "  prod/web: running\n" in out
    assert out.rstrip().endswith("All 1 deployment(s) running")
    assert api.sent("GET", "/events")[0].url.params["follow"] == "true"


def test_apply_wait_reports_failure_reason(cli_env: Path, capsys) -> None:
    """Verify a failure status ends the wait with exit 1 and the latest error event's message."""
    api = _apply_one(FakeApi())
    api.on(
        "GET",
        "/events",
        sse(
            event_msg(DEP_ID, "error", "image_pull_error", "pull access denied for busybox:v9"),
            keep_open=True,
        ),
    )
    api.on(
        "GET",
        f"/deployments/{DEP_ID}",
        httpx.Response(200, json=deployment("creating")),
        httpx.Response(200, json=deployment("image_pull_back_off")),
    )
    assert run(["apply", "-f", _manifest(cli_env, ONE), "--wait"], transport=api.transport) == 1
    err = capsys.readouterr().err
    assert "  prod/web: image_pull_back_off: pull access denied for busybox:v9" in err
    assert "error: 1 of 1 deployment(s) failed" in err


def test_apply_wait_times_out(cli_env: Path, capsys) -> None:
    """Verify --timeout bounds the wait, naming what is still pending (exit 1)."""
    api = _apply_one(FakeApi())
    api.on("GET", "/events", sse(keep_open=True))
    api.on("GET", f"/deployments/{DEP_ID}", httpx.Response(200, json=deployment("creating")))
    assert run(["apply", "-f", _manifest(cli_env, ONE), "--wait", "--timeout", "0.3"], transport=api.transport) == 1
    err = capsys.readouterr().err
    assert "  prod/web: still creating after 0.3s" in err
    assert "timed out" in err


def test_apply_wait_falls_back_to_per_deployment_streams(cli_env: Path, capsys) -> None:
    """Verify a server without the global stream is followed per deployment (/deployments/{id}/events)."""
    api = _apply_one(FakeApi())
    api.on(
        "GET",
        f"/deployments/{DEP_ID}/events",
        sse(status_msg(DEP_ID, "creating", "running"), keep_open=True),
    )
    api.on("GET", f"/deployments/{DEP_ID}", httpx.Response(200, json=deployment("creating")))
    assert run(["apply", "-f", _manifest(cli_env, ONE), "--wait", "--timeout", "5"], transport=api.transport) == 0
    assert "All 1 deployment(s) running" in capsys.readouterr().out


# --------------------------------------------------------------------------- deployment


def test_deployment_list_table_and_filters(cli_env: Path, capsys) -> None:
    """Verify Ring's columns, UTC timestamps without zone, n/m replicas and repeated query filters."""
    api = FakeApi().on("GET", "/deployments", httpx.Response(200, json=[deployment("running")]))
    argv = ["deployment", "list", "-n", "prod", "-n", "dev", "-s", "running", "--type", "worker", "-l", "app=web"]
    assert run(argv, transport=api.transport) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("  ")[0] == "ID"
    assert "Created at (UTC)" in lines[0] and lines[0].rstrip().endswith("Status")
    assert lines[1].split() == [
        DEP_ID,
        "2026-05-03",
        "22:22:21",
        "2026-05-03",
        "22:22:25",
        "prod",
        "web",
        "busybox:v1",
        "docker",
        "worker",
        "1/2",
        "running",
    ]
    assert api.requests[0].url.params.multi_items() == [
        ("namespace", "prod"),
        ("namespace", "dev"),
        ("status", "running"),
        ("kind", "worker"),
        ("label", "app=web"),
    ]


def test_deployment_list_json_is_the_body_verbatim(cli_env: Path, capsys) -> None:
    """Verify -o json prints the API body unchanged (parsable with jq)."""
    raw = json.dumps([deployment("running")], separators=(",", ":"))
    api = FakeApi().on(
        "GET", "/deployments", httpx.Response(200, content=raw, headers={"content-type": "application/json"})
    )
    assert run(["deployment", "list", "-o", "json"], transport=api.transport) == 0
    assert capsys.readouterr().out == raw + "\n"


def test_bare_group_runs_its_default_subcommand(cli_env: Path, capsys) -> None:
    """Verify `deployment` alone lists deployments, as in Ring."""
    api = FakeApi().on("GET", "/deployments", httpx.Response(200, json=[]))
    assert run(["deployment"], transport=api.transport) == 0
    assert capsys.readouterr().out.startswith("ID  ")


def test_deployment_delete_many_reports_each_and_first_failure(cli_env: Path, capsys) -> None:
    """Verify every id is attempted, 404 says `not found`, and the exit code is the first failure's (4)."""
    api = (
        FakeApi()
        .on("DELETE", "/deployments/a", httpx.Response(204))
        .on("DELETE", "/deployments/c", httpx.Response(204))
    )
    assert run(["deployment", "delete", "a", "b", "c"], transport=api.transport) == 4
    out, err = capsys.readouterr()
    assert out.splitlines() == ["Deployment a deleted", "Deployment c deleted"]
    assert err.strip() == "error: deployment 'b' not found"


def test_deployment_refs_accept_namespace_slash_name(cli_env: Path, capsys) -> None:
    """Verify `namespace/name` resolves to the newest non-deleted deployment of that name."""
    old = deployment("deleted", id="old", created_at="2026-01-01T00:00:00Z")
    new = deployment("running", id="new", created_at="2026-02-01T00:00:00Z")
    api = (
        FakeApi()
        .on("GET", "/deployments", httpx.Response(200, json=[old, new, deployment("running", id="x", name="other")]))
        .on("GET", "/deployments/new/logs", httpx.Response(200, json=[]))
    )
    assert run(["deployment", "logs", "prod/web"], transport=api.transport) == 0
    assert api.requests[0].url.params["namespace"] == "prod"
    assert capsys.readouterr().out.strip() == "No logs available for this deployment"


def test_deployment_logs_lines(cli_env: Path, capsys) -> None:
    """Verify `[<timestamp>] <instance> <message>` and the timestamp omitted when null; options forwarded."""
    entries = [
        {"instance": "prod_web_1a2b3c4d", "message": "started", "level": "info", "timestamp": "2026/04/15 10:30:00"},
        {"instance": "prod_web_1a2b3c4d", "message": "plain", "level": "unknown", "timestamp": None},
    ]
    api = FakeApi().on("GET", f"/deployments/{DEP_ID}/logs", httpx.Response(200, json=entries))
    assert (
        run(["deployment", "logs", DEP_ID, "--tail", "5", "--since", "10m", "-c", "1a2b"], transport=api.transport) == 0
    )
    assert capsys.readouterr().out.splitlines() == [
        "[2026/04/15 10:30:00] prod_web_1a2b3c4d started",
        "prod_web_1a2b3c4d plain",
    ]
    assert dict(api.requests[0].url.params) == {"tail": "5", "since": "10m", "container": "1a2b"}


def _session(argv: list[str], transport: httpx.AsyncBaseTransport) -> tuple[Any, Session]:
    parser = build_parser()
    args = parser.parse_args(argv)
    return args, Session(args, parser, transport=transport)


async def test_deployment_logs_follow_uses_sse(cli_env: Path, capsys) -> None:
    """Verify `logs -f` prints lines pushed over SSE as they come (no polling), until interrupted."""
    api = FakeApi().on(
        "GET",
        f"/deployments/{DEP_ID}/logs",
        sse(
            {"instance": "i1", "message": "one", "timestamp": None},
            {"instance": "i1", "message": "two", "timestamp": None},
            keep_open=True,
        ),
    )
    args, session = _session(["deployment", "logs", DEP_ID, "-f"], api.transport)
    with trio.move_on_after(0.5) as scope:
        await args.handler(args, session)
    assert scope.cancelled_caught  # follow mode never returns by itself
    assert capsys.readouterr().out.splitlines() == ["i1 one", "i1 two"]
    assert [r.url.params["follow"] for r in api.requests] == ["true"]


async def test_deployment_events_follow_prints_history_then_new_events(cli_env: Path, capsys) -> None:
    """Verify `events -f` prints the replayed and live events once each, and stops when the deployment is purged."""
    created = event_msg(DEP_ID, "info", "deployment_created", "created", "1")
    scaled = event_msg(DEP_ID, "info", "scale_up", "Scaled up", "2")
    api = FakeApi().on(
        "GET",
        f"/deployments/{DEP_ID}/events",
        sse(
            created,
            scaled,
            created,
            status_msg(DEP_ID, "running", "deleted"),
            status_msg(DEP_ID, "deleted", "purged"),
            keep_open=True,
        ),
    )
    args, session = _session(["deployment", "events", DEP_ID, "-f", "--limit", "5"], api.transport)
    with trio.fail_after(5):
        await args.handler(args, session)
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith("Following events for deployment")
    assert [line.split()[-2:] for line in lines[1:]] == [["deployment_created", "created"], ["Scaled", "up"]]
    assert f"Deployment {DEP_ID} was deleted" in err
    assert dict(api.requests[0].url.params) == {"limit": "5", "follow": "true"}


def test_deployment_events_table_oldest_first(cli_env: Path, capsys) -> None:
    """Verify events are shown oldest first with Ring's columns, level and limit forwarded."""
    events = [
        {
            "id": "2",
            "timestamp": "2026-04-15T10:30:06Z",
            "level": "error",
            "message": "boom",
            "component": "docker",
            "reason": "container_crashed",
        },
        {
            "id": "1",
            "timestamp": "2026-04-15T10:30:05Z",
            "level": "info",
            "message": "Scaled up",
            "component": "docker",
            "reason": None,
        },
    ]
    api = FakeApi().on("GET", f"/deployments/{DEP_ID}/events", httpx.Response(200, json=events))
    assert run(["deployment", "events", DEP_ID, "--limit", "10"], transport=api.transport) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["Time", "Level", "Component", "Reason", "Message"]
    assert lines[1].split()[:6] == ["2026-04-15", "10:30:05", "info", "docker", "-", "Scaled"]
    assert "container_crashed" in lines[2]
    assert dict(api.requests[0].url.params) == {"limit": "10"}


def test_deployment_inspect_and_metrics_blocks(cli_env: Path, capsys) -> None:
    """Verify the inspect block (status, autoscale detail, instances, volumes) and the metrics block."""
    d = deployment(
        "running",
        autoscale={"min": 2, "max": 6, "target_cpu": 70.0},
        desired_replicas=3,
        instances=[{"id": "c1", "address": "172.18.0.3"}],
        volumes=[
            {
                "type": "bind",
                "source": "/srv",
                "key": None,
                "destination": "/data",
                "driver": "local",
                "permission": "rw",
            }
        ],
    )
    metrics = {
        "deployment_name": "web",
        "instance_count": 1,
        "total_cpu_usage_percent": 2.5,
        "total_memory": {"usage_bytes": 52428800, "limit_bytes": 536870912, "usage_percent": 9.8},
        "total_network": {"rx_bytes": 1024, "tx_bytes": 0},
        "total_disk_io": {"read_bytes": 0, "write_bytes": 0},
        "total_pids": 12,
        "instances": [
            {
                "instance_id": "c1",
                "instance_name": "prod_web_1",
                "cpu_usage_percent": 2.5,
                "memory": {"usage_bytes": 1, "limit_bytes": 2, "usage_percent": 50},
                "network": {},
                "disk_io": {},
                "pids": {"current": 12, "limit": 1024},
                "restart_count": 0,
            }
        ],
    }
    api = (
        FakeApi()
        .on("GET", f"/deployments/{DEP_ID}", httpx.Response(200, json=d))
        .on("GET", f"/deployments/{DEP_ID}/events", httpx.Response(200, json=[]))
        .on("GET", f"/deployments/{DEP_ID}/metrics", httpx.Response(200, json=metrics))
    )
    assert run(["deployment", "inspect", DEP_ID], transport=api.transport) == 0
    out = capsys.readouterr().out
    assert "DEPLOYMENT DETAILS" in out
    assert "Status        : running" in out
    assert "Replicas      : 3 (declared 2, autoscale 2-6 targeting 70% CPU)" in out
    assert "  c1 (172.18.0.3)" in out
    assert "bind  /srv    /data" in out
    assert run(["deployment", "metrics", DEP_ID], transport=api.transport) == 0
    out = capsys.readouterr().out
    assert "DEPLOYMENT METRICS: web" in out
    assert "Total CPU     : 2.50%" in out
    assert "Total Memory  : 50.00 MiB / 512.00 MiB (9.8%)" in out
    assert "    PIDs      : 12 / 1024" in out


def test_not_found_and_auth_messages(cli_env: Path, capsys) -> None:
    """Verify Ring's single-resource and list messages for 404 and 401 (exit 4 and 2)."""
    api = FakeApi().on("GET", "/deployments", httpx.Response(401, json={"error": "Invalid token"}))
    assert run(["deployment", "inspect", "nope"], transport=api.transport) == 4
    assert capsys.readouterr().err.strip() == "error: deployment 'nope' not found"
    assert run(["deployment", "list", "-n", "prod"], transport=api.transport) == 2
    assert capsys.readouterr().err.strip() == "error: cannot list deployments in namespace 'prod': not authorized"


# --------------------------------------------------------------------------- namespace, user, token


def test_namespace_prune_summary(cli_env: Path, capsys) -> None:
    """Verify prune deletes prunable statuses only, keeps active ones, and prints Ring's summary."""
    items = [
        deployment("completed", id="d1"),
        deployment("running", id="d2"),
        deployment("crash_loop_back_off", id="d3"),
        deployment("insufficient_resources", id="d4"),
        deployment("failed", id="d5", namespace="other"),
    ]
    api = FakeApi().on("GET", "/deployments", httpx.Response(200, json=items))
    for i in ("d1", "d3"):
        api.on("DELETE", f"/deployments/{i}", httpx.Response(204))
    assert run(["namespace", "prune", "prod"], transport=api.transport) == 0
    assert capsys.readouterr().out.splitlines() == [
        "Deployment d1 deleted",
        "Deployment d3 deleted",
        "Summary:",
        "  Deleted: 2",
        "  Skipped (active): 2 — use --all to delete them too",
    ]


def test_namespace_delete_not_empty(cli_env: Path, capsys) -> None:
    """Verify a 409 explains why the namespace cannot be deleted, with exit 5."""
    api = FakeApi().on(
        "DELETE",
        "/namespaces/prod",
        httpx.Response(
            409, json={"error": "namespace is not empty", "remaining": 2, "hint": "delete its deployments first"}
        ),
    )
    assert run(["namespace", "delete", "prod"], transport=api.transport) == 5
    assert capsys.readouterr().err.strip() == (
        "error: cannot delete namespace 'prod': namespace is not empty (2 remaining); delete its deployments first"
    )


def test_user_create_violations(cli_env: Path, capsys) -> None:
    """Verify user create renders violations with codes (exit 1)."""
    api = FakeApi().on(
        "POST",
        "/users",
        problem(
            422,
            "Validation failed",
            "",
            [{"property_path": "password", "message": "must be 8-128 characters", "code": "user.password.length"}],
        ),
    )
    assert run(["user", "create", "-u", "bob", "-p", "short"], transport=api.transport) == 1
    assert capsys.readouterr().err.splitlines() == [
        "Unable to create user 'bob': Validation failed (422)",
        "  * password: must be 8-128 characters [user.password.length]",
    ]


def test_user_update_targets_me(cli_env: Path, capsys) -> None:
    """Verify `user update` reads /users/me and PUTs only the given fields."""
    api = (
        FakeApi()
        .on("GET", "/users/me", httpx.Response(200, json={"id": "u1", "username": "admin"}))
        .on("PUT", "/users/u1", httpx.Response(200, json={}))
    )
    assert run(["user", "update", "-p", "a-new-password"], transport=api.transport) == 0
    assert json.loads(api.sent("PUT", "/users/u1")[0].content) == {"password": "a-new-password"}
    assert run(["user", "update"], transport=api.transport) == 1


def test_token_create_prints_token_alone_on_stdout(cli_env: Path, capsys) -> None:
    """Verify the token is the only stdout line; the summary with `prefix:` goes to stderr; expiry is absolute."""
    created = {
        "id": "t1",
        "name": "ci",
        "token": "ring_pat_" + "a" * 64,
        "token_prefix": "ring_pat_aaaaaa",
        "scopes": ["deployments:read"],
        "namespaces": [],
        "expire_at": "2026-09-01T00:00:00Z",
    }
    api = FakeApi().on("POST", "/tokens", httpx.Response(201, json=created))
    assert run(["token", "create", "ci", "-s", "deployments:read", "-e", "30d"], transport=api.transport) == 0
    out, err = capsys.readouterr()
    assert out == created["token"] + "\n"
    assert "  prefix:     ring_pat_aaaaaa" in err and "will not be shown again" in err
    assert "  namespaces: all" in err
    body = json.loads(api.requests[0].content)
    assert body["scopes"] == ["deployments:read"] and body["expire_at"].endswith("Z")


def test_token_revoke_refuses_without_tty_or_yes(cli_env: Path, monkeypatch, capsys) -> None:
    """Verify revoke needs --yes when stdin is not a terminal, and sends DELETE with it."""
    monkeypatch.setattr("sys.stdin", io.StringIO())
    api = FakeApi().on("DELETE", "/tokens/t1", httpx.Response(204))
    assert run(["token", "revoke", "t1"], transport=api.transport) == 1
    assert "without confirmation: pass --yes" in capsys.readouterr().err
    assert not api.requests
    assert run(["token", "revoke", "t1", "--yes"], transport=api.transport) == 0
    assert "Token t1 revoked" in capsys.readouterr().out


def test_token_list_status_column(cli_env: Path, capsys) -> None:
    """Verify active/revoked/expired and `all` for unrestricted namespaces."""
    tokens = [
        {
            "id": "a",
            "name": "n1",
            "token_prefix": "ring_pat_1",
            "scopes": ["admin"],
            "namespaces": [],
            "created_at": "2026-01-01T00:00:00Z",
            "expire_at": None,
            "last_used_at": None,
            "revoked_at": None,
        },
        {
            "id": "b",
            "name": "n2",
            "token_prefix": "ring_pat_2",
            "scopes": ["admin"],
            "namespaces": ["prod"],
            "created_at": "2026-01-01T00:00:00Z",
            "expire_at": None,
            "last_used_at": None,
            "revoked_at": "2026-01-02T00:00:00Z",
        },
        {
            "id": "c",
            "name": "n3",
            "token_prefix": "ring_pat_3",
            "scopes": ["admin"],
            "namespaces": [],
            "created_at": "2026-01-01T00:00:00Z",
            "expire_at": "2020-01-01T00:00:00Z",
            "last_used_at": None,
            "revoked_at": None,
        },
    ]
    api = FakeApi().on("GET", "/tokens", httpx.Response(200, json=tokens))
    assert run(["token", "list"], transport=api.transport) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert [(r[4], r[5]) for r in rows] == [("all", "active"), ("prod", "revoked"), ("all", "expired")]


def test_no_escape_codes_when_piped(cli_env: Path, capsys) -> None:
    """Verify output captured by a pipe carries no colour even for coloured statuses."""
    api = FakeApi().on("GET", "/deployments", httpx.Response(200, json=[deployment("failed")]))
    assert run(["deployment", "list"], transport=api.transport) == 0
    out = capsys.readouterr().out
    assert "failed" in out and "\x1b" not in out
