"""`/volumes` in-process (simulated runtime, no engine): api.md §11 shapes and codes, scopes,
namespace boundary, audit, delete protection and auto-registration by `POST /deployments`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ring_actors.http.app import create_app
from ring_actors.services import Services
from tests.support.inprocess import simulated_services

PROBLEM = "application/problem+json"


async def _services(tmp_path: Path) -> Services:
    # Deployments name Ring's runtime; nothing runs (the supervisor is not started).
    return await simulated_services(tmp_path, runtime_name="docker")


class Api:
    def __init__(self, client: Any, token: str) -> None:
        self.client = client
        self.token = token

    def as_(self, token: str) -> Api:
        return Api(self.client, token)

    async def call(
        self, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> tuple[int, Any, str]:
        headers = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        if body is not None:
            kwargs["json"] = body
        response = await self.client.open(path, method=method, headers=headers, **kwargs)
        data = await response.get_data()
        return response.status_code, (json.loads(data) if data else None), response.headers.get("content-type", "")

    async def pat(self, scopes: list[str], namespaces: tuple[str, ...] = ()) -> Api:
        status, body, _ = await self.call(
            "POST", "/tokens", {"name": f"t{len(scopes)}-{len(namespaces)}-{id(scopes)}", "scopes": scopes,
                                "namespaces": list(namespaces)})
        assert status == 201, body
        return self.as_(body["token"])


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[Services, Api]]:
    services = await _services(tmp_path)
    app = create_app(services)
    try:
        async with app.test_app() as test_app:
            client = test_app.test_client()
            login = await client.post("/login", json={"username": "admin", "password": "changeme"})
            api = Api(client, (await login.get_json())["token"])
            for namespace in ("prod", "dev"):
                assert (await api.call("POST", "/namespaces", {"name": namespace}))[0] == 201
            yield services, api
    finally:
        services.db.close()


async def _audit(services: Services) -> list[tuple[str, ...]]:
    return await services.db.call(lambda c: [tuple(r) for r in c.execute(
        "SELECT action, target_type, target_name, namespace FROM audit_log WHERE target_type='volume' ORDER BY seq")])


def _deployment(name: str, *volumes: str, namespace: str = "prod") -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "runtime": "docker", "image": "busybox",
            "volumes": [{"type": "volume", "source": v, "destination": f"/v/{i}", "driver": "local",
                         "permission": "ro"} for i, v in enumerate(volumes)]}


async def test_create_list_get_shapes_and_audit(env: tuple[Services, Api]) -> None:
    """Verify the 201 body has Ring's five fields, list/get the nine, namespace filters, and `create volume` audit."""
    services, api = env
    status, created, content_type = await api.call(
        "POST", "/volumes", {"namespace": "prod", "name": "db-data", "backend_type": "local", "size": None,
                             "labels": {}})
    assert (status, content_type) == (201, "application/json")
    assert set(created) == {"id", "created_at", "namespace", "name", "backend_type"}
    assert (created["namespace"], created["name"], created["backend_type"]) == ("prod", "db-data", "local")
    status, other, _ = await api.call("POST", "/volumes", {"namespace": "dev", "name": "scratch", "size": 4096,
                                                           "backend_type": "directory", "labels": {"a": "b"}})
    assert status == 201 and other["backend_type"] == "directory"

    status, item, _ = await api.call("GET", f"/volumes/{created['id']}")
    assert status == 200
    assert item == {**created, "updated_at": None, "size": None, "host_path": "db-data", "labels": {}}
    listed = (await api.call("GET", "/volumes"))[1]
    assert [v["name"] for v in listed] == ["scratch", "db-data"]
    assert listed[1] == item
    assert [v["name"] for v in (await api.call("GET", "/volumes?namespace=prod"))[1]] == ["db-data"]
    assert len((await api.call("GET", "/volumes?namespace[]=prod&namespace[]=dev"))[1]) == 2
    assert (await api.call("GET", "/volumes?namespace=nobody"))[1] == []
    assert await _audit(services) == [("create", "volume", "db-data", "prod"), ("create", "volume", "scratch", "dev")]


async def test_errors_are_problems_with_ring_codes(env: tuple[Services, Api]) -> None:
    """Verify 404 missing namespace, 409 duplicate, 422 violations, Ring's 422 for a backend, 404 with Ring's key."""
    _, api = env
    status, body, content_type = await api.call("POST", "/volumes", {"namespace": "ghost", "name": "db-data"})
    assert (status, content_type, body["detail"]) == (404, PROBLEM, "namespace 'ghost' does not exist")
    assert (await api.call("POST", "/volumes", {"namespace": "prod", "name": "dup"}))[0] == 201
    status, body, content_type = await api.call("POST", "/volumes", {"namespace": "prod", "name": "dup"})
    assert (status, content_type, body["detail"]) == (409, PROBLEM, "volume 'dup' already exists in namespace 'prod'")

    status, body, content_type = await api.call("POST", "/volumes", {"namespace": "P", "name": "X"})
    assert (status, content_type, body["title"]) == (422, PROBLEM, "Validation failed")
    assert sorted(v["code"] for v in body["violations"]) == [
        "volume.name.format", "volume.name.length", "volume.namespace.format", "volume.namespace.length"]

    status, body, _ = await api.call("POST", "/volumes", {"namespace": "prod", "name": "nfs1", "backend_type": "nfs"})
    assert (status, body["title"]) == (422, "Unprocessable Entity")
    assert body["detail"] == "backend_type 'nfs' is not supported (expected one of: local, directory)"
    assert [v["code"] for v in body["violations"]] == ["volume.backend_type.unsupported"]

    assert (await api.call("POST", "/volumes", {"namespace": "prod"}))[0] == 422
    assert (await api.call("POST", "/volumes", {"namespace": "prod", "name": "neg", "size": -1}))[0] == 422
    status, _, content_type = await api.call("POST", "/volumes", data="{}", headers={"Content-Type": "text/plain"})
    assert (status, content_type) == (415, PROBLEM)

    for method in ("GET", "DELETE"):
        status, body, content_type = await api.call(method, "/volumes/00000000-0000-4000-8000-000000000000")
        assert (status, content_type, body["error"]) == (404, PROBLEM, "Volume not found")


