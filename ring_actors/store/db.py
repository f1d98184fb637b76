"""One SQLite database in WAL mode, used from trio through a single worker thread.

SQLite allows one writer at a time; rather than a pool, every statement runs on a
dedicated connection, one batch at a time, off the event loop (`trio.to_thread`).
Migrations are numbered SQL files applied in order at open.

Two ways to write, both ordered and both seen by every later `call()`:

- `call(fn)`: run `fn(connection)` atomically and get its result. Calls that
  queue up while the worker thread is busy are run together on the next hop
  (group commit), each under its own savepoint: one thread hop per batch instead
  of one per statement, which is what thousands of actors starting at once need.
- `defer(write)`: write-behind for records nobody waits for (deployment events).
  Deferred writes ride along with the next `call()` (before it, so reads see
  them: read-your-writes) or are committed by `serve_write_behind()` within a few
  milliseconds, and `close()` commits whatever is left.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Generic, TypeVar

import outcome
import trio

__all__ = ["WRITE_BEHIND_DELAY", "Database", "DatabaseStatistics", "utcnow"]

T = TypeVar("T")
Write = Callable[[sqlite3.Connection], object]

log = logging.getLogger(__name__)

WRITE_BEHIND_DELAY = 0.005
"""How long `serve_write_behind` lets deferred writes gather before committing them."""
SHUTDOWN_FLUSH_TIMEOUT = 5.0


def utcnow() -> str:
    """RFC 3339 UTC with microseconds: the one timestamp format of ring-actors."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class DatabaseStatistics:
    """Counters since open (the scale benchmark reports them)."""

    calls: int = 0
    """`call()`s made (flushes included)."""
    deferred: int = 0
    """Writes handed to `defer()`."""
    transactions: int = 0
    """Worker-thread hops, each one transaction."""
    busy_seconds: float = 0.0
    """Time spent inside those transactions."""
    deferred_pending: int = 0
    """Deferred writes not committed yet."""


class _Job(Generic[T]):
    """One `call()`: its function, its outcome once run, and how to wake its caller."""

    __slots__ = ("fn", "result", "wake")

    def __init__(self, fn: Callable[[sqlite3.Connection], T]) -> None:
        self.fn = fn
        self.result: outcome.Outcome[T] | None = None
        self.wake = trio.Event()


