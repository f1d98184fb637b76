"""The rolling-update decision taken at `POST /deployments` (lifecycle.md §8.1). Pure.

| Existing active | New manifest                              | force | Result                              |
|-----------------|-------------------------------------------|-------|-------------------------------------|
| none            | any                                       | any   | plain create                        |
| exactly 1       | >= 1 health check, no published port      | false | rolling update (child, `parent_id`) |
| >= 1            | any                                       | true  | replace, reason `force`             |
| >= 1            | no health checks                          | false | replace, `no_health_checks`         |
| >= 2            | has health checks                         | false | replace, `multiple_active_deployments` |
| exactly 1       | health checks and a published host port   | false | replace, `host_port_published`      |

ring-actors difference (lifecycle.md §13): a *failed rollout child* (a `failed` row
with a `parent_id`) is not counted as active; it is retired (set `deleted`) instead
of forcing the next apply into an immediate replacement.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ring_actors.schemas.manifest import Deployment, DeploymentSpec
from ring_actors.status import Status

__all__ = ["RolloutPlan", "plan_rollout", "replace_message"]


@dataclass(frozen=True)
class RolloutPlan:
    parent_id: str | None = None
    """Set for a rolling update: the deployment the new row will drain."""
    replace: list[Deployment] = field(default_factory=list)
    """Active rows to mark `deleted` now (immediate replacement)."""
    reason: str | None = None
    """Why the replacement is immediate (`force`, `no_health_checks`, ...)."""
    retire: list[Deployment] = field(default_factory=list)
    """Failed rollout children, ignored for matching and retired."""


def _failed_child(row: Deployment) -> bool:
    return row.status == Status.FAILED and bool(row.parent_id)


def plan_rollout(spec: DeploymentSpec, active: list[Deployment], *, force: bool) -> RolloutPlan:
    """Decide how a new apply of `spec` treats the `active` rows with its identity."""
    retire = [row for row in active if _failed_child(row)]
    matching = [row for row in active if not _failed_child(row)]
    if not matching:
        return RolloutPlan(retire=retire)
    has_checks = bool(spec.health_checks)
    published = any(port.published > 0 for port in spec.ports)
    if force:
        reason = "force"
    elif not has_checks:
        reason = "no_health_checks"
    elif len(matching) > 1:
        reason = "multiple_active_deployments"
    elif published:
        reason = "host_port_published"
    else:
        return RolloutPlan(parent_id=matching[0].id, retire=retire)
    return RolloutPlan(replace=matching, reason=reason, retire=retire)


def replace_message(old_id: str, reason: str, spec: DeploymentSpec) -> str:
    """The `force_replace` warning written on the new deployment (Ring's wording)."""
    why = {
        "force": "a forced apply was requested (--force)",
        "no_health_checks": "no health checks are declared — rolling update requires at least one health check",
        "multiple_active_deployments": (
            f"several active deployments are named '{spec.name}' in namespace '{spec.namespace}'"
            " — rolling update needs exactly one"
        ),
        "host_port_published": (
            "it publishes a host port — old and new instances cannot bind the same port during a rolling update"
        ),
    }.get(reason, reason)
    return f"Replaced deployment {old_id} immediately because {why}"
