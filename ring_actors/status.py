"""Deployment statuses and the sets the lifecycle cares about (spec: lifecycle.md §1)."""

from __future__ import annotations

import enum


class Status(enum.StrEnum):
    PENDING = "pending"
    CREATING = "creating"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    DELETED = "deleted"
    CRASH_LOOP_BACK_OFF = "crash_loop_back_off"
    IMAGE_PULL_BACK_OFF = "image_pull_back_off"
    CREATE_CONTAINER_ERROR = "create_container_error"
    NETWORK_ERROR = "network_error"
    CONFIG_ERROR = "config_error"
    FILE_SYSTEM_ERROR = "file_system_error"
    INSUFFICIENT_RESOURCES = "insufficient_resources"
    ERROR = "error"


ALL_STATUSES: tuple[Status, ...] = tuple(Status)

TERMINAL: frozenset[Status] = frozenset(
    {Status.COMPLETED, Status.FAILED, Status.CRASH_LOOP_BACK_OFF, Status.INSUFFICIENT_RESOURCES}
)

RECONCILED: frozenset[Status] = frozenset(ALL_STATUSES) - TERMINAL

UNHEALTHY: frozenset[Status] = frozenset(
    {
        Status.PENDING,
        Status.FAILED,
        Status.CRASH_LOOP_BACK_OFF,
        Status.IMAGE_PULL_BACK_OFF,
        Status.CREATE_CONTAINER_ERROR,
        Status.NETWORK_ERROR,
        Status.CONFIG_ERROR,
        Status.FILE_SYSTEM_ERROR,
        Status.INSUFFICIENT_RESOURCES,
        Status.ERROR,
    }
)


def is_terminal(status: str) -> bool:
    return status in TERMINAL
