"""Health-check history (api.md §7.8): one row per probe result.

Unlike Ring, rows carry the instance id and the index of the check in the
deployment's `health_checks` list, so two checks of the same type (or two
instances) are told apart (lifecycle.md §13). Retention: the newest 50 rows per
deployment, none older than 7 days (`sweep()`, run every 300 s).
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import datetime, timedelta, timezone

import msgspec

from ring_actors.store.db import Database, utcnow

__all__ = ["HealthCheckRepo", "HealthCheckResult", "KEEP_PER_DEPLOYMENT", "MAX_AGE"]

KEEP_PER_DEPLOYMENT = 50
MAX_AGE = timedelta(days=7)


class HealthCheckResult(msgspec.Struct, kw_only=True):
    id: str
    deployment_id: str
    check_type: str
    status: str  # success | failed | timeout
    message: str
    created_at: str
    started_at: str
    finished_at: str
    instance_id: str | None = None
    check_index: int | None = None

    @classmethod
    def new(
        cls,
        deployment_id: str,
        check_type: str,
        status: str,
        message: str,
        *,
        started_at: str,
        finished_at: str | None = None,
        instance_id: str | None = None,
        check_index: int | None = None,
    ) -> HealthCheckResult:
        now = utcnow()
        return cls(
            id=str(uuid.uuid4()),
            deployment_id=deployment_id,
            check_type=check_type,
            status=status,
            message=message,
            created_at=now,
            started_at=started_at,
            finished_at=finished_at or now,
            instance_id=instance_id,
            check_index=check_index,
        )


def _result(row: sqlite3.Row) -> HealthCheckResult:
    return HealthCheckResult(
        id=row["id"],
        deployment_id=row["deployment_id"],
        check_type=row["check_type"],
        status=row["status"],
        message=row["message"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        instance_id=row["instance_id"],
        check_index=row["check_index"],
    )


def _check_key(result: HealthCheckResult) -> tuple:
    """Which check a row belongs to: (index, instance) when known, else Ring's check_type."""
    if result.check_index is not None:
        return ("index", result.check_index, result.instance_id)
    return ("type", result.check_type, result.instance_id)


class HealthCheckRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, result: HealthCheckResult) -> None:
        seq = self.db.next_seq()

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO health_check (id, deployment_id, instance_id, check_index, check_type, status,"
                " message, created_at, started_at, finished_at, seq) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    result.id,
                    result.deployment_id,
                    result.instance_id,
                    result.check_index,
                    result.check_type,
                    result.status,
                    result.message,
                    result.created_at,
                    result.started_at,
                    result.finished_at,
                    seq,
                ),
            )

        await self.db.call(run)

    async def list(self, deployment_id: str, *, limit: int = 100, latest: bool = False) -> list[HealthCheckResult]:
        """Newest first. `latest=True`: only the newest row of each check (see `_check_key`)."""
        limit = max(0, min(limit, 1000))

        def run(conn: sqlite3.Connection) -> list[HealthCheckResult]:
            sql = "SELECT * FROM health_check WHERE deployment_id=? ORDER BY seq DESC"
            if not latest:
                return [_result(r) for r in conn.execute(sql + " LIMIT ?", (deployment_id, limit))]
            seen: set[tuple] = set()
            out: list[HealthCheckResult] = []
            for row in conn.execute(sql, (deployment_id,)):
                result = _result(row)
                key = _check_key(result)
                if key in seen:
                    continue
                seen.add(key)
                out.append(result)
                if len(out) >= limit:
                    break
            return out

        return await self.db.call(run)

    async def sweep(self, *, now: datetime | None = None) -> int:
        """Apply retention; returns the number of rows removed."""
        cutoff = ((now or datetime.now(timezone.utc)) - MAX_AGE).isoformat(timespec="microseconds")
        cutoff = cutoff.replace("+00:00", "Z")

        def run(conn: sqlite3.Connection) -> int:
            old = conn.execute("DELETE FROM health_check WHERE created_at < ?", (cutoff,)).rowcount
            extra = conn.execute(
                "DELETE FROM health_check WHERE id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER"
                " (PARTITION BY deployment_id ORDER BY seq DESC) AS n FROM health_check) WHERE n > ?)",
                (KEEP_PER_DEPLOYMENT,),
            ).rowcount
            return old + extra

        return await self.db.call(run)

    async def counts_by_status(self) -> dict[str, int]:
        def run(conn: sqlite3.Connection) -> dict[str, int]:
            rows = conn.execute("SELECT status, COUNT(*) FROM health_check GROUP BY status")
            return {status: count for status, count in rows}

        return await self.db.call(run)
