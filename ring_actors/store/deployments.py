"""Deployment rows: the desired state the supervisor converges to.

Reads are served from memory (`deployment_cache.RowCache`): this server is the only
writer of the `deployment` table and every write goes through `DeploymentRepo`, so
`GET /deployments`, the safety-net tick and the actors' reloads cost no thread hop
and no SQL. Writes go to SQLite as before; the cache applies each one as it is
issued and checks it against the stored row after the commit.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Protocol, TypeVar

import msgspec
import trio

from ring_actors.schemas.manifest import Deployment
from ring_actors.store.db import Database, utcnow
from ring_actors.store.deployment_cache import (
    DeploymentSnapshot,
    Predict,
    RowCache,
    Write,
)

__all__ = ["DeploymentFilter", "DeploymentRepo", "DeploymentSnapshot", "update_state"]

T = TypeVar("T")

_encoder = msgspec.json.Encoder()


class _Selectable(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def labels(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class DeploymentFilter:
    """Selectors of `GET /deployments`; every given one must match (an empty list matches nothing)."""

    namespaces: Sequence[str] | None = None
    statuses: Sequence[str] | None = None
    kinds: Sequence[str] | None = None
    labels: Sequence[tuple[str, str | None]] = ()
    ids: Sequence[str] | None = None

    def matches(self, deployment: _Selectable) -> bool:
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


def _body(deployment: Deployment) -> bytes:
    stored = msgspec.structs.replace(deployment, instances=[])
    return _encoder.encode(stored)


def _row_to_deployment(row: sqlite3.Row) -> Deployment:
    return DeploymentSnapshot.from_row(row, 0).deployment()


class DeploymentRepo:
    """The `deployment` table, read from memory, written through to SQLite.

    One repo per database: writes made by anything else (another repo on the same
    database, another process) are not seen, and make the next write of that row
    drop the cache when its read-back differs.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache = RowCache()
        self._loading: trio.Event | None = None  # set when the load on its way is done

    # ------------------------------------------------------------ reads

    async def snapshots(self, selector: DeploymentFilter | None = None) -> list[DeploymentSnapshot]:
        """Every row matching `selector`, oldest first (created_at, then id), as shared snapshots."""
        rows = await self._current()
        if rows is self._cache.rows:
            ordered = self._cache.ordered()
        else:
            ordered = sorted(rows.values(), key=lambda row: (row.created_at, row.id))
        if selector is None:
            return ordered
        return [row for row in ordered if selector.matches(row)]

    async def snapshot(self, deployment_id: str) -> DeploymentSnapshot | None:
        return (await self._current()).get(deployment_id)

    async def get(self, deployment_id: str) -> Deployment | None:
        found = await self.snapshot(deployment_id)
        return found.deployment() if found else None

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

    async def count_by_namespace(self, namespace: str) -> int:
        def run(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "SELECT COUNT(*) FROM deployment WHERE namespace=? AND status != 'deleted'",
                (namespace,),
            ).fetchone()[0]

        return await self.db.call(run)

    async def list(self, selector: DeploymentFilter | None = None) -> list[Deployment]:
        """Every row matching `selector`, oldest first; each a new object the caller may mutate."""
        return [found.deployment() for found in await self.snapshots(selector)]

    # ------------------------------------------------------------ writes

    async def insert(self, deployment: Deployment) -> None:
        body = _body(deployment)
        args = (
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
            body,
        )

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO deployment (id, namespace, name, runtime, kind, status, restart_count,"
                " parent_id, created_at, updated_at, body) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                args,
            )

        image = DeploymentSnapshot.written(deployment, body, 0)

        def predict(current: DeploymentSnapshot | None, version: int) -> tuple[None, DeploymentSnapshot]:
            return None, replace(image, version=version)

        await self._write(deployment.id, run, predict)

    async def save(self, deployment: Deployment) -> bool:
        """Write every field of an existing row. False when the row is gone (purged)."""
        deployment.updated_at = utcnow()
        return await self._update(deployment, guarded=False)

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

        def predict(current: DeploymentSnapshot | None, version: int) -> tuple[bool, DeploymentSnapshot | None]:
            if current is None or current.status in excluded:
                return False, current
            return True, replace(current, version=version, status=status, updated_at=now)

        return await self._write(deployment_id, run, predict)

    async def purge(self, deployment_id: str) -> None:
        """Delete the row and everything that hangs off it (events, health checks)."""

        def run(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM deployment_event WHERE deployment_id=?", (deployment_id,))
            conn.execute("DELETE FROM health_check WHERE deployment_id=?", (deployment_id,))
            conn.execute("DELETE FROM deployment WHERE id=?", (deployment_id,))

        def predict(current: DeploymentSnapshot | None, version: int) -> tuple[None, None]:
            return None, None

        await self._write(deployment_id, run, predict)

    async def _update(self, deployment: Deployment, *, guarded: bool) -> bool:
        """UPDATE the server-owned columns and the body; `guarded` never touches a `deleted` row."""
        body = _body(deployment)
        parent_id = deployment.parent_id or None
        sql = "UPDATE deployment SET status=?, restart_count=?, parent_id=?, updated_at=?, body=? WHERE id=?"
        args: tuple = (deployment.status, deployment.restart_count, parent_id, deployment.updated_at, body, deployment.id)
        if guarded:
            sql += " AND (status != 'deleted' OR ? = 'deleted')"
            args += (deployment.status,)
        # Taken now: a prediction may run later (after a load), when the caller has changed `deployment`.
        written = (deployment.status, deployment.restart_count, deployment.updated_at, dict(deployment.labels))

        def run(conn: sqlite3.Connection) -> bool:
            return conn.execute(sql, args).rowcount == 1

        def predict(current: DeploymentSnapshot | None, version: int) -> tuple[bool, DeploymentSnapshot | None]:
            status, restart_count, updated_at, labels = written
            if current is None or (guarded and current.status == "deleted" and status != "deleted"):
                return False, current
            return True, replace(
                current,
                version=version,
                status=status,
                restart_count=restart_count,
                parent_id=parent_id,
                updated_at=updated_at,
                labels=MappingProxyType(labels),
                body=body,
            )

        return await self._write(deployment.id, run, predict)

    # ------------------------------------------------------------ the cache

    async def _write(self, deployment_id: str, statement: Callable[[sqlite3.Connection], T], predict: Predict) -> T:
        """Apply `predict` to the cache, run `statement`, and check the row it left against the prediction."""

        def run(conn: sqlite3.Connection) -> tuple[T, DeploymentSnapshot | None]:
            result = statement(conn)
            row = conn.execute("SELECT * FROM deployment WHERE id=?", (deployment_id,)).fetchone()
            return result, DeploymentSnapshot.from_row(row, 0) if row else None

        write = Write(deployment_id, predict)
        self._cache.issue(write)  # no checkpoint between this and the call: its place in the queue
        try:
            result, row = await self.db.call(run)
        except BaseException:
            self._cache.drop()  # failed, or cancelled with an unknown outcome
            raise
        self._cache.settle(write, result, row)
        return result

    async def _current(self) -> dict[str, DeploymentSnapshot]:
        """The rows as of every write issued so far, loaded first if needed.

        Always a checkpoint, as the SQL read was.
        """
        await trio.lowlevel.checkpoint()
        if self._cache.rows is not None:
            return self._cache.rows
        if self._loading is not None:
            await self._loading.wait()
            if self._cache.rows is not None:
                return self._cache.rows
        return await self._load()

    async def _load(self) -> dict[str, DeploymentSnapshot]:
        version = self._cache.next_version()

        def run(conn: sqlite3.Connection) -> dict[str, DeploymentSnapshot]:
            rows = conn.execute("SELECT * FROM deployment").fetchall()
            return {row["id"]: DeploymentSnapshot.from_row(row, version) for row in rows}

        done = self._loading = trio.Event()
        load = self._cache.begin_load()  # no checkpoint between this and the call: its place in the queue
        try:
            rows = await self.db.call(run)
        except BaseException:
            self._cache.abandon_load(load)
            raise
        finally:
            if self._loading is done:
                self._loading = None
            done.set()
        return self._cache.end_load(load, rows)


async def update_state(
    repo: DeploymentRepo,
    deployment: Deployment,
) -> bool:
    """Persist what the supervisor owns (status, counters, digest, parent link).

    Never resurrects a row the API marked `deleted` meanwhile: returns False then,
    and the caller re-reads the row.
    """
    deployment.updated_at = utcnow()
    return await repo._update(deployment, guarded=True)
