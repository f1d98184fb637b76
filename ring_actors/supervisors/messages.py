"""Messages to a deployment actor from the root supervisor."""

from __future__ import annotations

from dataclasses import dataclass

from ring_actors.runtimes.base import ObservedInstance


@dataclass(frozen=True)
class Refresh:
    """The stored row changed (delete, re-apply, autoscale): reload it and converge."""


@dataclass(frozen=True)
class Observe:
    """Safety-net tick: what the runtime listed for this deployment at `taken_at`.

    The snapshot may be older than instances started since: only instances live
    before `taken_at` can be judged missing from it.
    """

    instances: tuple[ObservedInstance, ...]
    taken_at: float = float("inf")


@dataclass(frozen=True)
class Wake:
    """Timer tick inside the actor (windowed reset, deadlines)."""


@dataclass(frozen=True)
class Route:
    """To the root supervisor: deliver `message` to deployment `target`'s actor.

    Deployment actors never hold each other's addresses; the root forwards, and
    answers for a target that has no actor (see `RootSupervisor._route`).
    """

    target: str
    message: object
    sender: str


# Rolling updates (spec: lifecycle.md §8.2): child -> parent through the root, and back.


@dataclass(frozen=True)
class DrainOne:
    """Child -> parent: take one instance out of service and remove it."""

    child_id: str


@dataclass(frozen=True)
class DrainDone:
    """Parent -> child: one instance removed (`instance_id` None: nothing was left to remove)."""

    parent_id: str
    instance_id: str | None
    remaining: int


@dataclass(frozen=True)
class DrainAbort:
    """Child -> parent: the rollout failed; grow back to the full size and keep serving."""

    child_id: str


@dataclass(frozen=True)
class ParentGone:
    """Root -> child: the parent row no longer exists."""

    parent_id: str


@dataclass(frozen=True)
class DrainDue:
    """Inside the parent: the drain grace of a slot is over, stop it now."""

    slot: str
