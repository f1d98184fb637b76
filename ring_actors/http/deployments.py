"""Deployments: list, get, create (with the rolling-update decision), delete,
health-check history and live metrics (api.md §7).

Handlers write desired state and call `supervisor.notify(id)`; they never call a
runtime to change anything. Reads of live state (instances, stats) go through the
supervisor's handles.
"""

from __future__ import annotations

import uuid

from msgspec import UNSET
from quart import Blueprint, Response, current_app
from quart.blueprints import BlueprintSetupState

from ring_actors.background import collect_stats
from ring_actors.http.bodies import (
    DeploymentMetrics,
    DiskUsage,
    InstanceMetrics,
    MemoryUsage,
    NetworkUsage,
    PidsUsage,
)
from ring_actors.http.common import (
    JSON,
    empty,
    forbid_namespace,
    json_response,
    load_deployment,
    principal,
    query_bool,
    query_int,
    query_list,
    read_json,
    state,
)
from ring_actors.http.errors import ApiError, auth_error, encode
from ring_actors.http.render import DeploymentFragments, render_deployment
from ring_actors.http.rollout import plan_rollout, replace_message
from ring_actors.schemas.manifest import Deployment, DeploymentSpec
from ring_actors.schemas.problem import validation_problem
from ring_actors.schemas.validation import normalize, validate_deployment
from ring_actors.status import Status
from ring_actors.store.db import utcnow
from ring_actors.store.deployments import DeploymentFilter
from ring_actors.store.volumes import register_mounted_volumes

__all__ = ["blueprint", "render_deployment"]

blueprint = Blueprint("deployments", __name__)

_FRAGMENTS = "ring_actors.deployment_fragments"


@blueprint.record_once
def _keep_fragments(setup: BlueprintSetupState) -> None:
    setup.app.extensions[_FRAGMENTS] = DeploymentFragments()


def _fragments() -> DeploymentFragments:
    """This app's encoded deployments (one cache per app, made when the blueprint is registered)."""
    return current_app.extensions[_FRAGMENTS]


def _labels(values: list[str] | None) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for item in values or ():
        key, sep, value = item.partition("=")
        out.append((key, value if sep else None))
    return out


@blueprint.get("/deployments")
async def list_deployments() -> Response:
    services = state().services
    who = principal()
    selector = DeploymentFilter(
        namespaces=who.visible(query_list("namespace")),
        statuses=query_list("status"),
        kinds=query_list("kind"),
        labels=_labels(query_list("label")),
    )
    rows = await services.deployments.snapshots(selector)
    fragments = _fragments()
    body = fragments.render_list(rows, services.supervisor, addresses=query_bool("instances"))
    if fragments.should_prune():
        fragments.prune({row.id for row in await services.deployments.snapshots()})
    return Response(body, content_type=JSON)


@blueprint.get("/deployments/<id>")
async def get_deployment(id: str) -> Response:
    deployment = await load_deployment(id)
    return json_response(render_deployment(deployment, state().services.supervisor.live_instances(id)))


