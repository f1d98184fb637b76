"""The named-volume registry end to end: a real server on Docker, the HTTP API (api.md §11), and a
container whose named volume is auto-registered, protected while mounted, and outlives both the
deployment and its registry row."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support.engines import IMAGE_V1
from tests.support.server import IDLE_COMMAND, RingServer, docker_containers

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("test_volumes")]

PROBLEM = "application/problem+json"


def problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    return response.json()


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture
def volume_name() -> Iterator[str]:
    """A Docker-unique named volume, removed from the engine after the test (the server never removes it)."""
    name = f"ring-e2e-vol-{uuid.uuid4().hex[:10]}"
    try:
        yield name
    finally:
        docker("volume", "rm", "-f", name)


def test_create_list_get_delete_and_audit(api: httpx.Client) -> None:
    """Verify api.md §11 shapes over HTTP, the namespace filter, 404s with Ring's key, and both audit entries."""
    assert api.post("/namespaces", json={"name": "vol-a"}).status_code == 201
    response = api.post("/volumes", json={"namespace": "vol-a", "name": "db-data", "backend_type": "local",
                                          "size": None, "labels": {}})
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == {"id", "created_at", "namespace", "name", "backend_type"}
    item = api.get(f"/volumes/{created['id']}").json()
    assert item == {**created, "updated_at": None, "size": None, "host_path": "db-data", "labels": {}}
    assert api.get("/volumes", params={"namespace": "vol-a"}).json() == [item]
    assert api.get("/volumes", params={"namespace[]": "nobody-here"}).json() == []

    assert problem(api.post("/volumes", json={"namespace": "vol-a", "name": "db-data"}), 409)["detail"] == (
        "volume 'db-data' already exists in namespace 'vol-a'")
    assert problem(api.post("/volumes", json={"namespace": "no-such-ns", "name": "db-data"}), 404)["detail"] == (
        "namespace 'no-such-ns' does not exist")
    body = problem(api.post("/volumes", json={"namespace": "vol-a", "name": "x", "backend_type": "nfs"}), 422)
    assert [v["code"] for v in body["violations"]] == ["volume.name.length"]
    body = problem(api.post("/volumes", json={"namespace": "vol-a", "name": "xy", "backend_type": "nfs"}), 422)
    assert body["title"] == "Unprocessable Entity"

    assert api.delete(f"/volumes/{created['id']}").status_code == 204
    assert problem(api.get(f"/volumes/{created['id']}"), 404)["error"] == "Volume not found"
    audit = api.get("/namespaces/vol-a/audit").json()
    assert [(a["action"], a["target_type"], a["target_name"]) for a in audit[:2]] == [
        ("delete", "volume", "db-data"), ("create", "volume", "db-data")]


def test_scopes_and_namespace_boundary(server: RingServer, api: httpx.Client) -> None:
    """Verify volumes:read cannot write and a namespace-restricted token sees and touches only its namespace."""
    for namespace in ("vol-b", "vol-c"):
        api.post("/namespaces", json={"name": namespace})
    theirs = api.post("/volumes", json={"namespace": "vol-c", "name": "theirs"}).json()
    with server.client(server.pat(["volumes:read"], name="vol-reader")) as reader:
        assert reader.get("/volumes").status_code == 200
        assert problem(reader.post("/volumes", json={"namespace": "vol-b", "name": "mine"}), 403)["error"] == (
            "token lacks required scope 'volumes:write'")
    token = server.pat(["volumes:read", "volumes:write"], namespaces=["vol-b"], name="vol-scoped")
    with server.client(token) as scoped:
        assert scoped.post("/volumes", json={"namespace": "vol-b", "name": "mine"}).status_code == 201
        assert {v["namespace"] for v in scoped.get("/volumes").json()} == {"vol-b"}
        assert problem(scoped.get(f"/volumes/{theirs['id']}"), 403)["error"] == (
            "token is not scoped to namespace 'vol-c'")
        problem(scoped.delete(f"/volumes/{theirs['id']}"), 403)
        problem(scoped.post("/volumes", json={"namespace": "vol-c", "name": "sneaky"}), 403)


def test_mounted_volume_is_registered_protected_and_kept(
    server: RingServer, api: httpx.Client, volume_name: str
) -> None:
    """Verify a deployment's named volume is auto-registered, the delete answers 409 with Ring's keys while it
    runs, deleting the deployment keeps the Docker volume and its data and row, and deleting the row keeps the data."""
    spec = {"name": "vol-writer", "namespace": "vol-d", "runtime": "docker", "image": IMAGE_V1,
            "command": IDLE_COMMAND,
            "volumes": [{"type": "volume", "source": volume_name, "destination": "/data", "driver": "local",
                         "permission": "rw"}]}
    deployment = server.deploy(api, spec)
    listed = api.get("/volumes", params={"namespace": "vol-d"}).json()
    assert [(v["name"], v["backend_type"], v["host_path"]) for v in listed] == [(volume_name, "local", volume_name)]
    volume = listed[0]
    server.wait_for_status(api, deployment["id"], "running")
    container = docker_containers([deployment["id"]])[0]["Id"]
    wrote = docker("exec", container, "sh", "-c", "echo kept > /data/proof")
    assert wrote.returncode == 0, wrote.stderr

    body = problem(api.delete(f"/volumes/{volume['id']}"), 409)
    assert body["error"] == "Volume is referenced by deployments"
    assert body["deployments"] == ["vol-d/vol-writer"]
    assert body["hint"] == "Use ?force=true to delete anyway"

    server.cleanup()  # deletes the deployment and waits until its container is gone
    assert docker("volume", "inspect", volume_name).returncode == 0
    assert api.get(f"/volumes/{volume['id']}").status_code == 200
    assert api.delete(f"/volumes/{volume['id']}").status_code == 204  # no longer mounted: no force needed
    assert docker("volume", "inspect", volume_name).returncode == 0
    read = docker("run", "--rm", "-v", f"{volume_name}:/data", IMAGE_V1, "cat", "/data/proof")
    assert (read.returncode, read.stdout.strip()) == (0, "kept"), read.stderr


def test_force_deletes_a_mounted_volume_row(server: RingServer, api: httpx.Client, volume_name: str) -> None:
    """Verify ?force=true removes the row of a mounted volume, audited, while the container keeps running."""
    spec = {"name": "vol-forced", "namespace": "vol-e", "runtime": "docker", "image": IMAGE_V1,
            "command": IDLE_COMMAND,
            "volumes": [{"type": "volume", "source": volume_name, "destination": "/data", "driver": "local",
                         "permission": "ro"}]}
    deployment = server.deploy(api, spec)
    volume = api.get("/volumes", params={"namespace": "vol-e"}).json()[0]
    server.wait_for_status(api, deployment["id"], "running")
    assert api.delete(f"/volumes/{volume['id']}", params={"force": "true"}).status_code == 204
    assert api.get("/volumes", params={"namespace": "vol-e"}).json() == []
    assert api.get(f"/deployments/{deployment['id']}").json()["status"] == "running"
    audit = api.get("/namespaces/vol-e/audit").json()
    assert ("delete", "volume", volume_name) in [(a["action"], a["target_type"], a["target_name"]) for a in audit]
    server.cleanup()
    assert docker("volume", "inspect", volume_name).returncode == 0
