"""A SIMULATED runtime: in-memory instances, no processes. For unit tests and the scale benchmark only.

It implements the Runtime protocol with configurable create latency and lets a
test crash instances (`crash(id, code)`), fail creations, or remove instances
behind the supervisor's back. Nothing here touches a real engine; never enable it
for users (it is not reachable from config.toml).

Health checks are simulated too: each instance has a `healthy` flag (plus an
HTTP status, an exit code for failing commands and a probe delay) that the fake
`exec` and the fake `probe_network` (tcp connect / http GET by instance address)
consult. No packet is sent anywhere.
"""

from __future__ import annotations

import itertools
import os
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import trio

from ring_actors.runtimes.base import (
    ExecResult,
    ExitStatus,
    InstanceHandle,
    InstanceSpec,
    InstanceStats,
    LogLine,
    ObservedInstance,
)
from ring_actors.runtimes.errors import EngineUnavailable, RuntimeFailure


@dataclass
class SimInstance:
    id: str
    name: str
    spec: InstanceSpec
    created_at: float
    running: bool = True
    exit_code: int | None = None
    exited: trio.Event = field(default_factory=trio.Event)
    removed: bool = False
    address: str | None = None
    # Simulated probe answers.
    healthy: bool = True
    http_status: int = 200  # answered while healthy
    failing_exit_code: int = 1  # what a command probe exits with while unhealthy
    probe_delay: float = 0.0  # each probe takes this long (to simulate timeouts)
    probes: int = 0  # probes answered so far (tcp, http and exec)


class SimulatedProbeNetwork:
    """tcp/http probes against simulated instances, found by address. Nothing leaves the process."""

    def __init__(self, runtime: SimulatedRuntime) -> None:
        self.runtime = runtime

    async def _reach(self, host: str, port: int) -> SimInstance:
        instance = self.runtime.instance_at(host)
        if instance is not None:
            instance.probes += 1
            if instance.probe_delay:
                await trio.sleep(instance.probe_delay)
        if instance is None or not instance.running or not instance.healthy:
            raise ConnectionRefusedError(f"connection to {host}:{port} refused (simulated)")
        return instance

    async def tcp_connect(self, host: str, port: int) -> None:
        await self._reach(host, port)

    async def http_get(self, url: str, timeout: float) -> int:
        parts = urllib.parse.urlsplit(url)
        instance = await self._reach(parts.hostname or "", parts.port or 80)
        return instance.http_status


