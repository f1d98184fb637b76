"""The audit log (resources.md §8): who created or deleted what, per namespace.

Writing an entry never fails the request that caused it: errors are logged and
swallowed. Entries are read newest first; `seq` orders entries of one instant.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid

import msgspec

from ring_actors.store.db import Database, utcnow

__all__ = ["AuditEntry", "AuditRepo", "insert_sync"]

log = logging.getLogger(__name__)

MAX_LIMIT = 1000


class AuditEntry(msgspec.Struct, kw_only=True):
    id: str
    timestamp: str
    user_id: str | None
    action: str
    target_type: str
    target_name: str
    namespace: str | None


def insert_sync(
    conn: sqlite3.Connection,
    seq: int,
    *,
    user_id: str | None,
    action: str,
    target_type: str,
    target_name: str,
    namespace: str | None,
) -> AuditEntry:
    """Write one entry inside the caller's transaction (e.g. a namespace deletion)."""
    entry = AuditEntry(
        id=str(uuid.uuid4()),
        timestamp=utcnow(),
        user_id=user_id,
        action=action,
        target_type=target_type,
        target_name=target_name,
        namespace=namespace,
    )
    conn.execute(
        "INSERT INTO audit_log (id, timestamp, seq, user_id, action, target_type, target_name, namespace)"
        " VALUES (?,?,?,?,?,?,?,?)",
        (entry.id, entry.timestamp, seq, user_id, action, target_type, target_name, namespace),
    )
    return entry


class AuditRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(
        self,
        user_id: str | None,
        action: str,
        target_type: str,
        target_name: str,
        namespace: str | None = None,
    ) -> None:
        """Append an entry; a failure is logged, never raised (resources.md §8)."""
        seq = self.db.next_seq()
        try:
            await self.db.call(
                lambda conn: insert_sync(
                    conn,
                    seq,
                    user_id=user_id,
                    action=action,
                    target_type=target_type,
                    target_name=target_name,
                    namespace=namespace,
                )
            )
        except Exception:
            log.exception("audit write failed: %s %s %s", action, target_type, target_name)

    async def list(self, namespace: str, *, limit: int = 100) -> list[AuditEntry]:
        """Entries of `namespace`, newest first, at most `limit` (capped at 1000)."""
        limit = max(0, min(limit, MAX_LIMIT))

        def run(conn: sqlite3.Connection) -> list[AuditEntry]:
            rows = conn.execute(
                "SELECT * FROM audit_log WHERE namespace=? ORDER BY seq DESC LIMIT ?", (namespace, limit)
            )
            return [
                AuditEntry(
                    id=r["id"],
                    timestamp=r["timestamp"],
                    user_id=r["user_id"],
                    action=r["action"],
                    target_type=r["target_type"],
                    target_name=r["target_name"],
                    namespace=r["namespace"],
                )
                for r in rows
            ]

        return await self.db.call(run)
