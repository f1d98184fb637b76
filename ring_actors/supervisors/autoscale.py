"""Autoscaling decisions as pure functions (spec: manifest.md §8), unit-tested with plain numbers.

One decision per autoscaled deployment per scheduler interval, in this order:

1. Not eligible (status other than `running`, a rollout child, a rollout parent
   being drained) -> hold.
2. The count (`desired_replicas ?? replicas`) lies outside [`min`, `max`] -> clamp
   it into the bounds at once: no cooldown, no measurement needed.
3. No usable measurement (none, not finite, negative, no refresh yet, older than
   `max_sample_age`) -> hold: acting on missing data is scaling blind, and "no data"
   most often means "nothing runs yet", where scaling down is exactly wrong.
4. Average CPU % per instance within `dead_band` points of `target_cpu` -> hold.
5. One step (+1 above the band, -1 below), kept inside the bounds; already at the
   bound the load pushes against -> hold (no cooldown spent).
6. Cooldown since the last action of either direction: `up_cooldown` for a step up,
   the longer `down_cooldown` for a step down -> hold while it runs.

As Ring, a clamp counts as an action for the cooldowns. The cooldown clocks live in
memory (`autoscaler.Autoscaler`): a server restart resets them, so the first decision
after a restart may act at once; it is still one step inside the bounds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from ring_actors.schemas.manifest import Autoscale
from ring_actors.status import Status

__all__ = [
    "DEAD_BAND",
    "DOWN_COOLDOWN",
    "MAX_SAMPLE_AGE",
    "UP_COOLDOWN",
    "AutoscaleSettings",
    "Decision",
    "clamp",
    "decide",
    "is_eligible",
]

UP_COOLDOWN = 60.0
"""Seconds since the last autoscale action (either direction) before a step up."""
DOWN_COOLDOWN = 300.0
"""Seconds since the last autoscale action (either direction) before a step down."""
DEAD_BAND = 10.0
"""Percentage points around `target_cpu` that count as on target."""
MAX_SAMPLE_AGE = 120.0
"""A stats sample older than this (seconds) is no measurement."""


@dataclass(frozen=True)
class AutoscaleSettings:
    """The decision's timing knobs (RING_AUTOSCALE_UP_COOLDOWN / RING_AUTOSCALE_DOWN_COOLDOWN)."""

    up_cooldown: float = UP_COOLDOWN
    down_cooldown: float = DOWN_COOLDOWN
    dead_band: float = DEAD_BAND
    max_sample_age: float = MAX_SAMPLE_AGE


@dataclass(frozen=True)
class Decision:
    """Store `replicas` as the new `desired_replicas`; `action` names why."""

    replicas: int
    action: Literal["clamp", "up", "down"]


def clamp(policy: Autoscale, count: int) -> int:
    return max(policy.min, min(policy.max, count))


def is_eligible(status: str, *, rollout_child: bool, being_drained: bool) -> bool:
    """Only a `running` deployment that is neither a rollout child nor a parent being drained."""
    return status == Status.RUNNING and not rollout_child and not being_drained


def decide(
    policy: Autoscale,
    current: int,
    cpu_percent: float | None,
    *,
    sample_age: float | None,
    since_last_action: float | None,
    eligible: bool = True,
    settings: AutoscaleSettings = AutoscaleSettings(),  # frozen: one shared default is safe
) -> Decision | None:
    """The new desired count, or None to hold.

    Args:
        policy: the deployment's `autoscale` block.
        current: the stored count, unclamped: `desired_replicas ?? replicas`.
        cpu_percent: average CPU % per live instance, None when not measured.
        sample_age: seconds since the stats sample was taken, None before the first.
        since_last_action: seconds since this deployment's last autoscale action,
            None when there was none (since the server started).
        eligible: `is_eligible(...)` of the deployment.
        settings: cooldowns, dead band, staleness bound.
    """
    if not eligible:
        return None
    bounded = clamp(policy, current)
    if bounded != current:
        return Decision(bounded, "clamp")
    if cpu_percent is None or not math.isfinite(cpu_percent) or cpu_percent < 0:
        return None
    if sample_age is None or sample_age > settings.max_sample_age:
        return None
    if cpu_percent > policy.target_cpu + settings.dead_band:
        wanted, action, cooldown = current + 1, "up", settings.up_cooldown
    elif cpu_percent < policy.target_cpu - settings.dead_band:
        wanted, action, cooldown = current - 1, "down", settings.down_cooldown
    else:
        return None
    if clamp(policy, wanted) == current:
        return None
    if since_last_action is not None and since_last_action < cooldown:
        return None
    return Decision(wanted, action)  # type: ignore[arg-type]
