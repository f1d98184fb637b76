"""The server's shared parts, handed to the HTTP layer (the API never calls runtimes to change state)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ring_actors.bus import EventBus
from ring_actors.config import Settings
from ring_actors.recorder import Recorder
from ring_actors.runtimes.base import Runtime
from ring_actors.store.db import Database
from ring_actors.store.deployments import DeploymentRepo
from ring_actors.store.events import EventRepo
from ring_actors.supervisors.root import RootSupervisor


@dataclass
class Services:
    settings: Settings
    db: Database
    deployments: DeploymentRepo
    events: EventRepo
    bus: EventBus
    recorder: Recorder
    runtimes: dict[str, Runtime]
    supervisor: RootSupervisor
    secret_key: bytes
    started_at: float = 0.0
    runtime_health: dict[str, str] = field(default_factory=dict)
    stats_cache: Any = None  # background.StatsCache, created on first use
