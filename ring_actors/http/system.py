"""`GET /healthz`, `GET /node/get`, `GET /metrics`, `GET /openapi.json` (api.md §5, §15)."""

from __future__ import annotations

import os
import platform
import socket
import sqlite3
from collections.abc import Callable, Iterable

import msgspec
import trio
from quart import Blueprint, Response, request

from ring_actors.background import DeploymentUsage
from ring_actors.http.bodies import Healthz, MetricsSnapshot, NamespaceStatusCount, NodeInfo, RuntimeSeries
from ring_actors.http.common import json_response, state
from ring_actors.openapi import openapi_document
from ring_actors.status import ALL_STATUSES, UNHEALTHY

__all__ = ["blueprint", "render_prometheus"]

blueprint = Blueprint("system", __name__)

PING_TIMEOUT = 2.0
PROM_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
EVENT_QUEUE_STATUSES = ("pending", "delivered", "dead")
UNHEALTHY_ORDER = (
    "pending", "failed", "crash_loop_back_off", "image_pull_back_off", "create_container_error",
    "network_error", "config_error", "file_system_error", "insufficient_resources", "error",
)


# --------------------------------------------------------------------------- healthz


@blueprint.get("/healthz")
async def healthz() -> Response:
    """`{"state": "UP"}` (Ring) plus each runtime's reachability, pinged now (beyond Ring)."""
    services = state().services
    health: dict[str, str] = {}

    async def ping(name: str) -> None:
        status = "down"
        with trio.move_on_after(PING_TIMEOUT):
            try:
                await services.runtimes[name].ping()
                status = "up"
            except Exception:  # noqa: BLE001 - any failure means "down"
                status = "down"
        health[name] = status

    async with trio.open_nursery() as nursery:
        for name in services.runtimes:
            nursery.start_soon(ping, name)
    services.runtime_health.update(health)
    return json_response(Healthz(state="UP", runtimes=dict(sorted(health.items()))))


# --------------------------------------------------------------------------- node


def _meminfo() -> dict[str, int]:
    values: dict[str, int] = {}
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if parts:
                    values[key] = int(parts[0]) * 1024  # kB
    except OSError:
        pass
    return values


def _uptime() -> int:
    try:
        with open("/proc/uptime") as handle:
            return int(float(handle.read().split()[0]))
    except (OSError, ValueError, IndexError):
        return 0


def node_info() -> NodeInfo:
    mem = _meminfo()
    gib = 1024**3
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = [0.0, 0.0, 0.0]
    return NodeInfo(
        hostname=socket.gethostname(),
        os=platform.system().lower(),
        arch=platform.machine(),
        uptime=f"{_uptime()}s",
        cpu_count=os.cpu_count() or 1,
        memory_total=round(mem.get("MemTotal", 0) / gib, 2),
        memory_available=round(mem.get("MemAvailable", 0) / gib, 2),
        load_average=load,
    )


@blueprint.get("/node/get")
async def node_get() -> Response:
    return json_response(await trio.to_thread.run_sync(node_info))


# --------------------------------------------------------------------------- metrics


def _count(conn: sqlite3.Connection, *tables: str) -> int:
    """Rows of the first table that exists (fail-soft: a missing table counts 0)."""
    for table in tables:
        try:
            return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        except sqlite3.OperationalError:
            continue
    return 0


def _group(conn: sqlite3.Connection, table: str, column: str) -> dict[str, int]:
    try:
        rows = conn.execute(f"SELECT {column}, COUNT(*) FROM {table} GROUP BY {column}")
        return {str(key): count for key, count in rows}
    except sqlite3.OperationalError:
        return {}


def _inventory(conn: sqlite3.Connection) -> dict:
    by_status = {str(s): 0 for s in ALL_STATUSES} | _group(conn, "deployment", "status")
    unhealthy = [
        NamespaceStatusCount(namespace=ns, status=status, count=count)
        for ns, status, count in conn.execute(
            f"SELECT namespace, status, COUNT(*) FROM deployment WHERE status IN"
            f" ({','.join('?' * len(UNHEALTHY))}) GROUP BY namespace, status ORDER BY namespace, status",
            [str(s) for s in UNHEALTHY],
        )
    ]
    return {
        "deployments": sum(count for status, count in by_status.items() if status != "deleted"),
        "deployments_by_status": by_status,
        "deployments_by_runtime": dict(sorted(_group(conn, "deployment", "runtime").items())),
        "unhealthy_deployments_by_namespace": unhealthy,
        "namespaces": _count(conn, "namespace"),
        "secrets": _count(conn, "secret"),
        "volumes": _count(conn, "volume", "volumes"),
        "users": _count(conn, "user"),
        "webhooks": _count(conn, "webhook"),
        "configs": _count(conn, "config"),
        "events_by_status": {s: 0 for s in EVENT_QUEUE_STATUSES} | _group(conn, "events", "status"),
        "health_checks_by_status": dict(sorted(_group(conn, "health_check", "status").items())),
    }


async def snapshot() -> MetricsSnapshot:
    st = state()
    inventory = await st.services.db.call(_inventory)
    return MetricsSnapshot(
        **inventory,
        runtime_last_refresh_seconds=st.stats.last_refresh_unix,
        deployment_runtime=list(st.stats.deployments),
    )


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{key}="{_escape(value)}"' for key, value in pairs)
    return "{" + inner + "}" if inner else ""


