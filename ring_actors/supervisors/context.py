"""What a deployment actor needs from the rest of the server, in one place."""

from __future__ import annotations

from dataclasses import dataclass, field

from ring_actors.recorder import Recorder
from ring_actors.runtimes.base import Runtime
from ring_actors.store.deployments import DeploymentRepo
from ring_actors.store.health import HealthCheckRepo
from ring_actors.supervisors.policy import BackoffSettings
from ring_actors.supervisors.spec_builder import NoSecrets, SecretSource


@dataclass
class ActorContext:
    runtimes: dict[str, Runtime]
    deployments: DeploymentRepo
    recorder: Recorder
    backoff: BackoffSettings = field(default_factory=BackoffSettings)
    stop_timeout: float = 10.0
    rollout_deadline: float = 600.0
    secrets: SecretSource = field(default_factory=NoSecrets)
    server_id: str = ""
    apply_timeout: float = 300.0
    """RING_APPLY_TIMEOUT: bound on one instance's create (pull, network, create, start)."""
    """This server's identity label; only instances carrying it are ever reaped as orphans."""
    drain_grace: float = 2.0
    """Seconds a drained rollout-parent instance stays up after leaving the served list."""
    health: HealthCheckRepo | None = None
    """Health-check history; defaults to the deployments' database."""

    def __post_init__(self) -> None:
        db = getattr(self.deployments, "db", None)
        if self.health is None and db is not None:
            self.health = HealthCheckRepo(db)
