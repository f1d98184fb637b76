"""Authentication end to end: login/logout, bearer rules, scopes, stream tickets, CORS, body errors."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.support.engines import IMAGE_V1
from tests.support.server import HELLO_COMMAND, RingServer

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("test_api_auth")]

ALLOWED_ORIGIN = "https://dashboard.example.com"
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def server(docker_engine: None) -> Iterator[RingServer]:
    """This module's server also has a CORS allow-list."""
    ring = RingServer(cors_origins=[ALLOWED_ORIGIN])
    ring.start()
    try:
        yield ring
    finally:
        ring.close()


@pytest.fixture(scope="module")
def echo(server: RingServer, api: httpx.Client) -> dict:
    """A running busybox deployment (stream tickets are bound to a deployment)."""
    created = server.deploy(
        api,
        {
            "name": "echo",
            "namespace": "auth-tests",
            "runtime": "docker",
            "image": IMAGE_V1,
            "command": HELLO_COMMAND,
        },
    )
    return server.wait_for_status(api, created["id"], "running")


def assert_problem(response: httpx.Response, status: int, detail: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body = response.json()
    assert body["type"] == "about:blank"
    assert body["status"] == status
    assert isinstance(body["violations"], list)
    if detail is not None:
        assert body["detail"] == detail
    return body


def test_login_mints_a_session_token(server: RingServer) -> None:
    """Verify POST /login returns a `ring_pat_` + 64 hex token that authenticates and stamps login_at."""
    response = httpx.post(f"{server.base_url}/login", json={"username": "admin", "password": "changeme"})
    assert response.status_code == 200
    token = response.json()["token"]
    assert re.fullmatch(r"ring_pat_[0-9a-f]{64}", token)
    with server.client(token) as api:
        me = api.get("/users/me")
    assert me.status_code == 200
    assert me.json()["username"] == "admin"
    assert me.json()["role"] == "admin"
    assert me.json()["login_at"]


def test_wrong_password_and_unknown_user_look_the_same(server: RingServer) -> None:
    """Verify a wrong password and an unknown user both answer 401 `invalid credentials`."""
    for body in ({"username": "admin", "password": "wrong-password"}, {"username": "ghost", "password": "x"}):
        response = httpx.post(f"{server.base_url}/login", json=body)
        problem = assert_problem(response, 401, "invalid credentials")
        assert problem["title"] == "Unauthorized"


def test_missing_or_unknown_token_is_401_with_the_legacy_error_key(server: RingServer) -> None:
    """Verify 401 is problem+json that also carries Ring's `{"error": "Invalid token"}`."""
    cases = [{}, {"Authorization": "Bearer ring_pat_" + "0" * 64}, {"Authorization": "Basic abc"}]
    for headers in cases:
        response = httpx.get(f"{server.base_url}/deployments", headers=headers)
        body = assert_problem(response, 401, "Invalid token")
        assert body["error"] == "Invalid token"


def test_unknown_route_is_404_even_without_credentials(server: RingServer) -> None:
    """Verify auth runs only on matched routes: an unknown path is 404, never 401."""
    response = httpx.get(f"{server.base_url}/no/such/route")
    assert_problem(response, 404)
    response = httpx.patch(f"{server.base_url}/deployments")
    assert_problem(response, 405)


def test_public_routes_need_no_credential(server: RingServer) -> None:
    """Verify /healthz, /metrics and /openapi.json answer without a token."""
    for path in ("/healthz", "/metrics", "/openapi.json"):
        assert httpx.get(f"{server.base_url}{path}").status_code == 200, path


def test_logout_revokes_only_the_presented_session(server: RingServer) -> None:
    """Verify POST /logout revokes the bearer it was called with, and nothing else."""
    first, second = server.login(), server.login()
    with server.client(first) as api:
        assert api.post("/logout").status_code == 204
        assert_problem(api.get("/users/me"), 401)
        assert api.post("/logout").status_code == 401
    with server.client(second) as api:
        assert api.get("/users/me").status_code == 200


def test_expired_token_is_rejected(server: RingServer) -> None:
    """Verify a PAT whose expire_at is in the past answers 401, and a future one works."""
    expired = server.pat(["deployments:read"], name="expired", expire_at="2020-01-01T00:00:00Z")
    valid = server.pat(["deployments:read"], name="valid", expire_at="2099-01-01T00:00:00Z")
    with server.client(expired) as api:
        assert_problem(api.get("/deployments"), 401, "Invalid token")
    with server.client(valid) as api:
        assert api.get("/deployments").status_code == 200


def test_revoked_token_is_rejected(server: RingServer, api: httpx.Client) -> None:
    """Verify a revoked PAT answers 401 on its next use."""
    token = server.pat(["deployments:read"], name="soon-revoked")
    with server.client(token) as client:
        assert client.get("/deployments").status_code == 200
    token_id = next(t["id"] for t in api.get("/tokens").json() if t["name"] == "soon-revoked")
    assert api.delete(f"/tokens/{token_id}").status_code == 204
    with server.client(token) as client:
        assert_problem(client.get("/deployments"), 401, "Invalid token")


def test_viewer_cannot_write(server: RingServer) -> None:
    """Verify a viewer session reads but gets 403 (scope message, legacy key) on writes."""
    server.create_user("vera", "vera-password", role="viewer")
    with server.client(server.login("vera", "vera-password")) as api:
        assert api.get("/deployments").status_code == 200
        assert api.get("/namespaces").status_code == 200
        body = assert_problem(api.post("/namespaces", json={"name": "vera-ns"}), 403)
        assert body["detail"] == "token lacks required scope 'namespaces:write'"
        assert body["error"] == body["detail"]
        spec = {"name": "nope", "namespace": "vera-ns", "runtime": "docker", "image": IMAGE_V1}
        body = assert_problem(api.post("/deployments", json=spec), 403)
        assert body["error"] == "token lacks required scope 'deployments:write'"
        assert_problem(api.post("/users", json={"username": "x1", "password": "password-1"}), 403)


def test_pat_scopes_are_enforced(server: RingServer) -> None:
    """Verify a PAT only passes routes whose scope it holds."""
    token = server.pat(["namespaces:read"], name="ns-reader")
    with server.client(token) as api:
        assert api.get("/namespaces").status_code == 200
        body = assert_problem(api.get("/deployments"), 403)
        assert body["detail"] == "token lacks required scope 'deployments:read'"
        body = assert_problem(api.get("/tokens"), 403)
        assert body["detail"] == "token lacks required scope 'admin'"


def test_stream_ticket_opens_the_logs_once(server: RingServer, api: httpx.Client, echo: dict) -> None:
    """Verify a stream ticket reads its deployment's logs exactly once and nothing else."""
    response = api.post("/auth/stream-ticket", json={"scope": f"deployment:logs:{echo['id']}"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert re.fullmatch(r"tk_stream_[A-Za-z0-9]{48}", body["ticket"])
    assert body["expires_in"] == 30
    ticket = body["ticket"]
    other = httpx.get(f"{server.base_url}/deployments/{echo['id']}", params={"ticket": ticket})
    assert_problem(other, 401)
    logs = httpx.get(f"{server.base_url}/deployments/{echo['id']}/logs", params={"ticket": ticket, "tail": "5"})
    assert logs.status_code == 200, logs.text
    assert logs.headers["referrer-policy"] == "no-referrer"
    assert isinstance(logs.json(), list)
    again = httpx.get(f"{server.base_url}/deployments/{echo['id']}/logs", params={"ticket": ticket})
    assert_problem(again, 401)


def test_stream_ticket_errors(server: RingServer, api: httpx.Client) -> None:
    """Verify a blank scope is 400 (legacy `error` key) and an unknown deployment 404."""
    body = assert_problem(api.post("/auth/stream-ticket", json={"scope": "  "}), 400, "scope is required")
    assert body["error"] == "scope is required"
    assert_problem(api.post("/auth/stream-ticket", json={"scope": "something-else"}), 400)
    assert_problem(api.post("/auth/stream-ticket", json={"scope": "deployment:logs:no-such-id"}), 404)


def test_body_errors(server: RingServer, api: httpx.Client) -> None:
    """Verify 415 without a JSON content type, 400 for malformed JSON, 422 for a wrong shape."""
    response = api.post("/namespaces", content=b'{"name": "abc"}', headers={"content-type": "text/plain"})
    assert_problem(response, 415)
    response = api.post("/namespaces", content=b'{"name": ', headers={"content-type": "application/json"})
    body = assert_problem(response, 400)
    assert body["violations"][0]["code"] == "request.body.malformed_json"
    response = api.post("/namespaces", json={"name": 42})
    body = assert_problem(response, 422)
    assert body["violations"][0]["code"] == "request.body.invalid"
    assert body["violations"][0]["property_path"] == "name"


def test_cors_allow_list(server: RingServer) -> None:
    """Verify allowed origins get CORS headers (and preflights a 204), others get none."""
    preflight = httpx.options(
        f"{server.base_url}/deployments",
        headers={"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "Authorization" in preflight.headers["access-control-allow-headers"]
    allowed = httpx.get(f"{server.base_url}/healthz", headers={"Origin": ALLOWED_ORIGIN})
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    denied = httpx.get(f"{server.base_url}/healthz", headers={"Origin": "https://evil.example.com"})
    assert "access-control-allow-origin" not in denied.headers
    unauthorized = httpx.get(f"{server.base_url}/deployments", headers={"Origin": ALLOWED_ORIGIN})
    assert unauthorized.status_code == 401
    assert unauthorized.headers["access-control-allow-origin"] == ALLOWED_ORIGIN