class Database:
    """A SQLite file with migrations applied; `call()` runs a function on it off-loop."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._conn: sqlite3.Connection | None = None
        self._busy = False  # a batch is on the worker thread
        self._seq = 0
        self._queue: list[_Job] = []
        self._deferred: list[Write] = []
        self._deferred_arrived = trio.Event()
        self._stats = DatabaseStatistics()

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

    def statistics(self) -> DatabaseStatistics:
        """A copy of the counters (calls, deferred writes, worker-thread transactions)."""
        return DatabaseStatistics(
            calls=self._stats.calls,
            deferred=self._stats.deferred,
            transactions=self._stats.transactions,
            busy_seconds=self._stats.busy_seconds,
            deferred_pending=len(self._deferred),
        )

    # ------------------------------------------------------------------ writing and reading

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(connection)` in a worker thread, atomically, after every deferred write.

        Calls that arrive while the worker thread is busy are run together on its
        next hop, each in its own savepoint: an exception rolls back only that call's
        statements and is raised to its caller. Cancelled before its batch was taken,
        a call never runs; cancelled after, it still completes and its result is dropped.
        """
        job: _Job[T] = _Job(fn)
        self._stats.calls += 1
        self._queue.append(job)
        try:
            while job.result is None:
                if self._busy:
                    job.wake = trio.Event()
                    await job.wake.wait()
                else:
                    await self._run_queued()
        except trio.Cancelled:
            if job.result is None and job in self._queue:
                self._queue.remove(job)
                self._hand_over()  # it may have been woken to run the next batch
            raise
        return job.result.unwrap()

    def defer(self, write: Write) -> None:
        """Queue a write nobody waits for; it is committed before the next `call()` runs.

        Without `serve_write_behind` running, deferred writes wait for the next
        `call()`, `flush()` or `close()`. Errors are logged, not raised: nobody waits.
        """
        self._deferred.append(write)
        self._stats.deferred += 1
        self._deferred_arrived.set()

    @property
    def deferred_pending(self) -> int:
        """Deferred writes not committed yet (callers use it for backpressure)."""
        return len(self._deferred)

    async def flush(self) -> None:
        """Return once every write deferred before this call is committed."""
        await self.call(_nothing)

    async def serve_write_behind(
        self,
        *,
        delay: float = WRITE_BEHIND_DELAY,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Commit deferred writes within `delay` of their arrival, until cancelled.

        Started by the server in its root nursery, before the supervisor. On
        cancellation it commits what is pending (shielded, bounded), so a graceful
        shutdown loses nothing; `close()` catches anything deferred after that.
        """
        task_status.started()
        try:
            while True:
                await self._deferred_arrived.wait()
                await trio.sleep(delay)  # let a burst gather into one transaction
                self._deferred_arrived = trio.Event()
                if self._deferred:
                    try:
                        await self.flush()
                    except Exception:  # the batch's writes are logged as lost; keep serving
                        log.exception("committing deferred writes failed")
        finally:
            if self._deferred and self._conn is not None:
                with trio.move_on_after(SHUTDOWN_FLUSH_TIMEOUT, shield=True):
                    await self.flush()

    async def _run_queued(self) -> None:
        """Run everything queued on one thread hop, then wake its callers and the next batch."""
        self._busy = True
        batch, self._queue = self._queue, []
        deferred, self._deferred = self._deferred, []
        try:
            # Taken is taken: a cancelled leader must not drop its batch-mates' work.
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self._run_batch, deferred, batch)
        finally:
            self._busy = False
            for job in batch:
                if job.result is None:  # only if the worker thread itself blew up
                    job.result = outcome.Error(RuntimeError("database batch aborted"))
                job.wake.set()
            self._hand_over()

    def _hand_over(self) -> None:
        """Wake the oldest waiting call to run the next batch (all of them wait otherwise)."""
        if not self._busy and self._queue:
            self._queue[0].wake.set()

    def _run_batch(self, deferred: list[Write], batch: list[_Job]) -> None:
        """One transaction: the deferred writes in order, then each call under a savepoint."""
        conn = self._conn
        if conn is None:
            for job in batch:
                job.result = outcome.Error(sqlite3.ProgrammingError("database is closed"))
            if deferred:
                log.error("database closed: %d deferred writes lost", len(deferred))
            return
        began = time.perf_counter()
        try:
            conn.execute("BEGIN IMMEDIATE")
            for write in deferred:
                done = self._in_savepoint(conn, write)
                if isinstance(done, outcome.Error):
                    log.error("deferred write failed: %r", done.error)
            for job in batch:
                job.result = self._in_savepoint(conn, job.fn)
            conn.execute("COMMIT")
        except BaseException as exc:
            # The transaction itself failed (I/O error, disk full, busy): nothing of it stands.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for job in batch:
                job.result = outcome.Error(exc)
            if deferred:
                log.error("database transaction failed (%r): %d deferred writes lost", exc, len(deferred))
            if not isinstance(exc, Exception):
                raise
        finally:
            self._stats.transactions += 1
            self._stats.busy_seconds += time.perf_counter() - began

    @staticmethod
    def _in_savepoint(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> outcome.Outcome[T]:
        """Run `fn` so that its failure undoes only its own statements."""
        conn.execute("SAVEPOINT call")
        try:
            result: outcome.Outcome[T] = outcome.Value(fn(conn))
        except Exception as exc:
            if not conn.in_transaction:
                raise  # SQLite rolled the whole transaction back: the batch fails
            conn.execute("ROLLBACK TO call")
            result = outcome.Error(exc)
        conn.execute("RELEASE call")
        return result

    def close(self) -> None:
        """Commit what is still deferred (on the calling thread: shutdown only), then close."""
        if self._conn is not None:
            if self._deferred:
                deferred, self._deferred = self._deferred, []
                self._run_batch(deferred, [])
            self._conn.close()
            self._conn = None


def _nothing(conn: sqlite3.Connection) -> None:
    return None
