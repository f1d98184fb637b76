"""Deployments end to end on the real Docker engine: create, get, list filters, replace and
rolling-update decisions, delete, events (JSON and SSE), logs (JSON and SSE), metrics."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support.engines import IMAGE_V1
from tests.support.server import HELLO_COMMAND, RingServer, docker_containers

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("test_api_deployments")]

PROBLEM = "application/problem+json"
HELLO = HELLO_COMMAND
NAMESPACE = "deploy-tests"


def spec(name: str, **overrides: object) -> dict:
    body = {"name": name, "namespace": NAMESPACE, "runtime": "docker", "image": IMAGE_V1, "command": HELLO}
    body.update(overrides)
    return body


def problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    return response.json()


@pytest.fixture(scope="module")
def hello(server: RingServer, api: httpx.Client) -> dict:
    """A running busybox worker printing `hello` every second, with labels."""
    created = server.deploy(api, spec("hello", labels={"app": "hello", "tier": "demo"}))
    return server.wait_for_status(api, created["id"], "running")


def test_create_streams_created_and_running_without_polling(server: RingServer, api: httpx.Client,
                                                            admin_token: str) -> None:
    """Verify POST answers 201 `creating` and the global SSE stream then delivers
    `deployment_created` and the creating -> running status change."""
    with server.stream("/events", admin_token, follow="true") as stream:
        created = server.deploy(api, spec("streamed", config={"server": "r.example", "username": "u",
                                                              "password": "s3cret"}))
        assert created["status"] == "creating"
        assert created["instances"] == []
        assert created["config"]["password"] == "********"
        assert "health_checks" not in created
        mine = created["id"]
        event = stream.next(lambda m: m["type"] == "event" and m["deployment_id"] == mine, timeout=10)
        assert event["event"]["reason"] == "deployment_created"
        assert event["event"]["component"] == "api"
        assert event["event"]["message"] == "Deployment 'streamed' created successfully"
        assert event["namespace"] == NAMESPACE
        status = stream.next(
            lambda m: m["type"] == "status" and m["deployment_id"] == mine and m["new_status"] == "running",
            timeout=60,
        )
        assert status["old_status"] in ("creating", "pending")


def test_get_shows_live_instances(api: httpx.Client, hello: dict) -> None:
    """Verify GET /deployments/{id} has the Ring shape and live instances with addresses."""
    body = api.get(f"/deployments/{hello['id']}").json()
    assert body["status"] == "running"
    assert body["labels"] == {"app": "hello", "tier": "demo"}
    assert body["config"] == {}
    assert len(body["instances"]) == 1
    assert body["instances"][0]["address"]
    assert body["created_at"].endswith("Z")
    for key in ("id", "created_at", "updated_at", "status", "restart_count", "name", "runtime", "kind",
                "namespace", "image", "command", "config", "replicas", "ports", "labels", "instances",
                "environment", "volumes"):
        assert key in body, key
    problem(api.get("/deployments/00000000-0000-4000-8000-000000000000"), 404)


def test_list_filters(server: RingServer, api: httpx.Client, hello: dict) -> None:
    """Verify namespace (both forms), status, kind, label and instances=true filters."""
    job = server.deploy(api, spec("one-shot", kind="job", command=["sh", "-c", "echo done"],
                                  namespace="deploy-jobs"))

    def ids(**params: object) -> set[str]:
        response = api.get("/deployments", params=params)
        assert response.status_code == 200, response.text
        return {d["id"] for d in response.json()}

    assert hello["id"] in ids(namespace=NAMESPACE)
    assert job["id"] not in ids(namespace=NAMESPACE)
    assert {hello["id"], job["id"]} <= ids(**{"namespace[]": [NAMESPACE, "deploy-jobs"]})
    assert hello["id"] in ids(status="running")
    assert hello["id"] not in ids(status="failed")
    assert job["id"] in ids(kind="job") and hello["id"] not in ids(kind="job")
    assert hello["id"] in ids(label="app=hello")
    assert hello["id"] in ids(label=["app", "tier=demo"])
    assert hello["id"] not in ids(label="app=other")
    assert ids(namespace="no-such-namespace") == set()
    plain = next(d for d in api.get("/deployments", params={"namespace": NAMESPACE}).json() if d["id"] == hello["id"])
    assert plain["instances"] and "address" not in plain["instances"][0]
    rich = next(d for d in api.get("/deployments", params={"namespace": NAMESPACE, "instances": "true"}).json()
                if d["id"] == hello["id"])
    assert rich["instances"][0]["address"]


def test_invalid_bodies(api: httpx.Client) -> None:
    """Verify one 422 lists every business-rule violation; malformed JSON is 400."""
    bad = {"name": "Bad_Name", "namespace": "x", "runtime": "podman", "image": "",
           "environment": {"bad-key": "v"}}
    body = problem(api.post("/deployments", json=bad), 422)
    codes = {v["code"] for v in body["violations"]}
    assert codes >= {"deployment.name.format", "deployment.namespace.length", "deployment.image.required",
                     "deployment.runtime.not_enabled", "deployment.environment.key.invalid"}
    assert body["detail"].count("\n") == len(body["violations"]) - 1
    body = problem(api.post("/deployments", content=b"{nope", headers={"content-type": "application/json"}), 400)
    assert body["violations"][0]["code"] == "request.body.malformed_json"


def test_reapply_without_health_checks_replaces_immediately(server: RingServer, api: httpx.Client) -> None:
    """Verify a second apply of a check-less deployment marks the first deleted and warns `force_replace`."""
    first = server.deploy(api, spec("replaced"))
    second = server.deploy(api, spec("replaced", labels={"v": "2"}))
    assert "parent_id" not in second
    old = api.get(f"/deployments/{first['id']}")
    assert old.status_code == 404 or old.json()["status"] == "deleted"
    events = api.get(f"/deployments/{second['id']}/events").json()
    warning = next(e for e in events if e["reason"] == "force_replace")
    assert warning["level"] == "warning" and warning["component"] == "api"
    assert warning["message"] == (
        f"Replaced deployment {first['id']} immediately because no health checks are declared"
        " — rolling update requires at least one health check"
    )
    assert [e["reason"] for e in api.get(f"/deployments/{second['id']}/events",
                                         params={"level": "warning"}).json()] == ["force_replace"]


def test_reapply_with_health_checks_is_a_rolling_update(server: RingServer, api: httpx.Client) -> None:
    """Verify an apply with a health check and no published port becomes a child (`parent_id`);
    `?force=true` replaces instead."""
    check = {"type": "command", "command": "true", "interval": "1s", "timeout": "1s", "on_failure": "restart",
             "readiness": True}
    first = server.deploy(api, spec("rolling", health_checks=[check]))
    child = server.deploy(api, spec("rolling", health_checks=[check], labels={"v": "2"}))
    assert child["parent_id"] == first["id"]
    assert child["health_checks"][0]["type"] == "command"
    forced = server.deploy(api, spec("rolling", health_checks=[check]), force=True)
    assert "parent_id" not in forced
    reasons = [e["message"] for e in api.get(f"/deployments/{forced['id']}/events").json()
               if e["reason"] == "force_replace"]
    assert any("forced apply" in message for message in reasons), reasons
    assert len(reasons) >= 1


def test_delete_removes_containers(server: RingServer, api: httpx.Client) -> None:
    """Verify DELETE answers 204, the row goes `deleted` then is purged, and no container remains."""
    created = server.deploy(api, spec("doomed"))
    server.wait_for_status(api, created["id"], "running")
    assert docker_containers([created["id"]])
    assert api.delete(f"/deployments/{created['id']}").status_code == 204
    server.wait_for(lambda: api.get(f"/deployments/{created['id']}").status_code == 404, timeout=30,
                    what="purge after delete")
    assert docker_containers([created["id"]]) == []
    problem(api.delete(f"/deployments/{created['id']}"), 404)


def test_events_endpoint(api: httpx.Client, hello: dict) -> None:
    """Verify events are newest first with Ring's fields, honour `level` and `limit`, 404 when unknown."""
    events = api.get(f"/deployments/{hello['id']}/events").json()
    assert events[-1]["reason"] == "deployment_created"
    assert set(events[0]) == {"id", "deployment_id", "timestamp", "level", "message", "component", "reason"}
    assert len(api.get(f"/deployments/{hello['id']}/events", params={"limit": 1}).json()) == 1
    assert api.get(f"/deployments/{hello['id']}/events", params={"level": "error"}).json() == []
    body = problem(api.get("/deployments/00000000-0000-4000-8000-000000000000/events"), 404)
    assert body["error"] == "Deployment not found"


