"""One SQLite database in WAL mode, used from trio through a single worker thread.

SQLite allows one writer at a time; rather than a pool, every statement runs on a
dedicated connection behind a trio lock, off the event loop (`trio.to_thread`).
Migrations are numbered SQL files applied in order at open.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import TypeVar

import trio

T = TypeVar("T")


def utcnow() -> str:
    """RFC 3339 UTC with microseconds: the one timestamp format of ring-actors."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Database:
    """A SQLite file with migrations applied; `call()` runs a function on it off-loop."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._conn: sqlite3.Connection | None = None
        self._lock = trio.Lock()
        self._seq = 0

    @classmethod
    async def open(cls, path: str | Path) -> Database:
        db = cls(path)
        await trio.to_thread.run_sync(db._open_sync)
        return db

    def _open_sync(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=5000")
        self._conn = conn
        self._migrate(conn)
        self._seq = self._max_seq(conn)

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migration (version INTEGER PRIMARY KEY)")
        applied = {row[0] for row in conn.execute("SELECT version FROM schema_migration")}
        folder = resources.files("ring_actors.store") / "migrations"
        scripts = sorted(
            (entry for entry in folder.iterdir() if entry.name.endswith(".sql")),
            key=lambda entry: entry.name,
        )
        for script in scripts:
            version = int(script.name.split("_", 1)[0])
            if version in applied:
                continue
            conn.execute("BEGIN")
            try:
                for statement in script.read_text().split(";\n"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("INSERT INTO schema_migration (version) VALUES (?)", (version,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    @staticmethod
    def _max_seq(conn: sqlite3.Connection) -> int:
        highest = 0
        for table in ("deployment_event", "health_check", "audit_log"):
            value = conn.execute(f"SELECT COALESCE(MAX(seq), 0) FROM {table}").fetchone()[0]
            highest = max(highest, value)
        return highest

    def next_seq(self) -> int:
        """A process-wide increasing number that orders rows written in the same instant."""
        self._seq += 1
        return self._seq

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(connection)` in a worker thread, one at a time, in a transaction."""
        async with self._lock:
            return await trio.to_thread.run_sync(self._transaction, fn)

    def _transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        assert conn is not None, "database is closed"
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
