"""Recorder messages -> webhook event kinds and payloads (api.md §14.2)."""

from __future__ import annotations

import json

import pytest

from ring_actors.bus import BusMessage
from ring_actors.supervisors import rollout
from ring_actors.webhooks.payloads import DeploymentInfo, draft, render

DEP = "f3a8c2d1-0000-4000-8000-000000000001"
PARENT = "aaaaaaaa-0000-4000-8000-000000000002"
INFO = DeploymentInfo(name="web", kind="worker", replicas=3, restart_count=2, parent_id=None)


def event(reason: str, message: str) -> BusMessage:
    return BusMessage("event", DEP, "production", {"deployment_id": DEP, "reason": reason, "message": message})


def payload(message: BusMessage, info: DeploymentInfo | None = INFO) -> dict:
    found = draft(message)
    assert found is not None
    return {"webhook_kind": found.kind, **json.loads(render(found, info))}


def test_status_changed() -> None:
    """Verify a status change carries old/new status and the restart count, common fields first."""
    body = payload(BusMessage("status", DEP, "production", {"deployment_id": DEP, "from": "creating", "to": "running"}))
    assert body == {
        "webhook_kind": "deployment.status_changed",
        "schema_version": 1,
        "deployment_id": DEP,
        "namespace": "production",
        "name": "web",
        "kind": "worker",
        "old_status": "creating",
        "new_status": "running",
        "restart_count": 2,
    }
    raw = render(draft(BusMessage("status", DEP, "production", {"from": "creating", "to": "running"})), INFO)
    assert raw.startswith(b'{"schema_version":1,"deployment_id":')


def test_purge_marker_and_other_events_send_nothing() -> None:
    """Verify the internal `purged` marker and plain events (e.g. state_transition) are not webhooks."""
    assert draft(BusMessage("status", DEP, "p", {"from": "deleted", "to": "purged"})) is None
    assert draft(event("state_transition", "Status changed from creating to running (1 containers)")) is None
    assert draft(event("deployment_created", "Deployment 'web' created successfully")) is None


def test_scaled() -> None:
    """Verify scale_up/scale_down become `deployment.scaled` with the live count and declared replicas."""
    up = payload(event("scale_up", "Scaled up from 1 to 2 replicas"))
    assert (up["webhook_kind"], up["direction"]) == ("deployment.scaled", "up")
    assert (up["instance_count"], up["replicas"]) == (2, 3)
    down = payload(event("scale_down", "Scaled down from 3 to 1 replicas"))
    assert (down["direction"], down["instance_count"]) == ("down", 1)


@pytest.mark.parametrize(
    ("reason", "category"),
    [("image_pull_back_off", "user"), ("config_error", "user"), ("insufficient_resources", "host"),
     ("instance_creation_failed", "transient"), ("runtime_error", "transient")],
)
def test_error_categories(reason: str, category: str) -> None:
    """Verify reasons in the category table become `deployment.error` with their category."""
    body = payload(event(reason, "boom"))
    assert body["webhook_kind"] == "deployment.error"
    assert (body["reason"], body["category"], body["message"]) == (reason, category, "boom")
    assert draft(event("container_crashed", "Container abc exited unexpectedly (restart 1)")) is None


@pytest.mark.parametrize(
    ("reason", "message", "action", "probe"),
    [
        ("health_check_instance_restart",
         "Health check failed for instance i-1 (HTTP 500 from /health), triggering instance restart", "restart",
         "HTTP 500 from /health"),
        ("health_check_stop", "Health check failed for instance i-1 (timeout), triggering deployment stop", "stop",
         "timeout"),
        ("health_check_alert", "Health check failed for instance i-1: connection refused", "alert",
         "connection refused"),
    ],
)
def test_health_check_failed(reason: str, message: str, action: str, probe: str) -> None:
    """Verify the three on_failure actions carry the instance id, the action and the probe message."""
    body = payload(event(reason, message))
    assert body["webhook_kind"] == "deployment.health_check_failed"
    assert (body["instance_id"], body["action"], body["message"]) == ("i-1", action, probe)


def test_rolling_update_phases() -> None:
    """Verify step/complete/failed phases, with the drained instance only on `step`."""
    step = payload(event("rolling_update_step", rollout.step_message("inst-9", PARENT, 2)))
    assert (step["phase"], step["parent_id"], step["drained_instance_id"]) == ("step", PARENT, "inst-9")
    done = payload(event("rolling_update_complete", rollout.complete_message(PARENT, 3)))
    assert (done["phase"], done["parent_id"], done["drained_instance_id"]) == ("complete", PARENT, None)
    failed = payload(event("rolling_update_failed", rollout.failed_message(PARENT, "failed")))
    assert (failed["phase"], failed["parent_id"]) == ("failed", PARENT)


def test_unknown_deployment_still_renders() -> None:
    """Verify an event whose deployment is gone still has every common field."""
    body = payload(BusMessage("status", DEP, "ns", {"from": "running", "to": "deleted"}), None)
    assert body["name"] == "" and body["kind"] == "worker" and body["new_status"] == "deleted"
