"""Issue 2's lifecycle on the REAL Docker engine, through the in-process supervision tree.

Each test drives deployments exactly as the API does (write the row, notify the
root supervisor) and checks the engine's own view of the containers.
"""

from __future__ import annotations

import os
import socket
import tempfile
import uuid

import httpx
import pytest
import trio

from ring_actors.runtimes.docker import DockerRuntime
from ring_actors.schemas.manifest import Port, ResourceQuantities, Resources, Volume
from ring_actors.supervisors.policy import BackoffSettings
from tests.support.engines import IMAGE_V1, require_engine
from tests.unit.actor_harness import running_tree

from .docker_probe import containers_of, force_remove_all, inspect, kill

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("lifecycle-docker")]

BACKOFF = BackoffSettings(base=0.1, maximum=0.5, healthy_window=30)


@pytest.fixture(autouse=True)
def _engine() -> None:
    require_engine("docker")


@pytest.fixture
def cleanup():
    ids: list[str] = []
    yield ids
    for deployment_id in ids:
        force_remove_all(deployment_id)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_apply_runs_a_container_with_everything_declared(cleanup, tmp_path) -> None:
    port = free_port()
    bind_dir = tempfile.mkdtemp(prefix="ring-bind-")
    with open(os.path.join(bind_dir, "hello.txt"), "w") as f:
        f.write("from the host")
    volume_name = f"ring-it-{uuid.uuid4().hex[:8]}"
    namespace = f"it{uuid.uuid4().hex[:6]}"
    async with running_tree(DockerRuntime(), backoff=BACKOFF) as tree:
        deployment = await tree.apply(
            name="web",
            namespace=namespace,
            image=IMAGE_V1,
            command=["httpd", "-f", "-p", "8080", "-h", "/www"],
            environment={"GREETING": "hello", "MODE": "test"},
            labels={"app": "web", "tier": "front"},
            ports=[Port(published=port, target=8080, host_ip="127.0.0.1")],
            volumes=[
                Volume(type="bind", source=bind_dir, destination="/data", permission="ro"),
                Volume(type="volume", source=volume_name, destination="/state", permission="rw"),
            ],
            resources=Resources(
                limits=ResourceQuantities(cpu="500m", memory="64Mi"),
                requests=ResourceQuantities(memory="32Mi"),
            ),
        )
        cleanup.append(deployment.id)
        async with tree.watch(deployment.id) as until:
            await until("running", timeout=60)

        [summary] = containers_of(deployment.id)
        container = inspect(summary["Id"])
        name = container["Name"].lstrip("/")
        assert name.startswith(f"{namespace}_web_") and len(name.rsplit("_", 1)[1]) == 8
        labels = container["Config"]["Labels"]
        assert labels["ring_deployment"] == deployment.id
        assert labels["app"] == "web" and labels["tier"] == "front"
        assert {"GREETING=hello", "MODE=test"} <= set(container["Config"]["Env"])
        networks = container["NetworkSettings"]["Networks"]
        assert f"ring_{namespace}" in networks
        assert "web" in (networks[f"ring_{namespace}"].get("Aliases") or [])
        host = container["HostConfig"]
        assert host["NanoCpus"] == 500_000_000
        assert host["Memory"] == 64 * 1024 * 1024
        assert host["MemoryReservation"] == 32 * 1024 * 1024
        assert host["PortBindings"]["8080/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(port)}]
        mounts = {m["Destination"]: m for m in container["Mounts"]}
        assert mounts["/data"]["Source"] == bind_dir and mounts["/data"]["RW"] is False
        assert mounts["/state"]["Name"] == volume_name and mounts["/state"]["RW"] is True
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/index.html")
        assert response.status_code == 200 and "v1" in response.text
        [live] = tree.root.live_instances(deployment.id)
        assert live.id == summary["Id"] and live.address
        row = await tree.repo.get(deployment.id)
        assert row.image_digest and row.image_digest.startswith("sha256:")

        await tree.delete(deployment.id)
        async with tree.watch(deployment.id) as until:
            await until("purged", timeout=30)
        assert containers_of(deployment.id) == []


async def test_killed_container_is_replaced_and_counted(cleanup) -> None:
    async with running_tree(DockerRuntime(), backoff=BACKOFF) as tree:
        deployment = await tree.apply(image=IMAGE_V1, command=["sleep", "3600"], namespace="itkill")
        cleanup.append(deployment.id)
        async with tree.watch(deployment.id) as until:
            await until("running", timeout=60)
        [first] = containers_of(deployment.id)
        kill(first["Id"])
        with trio.fail_after(20):
            while True:
                live = [c for c in containers_of(deployment.id, all_states=False) if c["Id"] != first["Id"]]
                if live:
                    break
                await trio.sleep(0.05)
        row = await tree.repo.get(deployment.id)
        assert row.restart_count == 1
        assert row.status == "running"
        reasons = await tree.reasons(deployment.id)
        assert reasons.count("container_crashed") == 1
        # The dead container is removed: nothing of it is left behind.
        with trio.fail_after(10):
            while any(c["Id"] == first["Id"] for c in containers_of(deployment.id)):
                await trio.sleep(0.05)


async def test_crash_loop_reaches_back_off_with_bounded_containers(cleanup) -> None:
    async with running_tree(DockerRuntime(), backoff=BACKOFF) as tree:
        deployment = await tree.apply(
            image=IMAGE_V1, command=["sh", "-c", "sleep 0.2; exit 1"], namespace="itloop"
        )
        cleanup.append(deployment.id)
        seen: set[str] = set()
        async with tree.watch(deployment.id) as until:
            async with trio.open_nursery() as nursery:

                async def count_containers() -> None:
                    while True:
                        seen.update(c["Id"] for c in containers_of(deployment.id))
                        await trio.sleep(0.05)

                nursery.start_soon(count_containers)
                await until("crash_loop_back_off", timeout=60)
                nursery.cancel_scope.cancel()
        row = await tree.repo.get(deployment.id)
        assert row.restart_count == 5
        assert 1 <= len(seen) <= 5, f"{len(seen)} containers for a budget of 5"
        with trio.fail_after(15):
            while containers_of(deployment.id, all_states=False):
                await trio.sleep(0.1)


@pytest.mark.parametrize(("exit_code", "status"), [(0, "completed"), (3, "failed")])
async def test_job_exit_code_decides(cleanup, exit_code: int, status: str) -> None:
    async with running_tree(DockerRuntime(), backoff=BACKOFF) as tree:
        deployment = await tree.apply(
            kind="job", image=IMAGE_V1, command=["sh", "-c", f"sleep 0.3; exit {exit_code}"], namespace="itjob"
        )
        cleanup.append(deployment.id)
        async with tree.watch(deployment.id) as until:
            await until(status, timeout=60)
        row = await tree.repo.get(deployment.id)
        assert row.status == status
        assert len(containers_of(deployment.id)) <= 1, "a terminal job is never retried"


async def test_missing_image_is_image_pull_back_off(cleanup) -> None:
    async with running_tree(DockerRuntime(), backoff=BACKOFF) as tree:
        deployment = await tree.apply(image="127.0.0.1:5000/ring-test/does-not-exist:v9", namespace="itpull")
        cleanup.append(deployment.id)
        async with tree.watch(deployment.id) as until:
            await until("image_pull_back_off", timeout=60)
        events = await tree.events.list(deployment.id)
        assert any(e.reason == "image_pull_back_off" and e.level == "error" for e in events)
        assert containers_of(deployment.id) == []
