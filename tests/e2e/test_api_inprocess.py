"""The API app in-process (no engine): handler timeout, deny-by-default, and the pure pieces
of the HTTP layer (rolling-update decision, log parsing, rendering, health history)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import msgspec
import pytest
import trio

from ring_actors.http.app import create_app
from ring_actors.http.deployments import render_deployment
from ring_actors.http.logs import guess_level, parse_since, parse_tail
from ring_actors.http.rollout import plan_rollout
from ring_actors.schemas.manifest import Deployment, DeploymentSpec, Instance
from ring_actors.store.db import Database
from ring_actors.store.health import HealthCheckRepo, HealthCheckResult
from tests.support.inprocess import admin_client, simulated_services

pytestmark = pytest.mark.xdist_group("test_api_inprocess")


async def test_slow_handler_answers_408_and_unmapped_routes_need_admin(tmp_path) -> None:
    """Verify a handler past the deadline answers 408 problem+json, and an unmapped route is admin-only."""
    app = create_app(await simulated_services(tmp_path))

    async def slow() -> str:
        await trio.sleep(5)
        return "too late"

    app.add_url_rule("/test/slow", "slow", slow, methods=["GET"])
    async with admin_client(app) as (client, token):
        pat = await client.post("/tokens", json={"name": "reader", "scopes": ["deployments:read"]},
                                headers={"Authorization": f"Bearer {token}"})
        reader = (await pat.get_json())["token"]
        app.ring.handler_timeout = 0.2  # after the (Argon2-slow) login
        started = trio.current_time()
        response = await client.get("/test/slow", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 408
        assert response.headers["content-type"] == "application/problem+json"
        assert trio.current_time() - started < 2
        denied = await client.get("/test/slow", headers={"Authorization": f"Bearer {reader}"})
        assert denied.status_code == 403
        assert (await denied.get_json())["error"] == "this route is not reachable with a scoped token"


def _row(name: str, status: str = "running", parent_id: str | None = None) -> Deployment:
    row = Deployment(name=name, namespace="ns", runtime="docker", image="img", id=f"id-{name}-{status}",
                     created_at="2026-01-01T00:00:00Z", status=status)
    if parent_id:
        row.parent_id = parent_id
    return row


CHECK = {"type": "command", "command": "true", "interval": "1s", "timeout": "1s", "on_failure": "restart"}


def _spec(**extra: object) -> DeploymentSpec:
    return msgspec.convert({"name": "web", "namespace": "ns", "runtime": "docker", "image": "img", **extra},
                           DeploymentSpec)


def test_rollout_decision_table() -> None:
    """Verify lifecycle.md §8.1's table and reason precedence."""
    one = [_row("a")]
    assert plan_rollout(_spec(), [], force=False).replace == []
    assert plan_rollout(_spec(health_checks=[CHECK]), one, force=False).parent_id == "id-a-running"
    assert plan_rollout(_spec(health_checks=[CHECK]), one, force=True).reason == "force"
    assert plan_rollout(_spec(), one, force=False).reason == "no_health_checks"
    two = [_row("a"), _row("b")]
    assert plan_rollout(_spec(health_checks=[CHECK]), two, force=False).reason == "multiple_active_deployments"
    ports = [{"published": 8080, "target": 80}]
    assert plan_rollout(_spec(health_checks=[CHECK], ports=ports), one, force=False).reason == "host_port_published"
    assert plan_rollout(_spec(ports=ports), two, force=False).reason == "no_health_checks"
    crashed = [_row("a", status="crash_loop_back_off")]  # terminal rows still count as active
    assert plan_rollout(_spec(), crashed, force=False).replace == crashed


def test_failed_rollout_child_does_not_block_the_next_rollout() -> None:
    """Verify a failed child is retired and ignored, so the next apply is a rolling update again."""
    parent = _row("parent")
    failed_child = _row("child", status="failed", parent_id=parent.id)
    plan = plan_rollout(_spec(health_checks=[CHECK]), [parent, failed_child], force=False)
    assert plan.parent_id == parent.id
    assert plan.retire == [failed_child]
    assert plan.replace == []


def test_log_level_heuristic_and_query_parsing() -> None:
    """Verify Ring's level heuristic, `tail` and `since` parsing."""
    assert guess_level("2026/04/15 10:30:00 [notice] 1#1: start worker process") == "info"
    assert guess_level("[error] boom") == "error"
    assert guess_level("<4>kernel says") == "warning"
    assert guess_level("[ 1.0] <7>debugging") == "debug"
    assert guess_level("something ERROR happened") == "error"
    assert guess_level("hello") == "unknown"
    assert parse_tail(None) == 100 and parse_tail("all") is None and parse_tail("7") == 7 and parse_tail("x") == 100
    assert parse_since("30s", now=1000.0) == 970.0
    assert parse_since("2m", now=1000.0) == 880.0
    assert parse_since("1h", now=10000.0) == 6400.0
    assert parse_since("2026-01-01T00:00:00Z") == datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()
    assert parse_since("yesterday") is None


def test_render_masks_the_password_and_omits_empty_checks() -> None:
    """Verify the response shape rules of api.md §7.1 for config.password and health_checks."""
    row = _row("a")
    row.config.password = "secret"
    body = render_deployment(row, [Instance(id="i1", address="10.0.0.2")], addresses=False)
    assert body["config"] == {"password": "********"}
    assert "health_checks" not in body
    assert body["instances"] == [{"id": "i1"}]
    assert row.config.password == "secret"  # the stored row is untouched


async def test_health_history_latest_and_retention() -> None:
    """Verify `latest` keeps the newest row per (check, instance) and the sweep applies 50 rows / 7 days."""
    db = await Database.open(":memory:")
    repo = HealthCheckRepo(db)
    now = datetime.now(timezone.utc).isoformat()
    for i in range(60):
        for index, instance in ((0, "i1"), (0, "i2"), (1, "i1")):
            await repo.add(HealthCheckResult.new("dep", "http", "success" if i % 2 else "failed", f"run {i}",
                                                 started_at=now, instance_id=instance, check_index=index))
    latest = await repo.list("dep", latest=True)
    assert len(latest) == 3 and all(r.message == "run 59" for r in latest)
    assert len(await repo.list("dep", limit=10)) == 10
    removed = await repo.sweep()
    assert removed == 180 - 50
    assert len(await repo.list("dep", limit=1000)) == 50
    assert await repo.sweep(now=datetime.now(timezone.utc) + timedelta(days=8)) == 50
