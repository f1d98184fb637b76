"""The deployment manifest as msgspec Structs (spec: manifest.md).

These Structs decode `POST /deployments` bodies and manifest entries, encode API
responses, and feed the OpenAPI document. Shape errors (wrong type, unknown enum
value) are raised by msgspec while decoding; business rules live in
`ring_actors.schemas.validation`, which reports every violation at once.

Optional output fields use `msgspec.UNSET` so that they are omitted from JSON
when absent, as Ring omits them.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

import msgspec
from msgspec import UNSET, UnsetType

RUNTIMES = ("docker", "podman", "containerd", "cloud-hypervisor", "firecracker")

Port16 = Annotated[int, msgspec.Meta(ge=0, le=65535)]
UInt32 = Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]


class Base(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """Common Struct options: keyword-only construction, unknown keys ignored (as Ring)."""


class SecretRef(Base):
    """An environment value taken from a secret of the same namespace."""

    secret_ref: str = msgspec.field(name="secretRef")


EnvValue = Union[str, SecretRef]


class Volume(Base):
    type: Literal["bind", "volume", "config", "secret"]
    source: str | None = None
    key: str | None = None
    destination: str = ""
    driver: Literal["local", "nfs"] = "local"
    permission: Literal["ro", "rw"] | None = None  # filled by normalize(): rw, or ro for config/secret


class Port(Base):
    published: Port16
    target: Port16
    host_ip: str = "0.0.0.0"
    protocol: Literal["tcp", "udp"] = "tcp"


class ResourceQuantities(Base):
    cpu: str | UnsetType = UNSET
    memory: str | UnsetType = UNSET


class Resources(Base):
    limits: ResourceQuantities | UnsetType = UNSET
    requests: ResourceQuantities | UnsetType = UNSET


class Autoscale(Base):
    min: int
    max: int
    target_cpu: float


class CheckBase(Base, tag_field="type"):
    interval: str
    timeout: str
    on_failure: Literal["restart", "stop", "alert"]
    threshold: UInt32 = 3
    readiness: bool = False
    min_healthy_time: str | UnsetType = UNSET
    start_period: str | UnsetType = UNSET


class TcpCheck(CheckBase, tag="tcp", kw_only=True):
    port: Port16


class HttpCheck(CheckBase, tag="http", kw_only=True):
    url: str


class CommandCheck(CheckBase, tag="command", kw_only=True):
    command: str


HealthCheck = Union[TcpCheck, HttpCheck, CommandCheck]


class RunAsUser(Base):
    id: UInt32 | None = None
    group: UInt32 | None = None
    privileged: bool | None = None


class RuntimeConfig(Base):
    """The manifest's `config` block: pull policy, registry credentials, user."""

    image_pull_policy: str | UnsetType = UNSET
    server: str | UnsetType = UNSET
    username: str | UnsetType = UNSET
    password: str | UnsetType = UNSET
    use_host_auth: bool | UnsetType = UNSET
    image_pull_secret: str | UnsetType = UNSET
    user: RunAsUser | UnsetType = UNSET

    @property
    def pull_policy(self) -> str:
        """The effective policy: unknown values fall back to `Always`, as Ring does."""
        policy = self.image_pull_policy
        return policy if policy in ("Always", "IfNotPresent", "Never") else "Always"


class Network(Base):
    mode: Literal["bridge", "host"] = "bridge"


class DeploymentSpec(Base):
    """What a user declares: the body of `POST /deployments`."""

    name: str
    namespace: str
    runtime: str
    image: str
    kind: Literal["worker", "job"] = "worker"
    replicas: UInt32 = 1
    autoscale: Autoscale | UnsetType = UNSET
    command: list[str] = []
    environment: dict[str, EnvValue] = {}
    volumes: list[Volume] = []
    ports: list[Port] = []
    labels: dict[str, str] = {}
    resources: Resources | UnsetType = UNSET
    health_checks: list[HealthCheck] = []
    config: RuntimeConfig = msgspec.field(default_factory=RuntimeConfig)
    network: Network | UnsetType = UNSET

    @property
    def network_mode(self) -> str:
        return self.network.mode if self.network is not UNSET else "bridge"


class Instance(Base):
    id: str
    address: str | UnsetType = UNSET
    name: str | UnsetType = UNSET
    status: str | UnsetType = UNSET


class Deployment(DeploymentSpec, kw_only=True):
    """A stored deployment: the declared spec plus what the server tracks about it."""

    id: str
    created_at: str
    updated_at: str | None = None
    status: str = "creating"
    restart_count: int = 0
    instances: list[Instance] = []
    image_digest: str | UnsetType = UNSET
    parent_id: str | UnsetType = UNSET
    desired_replicas: int | UnsetType = UNSET

    def spec(self) -> DeploymentSpec:
        """The declared part only, e.g. to compare two applies."""
        fields = {f: getattr(self, f) for f in DeploymentSpec.__struct_fields__}
        return DeploymentSpec(**fields)

    @property
    def target_replicas(self) -> int:
        """Effective instance target: clamp(desired ?? replicas, min, max) with autoscale."""
        if self.kind == "job":
            return 1
        if self.autoscale is UNSET:
            return self.replicas
        wanted = self.desired_replicas if self.desired_replicas is not UNSET else self.replicas
        return max(self.autoscale.min, min(self.autoscale.max, wanted))


class ConfigDefinition(Base):
    """An entry of a manifest's inline `configs:` block (consumed by the CLI)."""

    namespace: str
    name: str
    data: str | None = None
    files: dict[str, str] = {}
    interpolate: bool | None = None
    labels: str | None = None


class NamespaceEntry(Base):
    name: str


class ManifestFile(Base):
    """A whole manifest file as `ring apply -f` reads it."""

    deployments: dict[str, dict]
    namespaces: dict[str, NamespaceEntry] = {}
    configs: dict[str, ConfigDefinition] = {}
