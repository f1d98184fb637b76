"""Configs (resources.md §3): named JSON objects whose entries are mounted as files.

`data` is kept as the string the client sent (a JSON object serialised as text);
`value()` picks one entry for a `type: config` volume: a string entry is its
UTF-8 text, any other JSON value is its JSON text.
"""

from __future__ import annotations

import json
import sqlite3
import uuid

import msgspec

from ring_actors.store.db import Database, utcnow
from ring_actors.store.references import Reference, config_references

__all__ = ["Config", "ConfigExists", "ConfigInUse", "ConfigRepo", "config_entry"]


class Config(msgspec.Struct, kw_only=True):
    """A config as the API shows it (api.md §9); `labels` is `""` when unset."""

    id: str
    created_at: str
    updated_at: str | None
    namespace: str
    name: str
    data: str
    labels: str


class ConfigExists(Exception):
    def __init__(self, namespace: str, name: str) -> None:
        super().__init__(f"configuration '{name}' already exists in namespace '{namespace}'")


class ConfigInUse(Exception):
    """Delete refused: active deployments mount the config."""

    def __init__(self, references: list[Reference]) -> None:
        super().__init__("referenced by " + ", ".join(sorted({r.deployment for r in references})))
        self.references = references

    @property
    def deployments(self) -> list[str]:
        return sorted({r.deployment for r in self.references})


def config_entry(data: str, key: str) -> bytes | None:
    """The payload of entry `key` of a config's `data`, or None when absent (or `data` is no object)."""
    try:
        parsed = json.loads(data) if data else {}
    except ValueError:
        return None
    if not isinstance(parsed, dict) or key not in parsed:
        return None
    value = parsed[key]
    return (value if isinstance(value, str) else json.dumps(value)).encode()


def _config(row: sqlite3.Row) -> Config:
    return Config(
        id=row["id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        namespace=row["namespace"],
        name=row["name"],
        data=row["data"],
        labels=row["labels"] or "",
    )


class ConfigRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, namespace: str, name: str, data: str, labels: str = "") -> Config:
        """Insert. The namespace need not exist (as Ring). Raises ConfigExists."""
        config = Config(
            id=str(uuid.uuid4()),
            created_at=utcnow(),
            updated_at=None,
            namespace=namespace,
            name=name,
            data=data,
            labels=labels,
        )

        def run(conn: sqlite3.Connection) -> Config:
            if conn.execute("SELECT 1 FROM config WHERE namespace=? AND name=?", (namespace, name)).fetchone():
                raise ConfigExists(namespace, name)
            conn.execute(
                "INSERT INTO config (id, namespace, name, data, labels, created_at, updated_at)"
                " VALUES (?,?,?,?,?,?,NULL)",
                (config.id, namespace, name, data, labels, config.created_at),
            )
            return config

        return await self.db.call(run)

    async def references(self, namespace: str, name: str) -> list[Reference]:
        return await self.db.call(lambda conn: config_references(conn, namespace, name))

    async def list(self, namespaces: list[str] | None = None, names: list[str] | None = None) -> list[Config]:
        """Every config matching both filters (None = no filter), by namespace then name."""
        if (namespaces is not None and not namespaces) or (names is not None and not names):
            return []

        def run(conn: sqlite3.Connection) -> list[Config]:
            clauses: list[str] = []
            args: list[str] = []
            for column, values in (("namespace", namespaces), ("name", names)):
                if values is not None:
                    clauses.append(f"{column} IN ({','.join('?' * len(values))})")
                    args.extend(values)
            where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
            return [_config(r) for r in conn.execute(f"SELECT * FROM config{where} ORDER BY namespace, name", args)]

        return await self.db.call(run)

    async def get(self, config_id: str) -> Config | None:
        def run(conn: sqlite3.Connection) -> Config | None:
            row = conn.execute("SELECT * FROM config WHERE id=?", (config_id,)).fetchone()
            return _config(row) if row else None

        return await self.db.call(run)

    async def update(self, config_id: str, name: str, data: str, labels: str = "") -> Config | None:
        """Replace name, data and labels (the namespace never changes). None when it does not exist.

        Raises ConfigExists when renaming onto another config of the namespace.
        """
        now = utcnow()

        def run(conn: sqlite3.Connection) -> Config | None:
            row = conn.execute("SELECT * FROM config WHERE id=?", (config_id,)).fetchone()
            if row is None:
                return None
            clash = conn.execute(
                "SELECT 1 FROM config WHERE namespace=? AND name=? AND id != ?", (row["namespace"], name, config_id)
            ).fetchone()
            if clash:
                raise ConfigExists(row["namespace"], name)
            conn.execute(
                "UPDATE config SET name=?, data=?, labels=?, updated_at=? WHERE id=?",
                (name, data, labels, now, config_id),
            )
            return _config(conn.execute("SELECT * FROM config WHERE id=?", (config_id,)).fetchone())

        return await self.db.call(run)

    async def delete(self, config_id: str, *, force: bool = False) -> Config | None:
        """Delete unless mounted by an active deployment. None when it does not exist.

        Raises ConfigInUse (not forced and referenced). Ring has no check here (api.md §16).
        """

        def run(conn: sqlite3.Connection) -> Config | None:
            row = conn.execute("SELECT * FROM config WHERE id=?", (config_id,)).fetchone()
            if row is None:
                return None
            if not force:
                found = config_references(conn, row["namespace"], row["name"])
                if found:
                    raise ConfigInUse(found)
            conn.execute("DELETE FROM config WHERE id=?", (config_id,))
            return _config(row)

        return await self.db.call(run)

    async def value(self, namespace: str, name: str, key: str) -> bytes | None:
        """Entry `key` of config `name`, or None when the config or the key is missing."""

        def run(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT data FROM config WHERE namespace=? AND name=?", (namespace, name)).fetchone()
            return row["data"] if row else None

        data = await self.db.call(run)
        return None if data is None else config_entry(data, key)