class SimulatedRuntime:
    name = "simulated"

    def __init__(self, *, create_latency: float = 0.0, exit_immediately_with: int | None = None) -> None:
        self.create_latency = create_latency
        self.exit_immediately_with = exit_immediately_with
        self.instances: dict[str, SimInstance] = {}
        # Per deployment, in creation order: an engine filters by label server-side, and a scan of
        # every instance per listing made the scale benchmark measure this simulation instead.
        self._by_deployment: dict[str, dict[str, SimInstance]] = {}
        self.fail_next: list[RuntimeFailure] = []
        self.fail_images: dict[str, RuntimeFailure] = {}
        self.available = True
        self.released_namespaces: list[str] = []
        self.created = 0
        self.removed = 0
        self._counter = itertools.count()
        self.unhealthy_images: set[str] = set()  # instances of these images start unhealthy
        self.probe_network = SimulatedProbeNetwork(self)

    # ------------------------------------------------------------ test controls

    def crash(self, instance_id: str, exit_code: int = 1) -> None:
        instance = self.instances[instance_id]
        instance.running = False
        instance.exit_code = exit_code
        instance.exited.set()

    def vanish(self, instance_id: str) -> None:
        instance = self.instances.pop(instance_id)
        self._unindex(instance)
        instance.running = False
        instance.removed = True
        instance.exited.set()

    def set_healthy(self, instance_id: str, healthy: bool) -> None:
        self.instances[instance_id].healthy = healthy

    def instance_at(self, address: str) -> SimInstance | None:
        return next((i for i in self.instances.values() if i.address == address), None)

    def running_for(self, deployment_id: str) -> list[SimInstance]:
        return [i for i in self.instances.values() if i.spec.deployment_id == deployment_id and i.running]

    # ------------------------------------------------------------ Runtime protocol

    async def ping(self) -> None:
        if not self.available:
            raise EngineUnavailable("simulated engine is down")

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep_forever()

    async def create(self, spec: InstanceSpec) -> InstanceHandle:
        await self.ping()
        if self.create_latency:
            await trio.sleep(self.create_latency)
        if spec.image in self.fail_images:
            raise self.fail_images[spec.image]
        if self.fail_next:
            raise self.fail_next.pop(0)
        instance_id = os.urandom(32).hex()  # 64 hex digits, like an engine's container id
        name = f"{spec.namespace}_{spec.deployment_name}_{instance_id[:8]}"
        instance = SimInstance(instance_id, name, spec, trio.current_time())
        instance.address = f"10.99.{next(self._counter) % 250}.{len(self.instances) % 250 + 1}"
        instance.healthy = spec.image not in self.unhealthy_images
        self.instances[instance_id] = instance
        self._by_deployment.setdefault(spec.deployment_id, {})[instance_id] = instance
        self.created += 1
        if self.exit_immediately_with is not None:
            self.crash(instance_id, self.exit_immediately_with)
        return InstanceHandle(
            id=instance_id,
            name=name,
            deployment_id=spec.deployment_id,
            address=instance.address,
            created_at=instance.created_at,
            image_digest="sha256:" + "0" * 64,
        )

    async def wait_exit(self, handle: InstanceHandle) -> ExitStatus:
        instance = self.instances.get(handle.id)
        if instance is None:
            return ExitStatus(None, removed=True, detected_at=trio.current_time())
        await instance.exited.wait()
        return ExitStatus(instance.exit_code, removed=instance.removed, detected_at=trio.current_time())

    async def remove(self, handle: InstanceHandle, *, timeout: float = 10.0) -> None:
        await self.ping()
        instance = self.instances.pop(handle.id, None)
        if instance is not None:
            self._unindex(instance)
            self.removed += 1
            instance.running = False
            instance.exit_code = 137 if instance.exit_code is None else instance.exit_code
            instance.exited.set()

    async def list_instances(
        self, *, deployment_id: str | None = None, details: bool = True
    ) -> list[ObservedInstance]:
        await self.ping()
        if deployment_id is None:
            found: list[SimInstance] = list(self.instances.values())
        else:
            # A test may delete from `instances` directly: the index only narrows the search.
            indexed = self._by_deployment.get(deployment_id, {})
            found = [i for i in indexed.values() if self.instances.get(i.id) is i]
        return [
            ObservedInstance(
                id=i.id,
                name=i.name,
                deployment_id=i.spec.deployment_id,
                running=i.running,
                exit_code=i.exit_code,
                created_at=i.created_at,
                server_id=i.spec.server_id or None,
            )
            for i in found
        ]

    def _unindex(self, instance: SimInstance) -> None:
        indexed = self._by_deployment.get(instance.spec.deployment_id)
        if indexed is not None:
            indexed.pop(instance.id, None)
            if not indexed:
                del self._by_deployment[instance.spec.deployment_id]

    async def adopt(self, observed: ObservedInstance) -> InstanceHandle:
        instance = self.instances.get(observed.id)
        return InstanceHandle(
            observed.id,
            observed.name,
            observed.deployment_id,
            address=instance.address if instance is not None else None,
            created_at=observed.created_at,
        )

    async def exec(self, handle: InstanceHandle, argv: list[str], timeout: float) -> ExecResult:
        instance = self.instances.get(handle.id)
        if instance is None or not instance.running:
            return ExecResult(-1, "container is not running")
        instance.probes += 1
        if instance.probe_delay:
            with trio.move_on_after(timeout):
                await trio.sleep(instance.probe_delay)
                return ExecResult(0 if instance.healthy else instance.failing_exit_code, "")
            return ExecResult(-1, "timed out", timed_out=True)
        return ExecResult(0 if instance.healthy else instance.failing_exit_code, "")

    async def logs(self, handle: InstanceHandle, *, tail: int | None, since: float | None) -> list[LogLine]:
        return []

    async def follow_logs(self, handle: InstanceHandle, *, tail: int | None) -> AsyncIterator[LogLine]:
        await trio.sleep_forever()
        yield  # pragma: no cover

    async def stats(self, handle: InstanceHandle) -> InstanceStats:
        return InstanceStats(handle.id[:12], handle.name, cpu_percent=1.0, memory_usage=1 << 20)

    async def address(self, handle: InstanceHandle) -> str | None:
        return handle.address

    async def release_namespace(self, namespace: str) -> bool:
        self.released_namespaces.append(namespace)
        return True
