"""The readiness gate as pure functions and a small board (spec: lifecycle.md §7).

A worker with at least one `readiness: true` check stays `creating` until every
readiness check is green on every live instance, continuously for the healthy
window. Unlike Ring, which keeps the latest result per check *type* across all
instances, results are kept per (instance, check index) and every instance must
be ready (lifecycle.md §13).

The deadline (`start_period + rollout deadline`) is measured from the first
instance start rather than from the row's `created_at`, so time spent pulling
images or backing off does not eat into it.

Nothing here reads a clock: callers pass `now` (trio time), so tests can drive
it with any numbers.
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from msgspec import UNSET

from ring_actors.schemas.manifest import HealthCheck
from ring_actors.schemas.quantities import parse_duration

__all__ = [
    "DEFAULT_HEALTHY_WINDOW",
    "GateDecision",
    "GateState",
    "ReadinessBoard",
    "ReadinessSettings",
    "duration_or",
]

log = logging.getLogger(__name__)

DEFAULT_HEALTHY_WINDOW = 10.0
"""Seconds a readiness check must stay green when it sets no `min_healthy_time`."""


def _optional_duration(value: object, field: str) -> float | None:
    if value is UNSET or value is None:
        return None
    try:
        return parse_duration(str(value))
    except ValueError:
        log.warning("health check %s %r is malformed; ignored", field, value)
        return None


def duration_or(value: object, default: float) -> float:
    """A check's optional duration field in seconds; `default` when unset or malformed (logged)."""
    parsed = _optional_duration(value, "duration")
    return default if parsed is None else parsed


@dataclass(frozen=True)
class ReadinessSettings:
    """What the deployment's checks say about the gate."""

    indices: tuple[int, ...]  # positions of the readiness checks in `health_checks`
    healthy_window: float
    start_period: float

    @classmethod
    def from_checks(cls, checks: Sequence[HealthCheck]) -> ReadinessSettings:
        """Healthy window = max effective `min_healthy_time` (unset or malformed: 10 s);
        start period = max `start_period` (unset or malformed: 0)."""
        indices = tuple(i for i, check in enumerate(checks) if check.readiness)
        windows = [
            w
            if (w := _optional_duration(checks[i].min_healthy_time, "min_healthy_time")) is not None
            else DEFAULT_HEALTHY_WINDOW
            for i in indices
        ]
        periods = [_optional_duration(checks[i].start_period, "start_period") or 0.0 for i in indices]
        return cls(
            indices=indices,
            healthy_window=max(windows, default=DEFAULT_HEALTHY_WINDOW),
            start_period=max(periods, default=0.0),
        )

    @property
    def gated(self) -> bool:
        return bool(self.indices)

    def deadline(self, first_start: float | None, rollout_deadline: float) -> float:
        """When the gate gives up (trio time); inf before any instance has started."""
        if first_start is None or not self.indices:
            return math.inf
        return first_start + self.start_period + rollout_deadline


class GateState(enum.Enum):
    OPEN = "open"
    NO_INSTANCES = "no_instances"
    PENDING_NO_RESULT = "pending_no_result"
    FAILING = "failing"
    PENDING_MIN_HEALTHY_TIME = "pending_min_healthy_time"


@dataclass(frozen=True)
class GateDecision:
    state: GateState
    opens_at: float | None = None  # set while PENDING_MIN_HEALTHY_TIME

    @property
    def open(self) -> bool:
        return self.state is GateState.OPEN


@dataclass
class _Latest:
    status: str
    ready_since: float | None  # first success after the last non-success


class ReadinessBoard:
    """Latest readiness result and "ready since" per (instance, readiness check index)."""

    def __init__(self, indices: Iterable[int]) -> None:
        self.indices = tuple(indices)
        self._latest: dict[tuple[str, int], _Latest] = {}

    def record(self, instance_id: str, index: int, status: str, at: float) -> None:
        """One probe result of a readiness check (`status`: success | failed | timeout)."""
        if index not in self.indices:
            return
        key = (instance_id, index)
        previous = self._latest.get(key)
        if status != "success":
            self._latest[key] = _Latest(status, None)
        elif previous is None or previous.ready_since is None:
            self._latest[key] = _Latest(status, at)
        else:
            previous.status = status

    def forget(self, instance_id: str) -> None:
        """Drop an instance that is gone or being replaced."""
        for key in [k for k in self._latest if k[0] == instance_id]:
            del self._latest[key]

    def instance_ready(self, instance_id: str) -> bool:
        """Every readiness check's latest result on this instance is a success (no window)."""
        for index in self.indices:
            latest = self._latest.get((instance_id, index))
            if latest is None or latest.ready_since is None:
                return False
        return True

    def evaluate(self, instance_ids: Iterable[str], now: float, window: float) -> GateDecision:
        """The gate over `instance_ids` (the live instances) at `now`."""
        if not self.indices:
            return GateDecision(GateState.OPEN)
        ids = list(instance_ids)
        if not ids:
            return GateDecision(GateState.NO_INSTANCES)
        freshest = -math.inf
        missing = failing = False
        for instance_id in ids:
            for index in self.indices:
                latest = self._latest.get((instance_id, index))
                if latest is None:
                    missing = True
                elif latest.ready_since is None:
                    failing = True
                else:
                    freshest = max(freshest, latest.ready_since)
        if missing:
            return GateDecision(GateState.PENDING_NO_RESULT)
        if failing:
            return GateDecision(GateState.FAILING)
        opens_at = freshest + window
        if now >= opens_at:
            return GateDecision(GateState.OPEN)
        return GateDecision(GateState.PENDING_MIN_HEALTHY_TIME, opens_at)