async def test_scopes_and_namespace_boundary(env: tuple[Services, Api]) -> None:
    """Verify volumes:read lists but cannot write, other scopes are refused, and a restricted token
    sees and touches only its namespaces."""
    _, api = env
    prod = (await api.call("POST", "/volumes", {"namespace": "prod", "name": "p-data"}))[1]
    dev = (await api.call("POST", "/volumes", {"namespace": "dev", "name": "d-data"}))[1]

    reader = await api.pat(["volumes:read"])
    assert (await reader.call("GET", "/volumes"))[0] == 200
    assert (await reader.call("GET", f"/volumes/{prod['id']}"))[0] == 200
    status, body, _ = await reader.call("POST", "/volumes", {"namespace": "prod", "name": "nope"})
    assert (status, body["error"]) == (403, "token lacks required scope 'volumes:write'")
    assert (await reader.call("DELETE", f"/volumes/{prod['id']}"))[0] == 403
    status, body, _ = await (await api.pat(["secrets:read"])).call("GET", "/volumes")
    assert (status, body["error"]) == (403, "token lacks required scope 'volumes:read'")

    scoped = await api.pat(["volumes:read", "volumes:write"], ("dev",))
    assert [v["name"] for v in (await scoped.call("GET", "/volumes"))[1]] == ["d-data"]
    assert (await scoped.call("GET", "/volumes?namespace=prod"))[1] == []
    status, body, _ = await scoped.call("GET", f"/volumes/{prod['id']}")
    assert (status, body["error"]) == (403, "token is not scoped to namespace 'prod'")
    assert (await scoped.call("DELETE", f"/volumes/{prod['id']}"))[0] == 403
    assert (await scoped.call("POST", "/volumes", {"namespace": "prod", "name": "x-data"}))[0] == 403
    assert (await scoped.call("POST", "/volumes", {"namespace": "dev", "name": "x-data"}))[0] == 201
    assert (await scoped.call("DELETE", f"/volumes/{dev['id']}"))[0] == 204
    assert (await api.call("GET", f"/volumes/{prod['id']}"))[0] == 200


async def test_deployments_register_and_protect_their_volumes(env: tuple[Services, Api]) -> None:
    """Verify POST /deployments registers its named volumes once (not audited), delete answers 409 with Ring's
    keys while an active deployment mounts the volume, force deletes, and deleting a deployment keeps the row."""
    services, api = env
    explicit = (await api.call("POST", "/volumes", {"namespace": "prod", "name": "shared", "labels": {"k": "v"}}))[1]
    status, web, _ = await api.call("POST", "/deployments", _deployment("web", "shared", "cache"))
    assert status == 201, web
    status, worker, _ = await api.call("POST", "/deployments", _deployment("worker", "cache"))
    assert status == 201, worker
    listed = {v["name"]: v for v in (await api.call("GET", "/volumes?namespace=prod"))[1]}
    assert set(listed) == {"shared", "cache"}
    assert listed["shared"]["id"] == explicit["id"] and listed["shared"]["labels"] == {"k": "v"}
    cache = listed["cache"]
    assert (cache["backend_type"], cache["host_path"], cache["size"], cache["labels"]) == ("local", "cache", None, {})

    status, body, content_type = await api.call("DELETE", f"/volumes/{cache['id']}")
    assert (status, content_type) == (409, PROBLEM)
    assert body["error"] == "Volume is referenced by deployments"
    assert body["deployments"] == ["prod/web", "prod/worker"]
    assert body["hint"] == "Use ?force=true to delete anyway"
    assert {(r["deployment_id"], r["use"]) for r in body["references"]} == {
        (web["id"], "volumes[1]"), (worker["id"], "volumes[0]")}

    assert (await api.call("DELETE", f"/deployments/{web['id']}"))[0] == 204
    assert (await api.call("DELETE", f"/volumes/{explicit['id']}"))[0] == 204
    assert (await api.call("DELETE", f"/volumes/{cache['id']}"))[1]["deployments"] == ["prod/worker"]
    assert (await api.call("DELETE", f"/volumes/{cache['id']}?force=true"))[0] == 204
    assert (await api.call("GET", f"/volumes/{cache['id']}"))[0] == 404
    assert await _audit(services) == [("create", "volume", "shared", "prod"), ("delete", "volume", "shared", "prod"),
                                      ("delete", "volume", "cache", "prod")]


async def test_openapi_lists_volume_routes(env: tuple[Services, Api]) -> None:
    """Verify the four routes are documented with their scopes."""
    _, api = env
    document = (await api.call("GET", "/openapi.json"))[1]
    assert {"get", "post"} <= set(document["paths"]["/volumes"])
    assert {"get", "delete"} <= set(document["paths"]["/volumes/{id}"])
