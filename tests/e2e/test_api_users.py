"""Users end to end: creation, validation, self-service, RBAC handler rules, role changes."""

from __future__ import annotations

import httpx
import pytest

from tests.support.server import RingServer

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("test_api_users")]

PROBLEM = "application/problem+json"


def problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    return response.json()


def login_status(server: RingServer, username: str, password: str) -> int:
    return httpx.post(f"{server.base_url}/login", json={"username": username, "password": password}).status_code


def test_create_user_is_a_viewer_and_never_shows_the_password(api: httpx.Client) -> None:
    """Verify POST /users answers 201 with Ring's fields plus `role` = viewer, no password."""
    response = api.post("/users", json={"username": "alice", "password": "correct-horse-battery"})
    assert response.status_code == 201, response.text
    user = response.json()
    assert set(user) == {"id", "username", "role", "status", "created_at", "updated_at", "login_at"}
    assert user["username"] == "alice"
    assert user["role"] == "viewer"
    assert user["status"] == "active"
    assert user["updated_at"] is None and user["login_at"] is None
    listed = {u["username"]: u for u in api.get("/users").json()}
    assert listed["alice"]["role"] == "viewer"
    assert listed["admin"]["role"] == "admin"
    assert listed["admin"]["id"] == "1c5a5fe9-84e0-4a18-821e-8058232c2c23"


def test_usernames_are_unique(api: httpx.Client) -> None:
    """Verify a second user with the same username is a 409 problem."""
    assert api.post("/users", json={"username": "bob", "password": "password-1"}).status_code == 201
    body = problem(api.post("/users", json={"username": "bob", "password": "password-2"}), 409)
    assert "bob" in body["detail"]


def test_invalid_user_lists_every_violation(api: httpx.Client) -> None:
    """Verify one 422 lists every broken rule with its code."""
    body = problem(api.post("/users", json={"username": "-", "password": "short"}), 422)
    codes = sorted(v["code"] for v in body["violations"])
    assert codes == ["user.password.length", "user.username.format", "user.username.length"]
    assert body["title"] == "Validation failed"
    assert body["detail"].count("\n") == 2


def test_users_me_and_self_service_password_change(server: RingServer) -> None:
    """Verify a viewer changes its own password (needs only users:read) without losing its session."""
    user = server.create_user("carol", "carol-password")
    token = server.login("carol", "carol-password")
    with server.client(token) as api:
        me = api.get("/users/me").json()
        assert me["id"] == user["id"] and me["role"] == "viewer"
        response = api.put(f"/users/{user['id']}", json={"password": "carol-new-password"})
        assert response.status_code == 200, response.text
        assert response.json()["updated_at"]
        assert api.get("/users/me").status_code == 200  # a password change revokes nothing
    assert login_status(server, "carol", "carol-password") == 401
    assert login_status(server, "carol", "carol-new-password") == 200


def test_empty_update_is_a_no_op(server: RingServer) -> None:
    """Verify PUT /users/{id} with an empty body answers 200 and changes nothing."""
    user = server.create_user("dave", "dave-password")
    with server.client(server.login("dave", "dave-password")) as api:
        response = api.put(f"/users/{user['id']}", content=b"")
        assert response.status_code == 200, response.text
        assert response.json()["username"] == "dave"


def test_viewer_cannot_touch_others_or_roles(server: RingServer, api: httpx.Client) -> None:
    """Verify a viewer gets 403 updating another user, changing its own role, or deleting."""
    erin = server.create_user("erin", "erin-password")
    admin_id = api.get("/users/me").json()["id"]
    with server.client(server.login("erin", "erin-password")) as client:
        problem(client.put(f"/users/{admin_id}", json={"password": "hijacked-123"}), 403)
        problem(client.put(f"/users/{erin['id']}", json={"role": "admin"}), 403)
        problem(client.delete(f"/users/{admin_id}"), 403)
        assert client.put(f"/users/{erin['id']}", json={"role": "viewer"}).status_code == 200  # unchanged role


def test_unknown_role_and_unknown_user(api: httpx.Client, server: RingServer) -> None:
    """Verify an unknown role is 400 (`user.role.unknown`) and an unknown user 404."""
    frank = server.create_user("frank", "frank-password")
    body = problem(api.put(f"/users/{frank['id']}", json={"role": "superuser"}), 400)
    assert body["violations"][0]["code"] == "user.role.unknown"
    assert body["errors"] == ["Unknown role"]
    problem(api.put("/users/00000000-0000-4000-8000-000000000000", json={"password": "whatever-1"}), 404)
    problem(api.delete("/users/00000000-0000-4000-8000-000000000000"), 404)


def test_role_change_revokes_every_credential_of_the_account(server: RingServer, api: httpx.Client) -> None:
    """Verify promoting a viewer revokes its sessions and PATs; a new login gets the new scopes."""
    grace = server.create_user("grace", "grace-password")
    session = server.login("grace", "grace-password")
    pat = server.pat(["deployments:read"], name="grace-pat", token=session)
    with server.client(session) as client:
        problem(client.post("/namespaces", json={"name": "grace-ns"}), 403)
    response = api.put(f"/users/{grace['id']}", json={"role": "operator"})
    assert response.status_code == 200 and response.json()["role"] == "operator"
    for token in (session, pat):
        with server.client(token) as client:
            problem(client.get("/users/me"), 401)
    with server.client(server.login("grace", "grace-password")) as client:
        assert client.post("/namespaces", json={"name": "grace-ns"}).status_code == 201


def test_last_admin_cannot_be_demoted(server: RingServer, api: httpx.Client) -> None:
    """Verify demoting the only admin is 409, and allowed once another admin exists."""
    admin_id = api.get("/users/me").json()["id"]
    body = problem(api.put(f"/users/{admin_id}", json={"role": "viewer"}), 409)
    assert body["detail"] == "Cannot demote the last admin"
    heidi = server.create_user("heidi", "heidi-password", role="admin")
    with server.client(server.login("heidi", "heidi-password")) as client:
        problem(client.delete(f"/users/{heidi['id']}"), 403)  # not itself
        response = client.put(f"/users/{heidi['id']}", json={"role": "operator"})
        assert response.status_code == 200, response.text  # the default admin remains
    with server.client(server.login()) as fresh:
        problem(fresh.put(f"/users/{admin_id}", json={"role": "operator"}), 409)


def test_self_delete_is_forbidden(api: httpx.Client) -> None:
    """Verify a user cannot delete itself (403)."""
    admin_id = api.get("/users/me").json()["id"]
    problem(api.delete(f"/users/{admin_id}"), 403)


def test_deleted_user_tokens_stop_working(server: RingServer, api: httpx.Client) -> None:
    """Verify DELETE /users/{id} answers 204 and the user's tokens answer 401 afterwards."""
    ivan = server.create_user("ivan", "ivan-password")
    session = server.login("ivan", "ivan-password")
    assert api.delete(f"/users/{ivan['id']}").status_code == 204
    with server.client(session) as client:
        problem(client.get("/users/me"), 401)
    assert login_status(server, "ivan", "ivan-password") == 401
    problem(api.delete(f"/users/{ivan['id']}"), 404)


def test_username_change_conflict(server: RingServer, api: httpx.Client) -> None:
    """Verify renaming a user onto an existing username is 409."""
    judy = server.create_user("judy", "judy-password")
    server.create_user("judith", "judith-password")
    problem(api.put(f"/users/{judy['id']}", json={"username": "judith"}), 409)
    response = api.put(f"/users/{judy['id']}", json={"username": "judy2"})
    assert response.status_code == 200 and response.json()["username"] == "judy2"