@blueprint.post("/deployments")
async def create_deployment() -> Response:
    st = state()
    services = st.services
    who = principal()
    spec = normalize(await read_json(DeploymentSpec))
    violations = validate_deployment(spec, enabled_runtimes=set(services.runtimes))
    if violations:
        return encode(validation_problem(violations))
    if not who.may_access(spec.namespace):
        raise forbid_namespace(spec.namespace)
    force = query_bool("force")

    async with st.deploy_lock:
        if await st.namespaces.find_by_name(spec.namespace) is None:
            if not who.has("namespaces:write"):
                raise auth_error(403, "token lacks required scope 'namespaces:write'")
            _, created = await st.namespaces.ensure(spec.namespace)
            if created:
                await st.audit.record(who.user_id, "create", "namespace", spec.namespace, spec.namespace)

        active = await services.deployments.active_named(spec.namespace, spec.name)
        plan = plan_rollout(spec, active, force=force)
        for row in [*plan.retire, *plan.replace]:
            await services.deployments.set_status(row.id, Status.DELETED)

        deployment = Deployment(
            **{name: getattr(spec, name) for name in DeploymentSpec.__struct_fields__},
            id=str(uuid.uuid4()),
            created_at=utcnow(),
            status=Status.CREATING,
        )
        if plan.parent_id is not None:
            deployment.parent_id = plan.parent_id
            parent = next(row for row in active if row.id == plan.parent_id)
            if deployment.autoscale is not UNSET and parent.desired_replicas is not UNSET:
                deployment.desired_replicas = parent.desired_replicas
        await services.deployments.insert(deployment)

    for row in [*plan.retire, *plan.replace]:
        services.supervisor.notify(row.id)
    recorder = services.recorder
    await recorder.event(
        deployment.id,
        deployment.namespace,
        "info",
        "deployment_created",
        f"Deployment '{deployment.name}' created successfully",
        "api",
    )
    for row in plan.replace:
        await recorder.event(
            deployment.id,
            deployment.namespace,
            "warning",
            "force_replace",
            replace_message(row.id, plan.reason or "force", spec),
            "api",
        )
    await st.audit.record(who.user_id, "create", "deployment", deployment.name, deployment.namespace)
    services.supervisor.notify(deployment.id)
    await register_mounted_volumes(services.db, deployment)  # resources.md §4: registry rows only
    return json_response(render_deployment(deployment, []), 201)


@blueprint.delete("/deployments/<id>")
async def delete_deployment(id: str) -> Response:
    st = state()
    services = st.services
    deployment = await load_deployment(id)
    if deployment.status != Status.DELETED:
        await services.deployments.set_status(id, Status.DELETED)
        await st.audit.record(principal().user_id, "delete", "deployment", deployment.name, deployment.namespace)
    services.supervisor.notify(id)
    return empty(204)


@blueprint.get("/deployments/<id>/health-checks")
async def health_checks(id: str) -> Response:
    await load_deployment(id)
    rows = await state().health.list(
        id, limit=query_int("limit", 100, maximum=1000), latest=query_bool("latest")
    )
    return json_response(rows)


def _memory(usage: int, limit: int) -> MemoryUsage:
    percent = round(usage / limit * 100, 2) if limit > 0 else 0.0
    return MemoryUsage(usage_bytes=usage, limit_bytes=limit, usage_percent=percent)


@blueprint.get("/deployments/<id>/metrics")
async def deployment_metrics(id: str) -> Response:
    services = state().services
    deployment = await load_deployment(id)
    runtime = services.runtimes.get(deployment.runtime)
    if runtime is None:
        raise ApiError(404, f"runtime '{deployment.runtime}' is not enabled on this server")
    samples, errors = await collect_stats(runtime, services.supervisor.handles(id))
    instances = [
        InstanceMetrics(
            instance_id=s.instance_id,
            instance_name=s.instance_name,
            cpu_usage_percent=round(s.cpu_percent, 2),
            memory=_memory(s.memory_usage, s.memory_limit),
            network=NetworkUsage(
                rx_bytes=s.rx_bytes, tx_bytes=s.tx_bytes, rx_packets=s.rx_packets, tx_packets=s.tx_packets
            ),
            disk_io=DiskUsage(read_bytes=s.read_bytes, write_bytes=s.write_bytes),
            pids=PidsUsage(current=s.pids, limit=s.pids_limit),
            restart_count=s.restart_count,
        )
        for s in samples
    ]
    body = DeploymentMetrics(
        deployment_id=deployment.id,
        deployment_name=deployment.name,
        instance_count=len(instances),
        total_cpu_usage_percent=round(sum(s.cpu_percent for s in samples), 2),
        total_memory=_memory(sum(s.memory_usage for s in samples), sum(s.memory_limit for s in samples)),
        total_network=NetworkUsage(
            rx_bytes=sum(s.rx_bytes for s in samples),
            tx_bytes=sum(s.tx_bytes for s in samples),
            rx_packets=sum(s.rx_packets for s in samples),
            tx_packets=sum(s.tx_packets for s in samples),
        ),
        total_disk_io=DiskUsage(
            read_bytes=sum(s.read_bytes for s in samples), write_bytes=sum(s.write_bytes for s in samples)
        ),
        total_pids=sum(s.pids for s in samples),
        instances=instances,
        errors=errors,
    )
    return json_response(body)
