"""The deployment lifecycle on the REAL Podman service, through the in-process supervision tree.

Each test drives deployments exactly as the API does (write the row, notify the
root supervisor) and checks Podman's own view of the containers. The last test
measures how fast a crash reaches the instance actor (pidfd + conmon exit file,
with the safety-net tick at 60 s so it cannot be the tick) and how fast the
replacement runs, next to Podman's own `restart=always`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import httpx
import pytest
import trio

from ring_actors.runtimes.base import ExitStatus, InstanceHandle, InstanceSpec
from ring_actors.runtimes.podman import PodmanRuntime
from ring_actors.schemas.manifest import (
    CommandCheck,
    Port,
    ResourceQuantities,
    Resources,
    RuntimeConfig,
    Volume,
)
from ring_actors.store.db import Database
from ring_actors.supervisors.policy import BackoffSettings
from tests.support.engines import IMAGE_V1, PODMAN_SOCK, REGISTRY, require_engine, require_registry
from tests.unit.actor_harness import FAST, running_tree

pytestmark = [pytest.mark.podman, pytest.mark.xdist_group("lifecycle-podman")]

BACKOFF = BackoffSettings(base=0.1, maximum=0.5, healthy_window=30)
LOCAL_IMAGE = RuntimeConfig(image_pull_policy="IfNotPresent")
SAMPLES = 20
CRASH_BOUND = 0.05
"""Median seconds from a container's death to its instance actor knowing it (exit code included)."""


# --------------------------------------------------------------------------- Podman's own view (plain httpx)


def _podman() -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(uds=PODMAN_SOCK), base_url="http://podman/v1.41", timeout=30)


def containers_of(deployment_id: str, *, all_states: bool = True) -> list[dict[str, Any]]:
    filters = json.dumps({"label": [f"ring_deployment={deployment_id}"]})
    with _podman() as client:
        response = client.get("/containers/json", params={"all": str(all_states).lower(), "filters": filters})
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result


def inspect(container_id: str) -> dict[str, Any]:
    with _podman() as client:
        response = client.get(f"/containers/{container_id}/json")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


def force_remove_all(deployment_id: str) -> None:
    with _podman() as client:
        for container in containers_of(deployment_id):
            client.delete(f"/containers/{container['Id']}", params={"force": "true", "v": "true", "t": "0"})


