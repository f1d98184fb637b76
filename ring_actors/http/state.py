"""What the HTTP layer holds for the life of the app: services plus API-only parts."""

from __future__ import annotations

from dataclasses import dataclass, field

import trio

from ring_actors.auth.principal import Authenticator, TicketStore
from ring_actors.background import StatsCache, stats_cache
from ring_actors.services import Services
from ring_actors.store.audit import AuditRepo
from ring_actors.store.health import HealthCheckRepo
from ring_actors.store.namespaces import NamespaceRepo
from ring_actors.store.tokens import TokenRepo
from ring_actors.store.users import UserRepo

__all__ = ["ApiState", "HANDLER_TIMEOUT"]

HANDLER_TIMEOUT = 10.0
"""api.md §4: every protected route but logs and streams answers 408 after this."""

PASSWORD_HASHING_SLOTS = 2
"""Concurrent Argon2 computations (64 MiB each); more logins wait their turn."""


@dataclass
class ApiState:
    services: Services
    users: UserRepo
    tokens: TokenRepo
    namespaces: NamespaceRepo
    audit: AuditRepo
    health: HealthCheckRepo
    auth: Authenticator
    stats: StatsCache
    tickets: TicketStore = field(default_factory=TicketStore)
    handler_timeout: float = HANDLER_TIMEOUT
    hashing: trio.CapacityLimiter = field(default_factory=lambda: trio.CapacityLimiter(PASSWORD_HASHING_SLOTS))
    deploy_lock: trio.Lock = field(default_factory=trio.Lock)
    """Serializes the rolling-update decision + insert of POST /deployments."""

    @classmethod
    def build(cls, services: Services) -> ApiState:
        db = services.db
        tokens = TokenRepo(db)
        return cls(
            services=services,
            users=UserRepo(db),
            tokens=tokens,
            namespaces=NamespaceRepo(db),
            audit=AuditRepo(db),
            health=HealthCheckRepo(db),
            auth=Authenticator(tokens),
            stats=stats_cache(services),
        )
