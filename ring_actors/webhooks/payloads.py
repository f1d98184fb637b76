"""Bus messages -> webhook events (api.md §14.2, lifecycle.md §6.1, §8.2, §12).

`draft(message)` decides, without I/O, whether a recorder message is a webhook event
and which kind-specific fields it carries; `render(draft, info)` adds the common
fields (`schema_version`, deployment id, namespace, name, worker/job) once the
deployment is known, and returns the exact bytes that are signed and sent.

Where Ring sends nothing on deletion (api.md §16), a status change to `deleted` is
sent too; the internal `purged` marker is not a status and is not sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ring_actors.bus import BusMessage
from ring_actors.webhooks.kinds import CATEGORIES

__all__ = ["DeploymentInfo", "Draft", "draft", "render"]

SCHEMA_VERSION = 1

_HEALTH_ACTIONS = {
    "health_check_instance_restart": "restart",
    "health_check_stop": "stop",
    "health_check_alert": "alert",
}
_ROLLOUT_PHASES = {
    "rolling_update_step": "step",
    "rolling_update_complete": "complete",
    "rolling_update_failed": "failed",
}
_NOT_STATUSES = frozenset({"purged"})

_HEALTH_MESSAGE = re.compile(r"for instance (?P<instance>\S+?)(?:: (?P<alert>.*)| \((?P<probe>.*)\), triggering)", re.S)
_SCALED_TO = re.compile(r"\bto (\d+)\b")
_DRAINED = re.compile(r"removed instance (?P<instance>\S+) from parent (?P<parent>\S+)")
_PARENT = re.compile(r"[Pp]arent deployment (?P<parent>[0-9a-fA-F-]{8,})")

_ENCODER = msgspec.json.Encoder()


@dataclass(frozen=True)
class Draft:
    """A webhook event before the deployment's name and kind are filled in."""

    kind: str
    deployment_id: str
    namespace: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeploymentInfo:
    name: str
    kind: str
    replicas: int
    restart_count: int
    parent_id: str | None


def draft(message: BusMessage) -> Draft | None:
    """The webhook event a recorder message stands for, if any."""
    payload = message.payload
    if message.kind == "status":
        old, new = payload.get("from"), payload.get("to")
        if not isinstance(new, str) or new in _NOT_STATUSES or old == new:
            return None
        return Draft(
            "deployment.status_changed",
            message.deployment_id,
            message.namespace,
            {"old_status": old, "new_status": new},
        )
    if message.kind != "event":
        return None
    reason = str(payload.get("reason", ""))
    text = str(payload.get("message", ""))
    if reason in ("scale_up", "scale_down"):
        counted = _SCALED_TO.search(text)
        return Draft(
            "deployment.scaled",
            message.deployment_id,
            message.namespace,
            {"direction": "up" if reason == "scale_up" else "down",
             "instance_count": int(counted.group(1)) if counted else None},
        )
    if reason in CATEGORIES:
        return Draft(
            "deployment.error",
            message.deployment_id,
            message.namespace,
            {"reason": reason, "category": CATEGORIES[reason], "message": text},
        )
    if reason in _HEALTH_ACTIONS:
        found = _HEALTH_MESSAGE.search(text)
        instance = found.group("instance") if found else None
        probe = (found.group("alert") or found.group("probe")) if found else None
        return Draft(
            "deployment.health_check_failed",
            message.deployment_id,
            message.namespace,
            {"instance_id": instance, "action": _HEALTH_ACTIONS[reason], "message": text if probe is None else probe},
        )
    if reason in _ROLLOUT_PHASES:
        phase = _ROLLOUT_PHASES[reason]
        drained = _DRAINED.search(text) if phase == "step" else None
        parent = drained.group("parent") if drained else None
        if parent is None and (found := _PARENT.search(text)):
            parent = found.group("parent")
        drained_instance = drained.group("instance") if drained else None
        return Draft(
            "deployment.rolling_update",
            message.deployment_id,
            message.namespace,
            {"parent_id": parent, "phase": phase, "drained_instance_id": drained_instance},
        )
    return None


def render(event: Draft, info: DeploymentInfo | None) -> bytes:
    """The JSON body: common fields first, then the kind's own (api.md §14.2)."""
    body: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "deployment_id": event.deployment_id,
        "namespace": event.namespace,
        "name": info.name if info else "",
        "kind": info.kind if info else "worker",
    }
    if event.kind == "deployment.status_changed":
        body |= event.fields
        body["restart_count"] = info.restart_count if info else 0
    elif event.kind == "deployment.scaled":
        body |= event.fields
        body["replicas"] = info.replicas if info else None
    elif event.kind == "deployment.rolling_update":
        body |= event.fields
        if body.get("parent_id") is None and info is not None:
            body["parent_id"] = info.parent_id
    else:
        body |= event.fields
    return _ENCODER.encode(body)
