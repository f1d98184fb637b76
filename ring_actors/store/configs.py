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
from ring_actors.store.named_resources import NamedResourceRepo, ResourceInUse
from ring_actors.store.references import config_references

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


class ConfigInUse(ResourceInUse):
    """Delete refused: active deployments mount the config (Ring has no such check, api.md §16)."""


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


class ConfigRepo(NamedResourceRepo[Config]):
    """The `config` table: list, get and guarded delete come from NamedResourceRepo."""

    def __init__(self, db: Database) -> None:
        super().__init__(db, table="config", from_row=_config, find_references=config_references, in_use=ConfigInUse)

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
            if self._name_taken(conn, namespace, name):
                raise ConfigExists(namespace, name)
            conn.execute(
                "INSERT INTO config (id, namespace, name, data, labels, created_at, updated_at)"
                " VALUES (?,?,?,?,?,?,NULL)",
                (config.id, namespace, name, data, labels, config.created_at),
            )
            return config

        return await self.db.call(run)

    async def update(self, config_id: str, name: str, data: str, labels: str = "") -> Config | None:
        """Replace name, data and labels (the namespace never changes). None when it does not exist.

        Raises ConfigExists when renaming onto another config of the namespace.
        """
        now = utcnow()

        def run(conn: sqlite3.Connection) -> Config | None:
            row = self._row(conn, config_id)
            if row is None:
                return None
            if self._name_taken(conn, row["namespace"], name, other_than=config_id):
                raise ConfigExists(row["namespace"], name)
            conn.execute(
                "UPDATE config SET name=?, data=?, labels=?, updated_at=? WHERE id=?",
                (name, data, labels, now, config_id),
            )
            return _config(conn.execute("SELECT * FROM config WHERE id=?", (config_id,)).fetchone())

        return await self.db.call(run)

    async def value(self, namespace: str, name: str, key: str) -> bytes | None:
        """Entry `key` of config `name`, or None when the config or the key is missing."""

        def run(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT data FROM config WHERE namespace=? AND name=?", (namespace, name)).fetchone()
            return row["data"] if row else None

        data = await self.db.call(run)
        return None if data is None else config_entry(data, key)
