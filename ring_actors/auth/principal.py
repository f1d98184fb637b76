"""Who is calling: credential resolution, stream tickets and the `last_used_at` throttle.

Resolution order (api.md §2.1): `Authorization: Bearer` first (tickets are then not
consulted), else `?ticket=`, accepted only on `GET /deployments/{id}/logs` for the
bound deployment. A bearer token is rejected when unknown, revoked, expired (or its
expiry unparseable) or when its user no longer exists.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from ring_actors.auth.scopes import ADMIN, has_scope
from ring_actors.auth.tokens import generate_ticket
from ring_actors.schemas.validation import parse_rfc3339

if TYPE_CHECKING:  # the store imports auth.tokens; keep this edge type-only
    from ring_actors.store.tokens import TokenRepo

__all__ = ["Authenticator", "Principal", "TicketStore", "TICKET_TTL", "TOUCH_INTERVAL"]

TICKET_TTL = 30.0
TOUCH_INTERVAL = 60.0


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the user, its role, and what the presented credential allows."""

    user_id: str
    username: str
    role: str
    kind: str  # session | pat | ticket
    token_id: str | None
    scopes: tuple[str, ...]
    namespaces: tuple[str, ...] = ()  # empty = every namespace

    def has(self, scope: str) -> bool:
        return has_scope(self.scopes, scope)

    @property
    def is_admin_credential(self) -> bool:
        return ADMIN in self.scopes

    @property
    def restricted(self) -> bool:
        return bool(self.namespaces)

    def may_access(self, namespace: str) -> bool:
        return not self.namespaces or namespace in self.namespaces

    def visible(self, wanted: list[str] | None) -> list[str] | None:
        """Intersect a namespace filter with this credential's boundary (None = all)."""
        if not self.namespaces:
            return wanted
        if wanted is None:
            return list(self.namespaces)
        return [ns for ns in wanted if ns in self.namespaces]


def _expired(expire_at: str | None, now: datetime) -> bool:
    if expire_at is None or expire_at == "":
        return False
    parsed = parse_rfc3339(expire_at)
    return parsed is None or parsed <= now


class Authenticator:
    """Turns a bearer token into a Principal; throttles `last_used_at` writes to one a minute."""

    def __init__(self, tokens: TokenRepo, *, touch_interval: float = TOUCH_INTERVAL) -> None:
        self.tokens = tokens
        self.touch_interval = touch_interval
        self._last_touch: dict[str, float] = {}

    async def bearer(self, clear: str) -> Principal | None:
        if not clear:
            return None
        found = await self.tokens.lookup(clear)
        if found is None:
            return None
        token = found.token
        if token.revoked_at is not None or _expired(token.expire_at, datetime.now(timezone.utc)):
            return None
        await self._touch(token.id)
        return Principal(
            user_id=token.user_id,
            username=found.username,
            role=found.role,
            kind=token.kind,
            token_id=token.id,
            scopes=tuple(token.scopes),
            namespaces=tuple(token.namespaces),
        )

    async def _touch(self, token_id: str) -> None:
        now = time.monotonic()
        last = self._last_touch.get(token_id)
        if last is not None and now - last < self.touch_interval:
            return
        self._last_touch[token_id] = now
        if len(self._last_touch) > 10_000:  # bounded: forget the oldest half
            for key, _ in sorted(self._last_touch.items(), key=lambda kv: kv[1])[:5_000]:
                del self._last_touch[key]
        await self.tokens.touch(token_id)


@dataclass
class _Ticket:
    principal: Principal
    deployment_id: str
    expires: float


@dataclass
class TicketStore:
    """Stream tickets, in memory only (lost on restart), valid `ttl` seconds, single use.

    Ring's tickets are reusable for 30 s; ring-actors consumes a ticket on its first
    use (api.md §16) so a ticket leaked through a URL cannot be replayed.
    """

    ttl: float = TICKET_TTL
    _tickets: dict[str, _Ticket] = field(default_factory=dict)

    def mint(self, principal: Principal, deployment_id: str) -> str:
        self._prune()
        ticket = generate_ticket()
        self._tickets[ticket] = _Ticket(principal, deployment_id, time.monotonic() + self.ttl)
        return ticket

    def redeem(self, ticket: str, deployment_id: str) -> Principal | None:
        """The principal the ticket stands for, if valid for this deployment; consumes it."""
        self._prune()
        found = self._tickets.get(ticket)
        if found is None or found.deployment_id != deployment_id:
            return None
        del self._tickets[ticket]
        p = found.principal
        return Principal(
            user_id=p.user_id,
            username=p.username,
            role=p.role,
            kind="ticket",
            token_id=None,
            scopes=("deployments:read",),
            namespaces=p.namespaces,
        )

    def _prune(self) -> None:
        now = time.monotonic()
        for key in [k for k, t in self._tickets.items() if t.expires <= now]:
            del self._tickets[key]
