"""Messages between a deployment actor and its instance actors."""

from __future__ import annotations

from dataclasses import dataclass

from ring_actors.runtimes.base import ExitStatus, InstanceHandle
from ring_actors.runtimes.errors import RuntimeFailure
from ring_actors.schemas.manifest import HealthCheck


# instance -> deployment
@dataclass(frozen=True)
class Started:
    slot: str
    handle: InstanceHandle
    replaced: bool  # a replacement after an exit or failure, not a new slot


@dataclass(frozen=True)
class Exited:
    slot: str
    handle: InstanceHandle
    status: ExitStatus


@dataclass(frozen=True)
class CreateFailed:
    slot: str
    failure: RuntimeFailure


@dataclass(frozen=True)
class Stopped:
    slot: str
    handle: InstanceHandle | None


@dataclass(frozen=True)
class ActorFailed:
    """The instance actor itself hit a bug; its supervisor restarts it keeping the handle."""

    slot: str
    handle: InstanceHandle | None
    error: str


@dataclass(frozen=True)
class ProbeResult:
    """One health-check probe ran against `instance_id` (check `index` of the deployment's list)."""

    slot: str
    instance_id: str
    index: int
    check_type: str
    status: str  # success | failed | timeout
    message: str
    started_at: str  # RFC 3339 wall clock, for the history
    finished_at: str


# deployment -> instance
@dataclass(frozen=True)
class Stop:
    """Intentional stop (delete, scale-down, replacement): never counted as a crash."""


@dataclass(frozen=True)
class Restart:
    delay: float


@dataclass(frozen=True)
class Retire:
    """Do not replace; `keep` leaves an exited instance in place (job logs)."""

    keep: bool


@dataclass(frozen=True)
class Vanished:
    """The safety-net tick no longer sees this instance in the runtime."""


@dataclass(frozen=True)
class Probe:
    """Which checks to run from now on against the live instance (each on its own interval).

    Sent by the deployment whenever the set changes (instance up, status change,
    drain). An empty `checks` stops probing. The instance actor keeps the latest
    set for the replacement after a restart.
    """

    checks: tuple[tuple[int, HealthCheck], ...]
    host_network: bool = False  # probe 127.0.0.1: the instance has no address of its own


@dataclass(frozen=True)
class Replace:
    """Health-check `restart`: remove this instance (intentionally) and create a new one now.

    `remove_first` waits for the removal before creating (a published host port
    could not be bound twice); otherwise removal runs alongside the creation.
    """

    remove_first: bool = False
