"""Autoscaling through the real server and the Docker engine (manifest.md §8).

The server runs with a 1 s scheduler interval, no scale-up cooldown and a scale-down
cooldown longer than any test, so a decision follows the first stats sample and a
scaled-up (or clamped) count is never taken back while a test looks.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.engines import IMAGE_V1
from tests.support.server import IDLE_COMMAND, RingServer, docker_containers

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("test_autoscale")]

NAMESPACE = "autoscale-e2e"
BURN = ["sh", "-c", "trap 'exit 143' TERM; while :; do :; done"]
"""One core at 100 %, forever; exits at once on SIGTERM."""


@pytest.fixture(scope="module")
def server(docker_engine: None) -> Iterator[RingServer]:
    ring = RingServer(
        runtimes=("docker",),
        env={"RING_AUTOSCALE_UP_COOLDOWN": "0", "RING_AUTOSCALE_DOWN_COOLDOWN": "3600"},
    )
    ring.start()
    try:
        yield ring
    finally:
        ring.close()


def events(api: httpx.Client, deployment_id: str, reason: str) -> list[dict]:
    response = api.get(f"/deployments/{deployment_id}/events", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return [e for e in reversed(response.json()) if e["reason"] == reason]


def running_containers(deployment_id: str) -> list[dict]:
    return [c for c in docker_containers([deployment_id]) if c["State"] == "running"]


def test_cpu_bound_worker_scales_up_to_max(server: RingServer, api: httpx.Client) -> None:
    """Verify a worker burning CPU far above `target_cpu` gets one more instance: an `autoscale_up`
    event (1 -> 2), `desired_replicas` 2 with `replicas` still 1, two live instances and two containers,
    and no step beyond `max`."""
    created = server.deploy(api, {
        "name": "burner", "namespace": NAMESPACE, "runtime": "docker", "image": IMAGE_V1,
        "command": BURN, "replicas": 1, "autoscale": {"min": 1, "max": 2, "target_cpu": 5},
    })
    server.wait_for_status(api, created["id"], "running")

    up = server.wait_for(lambda: events(api, created["id"], "autoscale_up"), timeout=60, what="autoscale_up")
    assert up[0]["component"] == "autoscaler"
    assert "from 1 to 2" in up[0]["message"], up[0]

    def scaled() -> dict | None:
        body = api.get(f"/deployments/{created['id']}").json()
        return body if len(body["instances"]) == 2 and len(running_containers(created["id"])) == 2 else None

    body = server.wait_for(scaled, timeout=60, what="two instances")
    assert body["desired_replicas"] == 2
    assert body["replicas"] == 1, "the declared count is never rewritten"
    assert body["status"] == "running"
    # Still far above target at max: the decisions taken on samples of both instances hold (no 2 -> 3).
    sampled = server.wait_for(lambda: two_instance_sample(server, created["id"]), timeout=30, what="2-instance sample")
    server.wait_for(
        lambda: metrics(server)["runtime_last_refresh_seconds"] >= sampled + 2, timeout=30, what="two more refreshes"
    )
    assert [e["message"] for e in events(api, created["id"], "autoscale_up")] == [up[0]["message"]]
    assert api.get(f"/deployments/{created['id']}").json()["desired_replicas"] == 2
    assert len(running_containers(created["id"])) == 2


def metrics(server: RingServer) -> dict:
    return httpx.get(f"{server.base_url}/metrics", headers={"Accept": "application/json"}, trust_env=False).json()


def two_instance_sample(server: RingServer, deployment_id: str) -> int | None:
    """The refresh time of a stats sample covering two instances both above the dead band."""
    snapshot = metrics(server)
    usage = next((u for u in snapshot["deployment_runtime"] if u["deployment_id"] == deployment_id), None)
    if usage and usage["instances"] == 2 and usage["cpu_usage_percent"] / 2 > 15:
        return snapshot["runtime_last_refresh_seconds"]
    return None


def test_count_above_max_is_clamped_at_once(server: RingServer, api: httpx.Client) -> None:
    """Verify `replicas` 5 with `autoscale.max` 2 runs two containers, never more, and the autoscaler
    stores the clamped count as `desired_replicas` with an `autoscale_clamp` event."""
    created = server.deploy(api, {
        "name": "clamped", "namespace": NAMESPACE, "runtime": "docker", "image": IMAGE_V1,
        "command": IDLE_COMMAND, "replicas": 5, "autoscale": {"min": 1, "max": 2, "target_cpu": 50},
    })
    body = server.wait_for_status(api, created["id"], "running")
    clamp = server.wait_for(lambda: events(api, created["id"], "autoscale_clamp"), timeout=30, what="autoscale_clamp")
    assert "from 5 to 2" in clamp[0]["message"], clamp[0]

    def stored() -> dict | None:
        body = api.get(f"/deployments/{created['id']}").json()
        return body if body.get("desired_replicas") == 2 and len(body["instances"]) == 2 else None

    body = server.wait_for(stored, timeout=30, what="desired_replicas 2")
    assert body["replicas"] == 5
    assert len(docker_containers([created["id"]])) == 2, "the target was clamped before any create"