def _family(out: list[str], name: str, kind: str, help_text: str, samples: Iterable[tuple[str, object]]) -> None:
    out.append(f"# HELP {name} {help_text}")
    out.append(f"# TYPE {name} {kind}")
    for labels, value in samples:
        out.append(f"{name}{labels} {value}")


def render_prometheus(snap: MetricsSnapshot) -> str:
    """Prometheus text exposition 0.0.4 with Ring's series names (api.md §15)."""
    out: list[str] = []
    _family(out, "ring_deployments", "gauge", "Number of deployments, excluding deleted ones.",
            [("", snap.deployments)])
    _family(out, "ring_deployments_by_status", "gauge", "Number of deployments per status (includes deleted).",
            [(_labels([("status", k)]), v) for k, v in snap.deployments_by_status.items()])
    _family(out, "ring_deployments_by_runtime", "gauge", "Number of deployments per runtime (includes deleted).",
            [(_labels([("runtime", k)]), v) for k, v in snap.deployments_by_runtime.items()])
    _family(out, "ring_unhealthy_deployments", "gauge",
            "Deployments in an unhealthy status, per namespace and status.",
            [(_labels([("namespace", b.namespace), ("status", b.status)]), b.count)
             for b in snap.unhealthy_deployments_by_namespace])
    for name, help_text, value in (
        ("ring_namespaces", "Number of namespaces.", snap.namespaces),
        ("ring_secrets", "Number of secrets.", snap.secrets),
        ("ring_volumes", "Number of volumes.", snap.volumes),
        ("ring_users", "Number of users.", snap.users),
        ("ring_webhooks", "Number of webhooks.", snap.webhooks),
        ("ring_configs", "Number of configs.", snap.configs),
    ):
        _family(out, name, "gauge", help_text, [("", value)])
    _family(out, "ring_events_by_status", "gauge",
            "Outbound events per delivery status (pending = queue depth, dead = dead-lettered).",
            [(_labels([("status", k)]), v) for k, v in snap.events_by_status.items()])
    _family(out, "ring_health_checks_by_status", "gauge", "Health-check results per status.",
            [(_labels([("status", k)]), v) for k, v in snap.health_checks_by_status.items()])
    _family(out, "ring_runtime_last_refresh_seconds", "gauge",
            "Unix timestamp of the last successful runtime-stats refresh. 0 means never.",
            [("", snap.runtime_last_refresh_seconds)])
    if snap.deployment_runtime:
        per_deployment: tuple[tuple[str, str, str, Callable[[RuntimeSeries], object]], ...] = (
            ("ring_deployment_instances", "gauge", "Number of running instances per deployment.",
             lambda s: s.instances),
            ("ring_deployment_cpu_usage_percent", "gauge",
             "Aggregate CPU usage percent across a deployment's instances (one core = 100).",
             lambda s: f"{s.cpu_usage_percent:.2f}"),
            ("ring_deployment_memory_usage_bytes", "gauge",
             "Aggregate memory usage in bytes across a deployment's instances.", lambda s: s.memory_usage_bytes),
            ("ring_deployment_memory_limit_bytes", "gauge",
             "Aggregate memory limit in bytes across a deployment's instances.", lambda s: s.memory_limit_bytes),
            ("ring_deployment_pids", "gauge", "Aggregate number of processes across a deployment's instances.",
             lambda s: s.pids),
            ("ring_deployment_network_rx_bytes_total", "counter", "Bytes received by a deployment's instances.",
             lambda s: s.network_rx_bytes),
            ("ring_deployment_network_tx_bytes_total", "counter", "Bytes sent by a deployment's instances.",
             lambda s: s.network_tx_bytes),
            ("ring_deployment_disk_read_bytes_total", "counter", "Bytes read from disk by a deployment's instances.",
             lambda s: s.disk_read_bytes),
            ("ring_deployment_disk_write_bytes_total", "counter",
             "Bytes written to disk by a deployment's instances.", lambda s: s.disk_write_bytes),
            ("ring_deployment_restarts_total", "counter", "The deployment's restart_count.",
             lambda s: s.restarts),
        )
        for name, kind, help_text, extract in per_deployment:
            _family(out, name, kind, help_text, [
                (_labels([("deployment", s.name), ("namespace", s.namespace), ("runtime", s.runtime),
                          ("deployment_id", s.deployment_id)]), extract(s))
                for s in snap.deployment_runtime
            ])
    return "\n".join(out) + "\n"


def _wants_json() -> bool:
    accept = request.headers.get("Accept", "")
    return any(part.split(";")[0].strip().lower() == "application/json" for part in accept.split(","))


@blueprint.get("/metrics")
async def metrics() -> Response:
    snap = await snapshot()
    if _wants_json():
        return Response(msgspec.json.encode(snap), status=200, content_type=JSON_CONTENT_TYPE)
    return Response(render_prometheus(snap), status=200, content_type=PROM_CONTENT_TYPE)


# --------------------------------------------------------------------------- openapi


@blueprint.get("/openapi.json")
async def openapi() -> Response:
    return Response(openapi_document(), status=200, content_type="application/json")
