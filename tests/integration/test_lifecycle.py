"""The deployment lifecycle on the REAL Docker engine and Podman service, through the in-process
supervision tree.

Every test here runs once per engine (ids `docker`, `podman`), each param in its engine's lifecycle xdist
group. Each test drives deployments exactly as the API does (write the row, notify the root supervisor)
and checks the engine's own view of the containers (`Engine.list_containers`, `Engine.inspect_now`).
What only Podman has (aardvark DNS, probes through `podman exec`, re-adoption, crash measurements) is in
test_lifecycle_podman.py.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
import trio

from ring_actors.schemas.manifest import (
    Port,
    ResourceQuantities,
    Resources,
    RuntimeConfig,
    Volume,
)
from ring_actors.supervisors.policy import BackoffSettings
from tests.support.engines import IMAGE_V1, REGISTRY
from tests.support.runtimes import Engine, engine_params, timed_runtime
from tests.support.server import free_port
from tests.unit.actor_harness import running_tree

pytestmark = [
    pytest.mark.parametrize(
        "engine", engine_params({"docker": "lifecycle-docker", "podman": "lifecycle-podman"}), indirect=True
    ),
    pytest.mark.usefixtures("registries", "deadline"),
]

TEST_TIMEOUT = 240.0
BACKOFF = BackoffSettings(base=0.1, maximum=0.5, healthy_window=30)
LOCAL_IMAGE = RuntimeConfig(image_pull_policy="IfNotPresent")


def namespace(engine: Engine, name: str) -> str:
    """A lifecycle namespace of this engine (`it...` on Docker, `ip...` on Podman)."""
    return f"i{engine.namespace_prefix}{name}"


async def wait_until(predicate, timeout: float = 20.0, interval: float = 0.05):
    """Test-side observation of the engine (never ring-actors logic)."""
    with trio.fail_after(timeout):
        while not (found := predicate()):
            await trio.sleep(interval)
        return found


async def test_apply_runs_a_container_with_everything_declared(engine: Engine, cleanup, tmp_path: Path) -> None:
    """Verify apply -> running with ports, env, labels, bind + named volumes, resources; delete -> purged."""
    port = free_port()
    bind_dir = tmp_path / "bind"
    bind_dir.mkdir()
    await trio.Path(bind_dir, "hello.txt").write_text("from the host")
    volume_name = f"ring-it-{uuid.uuid4().hex[:8]}"
    ns = namespace(engine, uuid.uuid4().hex[:6])
    runtime = engine.new_runtime()
    async with running_tree(runtime, backoff=BACKOFF) as tree:
        deployment = await tree.apply(
            name="web",
            namespace=ns,
            image=IMAGE_V1,
            command=["httpd", "-f", "-p", "8080", "-h", "/www"],
            environment={"GREETING": "hello", "MODE": "test"},
            labels={"app": "web", "tier": "front"},
            ports=[Port(published=port, target=8080, host_ip="127.0.0.1")],
            volumes=[
                Volume(type="bind", source=str(bind_dir), destination="/data", permission="ro"),
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

        [summary] = engine.list_containers(deployment.id)
        container = engine.inspect_now(summary["Id"])
        name = container["Name"].lstrip("/")
        assert name.startswith(f"{ns}_web_") and len(name.rsplit("_", 1)[1]) == 8
        labels = container["Config"]["Labels"]
        assert labels["ring_deployment"] == deployment.id
        assert labels["app"] == "web" and labels["tier"] == "front"
        assert {"GREETING=hello", "MODE=test"} <= set(container["Config"]["Env"])
        networks = container["NetworkSettings"]["Networks"]
        assert f"ring_{ns}" in networks
        assert "web" in (networks[f"ring_{ns}"].get("Aliases") or [])
        host = container["HostConfig"]
        assert (host["NanoCpus"], host["Memory"], host["MemoryReservation"]) == (500_000_000, 64 << 20, 32 << 20)
        assert host["PortBindings"]["8080/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(port)}]
        mounts = {m["Destination"]: m for m in container["Mounts"]}
        assert mounts["/data"]["Source"] == str(bind_dir) and mounts["/data"]["RW"] is False
        assert mounts["/state"]["Name"] == volume_name and mounts["/state"]["RW"] is True

        # What the container itself sees: env, the bind mount, the volume.
        [handle] = tree.root.handles(deployment.id)
        seen = await runtime.exec(handle, ["sh", "-c", "echo $GREETING; cat /data/hello.txt; touch /state/x"], 10)
        assert (seen.exit_code, seen.output) == (0, "hello\nfrom the host"), seen
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
        assert engine.list_containers(deployment.id) == []
    with engine.sync_client() as client:
        client.delete(f"/volumes/{volume_name}", params={"force": "true"})
        with trio.fail_after(15):  # a just-removed container may still hold the network for a moment
            while client.delete(f"/networks/ring_{ns}").status_code not in (200, 204, 404):
                await trio.sleep(0.2)


async def test_killed_container_is_replaced_and_counted(engine: Engine, cleanup) -> None:
    """Verify a kill -9 is counted once and replaced, and the dead container is removed."""
    async with running_tree(engine.new_runtime(), backoff=BACKOFF) as tree:
        deployment = await tree.apply(image=IMAGE_V1, command=["sleep", "3600"], namespace=namespace(engine, "kill"))
        cleanup.append(deployment.id)
        async with tree.watch(deployment.id) as until:
            await until("running", timeout=60)
        [first] = engine.list_containers(deployment.id)
        engine.kill_now(first["Id"])
        await wait_until(
            lambda: [c for c in engine.list_containers(deployment.id, all_states=False) if c["Id"] != first["Id"]]
        )
        row = await tree.repo.get(deployment.id)
        assert row.restart_count == 1
        assert row.status == "running"
        reasons = await tree.reasons(deployment.id)
        assert reasons.count("container_crashed") == 1
        # The dead container is removed: nothing of it is left behind.
        await wait_until(lambda: all(c["Id"] != first["Id"] for c in engine.list_containers(deployment.id)), 10)


async def test_crash_loop_reaches_back_off_with_bounded_containers(engine: Engine, cleanup) -> None:
    """Verify a crashing worker stops at crash_loop_back_off after 5 restarts, with at most 5 containers."""
    async with running_tree(engine.new_runtime(), backoff=BACKOFF) as tree:
        deployment = await tree.apply(
            image=IMAGE_V1,
            command=["sh", "-c", "sleep 0.2; exit 1"],
            namespace=namespace(engine, "loop"),
            config=LOCAL_IMAGE,
        )
        cleanup.append(deployment.id)
        seen: set[str] = set()
        async with tree.watch(deployment.id) as until, trio.open_nursery() as nursery:

            async def count_containers() -> None:
                while True:
                    seen.update(c["Id"] for c in engine.list_containers(deployment.id))
                    await trio.sleep(0.05)

            nursery.start_soon(count_containers)
            await until("crash_loop_back_off", timeout=60)
            nursery.cancel_scope.cancel()
        row = await tree.repo.get(deployment.id)
        assert row.restart_count == 5
        assert 1 <= len(seen) <= 5, f"{len(seen)} containers for a budget of 5"
        await wait_until(lambda: not engine.list_containers(deployment.id, all_states=False), timeout=15)


@pytest.mark.parametrize(("exit_code", "status"), [(0, "completed"), (3, "failed")])
async def test_job_exit_code_decides(engine: Engine, cleanup, exit_code: int, status: str) -> None:
    """Verify a job's exit code decides completed vs failed, with no retry (on Podman, from conmon's exit file)."""
    runtime = timed_runtime(engine)
    async with running_tree(runtime, backoff=BACKOFF) as tree:
        deployment = await tree.apply(
            kind="job",
            image=IMAGE_V1,
            command=["sh", "-c", f"sleep 0.3; exit {exit_code}"],
            namespace=namespace(engine, "job"),
        )
        cleanup.append(deployment.id)
        async with tree.watch(deployment.id) as until:
            await until(status, timeout=60)
        row = await tree.repo.get(deployment.id)
        assert row.status == status
        assert len(engine.list_containers(deployment.id)) <= 1, "a terminal job is never retried"
        assert [s.exit_code for _, _, s in runtime.exits] == [exit_code]
        if engine.exit_code_source is not None:
            assert runtime.exit_code_sources == {engine.exit_code_source: 1}


async def test_missing_image_is_image_pull_back_off(engine: Engine, cleanup) -> None:
    """Verify a tag the registry does not have ends in image_pull_back_off with an error event, no container."""
    async with running_tree(engine.new_runtime(), backoff=BACKOFF) as tree:
        deployment = await tree.apply(
            image=f"{REGISTRY}/ring-test/does-not-exist:v9", namespace=namespace(engine, "pull")
        )
        cleanup.append(deployment.id)
        async with tree.watch(deployment.id) as until:
            await until("image_pull_back_off", timeout=60)
        events = await tree.events.list(deployment.id)
        assert any(e.reason == "image_pull_back_off" and e.level == "error" for e in events)
        assert engine.list_containers(deployment.id) == []
