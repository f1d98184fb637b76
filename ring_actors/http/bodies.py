"""Request and response bodies of the control API as msgspec Structs.

Decoding, encoding and the OpenAPI document (`ring_actors.openapi`) all come from
these. Unknown request keys are ignored, as Ring (serde) ignores them.
"""

from __future__ import annotations

import msgspec

from ring_actors.background import DeploymentUsage as RuntimeSeries
from ring_actors.store.audit import AuditEntry
from ring_actors.store.events import Event
from ring_actors.store.health import HealthCheckResult
from ring_actors.store.namespaces import Namespace
from ring_actors.store.users import User

__all__ = [
    "AuditEntry",
    "Event",
    "Healthz",
    "HealthCheckResult",
    "LogLineView",
    "LoginRequest",
    "LoginResponse",
    "MetricsSnapshot",
    "Namespace",
    "NamespaceCreate",
    "NodeInfo",
    "DeploymentMetrics",
    "StreamTicketRequest",
    "StreamTicketResponse",
    "TokenCreate",
    "TokenCreated",
    "TokenView",
    "User",
    "UserCreate",
    "UserUpdate",
]


class _Body(msgspec.Struct, kw_only=True):
    pass


class LoginRequest(_Body):
    username: str
    password: str


class LoginResponse(_Body):
    token: str


class StreamTicketRequest(_Body):
    scope: str = ""


class StreamTicketResponse(_Body):
    ticket: str
    expires_in: int


class UserCreate(_Body):
    username: str
    password: str


class UserUpdate(_Body):
    username: str | None = None
    password: str | None = None
    role: str | None = None


class TokenCreate(_Body):
    name: str
    scopes: list[str] = []
    namespaces: list[str] = []
    expire_at: str | None = None


class TokenView(_Body):
    id: str
    name: str | None
    token_prefix: str
    scopes: list[str]
    namespaces: list[str]
    created_at: str
    expire_at: str | None
    last_used_at: str | None
    revoked_at: str | None


class TokenCreated(_Body):
    id: str
    name: str | None
    token: str
    token_prefix: str
    scopes: list[str]
    namespaces: list[str]
    created_at: str
    expire_at: str | None
    message: str = "Copy this token now — it will not be shown again."


class NamespaceCreate(_Body):
    name: str


class LogLineView(_Body):
    """One log line. `level` is a heuristic guess (`level_guessed`), unless the line is a
    JSON object naming its level; `timestamp` is the runtime's own (RFC 3339)."""

    instance: str
    message: str
    level: str
    timestamp: str | None
    stream: str = "stdout"
    instance_id: str | None = None
    level_guessed: bool = True


class Healthz(_Body):
    state: str
    runtimes: dict[str, str] = {}


class NodeInfo(_Body):
    hostname: str
    os: str
    arch: str
    uptime: str
    cpu_count: int
    memory_total: float
    memory_available: float
    load_average: list[float]


class MemoryUsage(_Body):
    usage_bytes: int
    limit_bytes: int
    usage_percent: float


class NetworkUsage(_Body):
    rx_bytes: int
    tx_bytes: int
    rx_packets: int
    tx_packets: int


class DiskUsage(_Body):
    read_bytes: int
    write_bytes: int


class PidsUsage(_Body):
    current: int
    limit: int


class InstanceMetrics(_Body):
    instance_id: str
    instance_name: str
    cpu_usage_percent: float
    memory: MemoryUsage
    network: NetworkUsage
    disk_io: DiskUsage
    pids: PidsUsage
    restart_count: int


class DeploymentMetrics(_Body):
    deployment_id: str
    deployment_name: str
    instance_count: int
    total_cpu_usage_percent: float
    total_memory: MemoryUsage
    total_network: NetworkUsage
    total_disk_io: DiskUsage
    total_pids: int
    instances: list[InstanceMetrics]
    errors: list[str] = []


class NamespaceStatusCount(_Body):
    namespace: str
    status: str
    count: int


class MetricsSnapshot(_Body):
    """`GET /metrics` with `Accept: application/json` (Ring's field names)."""

    deployments: int
    deployments_by_status: dict[str, int]
    deployments_by_runtime: dict[str, int]
    unhealthy_deployments_by_namespace: list[NamespaceStatusCount]
    namespaces: int
    secrets: int
    volumes: int
    users: int
    webhooks: int
    configs: int
    events_by_status: dict[str, int]
    health_checks_by_status: dict[str, int]
    runtime_last_refresh_seconds: int
    deployment_runtime: list[RuntimeSeries]
