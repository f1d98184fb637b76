"""Webhooks and their durable delivery queue (resources.md §7, api.md §14).

Two tables (migration 0003): `webhook` (one subscriber) and `events`, the queue,
named as Ring's so `ring_events_by_status` counts it. Unlike Ring, a queue row is
one (event, webhook) delivery, not one event: a failing receiver retries and
dead-letters alone, never duplicating what the others already received (api.md §16).

Secrets are sealed with AES-256-GCM under the server key (the row id is the
associated data, so a ciphertext cannot be moved to another webhook); Ring stores
them in clear. Timestamps are RFC 3339 UTC with microseconds, fixed width, so SQL
compares them as text.
"""

from __future__ import annotations

import builtins
import json
import os
import sqlite3
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone

import msgspec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ring_actors.store.db import Database

__all__ = [
    "DueDelivery",
    "QueueStatus",
    "QueuedEvent",
    "Webhook",
    "WebhookRepo",
    "rfc3339",
]

QueueStatus = str
"""`pending`, `delivered` or `dead` (api.md §14.3)."""

INSPECT_LIMIT = 50
_NONCE = 12


def rfc3339(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds and `Z`: fixed width, so SQL compares queue times as text."""
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _now() -> str:
    return rfc3339(datetime.now(timezone.utc))


class Webhook(msgspec.Struct, kw_only=True):
    id: str
    url: str
    events: list[str]
    namespaces: list[str]
    created_at: str
    revoked_at: str | None = None
    created_by: str | None = None


class QueuedEvent(msgspec.Struct, kw_only=True):
    """One delivery of one event to one webhook."""

    id: str
    event_id: str
    webhook_id: str
    kind: str
    deployment_id: str | None
    namespace: str | None
    payload: str
    status: QueueStatus
    attempts: int
    next_attempt_at: str
    last_error: str | None
    created_at: str
    updated_at: str


class DueDelivery(msgspec.Struct, kw_only=True):
    """A pending delivery with what sending it needs (the secret, unsealed)."""

    item: QueuedEvent
    url: str
    secret: str


def _webhook(row: sqlite3.Row) -> Webhook:
    return Webhook(
        id=row["id"],
        url=row["url"],
        events=json.loads(row["events"]),
        namespaces=json.loads(row["namespaces"]),
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        created_by=row["created_by"],
    )


def _queued(row: sqlite3.Row) -> QueuedEvent:
    return QueuedEvent(
        id=row["id"],
        event_id=row["event_id"],
        webhook_id=row["webhook_id"],
        kind=row["kind"],
        deployment_id=row["deployment_id"],
        namespace=row["namespace"],
        payload=row["payload"],
        status=row["status"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class WebhookRepo:
    """Webhook rows and the delivery queue; `key` (32 bytes) seals the signing secrets."""

    def __init__(self, db: Database, key: bytes) -> None:
        self.db = db
        self._aead = AESGCM(key)

    # ------------------------------------------------------------ secrets

    def _seal(self, webhook_id: str, secret: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, secret.encode(), webhook_id.encode())

    def _unseal(self, webhook_id: str, sealed: bytes) -> str:
        return self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], webhook_id.encode()).decode()

    # ------------------------------------------------------------ webhooks

    async def create(
        self,
        url: str,
        *,
        events: Sequence[str],
        secret: str,
        namespaces: Sequence[str] = (),
        created_by: str | None = None,
    ) -> Webhook:
        hook = Webhook(
            id=str(uuid.uuid4()),
            url=url,
            events=list(events),
            namespaces=list(namespaces),
            created_at=_now(),
            created_by=created_by,
        )
        sealed = self._seal(hook.id, secret)

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO webhook (id, url, events, namespaces, secret, created_by, created_at)"
                " VALUES (?,?,?,?,?,?,?)",
                (hook.id, url, json.dumps(hook.events), json.dumps(hook.namespaces), sealed, created_by,
                 hook.created_at),
            )

        await self.db.call(run)
        return hook

    async def list(self, *, active_only: bool = False) -> builtins.list[Webhook]:
        """Every webhook (revoked ones too, unless `active_only`), newest first."""
        sql = "SELECT * FROM webhook"
        if active_only:
            sql += " WHERE revoked_at IS NULL"
        sql += " ORDER BY created_at DESC, id"
        return await self.db.call(lambda conn: [_webhook(r) for r in conn.execute(sql)])

    async def get(self, webhook_id: str) -> Webhook | None:
        def run(conn: sqlite3.Connection) -> Webhook | None:
            row = conn.execute("SELECT * FROM webhook WHERE id=?", (webhook_id,)).fetchone()
            return _webhook(row) if row else None

        return await self.db.call(run)

    async def secret(self, webhook_id: str) -> str | None:
        def run(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute("SELECT secret FROM webhook WHERE id=?", (webhook_id,)).fetchone()
            return row["secret"] if row else None

        sealed = await self.db.call(run)
        return None if sealed is None else self._unseal(webhook_id, sealed)

    async def revoke(self, webhook_id: str) -> bool:
        """Soft delete; its pending deliveries become `dead` so nothing more is sent.

        Returns False when no such webhook exists (revoking twice is not an error).
        """
        now = _now()

        def run(conn: sqlite3.Connection) -> bool:
            found = conn.execute("SELECT revoked_at FROM webhook WHERE id=?", (webhook_id,)).fetchone()
            if found is None:
                return False
            if found["revoked_at"] is None:
                conn.execute("UPDATE webhook SET revoked_at=? WHERE id=?", (now, webhook_id))
            conn.execute(
                "UPDATE events SET status='dead', last_error='webhook deleted', updated_at=?"
                " WHERE webhook_id=? AND status='pending'",
                (now, webhook_id),
            )
            return True

        return await self.db.call(run)

    # ------------------------------------------------------------ queue

    async def enqueue(
        self,
        *,
        kind: str,
        payload: str,
        webhook_ids: Iterable[str],
        deployment_id: str | None = None,
        namespace: str | None = None,
        event_id: str | None = None,
    ) -> builtins.list[QueuedEvent]:
        """Queue one event for each of `webhook_ids` still active, due now, in one transaction."""
        ids = list(dict.fromkeys(webhook_ids))
        event_id = event_id or str(uuid.uuid4())
        now = _now()

        def run(conn: sqlite3.Connection) -> builtins.list[QueuedEvent]:
            queued: builtins.list[QueuedEvent] = []
            for webhook_id in ids:
                active = conn.execute(
                    "SELECT 1 FROM webhook WHERE id=? AND revoked_at IS NULL", (webhook_id,)
                ).fetchone()
                if active is None:
                    continue
                item = QueuedEvent(
                    id=str(uuid.uuid4()),
                    event_id=event_id,
                    webhook_id=webhook_id,
                    kind=kind,
                    deployment_id=deployment_id,
                    namespace=namespace,
                    payload=payload,
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    last_error=None,
                    created_at=now,
                    updated_at=now,
                )
                conn.execute(
                    "INSERT INTO events (id, event_id, webhook_id, kind, deployment_id, namespace, payload,"
                    " status, attempts, next_attempt_at, last_error, created_at, updated_at)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (item.id, item.event_id, item.webhook_id, item.kind, item.deployment_id, item.namespace,
                     item.payload, item.status, item.attempts, item.next_attempt_at, item.last_error,
                     item.created_at, item.updated_at),
                )
                queued.append(item)
            return queued

        return await self.db.call(run)

    async def events(self, webhook_id: str, *, limit: int = INSPECT_LIMIT) -> builtins.list[QueuedEvent]:
        """The webhook's most recent queue entries, newest first."""
        limit = max(0, min(limit, INSPECT_LIMIT))

        def run(conn: sqlite3.Connection) -> builtins.list[QueuedEvent]:
            rows = conn.execute("SELECT * FROM events WHERE webhook_id=? ORDER BY n DESC LIMIT ?", (webhook_id, limit))
            return [_queued(r) for r in rows]

        return await self.db.call(run)

    async def due(self, now: str, *, limit: int, exclude: Iterable[str] = ()) -> builtins.list[DueDelivery]:
        """Pending deliveries of active webhooks due at `now`, oldest first, minus `exclude` (in flight)."""
        skip = list(exclude)

        def run(conn: sqlite3.Connection) -> builtins.list[tuple[QueuedEvent, str, bytes]]:
            sql = (
                "SELECT e.*, w.url AS url, w.secret AS secret FROM events e JOIN webhook w ON w.id = e.webhook_id"
                " WHERE e.status='pending' AND e.next_attempt_at <= ? AND w.revoked_at IS NULL"
            )
            args: builtins.list[object] = [now]
            if skip:
                sql += f" AND e.id NOT IN ({','.join('?' * len(skip))})"
                args += skip
            sql += " ORDER BY e.next_attempt_at, e.n LIMIT ?"
            args.append(limit)
            return [(_queued(r), r["url"], r["secret"]) for r in conn.execute(sql, args)]

        rows = await self.db.call(run)
        return [
            DueDelivery(item=item, url=url, secret=self._unseal(item.webhook_id, sealed))
            for item, url, sealed in rows
        ]

    async def next_due(self, *, exclude: Iterable[str] = ()) -> str | None:
        """When the earliest pending delivery (not in `exclude`) is due; None when none is pending."""
        skip = list(exclude)

        def run(conn: sqlite3.Connection) -> str | None:
            sql = "SELECT MIN(next_attempt_at) FROM events WHERE status='pending'"
            if skip:
                sql += f" AND id NOT IN ({','.join('?' * len(skip))})"
            earliest: str | None = conn.execute(sql, skip).fetchone()[0]
            return earliest

        return await self.db.call(run)

    async def mark_delivered(self, delivery_id: str, *, attempts: int) -> None:
        now = _now()
        await self.db.call(
            lambda conn: conn.execute(
                "UPDATE events SET status='delivered', attempts=?, last_error=NULL, updated_at=?"
                " WHERE id=? AND status='pending'",
                (attempts, now, delivery_id),
            )
        )

    async def mark_failed(self, delivery_id: str, *, attempts: int, error: str, retry_at: str | None) -> None:
        """Record a failed attempt: pending again at `retry_at`, or `dead` when None."""
        now = _now()
        status = "dead" if retry_at is None else "pending"

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE events SET status=?, attempts=?, last_error=?, next_attempt_at=COALESCE(?, next_attempt_at),"
                " updated_at=? WHERE id=? AND status='pending'",
                (status, attempts, error, retry_at, now, delivery_id),
            )

        await self.db.call(run)

    async def prune(self, before: str) -> int:
        """Delete delivered and dead entries last updated before `before` (retention)."""

        def run(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "DELETE FROM events WHERE status IN ('delivered', 'dead') AND updated_at < ?", (before,)
            )
            return cursor.rowcount

        return await self.db.call(run)
