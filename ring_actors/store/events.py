"""Deployment events (spec: lifecycle.md §12): stored, listed newest first, published live."""

from __future__ import annotations

import sqlite3
import uuid
from typing import Literal

import msgspec

from ring_actors.store.db import Database, utcnow

Level = Literal["info", "warning", "error"]


class Event(msgspec.Struct, kw_only=True):
    id: str
    deployment_id: str
    timestamp: str
    level: str
    message: str
    component: str
    reason: str

    @classmethod
    def new(
        cls, deployment_id: str, level: Level, reason: str, message: str, component: str = "scheduler"
    ) -> Event:
        return cls(
            id=str(uuid.uuid4()),
            deployment_id=deployment_id,
            timestamp=utcnow(),
            level=level,
            message=message,
            component=component,
            reason=reason,
        )


WRITE_BEHIND_HIGH_WATER = 5000
"""Events buffered before `add` waits for a commit: memory stays bounded if the disk stalls."""


class EventRepo:
    """Events are written behind (`Database.defer`): `add` returns before the commit.

    Ordering is kept (each event takes its `seq` when added) and every read made
    after an `add`, through this repo or any `Database.call`, sees the event: the
    database commits deferred writes before it runs the next call.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, event: Event) -> None:
        """Store `event` behind the caller's back; waits (a checkpoint) only when the buffer is full."""
        seq = self.db.next_seq()
        row = (
            event.id,
            event.deployment_id,
            event.timestamp,
            seq,
            event.level,
            event.message,
            event.component,
            event.reason,
        )

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO deployment_event (id, deployment_id, timestamp, seq, level, message,"
                " component, reason) VALUES (?,?,?,?,?,?,?,?)",
                row,
            )

        self.db.defer(run)
        if self.db.deferred_pending >= WRITE_BEHIND_HIGH_WATER:
            await self.db.flush()

    async def exists(self, deployment_id: str, reason: str, message_prefix: str) -> bool:
        """Whether an event with this reason and message prefix was recorded (e.g. a crash already counted)."""
        pattern = message_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"

        def run(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "SELECT 1 FROM deployment_event WHERE deployment_id=? AND reason=? AND message LIKE ? ESCAPE '\\'"
                " LIMIT 1",
                (deployment_id, reason, pattern),
            ).fetchone()
            return row is not None

        return await self.db.call(run)

    async def list(
        self, deployment_id: str, *, level: str | None = None, limit: int = 50
    ) -> list[Event]:
        """Newest first, at most `limit` (capped at 1000 as Ring does)."""
        limit = max(0, min(limit, 1000))

        def run(conn: sqlite3.Connection) -> list[Event]:
            sql = "SELECT * FROM deployment_event WHERE deployment_id=?"
            args: list = [deployment_id]
            if level:
                sql += " AND level=?"
                args.append(level)
            sql += " ORDER BY seq DESC LIMIT ?"
            args.append(limit)
            return [
                Event(
                    id=row["id"],
                    deployment_id=row["deployment_id"],
                    timestamp=row["timestamp"],
                    level=row["level"],
                    message=row["message"],
                    component=row["component"],
                    reason=row["reason"],
                )
                for row in conn.execute(sql, args)
            ]

        return await self.db.call(run)
