"""Namespaces (resources.md §1): a unique name plus an id.

Deletion is refused while the namespace holds non-deleted deployments, secrets or
configs; on success its audit trail is purged and a single `delete namespace` entry
is written, in the same transaction.
"""

from __future__ import annotations

import sqlite3
import uuid

import msgspec

from ring_actors.store.audit import insert_sync as audit_insert
from ring_actors.store.db import Database, utcnow

__all__ = ["Namespace", "NamespaceExists", "NamespaceNotEmpty", "NamespaceRepo"]


class Namespace(msgspec.Struct, kw_only=True):
    id: str
    name: str
    created_at: str
    updated_at: str | None = None


class NamespaceExists(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(f"namespace '{name}' already exists")
        self.name = name


class NamespaceNotEmpty(Exception):
    def __init__(self, name: str, remaining: int) -> None:
        super().__init__(f"namespace '{name}' is not empty ({remaining} remaining)")
        self.name = name
        self.remaining = remaining


def _ns(row: sqlite3.Row) -> Namespace:
    return Namespace(id=row["id"], name=row["name"], created_at=row["created_at"], updated_at=row["updated_at"])


def _insert(conn: sqlite3.Connection, name: str) -> Namespace:
    ns = Namespace(id=str(uuid.uuid4()), name=name, created_at=utcnow())
    conn.execute(
        "INSERT INTO namespace (id, name, created_at, updated_at) VALUES (?,?,?,NULL)",
        (ns.id, ns.name, ns.created_at),
    )
    return ns


def _count(conn: sqlite3.Connection, sql: str, name: str) -> int:
    try:
        return conn.execute(sql, (name,)).fetchone()[0]
    except sqlite3.OperationalError:  # a table another feature has not created yet
        return 0


class NamespaceRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, name: str) -> Namespace:
        """Insert a namespace. Raises NamespaceExists."""

        def run(conn: sqlite3.Connection) -> Namespace:
            if conn.execute("SELECT 1 FROM namespace WHERE name=?", (name,)).fetchone():
                raise NamespaceExists(name)
            return _insert(conn, name)

        return await self.db.call(run)

    async def ensure(self, name: str) -> tuple[Namespace, bool]:
        """The namespace named `name`, created if missing; True when it was created now."""

        def run(conn: sqlite3.Connection) -> tuple[Namespace, bool]:
            row = conn.execute("SELECT * FROM namespace WHERE name=?", (name,)).fetchone()
            if row is not None:
                return _ns(row), False
            return _insert(conn, name), True

        return await self.db.call(run)

    async def find(self, ref: str) -> Namespace | None:
        """By id or by name (ring-actors accepts both everywhere, api.md §16)."""

        def run(conn: sqlite3.Connection) -> Namespace | None:
            row = conn.execute("SELECT * FROM namespace WHERE id=? OR name=? LIMIT 1", (ref, ref)).fetchone()
            return _ns(row) if row else None

        return await self.db.call(run)

    async def find_by_name(self, name: str) -> Namespace | None:
        def run(conn: sqlite3.Connection) -> Namespace | None:
            row = conn.execute("SELECT * FROM namespace WHERE name=?", (name,)).fetchone()
            return _ns(row) if row else None

        return await self.db.call(run)

    async def list(self) -> list[Namespace]:
        def run(conn: sqlite3.Connection) -> list[Namespace]:
            return [_ns(r) for r in conn.execute("SELECT * FROM namespace ORDER BY name")]

        return await self.db.call(run)

    async def delete(self, name: str, *, user_id: str | None, seq: int) -> bool:
        """Delete an empty namespace, purge its audit trail and record the deletion.

        Returns False when it does not exist. Raises NamespaceNotEmpty.
        """

        def run(conn: sqlite3.Connection) -> bool:
            if conn.execute("SELECT 1 FROM namespace WHERE name=?", (name,)).fetchone() is None:
                return False
            remaining = (
                _count(conn, "SELECT COUNT(*) FROM deployment WHERE namespace=? AND status != 'deleted'", name)
                + _count(conn, "SELECT COUNT(*) FROM secret WHERE namespace=?", name)
                + _count(conn, "SELECT COUNT(*) FROM config WHERE namespace=?", name)
            )
            if remaining:
                raise NamespaceNotEmpty(name, remaining)
            conn.execute("DELETE FROM namespace WHERE name=?", (name,))
            conn.execute("DELETE FROM audit_log WHERE namespace=?", (name,))
            audit_insert(
                conn,
                seq,
                user_id=user_id,
                action="delete",
                target_type="namespace",
                target_name=name,
                namespace=name,
            )
            return True

        return await self.db.call(run)