def test_deployment_event_stream_replays_then_follows(server: RingServer, api: httpx.Client, admin_token: str) -> None:
    """Verify /deployments/{id}/events?follow=true first replays stored events, then streams the deletion."""
    created = server.deploy(api, spec("followed"))
    server.wait_for_status(api, created["id"], "running")
    with server.stream(f"/deployments/{created['id']}/events", admin_token, follow="true") as stream:
        first = stream.next(timeout=10)
        assert first["type"] == "event" and first["event"]["reason"] == "deployment_created"
        assert api.delete(f"/deployments/{created['id']}").status_code == 204
        deleted = stream.next(lambda m: m["type"] == "status", timeout=15)
        assert deleted["new_status"] == "deleted"
        stream.next(lambda m: m["type"] == "status" and m["new_status"] == "purged", timeout=30)


def test_health_checks_endpoint(api: httpx.Client, hello: dict) -> None:
    """Verify the history endpoint answers a list (empty without checks) and 404 for unknown ids."""
    assert api.get(f"/deployments/{hello['id']}/health-checks").json() == []
    assert api.get(f"/deployments/{hello['id']}/health-checks", params={"latest": "true"}).json() == []
    problem(api.get("/deployments/00000000-0000-4000-8000-000000000000/health-checks"), 404)


