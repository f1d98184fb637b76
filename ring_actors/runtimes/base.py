"""The contract every runtime implements (docker, podman, containerd, VMMs, simulated).

Instance actors are the only callers of the lifecycle methods; the runtime keeps
no per-deployment state of its own beyond what its engine stores (labels), so a
restarted server can re-adopt everything with `list_instances()`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import trio

from ring_actors.schemas.manifest import CommandCheck, Port, Resources, RunAsUser

OWNER_LABEL = "ring_deployment"
"""Label carried by every instance a ring-actors server creates: the deployment id."""

SERVER_LABEL = "ring_actors.server"
"""Identity of the server (its database) that created an instance. A server only ever
reaps orphans carrying its own identity, so several servers (or test runs) can share
one engine without removing each other's workloads."""


@dataclass(frozen=True)
class RegistryAuth:
    server: str
    username: str
    password: str


@dataclass(frozen=True)
class Mount:
    """A resolved mount. `kind` is bind, volume or file (config/secret payload)."""

    kind: str
    destination: str
    read_only: bool = False
    source: str | None = None  # host path (bind) or volume name (volume)
    driver: str = "local"
    content: bytes | None = None  # payload for kind == "file"


@dataclass(frozen=True)
class InstanceSpec:
    """Everything a runtime needs to create one instance, secrets already resolved."""

    deployment_id: str
    deployment_name: str
    namespace: str
    image: str
    kind: str = "worker"
    command: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    ports: tuple[Port, ...] = ()
    mounts: tuple[Mount, ...] = ()
    resources: Resources | None = None
    user: RunAsUser | None = None
    network_mode: str = "bridge"
    pull_policy: str = "Always"
    registry_auth: RegistryAuth | None = None
    use_host_auth: bool = False  # resolve credentials from the host's files (server flag permitting)
    native_healthcheck: CommandCheck | None = None
    server_id: str = ""


@dataclass
class InstanceHandle:
    """A live (or once live) instance. `pid` is the host PID when the runtime can see it."""

    id: str
    name: str
    deployment_id: str
    pid: int | None = None
    address: str | None = None
    created_at: float = 0.0
    image_digest: str | None = None


@dataclass(frozen=True)
class ObservedInstance:
    """An instance as listed by the runtime (for re-adoption and the safety-net tick)."""

    id: str
    name: str
    deployment_id: str
    running: bool
    exit_code: int | None
    pid: int | None = None
    created_at: float = 0.0
    server_id: str | None = None  # SERVER_LABEL of the instance, None when absent


@dataclass(frozen=True)
class ExitStatus:
    """How an instance ended. `exit_code` is None when the runtime could not tell."""

    exit_code: int | None
    oom_killed: bool = False
    removed: bool = False  # disappeared behind our back
    detected_at: float = 0.0  # trio.current_time() when we first learned of the exit


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: str
    timed_out: bool = False


@dataclass(frozen=True)
class LogLine:
    instance: str
    message: str
    timestamp: str | None  # RFC 3339 from the runtime, when it has one
    stream: str = "stdout"


@dataclass(frozen=True)
class InstanceStats:
    instance_id: str
    instance_name: str
    cpu_percent: float = 0.0
    memory_usage: int = 0
    memory_limit: int = 0
    rx_bytes: int = 0
    tx_bytes: int = 0
    rx_packets: int = 0
    tx_packets: int = 0
    read_bytes: int = 0
    write_bytes: int = 0
    pids: int = 0
    pids_limit: int = 0
    restart_count: int = 0


@runtime_checkable
class Runtime(Protocol):
    """One engine. Methods raise `RuntimeFailure` (classified) or `EngineUnavailable`."""

    name: str

    async def ping(self) -> None:
        """Raise EngineUnavailable with a clear reason when the engine cannot be used."""

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Long-running watcher (engine event stream). Started once by the server."""

    async def create(self, spec: InstanceSpec) -> InstanceHandle:
        """Admission, pull, network, create and start one instance; return it running."""

    async def wait_exit(self, handle: InstanceHandle) -> ExitStatus:
        """Return as soon as the instance has exited (event-driven, not polled)."""

    async def remove(self, handle: InstanceHandle, *, timeout: float = 10.0) -> None:
        """Stop (grace `timeout`) and delete the instance. Idempotent."""

    async def list_instances(
        self, *, deployment_id: str | None = None, details: bool = True
    ) -> list[ObservedInstance]:
        """Every owned instance (label `ring_deployment`), running or not; or one deployment's.

        `details=False` may leave `pid` unknown in exchange for one cheap listing
        (the safety-net tick and adoption do not need it: `adopt` inspects).
        """

    async def adopt(self, observed: ObservedInstance) -> InstanceHandle:
        """Rebuild a handle for an instance found by `list_instances` after a restart."""

    async def exec(self, handle: InstanceHandle, argv: list[str], timeout: float) -> ExecResult:
        """Run a command inside the instance (command probes)."""

    async def logs(
        self, handle: InstanceHandle, *, tail: int | None, since: float | None
    ) -> list[LogLine]: ...

    def follow_logs(self, handle: InstanceHandle, *, tail: int | None) -> AsyncIterator[LogLine]: ...

    async def stats(self, handle: InstanceHandle) -> InstanceStats: ...

    async def address(self, handle: InstanceHandle) -> str | None:
        """IP used by tcp/http probes and shown in `instances[].address`."""

    async def release_namespace(self, namespace: str) -> bool:
        """Free per-namespace resources (networks) of a deleted namespace; False = busy, retry."""
