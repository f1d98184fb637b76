"""Deployments as JSON: the API shape, and encoded fragments that outlive a request.

`render_deployment` is the one definition of the shape (api.md §7.1). A list of
thousands of deployments is the join of one JSON fragment per deployment;
`DeploymentFragments` keeps each fragment until its row (the snapshot's version)
or its live instances (the supervisor's view key) change, so a request encodes only
what changed since the previous one. The fragments are bytes, which the cyclic GC
never scans: a cached request allocates almost nothing that the collector tracks.
"""

from __future__ import annotations

import weakref
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec
from msgspec import UNSET

from ring_actors.schemas.manifest import Deployment, Instance
from ring_actors.store.deployments import DeploymentSnapshot

__all__ = ["MASKED", "DeploymentFragments", "LiveInstances", "encode_deployment", "render_deployment"]

MASKED = "********"

PRUNE_SLACK = 256
"""Cached deployments beyond twice the live count (plus this) trigger dropping the purged ones."""

_ENCODER = msgspec.json.Encoder()


class LiveInstances(Protocol):
    """What the fragments need from the root supervisor (`live_view`'s owner must take weak references)."""

    def live_view(self, deployment_id: str) -> tuple[object | None, int]: ...

    def live_instances(self, deployment_id: str) -> list[Instance]: ...


def render_deployment(deployment: Deployment, instances: list[Instance], *, addresses: bool = True) -> dict[str, Any]:
    """The API shape of a deployment (api.md §7.1), with live `instances`.

    `health_checks` is omitted when empty; an inline registry password is masked
    (Ring returns it in clear). With `autoscale`, `desired_replicas` is always the
    effective clamped target (api.md §7.1), stored decision or not.
    """
    shown = msgspec.structs.replace(deployment, instances=_shown(instances, addresses))
    if deployment.autoscale is not UNSET:
        shown.desired_replicas = deployment.target_replicas
    body: dict[str, Any] = msgspec.to_builtins(shown)
    if not body.get("health_checks"):
        body.pop("health_checks", None)
    config = body.get("config")
    if isinstance(config, dict) and config.get("password"):
        config["password"] = MASKED
    return body


def _shown(instances: list[Instance], addresses: bool) -> list[Instance]:
    return instances if addresses else [msgspec.structs.replace(i, address=UNSET) for i in instances]


def _split(deployment: Deployment) -> tuple[bytes, bytes]:
    """The deployment's JSON around its `instances` value: (up to `"instances":`, the rest).

    Built from `render_deployment`, so the fragments cannot drift from the shape;
    the two halves are encoded apart, so no byte search depends on the values.
    """
    body = render_deployment(deployment, [])
    keys = list(body)
    at = keys.index("instances")
    before = _ENCODER.encode({key: body[key] for key in keys[:at]})
    after = _ENCODER.encode({key: body[key] for key in keys[at + 1 :]})
    head = before[:-1] + (b',"instances":' if at else b'"instances":')
    tail = b"," + after[1:] if len(keys) > at + 1 else b"}"
    return head, tail


def encode_deployment(deployment: Deployment, instances: list[Instance], *, addresses: bool = True) -> bytes:
    """`render_deployment` as JSON bytes, without the intermediate dict for the instances."""
    head, tail = _split(deployment)
    return head + _ENCODER.encode(_shown(instances, addresses)) + tail


@dataclass(frozen=True, slots=True)
class _View:
    """One encoding of a deployment with the live instances of one view."""

    owner: weakref.ref[object] | None  # weak: a finished actor is not kept alive by the cache
    version: int
    fragment: bytes

    def shows(self, owner: object | None, version: int) -> bool:
        if self.version != version:
            return False
        if self.owner is None:
            return owner is None
        return owner is not None and self.owner() is owner


@dataclass(slots=True)
class _Cached:
    version: int  # the row version `head` and `tail` were encoded from
    head: bytes
    tail: bytes
    views: dict[bool, _View] = field(default_factory=dict)  # by the `addresses` flag


class DeploymentFragments:
    """Encoded deployments keyed on (row version, live view, addresses); one per API app."""

    def __init__(self) -> None:
        self._cached: dict[str, _Cached] = {}
        self._prune_above = PRUNE_SLACK

    def __len__(self) -> int:
        """How many deployments have fragments cached."""
        return len(self._cached)

    def fragment(self, snapshot: DeploymentSnapshot, live: LiveInstances, *, addresses: bool) -> bytes:
        """The deployment's JSON with its live instances, encoded again only if either changed."""
        cached = self._cached.get(snapshot.id)
        if cached is None or cached.version != snapshot.version:
            head, tail = _split(snapshot.deployment())
            cached = self._cached[snapshot.id] = _Cached(snapshot.version, head, tail)
        owner, version = live.live_view(snapshot.id)
        view = cached.views.get(addresses)
        if view is None or not view.shows(owner, version):
            instances = _ENCODER.encode(_shown(live.live_instances(snapshot.id), addresses))
            view = _View(
                weakref.ref(owner) if owner is not None else None,
                version,
                cached.head + instances + cached.tail,
            )
            cached.views[addresses] = view
        return view.fragment

    def render_list(self, snapshots: Sequence[DeploymentSnapshot], live: LiveInstances, *, addresses: bool) -> bytes:
        """A JSON array of the deployments, in the given order."""
        fragment = self.fragment
        return b"[" + b",".join([fragment(s, live, addresses=addresses) for s in snapshots]) + b"]"

    def should_prune(self) -> bool:
        """True when enough deployments are cached that purged ones may be piling up."""
        return len(self._cached) > self._prune_above

    def prune(self, alive: Collection[str]) -> None:
        """Forget the deployments not in `alive` (the ids of every stored row)."""
        self._cached = {key: value for key, value in self._cached.items() if key in alive}
        self._prune_above = 2 * len(self._cached) + PRUNE_SLACK
