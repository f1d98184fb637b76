"""The rolling-update drain protocol as pure decisions (spec: lifecycle.md §8.2).

A rollout child is a deployment row with `parent_id`. Its deployment actor
brings its own instances up; once it is `running` and ready it asks the parent,
through the root supervisor, to drain ONE instance (`DrainOne`), waits for the
answer (`DrainDone`), and repeats while the child stays ready, until the parent
has no instance left. The parent's actor picks the victim, takes it out of the
served instances (so a proxy following the API stops routing to it), waits a
short grace, then stops it. Neither actor ever touches the other's state.

Better than Ring: the oldest parent instance goes first (instances that are not
serving yet go before any serving one), each step waits for the child to be
ready again, and a child that fails or is deleted tells the parent to abort, so
a partly drained parent grows back to its full size.

This module decides; `supervisors/deployment.py` acts.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from ring_actors.status import Status, is_terminal

__all__ = [
    "ChildRollout",
    "ChildView",
    "DrainCandidate",
    "RolloutAction",
    "complete_message",
    "failed_message",
    "forced_message",
    "next_action",
    "pick_drain_victim",
    "step_message",
]

K = TypeVar("K")


class RolloutAction(enum.Enum):
    WAIT = "wait"
    DRAIN = "drain"  # ask the parent to drain one instance
    FAIL = "fail"  # the child failed: report once, tell the parent to abort


@dataclass
class ChildRollout:
    """The child's side of one rollout (in memory; the row's `parent_id` is the durable part)."""

    parent_id: str
    in_flight_since: float | None = None  # a DrainOne is waiting for its DrainDone
    forced: bool = False  # the deadline passed before the child was ready
    failed: bool = False  # `rolling_update_failed` already reported
    steps: int = 0


@dataclass(frozen=True)
class ChildView:
    """What the child's actor knows about itself right now."""

    status: str
    live: int  # live instances
    target: int  # wanted instances
    ready: bool  # readiness over every live instance (always True without readiness checks)


def next_action(rollout: ChildRollout, view: ChildView, now: float, resend_after: float) -> RolloutAction:
    """What the child does next.

    - the child is `failed`/`deleted` (or any other terminal status): FAIL, once;
    - a drain request is in flight and not overdue: WAIT;
    - the child is `running` with all its instances live and ready: DRAIN;
    - forced (deadline passed): DRAIN as soon as it is `running` with one live instance;
    - otherwise WAIT.
    """
    if view.status == Status.DELETED or is_terminal(view.status):
        return RolloutAction.WAIT if rollout.failed else RolloutAction.FAIL
    if rollout.in_flight_since is not None and now - rollout.in_flight_since < resend_after:
        return RolloutAction.WAIT
    if view.status != Status.RUNNING or view.live == 0:
        return RolloutAction.WAIT
    if rollout.forced:
        return RolloutAction.DRAIN
    if view.live >= view.target and view.ready:
        return RolloutAction.DRAIN
    return RolloutAction.WAIT


@dataclass(frozen=True)
class DrainCandidate(Generic[K]):
    """A parent instance slot that may be drained."""

    key: K
    serving: bool  # live and routed to
    started_at: float  # when its instance started (or the slot was made)
    order: int  # slot creation order, a tie-breaker


def pick_drain_victim(candidates: Sequence[DrainCandidate[K]]) -> K | None:
    """The slot to drain next: one that is not serving first, else the oldest serving one."""
    if not candidates:
        return None
    best = min(candidates, key=lambda c: (c.serving, c.started_at, c.order))
    return best.key


def step_message(instance_id: str, parent_id: str, remaining: int) -> str:
    return f"Rolling update: removed instance {instance_id} from parent {parent_id} ({remaining} remaining)"


def complete_message(parent_id: str, steps: int) -> str:
    return f"Rolling update complete: parent deployment {parent_id} drained ({steps} instances) and removed"


def failed_message(parent_id: str, status: str) -> str:
    if status == Status.FAILED:
        return f"Rolling update failed: health checks did not pass. Parent deployment {parent_id} is still running."
    return f"Rolling update failed: the new deployment is {status}. Parent deployment {parent_id} is still running."


def forced_message(parent_id: str, deadline: float) -> str:
    return (
        f"Rolling update: readiness did not pass within {deadline:g}s (start_period + rollout deadline);"
        f" draining parent {parent_id} anyway"
    )
