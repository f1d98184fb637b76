"""Restart survival on the REAL Docker engine (lifecycle.md §11): the server dies, workloads don't.

A server killed with SIGKILL and started again re-adopts its containers by their
`ring_deployment` label: no duplicates, no losses. SIGTERM is graceful and leaves
workloads running too.
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support.engines import IMAGE_V1
from tests.support.server import RingServer, docker_containers

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("server-restart")]


def worker(name: str, replicas: int = 3) -> dict:
    return {
        "name": name,
        "namespace": "restart",
        "runtime": "docker",
        "image": IMAGE_V1,
        "replicas": replicas,
        "command": ["sleep", "3600"],
    }


def running_ids(deployment_id: str) -> set[str]:
    return {c["Id"] for c in docker_containers([deployment_id]) if c["State"] == "running"}


def exactly(deployment_id: str, count: int):
    """A wait_for predicate: the running container ids once there are `count` of them."""

    def check() -> set[str] | None:
        ids = running_ids(deployment_id)
        return ids if len(ids) == count else None

    return check


def all_ids(deployment_id: str) -> set[str]:
    return {c["Id"] for c in docker_containers([deployment_id])}


def assert_stable(deployment_id: str, expected: set[str], seconds: float) -> None:
    """Watch the engine for a while: the set of containers must not change at all."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert all_ids(deployment_id) == expected
        time.sleep(0.2)


def test_sigkill_then_restart_readopts_without_duplicates_or_losses() -> None:
    with RingServer() as server:
        with server.client(server.admin_token) as api:
            deployment = server.deploy(api, worker("kept"))
            server.wait_for_status(api, deployment["id"], "running")
            before = server.wait_for(exactly(deployment["id"], 3))

        server.kill()
        assert running_ids(deployment["id"]) == before, "SIGKILL of the server must not touch workloads"

        server.start()
        with server.client(server.admin_token) as api:
            body = api.get(f"/deployments/{deployment['id']}").json()
            assert body["status"] == "running"
            assert {i["id"] for i in body["instances"]} == before
            # Several safety-net ticks (1 s here) pass: still exactly the same three containers.
            assert_stable(deployment["id"], before, seconds=3.5)
            assert api.get(f"/deployments/{deployment['id']}").json()["restart_count"] == 0


def test_a_crash_while_the_server_is_down_is_counted_and_replaced() -> None:
    with RingServer() as server:
        with server.client(server.admin_token) as api:
            deployment = server.deploy(api, worker("down", replicas=1))
            server.wait_for_status(api, deployment["id"], "running")
            [victim] = server.wait_for(lambda: running_ids(deployment["id"]))

        server.kill()
        with httpx.Client(transport=httpx.HTTPTransport(uds="/var/run/docker.sock"), base_url="http://d/v1.41") as d:
            d.post(f"/containers/{victim}/kill").raise_for_status()

        server.start()
        with server.client(server.admin_token) as api:
            replacement = server.wait_for(exactly(deployment["id"], 1), timeout=30)
            assert victim not in replacement
            body = server.wait_for_status(api, deployment["id"], "running")
            events = api.get(f"/deployments/{deployment['id']}/events").json()
            reasons = [e["reason"] for e in events]
            assert "container_crashed" in reasons, events
            # Counted: either still 1, or reset by the healthy window (3 s here) with its event.
            assert body["restart_count"] == 1 or "restart_count_reset" in reasons, events
            server.wait_for(lambda: victim not in all_ids(deployment["id"]), timeout=20, what="dead container removed")


def test_sigterm_is_graceful_and_leaves_workloads_running() -> None:
    with RingServer() as server:
        with server.client(server.admin_token) as api:
            deployment = server.deploy(api, worker("graceful", replicas=2))
            server.wait_for_status(api, deployment["id"], "running")
            before = server.wait_for(exactly(deployment["id"], 2))
        assert server.stop() == 0
        assert running_ids(deployment["id"]) == before
        server.start()
        with server.client(server.admin_token) as api:
            body = api.get(f"/deployments/{deployment['id']}").json()
            assert {i["id"] for i in body["instances"]} == before
