"""System endpoints end to end: /healthz, /node/get, /metrics (text and JSON), /openapi.json."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.support.server import RingServer

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("test_api_system")]

STATUSES = ("pending", "creating", "running", "completed", "failed", "deleted", "crash_loop_back_off",
            "image_pull_back_off", "create_container_error", "network_error", "config_error",
            "file_system_error", "insufficient_resources", "error")
SAMPLE = re.compile(r'^[a-z_]+(\{([a-z_]+="(?:[^"\\]|\\.)*",?)*\})? -?[0-9.]+$')


def test_healthz_reports_each_runtime(server: RingServer) -> None:
    """Verify /healthz is Ring's `{"state": "UP"}` plus per-runtime health."""
    response = httpx.get(f"{server.base_url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"state": "UP", "runtimes": {"docker": "up"}}


def test_node_get(api: httpx.Client) -> None:
    """Verify /node/get answers Ring's node block."""
    body = api.get("/node/get").json()
    assert set(body) == {"hostname", "os", "arch", "uptime", "cpu_count", "memory_total", "memory_available",
                         "load_average"}
    assert body["os"] == "linux"
    assert re.fullmatch(r"\d+s", body["uptime"])
    assert body["cpu_count"] >= 1
    assert 0 < body["memory_available"] <= body["memory_total"]
    assert len(body["load_average"]) == 3


def test_node_get_needs_deployments_read(server: RingServer) -> None:
    """Verify /node/get is gated by deployments:read."""
    with server.client(server.pat(["namespaces:read"], name="no-deployments")) as client:
        assert client.get("/node/get").status_code == 403


def test_metrics_prometheus_text(server: RingServer) -> None:
    """Verify /metrics is Prometheus text 0.0.4 with Ring's inventory series and every status."""
    response = httpx.get(f"{server.base_url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = response.text
    for line in text.splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or SAMPLE.match(line), line
    for status in STATUSES:
        assert f'ring_deployments_by_status{{status="{status}"}} ' in text, status
    for name in ("ring_deployments", "ring_namespaces", "ring_secrets", "ring_volumes", "ring_users",
                 "ring_webhooks", "ring_configs", "ring_runtime_last_refresh_seconds"):
        assert re.search(rf"^{name} \d+$", text, re.M), name
    assert "# TYPE ring_unhealthy_deployments gauge" in text
    for status in ("pending", "delivered", "dead"):
        assert f'ring_events_by_status{{status="{status}"}} 0' in text
    assert re.search(r"^ring_users 1$", text, re.M)


def test_metrics_json(server: RingServer) -> None:
    """Verify `Accept: application/json` gets the same snapshot as JSON."""
    response = httpx.get(f"{server.base_url}/metrics", headers={"Accept": "text/html, application/json;q=0.9"})
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    body = response.json()
    assert set(body["deployments_by_status"]) == set(STATUSES)
    assert body["users"] == 1
    assert body["events_by_status"] == {"pending": 0, "delivered": 0, "dead": 0}
    assert isinstance(body["deployment_runtime"], list)
    assert isinstance(body["unhealthy_deployments_by_namespace"], list)


def test_openapi_document(server: RingServer) -> None:
    """Verify /openapi.json is an OpenAPI 3.1 document listing the deployment routes with schemas."""
    doc = httpx.get(f"{server.base_url}/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    assert {"get", "post"} <= set(doc["paths"]["/deployments"])
    create = doc["paths"]["/deployments"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/DeploymentSpec")
    assert create["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].endswith("/Deployment")
    assert create["security"] == [{"bearerAuth": []}]
    assert doc["paths"]["/login"]["post"]["security"] == []
    schemas = doc["components"]["schemas"]
    assert {"Deployment", "DeploymentSpec", "Problem", "Violation", "User", "TokenCreated"} <= set(schemas)
    assert "name" in schemas["DeploymentSpec"]["required"]
    for path in ("/deployments/{id}/logs", "/deployments/{id}/events", "/users/{id}", "/tokens/{id}/rotate",
                 "/namespaces/{id}/audit", "/healthz", "/metrics", "/node/get"):
        assert path in doc["paths"], path


def test_no_cors_headers_without_an_allow_list(server: RingServer) -> None:
    """Verify no CORS headers are sent when `api.cors_origins` is empty."""
    response = httpx.get(f"{server.base_url}/healthz", headers={"Origin": "https://dashboard.example.com"})
    assert "access-control-allow-origin" not in response.headers


def test_credentials_survive_a_crash(server: RingServer, admin_token: str) -> None:
    """Verify a SIGKILLed server comes back on the same database: sessions and PATs still work."""
    pat = server.pat(["deployments:read"], name="survivor")
    server.kill()
    assert not server.running
    server.start()
    for token in (admin_token, pat):
        with server.client(token) as client:
            assert client.get("/deployments").status_code == 200