def started_at(container: dict[str, Any]) -> float:
    """Podman's StartedAt as Unix seconds (nanosecond text, Z or offset)."""
    match = re.match(r"^(.*?)(\.\d+)?(Z|[+-]\d\d:\d\d)$", container["State"]["StartedAt"])
    assert match, container["State"]["StartedAt"]
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    return datetime.fromisoformat(match.group(1) + zone).timestamp() + float(match.group(2) or 0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def _engine() -> None:
    require_engine("podman")
    require_registry(REGISTRY)


@pytest.fixture(autouse=True)
async def _deadline(nursery: trio.Nursery) -> None:
    """Every test has a timeout."""

    async def watchdog() -> None:
        await trio.sleep(240)
        raise TimeoutError("test did not finish within 240 s")

    nursery.start_soon(watchdog)


@pytest.fixture
def cleanup():
    """Deployment ids whose containers are removed after the test (cancelling a tree leaves them running)."""
    ids: list[str] = []
    yield ids
    for deployment_id in ids:
        force_remove_all(deployment_id)
    leftovers = [c["Names"] for deployment_id in ids for c in containers_of(deployment_id)]
    assert leftovers == [], f"forced removal left containers behind: {leftovers}"


class TimedPodmanRuntime(PodmanRuntime):
    """PodmanRuntime that reports when the instance actors learn of exits and get replacements.

    `wait_exit` returning is the instance actor being informed; `create` returning
    is a (replacement) instance running.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(f"unix://{PODMAN_SOCK}", **options)
        self.exits: list[tuple[float, InstanceHandle, ExitStatus]] = []
        self.creates: list[tuple[float, InstanceHandle]] = []
        self._changed = trio.Event()

    async def wait_exit(self, handle: InstanceHandle) -> ExitStatus:
        status = await super().wait_exit(handle)
        self.exits.append((trio.current_time(), handle, status))
        self._wake()
        return status

    async def create(self, spec: InstanceSpec) -> InstanceHandle:
        handle = await super().create(spec)
        self.creates.append((trio.current_time(), handle))
        self._wake()
        return handle

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def until(self, predicate: Any, timeout: float = 20.0) -> Any:
        with trio.fail_after(timeout):
            while not (found := predicate()):
                await self._changed.wait()
            return found


async def wait_until(predicate: Any, timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Test-side observation of Podman (never ring-actors logic)."""
    with trio.fail_after(timeout):
        while not (found := predicate()):
            await trio.sleep(interval)
        return found


# --------------------------------------------------------------------------- lifecycle


async def test_apply_runs_a_container_with_everything_declared(cleanup, tmp_path) -> None:
    """Verify apply -> running with ports, env, labels, bind + named volumes, resources; delete -> purged."""
    port = free_port()
    bind_dir = tempfile.mkdtemp(prefix="ring-bind-", dir=tmp_path)
    await trio.Path(bind_dir, "hello.txt").write_text("from the host")
    volume_name = f"ring-it-{uuid.uuid4().hex[:8]}"
    namespace = f"ip{uuid.uuid4().hex[:6]}"
    runtime = PodmanRuntime(f"unix://{PODMAN_SOCK}")
    async with running_tree(runtime, backoff=BACKOFF) as tree:
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
        assert "web" in (networks[f"ring_{namespace}"].get("Aliases") or [])
        host = container["HostConfig"]
        assert (host["NanoCpus"], host["Memory"], host["MemoryReservation"]) == (500_000_000, 64 << 20, 32 << 20)
        assert host["PortBindings"]["8080/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(port)}]
        mounts = {m["Destination"]: m for m in container["Mounts"]}
        assert mounts["/data"]["Source"] == bind_dir and mounts["/data"]["RW"] is False
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
        assert containers_of(deployment.id) == []
    with _podman() as client:
        client.delete(f"/volumes/{volume_name}", params={"force": "true"})
        with trio.fail_after(15):  # a just-removed container may still hold the network for a moment
            while client.delete(f"/networks/ring_{namespace}").status_code not in (200, 204, 404):
                await trio.sleep(0.2)


async def test_replicas_run_and_share_one_dns_name(cleanup) -> None:
    """Verify replicas: 3 -> three containers, each reachable as `web` through aardvark-dns."""
    runtime = PodmanRuntime(f"unix://{PODMAN_SOCK}")
    async with running_tree(runtime, backoff=BACKOFF) as tree:
        deployment = await tree.apply(
            image=IMAGE_V1, command=["sleep", "3600"], namespace="iprep", replicas=3, config=LOCAL_IMAGE
        )
        cleanup.append(deployment.id)
        async with tree.watch(deployment.id) as until:
            await until("running", timeout=60)
        await wait_until(lambda: len(tree.root.live_instances(deployment.id)) == 3)
        running = containers_of(deployment.id, all_states=False)
        assert len(running) == 3
        ips = {inspect(c["Id"])["NetworkSettings"]["Networks"]["ring_iprep"]["IPAddress"] for c in running}
        handle = tree.root.handles(deployment.id)[0]
        lookup = await runtime.exec(handle, ["busybox", "nslookup", "web"], 10)
        assert lookup.exit_code == 0, lookup.output
        assert set(re.findall(r"Name:\s+\S+\s+Address:\s+(\S+)", lookup.output)) == ips, lookup.output
        await tree.delete(deployment.id)
        async with tree.watch(deployment.id) as until:
            await until("purged", timeout=30)


async def test_killed_container_is_replaced_and_counted(cleanup) -> None:
    """Verify a kill -9 is counted once and replaced, and the dead container is removed."""
    async with running_tree(PodmanRuntime(f"unix://{PODMAN_SOCK}"), backoff=BACKOFF) as tree:
        deployment = await tree.apply(image=IMAGE_V1, command=["sleep", "3600"], namespace="ipkill")
        cleanup.append(deployment.id)
        async with tree.watch(deployment.id) as until:
            await until("running", timeout=60)
        [first] = containers_of(deployment.id)
        os.kill(inspect(first["Id"])["State"]["Pid"], signal.SIGKILL)
        await wait_until(lambda: [c for c in containers_of(deployment.id, all_states=False) if c["Id"] != first["Id"]])
        row = await tree.repo.get(deployment.id)
        assert row.restart_count == 1
        assert row.status == "running"
        reasons = await tree.reasons(deployment.id)
        assert reasons.count("container_crashed") == 1
        await wait_until(lambda: all(c["Id"] != first["Id"] for c in containers_of(deployment.id)), timeout=10)


async def test_crash_loop_reaches_back_off_with_bounded_containers(cleanup) -> None:
    """Verify a crashing worker stops at crash_loop_back_off after 5 restarts, with at most 5 containers."""
    async with running_tree(PodmanRuntime(f"unix://{PODMAN_SOCK}"), backoff=BACKOFF) as tree:
        deployment = await tree.apply(
            image=IMAGE_V1, command=["sh", "-c", "sleep 0.2; exit 1"], namespace="iploop", config=LOCAL_IMAGE
        )
        cleanup.append(deployment.id)
        seen: set[str] = set()
        async with tree.watch(deployment.id) as until, trio.open_nursery() as nursery:

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
        await wait_until(lambda: not containers_of(deployment.id, all_states=False), timeout=15)


@pytest.mark.parametrize(("exit_code", "status"), [(0, "completed"), (3, "failed")])
async def test_job_exit_code_decides(cleanup, exit_code: int, status: str) -> None:
    """Verify a job's exit code (from conmon's exit file) decides completed vs failed, with no retry."""
    runtime = TimedPodmanRuntime()
    async with running_tree(runtime, backoff=BACKOFF) as tree:
        deployment = await tree.apply(
            kind="job", image=IMAGE_V1, command=["sh", "-c", f"sleep 0.3; exit {exit_code}"], namespace="ipjob"
        )
        cleanup.append(deployment.id)
        async with tree.watch(deployment.id) as until:
            await until(status, timeout=60)
        row = await tree.repo.get(deployment.id)
        assert row.status == status
        assert len(containers_of(deployment.id)) <= 1, "a terminal job is never retried"
        assert [s.exit_code for _, _, s in runtime.exits] == [exit_code]
        assert runtime.exit_code_sources == {"conmon": 1}


async def test_missing_image_is_image_pull_back_off(cleanup) -> None:
    """Verify a tag the registry does not have ends in image_pull_back_off with an error event, no container."""
    async with running_tree(PodmanRuntime(f"unix://{PODMAN_SOCK}"), backoff=BACKOFF) as tree:
        deployment = await tree.apply(image=f"{REGISTRY}/ring-test/does-not-exist:v9", namespace="ippull")
        cleanup.append(deployment.id)
        async with tree.watch(deployment.id) as until:
            await until("image_pull_back_off", timeout=60)
        events = await tree.events.list(deployment.id)
        assert any(e.reason == "image_pull_back_off" and e.level == "error" for e in events)
        assert containers_of(deployment.id) == []


async def test_command_probe_runs_through_podman_exec(cleanup) -> None:
    """Verify command health checks run in the container (runtime.exec): a failing one alerts, a passing one not."""
    async with running_tree(PodmanRuntime(f"unix://{PODMAN_SOCK}"), backoff=BACKOFF) as tree:
        checks = [
            CommandCheck(command="test -f /VERSION", interval="300ms", timeout="5s", threshold=1, on_failure="alert"),
            CommandCheck(command="sh -c 'exit 4'", interval="300ms", timeout="5s", threshold=1, on_failure="alert"),
        ]
        deployment = await tree.apply(
            image=IMAGE_V1, command=["sleep", "3600"], namespace="ipprobe", health_checks=checks, config=LOCAL_IMAGE
        )
        cleanup.append(deployment.id)
        async with tree.watch(deployment.id) as until:
            await until("running", timeout=60)

        async def alerts() -> list[str]:
            return [e.message for e in await tree.events.list(deployment.id) if e.reason == "health_check_alert"]

        with trio.fail_after(20):
            while len(found := await alerts()) < 2:
                await trio.sleep(0.1)
        assert all("Command exited 4" in message for message in found), found
        row = await tree.repo.get(deployment.id)
        assert row.status == "running" and row.restart_count == 0


async def test_readoption_after_restart_keeps_containers_and_watches_them(cleanup) -> None:
    """Verify cancelling the tree leaves containers running; a new tree adopts them (no duplicates) and
    still detects a crash of an adopted container at once."""
    db = await Database.open(":memory:")
    async with running_tree(PodmanRuntime(f"unix://{PODMAN_SOCK}"), db=db, backoff=FAST) as tree:
        deployment = await tree.apply(
            image=IMAGE_V1, command=["sleep", "3600"], namespace="ipadopt", replicas=2, config=LOCAL_IMAGE
        )
        cleanup.append(deployment.id)
        async with tree.watch(deployment.id) as until:
            await until("running", timeout=60)
        await wait_until(lambda: len(tree.root.live_instances(deployment.id)) == 2)
    before = {c["Id"] for c in containers_of(deployment.id, all_states=False)}
    assert len(before) == 2, "cancelling the tree must not stop the workload"

    runtime = TimedPodmanRuntime()
    async with running_tree(runtime, db=db, tick=60, backoff=FAST) as tree:
        await wait_until(lambda: len(tree.root.live_instances(deployment.id)) == 2)
        assert {i.id for i in tree.root.live_instances(deployment.id)} == before
        await trio.sleep(1.0)  # long enough for a wrong scale-up to show
        assert {c["Id"] for c in containers_of(deployment.id)} == before
        assert runtime.creates == []

        victim = min(before)
        killed_at = trio.current_time()
        os.kill(inspect(victim)["State"]["Pid"], signal.SIGKILL)
        informed_at, _, status = await runtime.until(
            lambda: next((e for e in runtime.exits if e[1].id == victim), None), timeout=10
        )
        assert status.exit_code == 137
        assert informed_at - killed_at < 1.0  # event-driven: the tick is 60 s
        await runtime.until(lambda: runtime.creates, timeout=20)
        await wait_until(lambda: len(containers_of(deployment.id, all_states=False)) == 2)
        row = await tree.repo.get(deployment.id)
        assert row.status == "running"
        assert (await tree.reasons(deployment.id)).count("container_crashed") == 1


# --------------------------------------------------------------------------- measurements


@asynccontextmanager
async def podman_restart_always() -> AsyncIterator[str]:
    """A container under Podman's own `restart=always` (for comparison), removed afterwards."""
    body = {
        "Image": IMAGE_V1,
        "Cmd": ["sleep", "3600"],
        "Labels": {"ring_deployment": f"restart-always-{uuid.uuid4()}"},
        "HostConfig": {"RestartPolicy": {"Name": "always"}},
    }
    with _podman() as client:
        created = client.post(
            "/containers/create", json=body, params={"name": f"ring-it-always-{uuid.uuid4().hex[:8]}"}
        )
        created.raise_for_status()
        container_id = created.json()["Id"]
        client.post(f"/containers/{container_id}/start").raise_for_status()
    try:
        yield container_id
    finally:
        with _podman() as client:
            client.delete(f"/containers/{container_id}", params={"force": "true", "t": "0"})


def _ms(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:6.1f} ms, p90 {sorted(values)[int(len(values) * 0.9)] * 1000:6.1f} ms"


async def test_crash_detection_is_event_driven_and_fast(cleanup) -> None:
    """Verify a crash reaches the instance actor in well under 50 ms (median of 20) with the tick at 60 s.

    Also measures crash -> replacement running, next to Podman's own `restart=always` (Podman's
    StartedAt of the new process minus the kill, for both).
    """
    runtime = TimedPodmanRuntime()
    informed: list[float] = []
    detected: list[float] = []
    replaced: list[float] = []
    replaced_engine: list[float] = []
    async with running_tree(runtime, tick=60, backoff=FAST) as tree:
        deployment = await tree.apply(image=IMAGE_V1, command=["sleep", "3600"], namespace="iplat", config=LOCAL_IMAGE)
        cleanup.append(deployment.id)
        async with tree.watch(deployment.id) as until:
            await until("running", timeout=60)
        for _ in range(SAMPLES):
            [current] = await runtime.until(lambda: tree.root.handles(deployment.id) or None)
            assert current.pid
            await trio.sleep(0.4)  # > the healthy window (0.3 s): every crash is a first crash (10 ms backoff)
            exits_before, creates_before = len(runtime.exits), len(runtime.creates)
            killed_wall = time.time()
            killed_at = trio.current_time()
            os.kill(current.pid, signal.SIGKILL)
            informed_at, handle, status = (await runtime.until(lambda n=exits_before: runtime.exits[n:] or None))[0]
            assert handle.id == current.id and status.exit_code == 137
            informed.append(informed_at - killed_at)
            detected.append(status.detected_at - killed_at)
            created_at, replacement = (await runtime.until(lambda n=creates_before: runtime.creates[n:] or None))[0]
            replaced.append(created_at - killed_at)
            replaced_engine.append(started_at(inspect(replacement.id)) - killed_wall)
            await wait_until(lambda new=replacement.id: [h.id for h in tree.root.handles(deployment.id)] == [new])
        assert runtime.exit_code_sources.get("conmon", 0) >= SAMPLES
        row = await tree.repo.get(deployment.id)
        assert row.status == "running"

    always: list[float] = []
    async with podman_restart_always() as container_id:
        for _ in range(SAMPLES):
            old_pid = inspect(container_id)["State"]["Pid"]
            await trio.sleep(0.4)
            killed_wall = time.time()
            os.kill(old_pid, signal.SIGKILL)

            def restarted(old: int = old_pid) -> dict[str, Any] | None:
                current = inspect(container_id)
                return current if current["State"]["Running"] and current["State"]["Pid"] != old else None

            after = await wait_until(restarted, timeout=20, interval=0.005)
            always.append(started_at(after) - killed_wall)

    print(
        f"\nPodman, {SAMPLES} kill -9 each (tick 60 s, backoff base 10 ms, image_pull_policy IfNotPresent):"
        f"\n  exit -> pidfd fired (detected_at)              {_ms(detected)}"
        f"\n  exit -> instance actor informed (+ exit code)  {_ms(informed)}"
        f"\n  exit -> replacement create() returned          {_ms(replaced)}"
        f"\n  exit -> replacement StartedAt (Podman's clock) {_ms(replaced_engine)}"
        f"\n  Podman restart=always: exit -> StartedAt       {_ms(always)}"
    )
    assert statistics.median(informed) < CRASH_BOUND, informed
    assert max(informed) < 1.0, informed  # a loaded host may delay one sample; never the 60 s tick
