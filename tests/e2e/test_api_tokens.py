"""Personal access tokens end to end: create/list/get/revoke/rotate, validation, namespace boundary."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.support.engines import IMAGE_V1
from tests.support.server import IDLE_COMMAND, RingServer

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("test_api_tokens")]

PROBLEM = "application/problem+json"
SLEEPER = IDLE_COMMAND


def problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    return response.json()


@pytest.fixture(scope="module")
def two_namespaces(server: RingServer, api: httpx.Client) -> dict[str, dict]:
    """One busybox deployment in `team-a` and one in `team-b`."""
    created = {}
    for namespace in ("team-a", "team-b"):
        created[namespace] = server.deploy(
            api, {"name": "app", "namespace": namespace, "runtime": "docker", "image": IMAGE_V1, "command": SLEEPER}
        )
    return created


def test_create_shows_the_token_once(api: httpx.Client) -> None:
    """Verify POST /tokens returns the clear token once; list/get show only its prefix."""
    body = {"name": "ci-read", "scopes": ["deployments:read"], "namespaces": ["production"],
            "expire_at": "2099-09-01T00:00:00Z"}
    response = api.post("/tokens", json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert re.fullmatch(r"ring_pat_[0-9a-f]{64}", created["token"])
    assert created["token_prefix"] == created["token"][:15]
    assert created["scopes"] == ["deployments:read"]
    assert created["namespaces"] == ["production"]
    assert created["expire_at"] == "2099-09-01T00:00:00Z"
    assert "will not be shown again" in created["message"]
    listed = api.get("/tokens").json()
    assert listed[0]["id"] == created["id"]  # newest first
    assert all("token" not in item for item in listed)
    view = api.get(f"/tokens/{created['id']}").json()
    assert set(view) == {"id", "name", "token_prefix", "scopes", "namespaces", "created_at", "expire_at",
                         "last_used_at", "revoked_at"}
    assert view["revoked_at"] is None


def test_last_used_at_is_recorded(server: RingServer, api: httpx.Client) -> None:
    """Verify using a PAT stamps its last_used_at."""
    token = server.pat(["deployments:read"], name="used-once")
    with server.client(token) as client:
        assert client.get("/deployments").status_code == 200
    view = next(t for t in api.get("/tokens").json() if t["name"] == "used-once")
    assert view["last_used_at"]


def test_invalid_token_request_lists_every_violation(api: httpx.Client) -> None:
    """Verify one 422 with all of: name length+format, unknown scope, bad expiry."""
    body = problem(api.post("/tokens", json={"name": "-", "scopes": ["nope"], "expire_at": "tomorrow"}), 422)
    codes = sorted(v["code"] for v in body["violations"])
    assert codes == ["token.expire_at.format", "token.name.format", "token.name.length", "token.scopes.unknown"]
    body = problem(api.post("/tokens", json={"name": "no-scopes"}), 422)
    assert [v["code"] for v in body["violations"]] == ["token.scopes.empty"]


def test_unknown_or_foreign_token_ids_are_404(server: RingServer, api: httpx.Client) -> None:
    """Verify ids that are not the caller's PATs answer 404 `token not found`."""
    body = problem(api.get("/tokens/00000000-0000-4000-8000-000000000000"), 404)
    assert body["detail"] == "token not found"
    server.create_user("olga", "olga-password", role="operator")
    olga = server.login("olga", "olga-password")
    theirs = server.pat(["deployments:read"], name="olga-pat", token=olga)
    with server.client(olga) as client:
        their_id = client.get("/tokens").json()[0]["id"]
    problem(api.get(f"/tokens/{their_id}"), 404)
    problem(api.delete(f"/tokens/{their_id}"), 404)
    with server.client(theirs) as client:
        assert client.get("/deployments").status_code == 200


def test_revoke(server: RingServer, api: httpx.Client) -> None:
    """Verify DELETE /tokens/{id} revokes it (401 afterwards) and the view shows revoked_at."""
    created = api.post("/tokens", json={"name": "to-revoke", "scopes": ["namespaces:read"]}).json()
    assert api.delete(f"/tokens/{created['id']}").status_code == 204
    with server.client(created["token"]) as client:
        problem(client.get("/namespaces"), 401)
    assert api.get(f"/tokens/{created['id']}").json()["revoked_at"]


