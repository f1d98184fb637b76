"""Deployment rows: the desired state the supervisor converges to."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import msgspec

from ring_actors.schemas.manifest import Deployment
from ring_actors.store.db import Database, utcnow

_decoder = msgspec.json.Decoder(Deployment)
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class DeploymentFilter:
    """Selectors of `GET /deployments`; every given one must match."""

    namespaces: Sequence[str] | None = None
    statuses: Sequence[str] | None = None
    kinds: Sequence[str] | None = None
    labels: Sequence[tuple[str, str | None]] = ()
    ids: Sequence[str] | None = None

    def matches(self, deployment: Deployment) -> bool:
        if self.namespaces is not None and deployment.namespace not in self.namespaces:
            return False
        if self.statuses is not None and deployment.status not in self.statuses:
            return False
        if self.kinds is not None and deployment.kind not in self.kinds:
            return False
        if self.ids is not None and deployment.id not in self.ids:
            return False
        for key, value in self.labels:
            if key not in deployment.labels:
                return False
            if value is not None and deployment.labels[key] != value:
                return False
        return True


def _row_to_deployment(row: sqlite3.Row) -> Deployment:
    deployment = _decoder.decode(row["body"])
    # Columns are authoritative for what the server changes after insert.
    deployment.status = row["status"]
    deployment.restart_count = row["restart_count"]
    deployment.updated_at = row["updated_at"]
    deployment.parent_id = row["parent_id"] if row["parent_id"] else msgspec.UNSET
    deployment.instances = []
    return deployment


def _body(deployment: Deployment) -> bytes:
    stored = msgspec.structs.replace(deployment, instances=[])
    return _encoder.encode(stored)


class DeploymentRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(self, deployment: Deployment) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO deployment (id, namespace, name, runtime, kind, status, restart_count,"
                " parent_id, created_at, updated_at, body) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    deployment.id,
                    deployment.namespace,
                    deployment.name,
                    deployment.runtime,
                    deployment.kind,
                    deployment.status,
                    deployment.restart_count,
                    deployment.parent_id or None,
                    deployment.created_at,
                    deployment.updated_at,
                    _body(deployment),
                ),
            )

        await self.db.call(run)

    async def save(self, deployment: Deployment) -> bool:
        """Write every field of an existing row. False when the row is gone (purged)."""
        deployment.updated_at = utcnow()

        def run(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "UPDATE deployment SET status=?, restart_count=?, parent_id=?, updated_at=?, body=?"
                " WHERE id=?",
                (
                    deployment.status,
                    deployment.restart_count,
                    deployment.parent_id or None,
                    deployment.updated_at,
                    _body(deployment),
                    deployment.id,
                ),
            )
            return cursor.rowcount == 1

        return await self.db.call(run)

    async def set_status(
        self, deployment_id: str, status: str, *, only_if_not: Iterable[str] = ()
    ) -> bool:
        """Change only the status (e.g. API delete), never overwriting the excluded ones."""
        excluded = tuple(only_if_not)
        now = utcnow()

        def run(conn: sqlite3.Connection) -> bool:
            sql = "UPDATE deployment SET status=?, updated_at=? WHERE id=?"
            args: tuple = (status, now, deployment_id)
            if excluded:
                sql += f" AND status NOT IN ({','.join('?' * len(excluded))})"
                args += excluded
            return conn.execute(sql, args).rowcount == 1

        return await self.db.call(run)

    async def get(self, deployment_id: str) -> Deployment | None:
        def run(conn: sqlite3.Connection) -> Deployment | None:
            row = conn.execute("SELECT * FROM deployment WHERE id=?", (deployment_id,)).fetchone()
            return _row_to_deployment(row) if row else None

        return await self.db.call(run)

    async def list(self, selector: DeploymentFilter | None = None) -> list[Deployment]:
        """Every row matching `selector`, oldest first."""

        def run(conn: sqlite3.Connection) -> list[Deployment]:
            clauses: list[str] = []
            args: list[str] = []
            if selector is not None:
                for column, values in (
                    ("namespace", selector.namespaces),
                    ("status", selector.statuses),
                    ("kind", selector.kinds),
                    ("id", selector.ids),
                ):
                    if values is not None:
                        if not values:
                            return []
                        clauses.append(f"{column} IN ({','.join('?' * len(values))})")
                        args.extend(values)
            where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
            rows = conn.execute(f"SELECT * FROM deployment{where} ORDER BY created_at, id", args)
            return [_row_to_deployment(row) for row in rows]

        found = await self.db.call(run)
        if selector is not None and selector.labels:
            found = [d for d in found if selector.matches(d)]
        return found

    async def active_named(self, namespace: str, name: str) -> list[Deployment]:
        """Rows with this identity whose status is not `deleted` (rolling-update matching)."""

        def run(conn: sqlite3.Connection) -> list[Deployment]:
            rows = conn.execute(
                "SELECT * FROM deployment WHERE namespace=? AND name=? AND status != 'deleted'"
                " ORDER BY created_at",
                (namespace, name),
            )
            return [_row_to_deployment(row) for row in rows]

        return await self.db.call(run)

    async def purge(self, deployment_id: str) -> None:
        """Delete the row and everything that hangs off it (events, health checks)."""

        def run(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM deployment_event WHERE deployment_id=?", (deployment_id,))
            conn.execute("DELETE FROM health_check WHERE deployment_id=?", (deployment_id,))
            conn.execute("DELETE FROM deployment WHERE id=?", (deployment_id,))

        await self.db.call(run)

    async def count_by_namespace(self, namespace: str) -> int:
        def run(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "SELECT COUNT(*) FROM deployment WHERE namespace=? AND status != 'deleted'",
                (namespace,),
            ).fetchone()[0]

        return await self.db.call(run)


async def update_state(
    repo: DeploymentRepo,
    deployment: Deployment,
) -> bool:
    """Persist what the supervisor owns (status, counters, digest, parent link).

    Never resurrects a row the API marked `deleted` meanwhile: returns False then,
    and the caller re-reads the row.
    """
    now = utcnow()
    deployment.updated_at = now

    def run(conn: sqlite3.Connection) -> bool:
        cursor = conn.execute(
            "UPDATE deployment SET status=?, restart_count=?, parent_id=?, updated_at=?, body=?"
            " WHERE id=? AND (status != 'deleted' OR ? = 'deleted')",
            (
                deployment.status,
                deployment.restart_count,
                deployment.parent_id or None,
                now,
                _body(deployment),
                deployment.id,
                deployment.status,
            ),
        )
        return cursor.rowcount == 1

    return await repo.db.call(run)
