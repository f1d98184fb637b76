"""Messages to a deployment actor from the root supervisor."""

from __future__ import annotations

from dataclasses import dataclass

from ring_actors.runtimes.base import ObservedInstance


@dataclass(frozen=True)
class Refresh:
    """The stored row changed (delete, re-apply, autoscale): reload it and converge."""


@dataclass(frozen=True)
class Observe:
    """Safety-net tick: what the runtime lists for this deployment right now."""

    instances: tuple[ObservedInstance, ...]


@dataclass(frozen=True)
class Wake:
    """Timer tick inside the actor (windowed reset, deadlines)."""