def test_health_check_history_records_probe_results(server: RingServer, api: httpx.Client) -> None:
    """Verify probe results land in the history with instance id and check index; `latest` keeps one per check."""
    checks = [
        {"type": "command", "command": "true", "interval": "1s", "timeout": "2s", "on_failure": "alert"},
        {"type": "command", "command": "test -f /VERSION", "interval": "1s", "timeout": "2s", "on_failure": "alert"},
    ]
    created = server.deploy(api, spec("probed", health_checks=checks))
    server.wait_for_status(api, created["id"], "running")

    def both_checks() -> list[dict] | None:
        rows = api.get(f"/deployments/{created['id']}/health-checks", params={"latest": "true"}).json()
        return rows if {r["check_index"] for r in rows} == {0, 1} else None

    latest = server.wait_for(both_checks, timeout=20, what="a result for each check")
    assert len(latest) == 2
    instance = api.get(f"/deployments/{created['id']}").json()["instances"][0]["id"]
    for row in latest:
        assert row["status"] == "success" and row["check_type"] == "command"
        assert row["instance_id"] == instance
        assert set(row) >= {"id", "deployment_id", "message", "created_at", "started_at", "finished_at"}
    server.wait_for(lambda: len(api.get(f"/deployments/{created['id']}/health-checks").json()) >= 4, timeout=20)
    assert len(api.get(f"/deployments/{created['id']}/health-checks", params={"limit": 3}).json()) == 3


