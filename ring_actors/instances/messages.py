"""Messages between a deployment actor and its instance actors."""

from __future__ import annotations

from dataclasses import dataclass

from ring_actors.runtimes.base import ExitStatus, InstanceHandle
from ring_actors.runtimes.errors import RuntimeFailure


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