def test_rotate_replaces_the_token(server: RingServer, api: httpx.Client) -> None:
    """Verify rotate revokes the old value and returns a new one with the same name, scopes, namespaces, expiry."""
    created = api.post("/tokens", json={"name": "rotating", "scopes": ["namespaces:read"],
                                        "namespaces": ["team-a"], "expire_at": "2099-01-01T00:00:00Z"}).json()
    response = api.post(f"/tokens/{created['id']}/rotate")
    assert response.status_code == 201, response.text
    rotated = response.json()
    assert rotated["id"] != created["id"] and rotated["token"] != created["token"]
    for key in ("name", "scopes", "namespaces", "expire_at"):
        assert rotated[key] == created[key]
    with server.client(created["token"]) as client:
        problem(client.get("/namespaces"), 401)
    with server.client(rotated["token"]) as client:
        assert client.get("/namespaces").status_code == 200
    problem(api.post(f"/tokens/{created['id']}/rotate"), 409)


def test_namespace_restricted_token_filters_lists_and_denies_others(
    server: RingServer, api: httpx.Client, two_namespaces: dict[str, dict]
) -> None:
    """Verify a token limited to team-a lists only team-a and gets 403 on team-b's deployment."""
    token = server.pat(["deployments:read", "deployments:write", "namespaces:read"], namespaces=["team-a"],
                       name="team-a-only")
    with server.client(token) as client:
        listed = client.get("/deployments").json()
        assert {d["namespace"] for d in listed} == {"team-a"}
        assert client.get("/deployments", params={"namespace": "team-b"}).json() == []
        assert client.get(f"/deployments/{two_namespaces['team-a']['id']}").status_code == 200
        body = problem(client.get(f"/deployments/{two_namespaces['team-b']['id']}"), 403)
        assert body["error"] == "token is not scoped to namespace 'team-b'"
        problem(client.get(f"/deployments/{two_namespaces['team-b']['id']}/events"), 403)
        problem(client.delete(f"/deployments/{two_namespaces['team-b']['id']}"), 403)
        spec = {"name": "intruder", "namespace": "team-b", "runtime": "docker", "image": IMAGE_V1}
        problem(client.post("/deployments", json=spec), 403)
        assert {ns["name"] for ns in client.get("/namespaces").json()} == {"team-a"}
        problem(client.get("/namespaces/team-b"), 403)
    assert {d["namespace"] for d in api.get("/deployments").json()} >= {"team-a", "team-b"}


def test_restricted_admin_token_mints_only_restricted_tokens(server: RingServer) -> None:
    """Verify a namespace-restricted admin PAT cannot mint an unrestricted token."""
    restricted = server.pat(["admin"], namespaces=["team-a"], name="admin-team-a")
    with server.client(restricted) as client:
        problem(client.post("/tokens", json={"name": "wider", "scopes": ["deployments:read"]}), 403)
        response = client.post("/tokens", json={"name": "narrow", "scopes": ["deployments:read"],
                                                "namespaces": ["team-a"]})
        assert response.status_code == 201, response.text


def test_sessions_mint_pats_bounded_by_their_role(server: RingServer) -> None:
    """Verify a viewer session mints a read PAT but not a write one; a plain PAT cannot manage tokens."""
    server.create_user("pat-viewer", "viewer-password")
    session = server.login("pat-viewer", "viewer-password")
    with server.client(session) as client:
        response = client.post("/tokens", json={"name": "mine", "scopes": ["deployments:read"]})
        assert response.status_code == 201, response.text
        pat = response.json()["token"]
        body = problem(client.post("/tokens", json={"name": "too-much", "scopes": ["deployments:write"]}), 403)
        assert "deployments:write" in body["detail"]
        assert [t["name"] for t in client.get("/tokens").json()] == ["mine"]
    with server.client(pat) as client:
        problem(client.get("/tokens"), 403)
