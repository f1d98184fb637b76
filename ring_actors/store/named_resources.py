"""What secrets and configs share in the store: a table of resources named once per
namespace, listed, fetched and deleted by id, whose delete is refused while an active
deployment uses them (resources.md §2-§3, api.md §16).

Each resource keeps its own module for what differs (a secret is encrypted and has no
value column in its API shape; a config holds JSON data and can be replaced).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Generic, TypeVar

from ring_actors.store.db import Database
from ring_actors.store.references import Reference

__all__ = ["FindReferences", "NamedResourceRepo", "ResourceInUse"]

R = TypeVar("R")

FindReferences = Callable[[sqlite3.Connection, str, str], list[Reference]]
"""`(conn, namespace, name)` -> every use of the resource by an active deployment."""


class ResourceInUse(Exception):
    """Delete refused: active deployments use the resource."""

    def __init__(self, references: list[Reference]) -> None:
        super().__init__("referenced by " + ", ".join(sorted({r.deployment for r in references})))
        self.references = references

    @property
    def deployments(self) -> list[str]:
        """`<ns>/<name>` of each referencing deployment, once each, sorted."""
        return sorted({r.deployment for r in self.references})


class NamedResourceRepo(Generic[R]):
    """List, get and guarded delete over one table with `id`, `namespace` and `name` columns.

    Subclasses add create (and whatever else differs) and pass in how a row becomes
    the API shape, how uses are found, and which `ResourceInUse` to raise.
    """

    def __init__(
        self,
        db: Database,
        *,
        table: str,
        from_row: Callable[[sqlite3.Row], R],
        find_references: FindReferences,
        in_use: type[ResourceInUse],
    ) -> None:
        self.db = db
        self._table = table  # a constant of the subclass, never user input
        self._from_row = from_row
        self._find_references = find_references
        self._in_use = in_use

    async def references(self, namespace: str, name: str) -> list[Reference]:
        return await self.db.call(lambda conn: self._find_references(conn, namespace, name))

    async def list(self, namespaces: list[str] | None = None, names: list[str] | None = None) -> list[R]:
        """Every resource matching both filters (None = no filter), by namespace then name."""
        if (namespaces is not None and not namespaces) or (names is not None and not names):
            return []

        def run(conn: sqlite3.Connection) -> list[R]:
            clauses: list[str] = []
            args: list[str] = []
            for column, values in (("namespace", namespaces), ("name", names)):
                if values is not None:
                    clauses.append(f"{column} IN ({','.join('?' * len(values))})")
                    args.extend(values)
            where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
            rows = conn.execute(f"SELECT * FROM {self._table}{where} ORDER BY namespace, name", args)
            return [self._from_row(row) for row in rows]

        return await self.db.call(run)

    async def get(self, resource_id: str) -> R | None:
        def run(conn: sqlite3.Connection) -> R | None:
            row = self._row(conn, resource_id)
            return self._from_row(row) if row else None

        return await self.db.call(run)

    async def delete(self, resource_id: str, *, force: bool = False) -> R | None:
        """Delete unless used (checked in the same transaction). None when it does not exist.

        Raises the subclass's ResourceInUse when not forced and an active deployment uses it.
        """

        def run(conn: sqlite3.Connection) -> R | None:
            row = self._row(conn, resource_id)
            if row is None:
                return None
            if not force:
                found = self._find_references(conn, row["namespace"], row["name"])
                if found:
                    raise self._in_use(found)
            conn.execute(f"DELETE FROM {self._table} WHERE id=?", (resource_id,))
            return self._from_row(row)

        return await self.db.call(run)

    def _row(self, conn: sqlite3.Connection, resource_id: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = conn.execute(f"SELECT * FROM {self._table} WHERE id=?", (resource_id,)).fetchone()
        return row

    def _name_taken(self, conn: sqlite3.Connection, namespace: str, name: str, *, other_than: str = "") -> bool:
        """Whether another resource of `namespace` already has `name` (`other_than`: an id to ignore)."""
        return conn.execute(
            f"SELECT 1 FROM {self._table} WHERE namespace=? AND name=? AND id != ?", (namespace, name, other_than)
        ).fetchone() is not None
