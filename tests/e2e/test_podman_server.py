"""A real `ring-actors serve` with only the podman runtime: apply, crash, SIGKILL the server, re-adopt.

The server finds Podman's socket itself (RING_PODMAN_HOST points it at the test
service); assertions read Podman directly over its socket.
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.engines import IMAGE_V1, PODMAN_SOCK, require_engine, unix_request
from tests.support.server import IDLE_COMMAND, RingServer, ServerError

pytestmark = [pytest.mark.podman, pytest.mark.xdist_group("e2e-podman-server")]

NAMESPACE = "e2e-podman"


def podman_containers(deployment_id: str, *, running_only: bool = False) -> list[dict[str, Any]]:
    filters = urllib.parse.quote(json.dumps({"label": [f"ring_deployment={deployment_id}"]}))
    status, body = unix_request(
        PODMAN_SOCK, "GET", f"/v1.41/containers/json?all={0 if running_only else 1}&filters={filters}"
    )
    assert status == 200, body
    result: list[dict[str, Any]] = json.loads(body)
    return result


def podman_pid(container_id: str) -> int:
    status, body = unix_request(PODMAN_SOCK, "GET", f"/v1.41/containers/{container_id}/json")
    assert status == 200, body
    pid: int = json.loads(body)["State"]["Pid"]
    return pid


@pytest.fixture(scope="module")
def server() -> Iterator[RingServer]:
    require_engine("podman")
    ring = RingServer(runtimes=("podman",), env={"RING_PODMAN_HOST": f"unix://{PODMAN_SOCK}"})
    ring.start()
    try:
        yield ring
    finally:
        tracked = list(ring.deployment_ids)
        try:
            ring.close()  # deletes tracked deployments and waits until the API says they are gone
        finally:
            leftovers = [c["Names"] for d in tracked for c in podman_containers(d)]
            for deployment_id in tracked:
                for container in podman_containers(deployment_id):
                    unix_request(PODMAN_SOCK, "DELETE", f"/v1.41/containers/{container['Id']}?force=1&v=1&t=0")
            assert leftovers == [], f"containers outlived the deployments: {leftovers}"


def test_server_refuses_to_start_when_podman_is_unreachable(tmp_path: Path) -> None:
    """Verify an enabled but unreachable podman runtime stops the server at start-up, naming the socket."""
    missing = tmp_path / "podman.sock"
    ring = RingServer(runtimes=("podman",), env={"RING_PODMAN_HOST": f"unix://{missing}"}, startup_timeout=30)
    try:
        with pytest.raises(ServerError) as failure:
            ring.start()
        assert ring.process is not None and ring.process.returncode not in (None, 0)
        assert not (ring.dir / "ring.db").exists(), "a server that refused to start created its database"
    finally:
        ring.close()
    assert f"cannot reach the Podman API socket unix://{missing}" in str(failure.value), str(failure.value)


def test_podman_server_applies_and_readopts_after_sigkill(server: RingServer) -> None:
    """Verify a podman deployment runs, a crash is replaced, and after SIGKILL of the server the new
    server re-adopts the same containers (no duplicates) and still replaces a crashed one."""
    with server.client(server.admin_token) as api:
        created = server.deploy(
            api,
            {
                "name": "web",
                "namespace": NAMESPACE,
                "runtime": "podman",
                "image": IMAGE_V1,
                "command": IDLE_COMMAND,
                "replicas": 2,
                "config": {"image_pull_policy": "IfNotPresent"},
            },
        )
        deployment_id = created["id"]
        server.wait_for_status(api, deployment_id, "running")
        instances = server.wait_for(
            lambda: len(body := api.get(f"/deployments/{deployment_id}").json()["instances"]) == 2 and body,
            what="two live instances",
        )
        assert all(instance.get("address") for instance in instances)
        before = {c["Id"] for c in podman_containers(deployment_id, running_only=True)}
        assert before == {instance["id"] for instance in instances}

        # A crash is replaced without waiting for the 1 s tick.
        victim = min(before)
        killed = time.monotonic()
        os.kill(podman_pid(victim), signal.SIGKILL)
        server.wait_for(
            lambda: len([c for c in podman_containers(deployment_id, running_only=True) if c["Id"] != victim]) == 2,
            timeout=20,
            interval=0.05,
            what="a replacement container",
        )
        print(f"\nkill -9 -> replacement running (seen by polling Podman): {time.monotonic() - killed:.2f} s")
        events = api.get(f"/deployments/{deployment_id}/events").json()
        crashed = [e for e in events if e["reason"] == "container_crashed"]
        assert len(crashed) == 1 and "exit code 137" in crashed[0]["message"], crashed
        server.wait_for(lambda: all(c["Id"] != victim for c in podman_containers(deployment_id)), timeout=15)
        survivors = {c["Id"] for c in podman_containers(deployment_id, running_only=True)}

    server.kill()  # SIGKILL: no graceful shutdown
    assert {c["Id"] for c in podman_containers(deployment_id, running_only=True)} == survivors

    server.start()
    with server.client(server.login()) as api:
        server.wait_for_status(api, deployment_id, "running")
        server.wait_for(
            lambda: {i["id"] for i in api.get(f"/deployments/{deployment_id}").json()["instances"]} == survivors,
            timeout=20,
            what="the adopted instances",
        )
        time.sleep(2.5)  # more than two ticks: a wrong scale-up would show by now
        assert {c["Id"] for c in podman_containers(deployment_id)} == survivors

        victim = min(survivors)
        os.kill(podman_pid(victim), signal.SIGKILL)
        server.wait_for(
            lambda: len([c for c in podman_containers(deployment_id, running_only=True) if c["Id"] != victim]) == 2,
            timeout=20,
            interval=0.05,
            what="a replacement of an adopted container",
        )
        body = api.get(f"/deployments/{deployment_id}").json()
        assert body["status"] == "running"

        response = api.delete(f"/deployments/{deployment_id}")
        assert response.status_code in (200, 202, 204), response.text
        server.wait_for(
            lambda: (
                api.get(f"/deployments/{deployment_id}").status_code == 404 and not podman_containers(deployment_id)
            ),
            timeout=30,
            what="the deployment and its containers to be gone",
        )
    assert httpx.get(f"{server.base_url}/healthz", timeout=5).status_code == 200
