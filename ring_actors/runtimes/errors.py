"""Failure classification, done once for every runtime (spec: lifecycle.md §4).

A runtime raises `RuntimeFailure(kind, message)`; the deployment actor turns the
kind into a status, an event reason and a retry decision with `classify()`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ring_actors.status import Status


class FailureKind(enum.Enum):
    IMAGE_NOT_FOUND = "image_not_found"
    IMAGE_PULL_FAILED = "image_pull_failed"
    INSTANCE_CREATION_FAILED = "instance_creation_failed"
    NETWORK_CREATION_FAILED = "network_creation_failed"
    CONFIG_ERROR = "config_error"
    FIRMWARE_NOT_FOUND = "firmware_not_found"
    INSUFFICIENT_RESOURCES = "insufficient_resources"
    PORT_ALLOCATION_FAILED = "port_allocation_failed"
    VM_START_FAILED = "vm_start_failed"
    STATS_FETCH_FAILED = "stats_fetch_failed"
    FILE_SYSTEM_ERROR = "file_system_error"
    RUNTIME_ERROR = "runtime_error"
    APPLY_TIMEOUT = "apply_timeout"


@dataclass(frozen=True)
class Disposition:
    """What a failure means for the deployment."""

    status: Status
    reason: str
    permanent: bool


_TABLE: dict[FailureKind, Disposition] = {
    FailureKind.IMAGE_NOT_FOUND: Disposition(Status.IMAGE_PULL_BACK_OFF, "image_pull_back_off", True),
    FailureKind.IMAGE_PULL_FAILED: Disposition(Status.IMAGE_PULL_BACK_OFF, "image_pull_back_off", False),
    FailureKind.INSTANCE_CREATION_FAILED: Disposition(
        Status.CREATE_CONTAINER_ERROR, "instance_creation_failed", True
    ),
    FailureKind.NETWORK_CREATION_FAILED: Disposition(Status.NETWORK_ERROR, "network_creation_failed", False),
    FailureKind.CONFIG_ERROR: Disposition(Status.CONFIG_ERROR, "config_error", True),
    FailureKind.FIRMWARE_NOT_FOUND: Disposition(Status.FAILED, "firmware_not_found", True),
    FailureKind.INSUFFICIENT_RESOURCES: Disposition(
        Status.INSUFFICIENT_RESOURCES, "insufficient_resources", True
    ),
    FailureKind.PORT_ALLOCATION_FAILED: Disposition(Status.ERROR, "port_allocation_failed", False),
    FailureKind.VM_START_FAILED: Disposition(Status.ERROR, "vm_start_failed", False),
    FailureKind.STATS_FETCH_FAILED: Disposition(Status.ERROR, "stats_fetch_failed", False),
    FailureKind.FILE_SYSTEM_ERROR: Disposition(Status.FILE_SYSTEM_ERROR, "file_system_error", False),
    FailureKind.RUNTIME_ERROR: Disposition(Status.ERROR, "runtime_error", False),
    FailureKind.APPLY_TIMEOUT: Disposition(Status.ERROR, "apply_timeout", False),
}


class RuntimeFailure(Exception):
    """A create/start/boot failure, already classified by the runtime that saw it."""

    def __init__(self, kind: FailureKind, message: str, *, permanent: bool | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self._permanent = permanent

    @property
    def disposition(self) -> Disposition:
        base = _TABLE[self.kind]
        if self._permanent is None or self._permanent == base.permanent:
            return base
        return Disposition(base.status, base.reason, self._permanent)

    def __repr__(self) -> str:
        return f"RuntimeFailure({self.kind.name}, {self.message!r})"


class EngineUnavailable(Exception):
    """The engine itself cannot be reached (socket gone, daemon restarting)."""


class InstanceGone(Exception):
    """The instance no longer exists in the runtime."""


def classify(failure: RuntimeFailure) -> Disposition:
    return failure.disposition