def test_logs_json(server: RingServer, api: httpx.Client, hello: dict) -> None:
    """Verify JSON logs: lines from the container with RFC 3339 timestamps, `tail`, `container`, 404."""
    lines = server.wait_for(lambda: api.get(f"/deployments/{hello['id']}/logs").json(), timeout=15,
                            what="log lines")
    assert lines[0]["message"] == "hello"
    assert lines[0]["instance"].startswith(f"{NAMESPACE}_hello_")
    assert lines[0]["timestamp"].endswith("Z") and "T" in lines[0]["timestamp"]
    assert lines[0]["level"] == "unknown" and lines[0]["level_guessed"] is True
    server.wait_for(lambda: len(api.get(f"/deployments/{hello['id']}/logs").json()) >= 3, timeout=15)
    assert len(api.get(f"/deployments/{hello['id']}/logs", params={"tail": 2}).json()) == 2
    instance = hello["instances"][0]["id"]
    assert api.get(f"/deployments/{hello['id']}/logs", params={"container": instance[:8], "tail": 1}).json()
    assert api.get(f"/deployments/{hello['id']}/logs", params={"container": "nothing-like-it"}).json() == []
    future = api.get(f"/deployments/{hello['id']}/logs", params={"since": "2099-01-01T00:00:00Z"}).json()
    assert future == []
    problem(api.get("/deployments/00000000-0000-4000-8000-000000000000/logs"), 404)


def test_logs_follow_streams_new_lines(server: RingServer, hello: dict, admin_token: str) -> None:
    """Verify logs?follow=true is an SSE stream that delivers lines as the container prints them."""
    with server.stream(f"/deployments/{hello['id']}/logs", admin_token, follow="true", tail="0") as stream:
        assert stream.response.headers["referrer-policy"] == "no-referrer"
        started = time.monotonic()
        first = stream.next(lambda m: m["message"] == "hello", timeout=10)
        second = stream.next(lambda m: m["message"] == "hello", timeout=10)
        assert first["timestamp"] < second["timestamp"]
        assert time.monotonic() - started < 10


def test_metrics_of_a_running_container(api: httpx.Client, hello: dict) -> None:
    """Verify per-deployment metrics report the instance with memory usage > 0."""
    body = api.get(f"/deployments/{hello['id']}/metrics").json()
    assert body["deployment_id"] == hello["id"] and body["deployment_name"] == "hello"
    assert body["instance_count"] == 1
    assert body["total_memory"]["usage_bytes"] > 0
    instance = body["instances"][0]
    assert instance["memory"]["usage_bytes"] > 0
    assert instance["pids"]["current"] >= 1
    assert set(instance) >= {"instance_id", "instance_name", "cpu_usage_percent", "memory", "network", "disk_io",
                             "pids", "restart_count"}
    problem(api.get("/deployments/00000000-0000-4000-8000-000000000000/metrics"), 404)


def test_prometheus_per_deployment_series(server: RingServer, hello: dict) -> None:
    """Verify /metrics gains the per-deployment series from the background stats cache."""
    def scrape() -> str | None:
        text = httpx.get(f"{server.base_url}/metrics").text
        return text if f'deployment_id="{hello["id"]}"' in text else None

    text = server.wait_for(scrape, timeout=20, interval=0.5, what="per-deployment series")
    line = next(line for line in text.splitlines()
                if line.startswith("ring_deployment_memory_usage_bytes{") and hello["id"] in line)
    assert 'deployment="hello"' in line and f'namespace="{NAMESPACE}"' in line and 'runtime="docker"' in line
    assert int(line.rsplit(" ", 1)[1]) > 0
    snapshot = httpx.get(f"{server.base_url}/metrics", headers={"Accept": "application/json"}).json()
    series = next(s for s in snapshot["deployment_runtime"] if s["deployment_id"] == hello["id"])
    assert series["instances"] == 1 and series["memory_usage_bytes"] > 0
    assert snapshot["runtime_last_refresh_seconds"] > 0


def test_restart_keeps_sessions_and_workloads(server: RingServer, api: httpx.Client, hello: dict) -> None:
    """Verify a graceful restart keeps tokens valid and re-adopts the running container."""
    before = api.get(f"/deployments/{hello['id']}").json()["instances"][0]["id"]
    assert server.restart() is server
    after = server.wait_for_status(api, hello["id"], "running")
    server.wait_for(lambda: api.get(f"/deployments/{hello['id']}").json()["instances"], timeout=15)
    assert api.get(f"/deployments/{hello['id']}").json()["instances"][0]["id"] == before
    assert after["id"] == hello["id"]
