"""Namespaces end to end: create/list/get by id or name, delete-when-empty, audit, auto-creation."""

from __future__ import annotations

import httpx
import pytest

from tests.support.engines import IMAGE_V1
from tests.support.server import IDLE_COMMAND, RingServer

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("test_api_namespaces")]

PROBLEM = "application/problem+json"


def problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    return response.json()


def busybox(name: str, namespace: str) -> dict:
    return {"name": name, "namespace": namespace, "runtime": "docker", "image": IMAGE_V1,
            "command": IDLE_COMMAND}


def test_create_get_list(api: httpx.Client) -> None:
    """Verify POST /namespaces answers 201 and GET works by id and by name."""
    response = api.post("/namespaces", json={"name": "staging"})
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == {"id", "name", "created_at", "updated_at"}
    assert created["name"] == "staging" and created["updated_at"] is None
    assert api.get(f"/namespaces/{created['id']}").json() == created
    assert api.get("/namespaces/staging").json() == created
    assert "staging" in [ns["name"] for ns in api.get("/namespaces").json()]
    problem(api.get("/namespaces/no-such-namespace"), 404)


def test_duplicate_is_409(api: httpx.Client) -> None:
    """Verify creating an existing namespace is a 409 problem naming it."""
    api.post("/namespaces", json={"name": "dupe"})
    body = problem(api.post("/namespaces", json={"name": "dupe"}), 409)
    assert body["detail"] == "namespace 'dupe' already exists"


def test_invalid_name_reports_length_and_format(api: httpx.Client) -> None:
    """Verify `A` (too short and not a DNS label) gets both violations in one 422."""
    body = problem(api.post("/namespaces", json={"name": "A"}), 422)
    assert sorted(v["code"] for v in body["violations"]) == ["namespace.name.format", "namespace.name.length"]


def test_delete_refuses_while_not_empty_and_audits(server: RingServer, api: httpx.Client) -> None:
    """Verify DELETE answers 409 (with Ring's keys) while a deployment lives, then 204; audit keeps one entry."""
    deployment = server.deploy(api, busybox("web", "busy"))
    body = problem(api.delete("/namespaces/busy"), 409)
    assert body["error"] == "namespace is not empty"
    assert body["remaining"] == 1
    assert "delete its deployments" in body["hint"]
    audit = api.get("/namespaces/busy/audit").json()
    assert [(e["action"], e["target_type"]) for e in audit] == [("create", "deployment"), ("create", "namespace")]
    assert audit[0]["target_name"] == "web" and audit[0]["namespace"] == "busy"
    assert audit[0]["user_id"] == api.get("/users/me").json()["id"]
    assert api.delete(f"/deployments/{deployment['id']}").status_code == 204
    namespace_id = api.get("/namespaces/busy").json()["id"]
    assert api.delete(f"/namespaces/{namespace_id}").status_code == 204  # by id works too
    problem(api.get("/namespaces/busy"), 404)
    after = api.get("/namespaces/busy/audit").json()
    assert [(e["action"], e["target_type"], e["target_name"]) for e in after] == [("delete", "namespace", "busy")]
    problem(api.delete("/namespaces/busy"), 404)


def test_audit_limit_and_order(api: httpx.Client) -> None:
    """Verify the audit trail is newest first and honours `limit`."""
    api.post("/namespaces", json={"name": "audited"})
    assert len(api.get("/namespaces/audited/audit", params={"limit": 1}).json()) == 1
    entries = api.get("/namespaces/audited/audit").json()
    assert entries[0]["action"] == "create" and entries[0]["target_type"] == "namespace"


def test_deploying_into_a_new_namespace_needs_namespaces_write(server: RingServer, api: httpx.Client) -> None:
    """Verify auto-creation of a namespace on deploy requires namespaces:write, and existing ones do not."""
    writer = server.pat(["deployments:write", "deployments:read"], name="deploy-only")
    with server.client(writer) as client:
        body = problem(client.post("/deployments", json=busybox("app", "brand-new")), 403)
        assert body["detail"] == "token lacks required scope 'namespaces:write'"
        api.post("/namespaces", json={"name": "existing"})
        response = client.post("/deployments", json=busybox("app", "existing"))
        assert response.status_code == 201, response.text
        server.track(response.json()["id"])
    full = server.pat(["deployments:write", "namespaces:write"], name="deploy-and-ns")
    with server.client(full) as client:
        response = client.post("/deployments", json=busybox("app", "auto-created"))
        assert response.status_code == 201, response.text
        server.track(response.json()["id"])
    assert api.get("/namespaces/auto-created").status_code == 200
    actions = [(e["action"], e["target_type"]) for e in api.get("/namespaces/auto-created/audit").json()]
    assert actions == [("create", "deployment"), ("create", "namespace")]
