"""`Database.call` batching: concurrent calls share a thread hop, each stays atomic and ordered."""

from __future__ import annotations

import sqlite3
import threading

import pytest
import trio

from ring_actors.store.db import Database


def _setup(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")


def _values(conn: sqlite3.Connection) -> list[int]:
    return [row[0] for row in conn.execute("SELECT k FROM t ORDER BY k")]


async def _database() -> Database:
    db = await Database.open(":memory:")
    await db.call(_setup)
    return db


async def test_concurrent_calls_share_transactions_and_keep_their_results() -> None:
    """Verify 50 concurrent calls take far fewer worker-thread transactions, each getting its own result."""
    db = await _database()
    before = db.statistics()
    results: dict[int, int] = {}

    async def insert(k: int) -> None:
        def run(conn: sqlite3.Connection) -> int:
            conn.execute("INSERT INTO t (k) VALUES (?)", (k,))
            return k * 10

        results[k] = await db.call(run)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            for k in range(50):
                nursery.start_soon(insert, k)
    after = db.statistics()
    assert results == {k: k * 10 for k in range(50)}
    assert await db.call(_values) == list(range(50))
    assert after.calls - before.calls == 50
    assert after.transactions - before.transactions < 10, "calls queued together run on one hop"
    db.close()


async def test_a_failing_call_rolls_back_only_itself() -> None:
    """Verify an exception undoes that call's statements and reaches its caller; its batch-mates commit."""
    db = await _database()
    await db.call(lambda conn: conn.execute("INSERT INTO t (k) VALUES (1)"))
    failures: list[Exception] = []

    def good(k: int):
        return lambda conn: conn.execute("INSERT INTO t (k) VALUES (?)", (k,))

    def bad(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t (k) VALUES (100)")
        conn.execute("INSERT INTO t (k) VALUES (1)")  # duplicate key: the call fails

    async def attempt(fn) -> None:
        try:
            await db.call(fn)
        except sqlite3.IntegrityError as exc:
            failures.append(exc)

    release = threading.Event()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(db.call, lambda conn: release.wait(5))  # the three below queue up behind it
            await trio.testing.wait_all_tasks_blocked()
            for fn in (good(2), bad, good(3)):
                nursery.start_soon(attempt, fn)
            await trio.testing.wait_all_tasks_blocked()
            before = db.statistics().transactions
            release.set()
    assert len(failures) == 1
    assert db.statistics().transactions == before + 2, "the three queued calls shared one transaction"
    assert await db.call(_values) == [1, 2, 3], "the failed call's first insert (100) was rolled back"
    db.close()


async def test_each_caller_reads_its_own_write() -> None:
    """Verify a read made after a write sees it, whichever batch each lands in."""
    db = await _database()
    missing: list[int] = []

    async def write_then_read(k: int) -> None:
        await db.call(lambda conn: conn.execute("INSERT INTO t (k) VALUES (?)", (k,)))
        if k not in await db.call(_values):
            missing.append(k)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            for k in range(20):
                nursery.start_soon(write_then_read, k)
    assert missing == []
    assert await db.call(_values) == list(range(20))
    db.close()


async def test_a_cancelled_leader_still_runs_its_batch() -> None:
    """Verify a call cancelled as it starts a batch leaves the other queued work (and deferred writes) done."""
    db = await _database()
    db.defer(lambda conn: conn.execute("INSERT INTO t (k) VALUES (7)"))
    with trio.CancelScope() as scope:
        scope.cancel(reason="test")
        await db.call(lambda conn: conn.execute("INSERT INTO t (k) VALUES (8)"))
    assert await db.call(_values) == [7, 8], "once its batch is taken, a call completes"
    db.close()


async def test_a_call_cancelled_before_its_batch_never_runs() -> None:
    """Verify cancelling a queued call drops it, and the calls behind it still run."""
    db = await _database()
    release = threading.Event()

    def blocker(conn: sqlite3.Connection) -> None:
        release.wait(5)  # holds the worker thread so the next calls queue up
        conn.execute("INSERT INTO t (k) VALUES (1)")

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(db.call, blocker)
            await trio.testing.wait_all_tasks_blocked()
            with trio.CancelScope() as doomed:
                doomed.cancel(reason="test")
                await db.call(lambda conn: conn.execute("INSERT INTO t (k) VALUES (2)"))
            nursery.start_soon(db.call, lambda conn: conn.execute("INSERT INTO t (k) VALUES (3)"))
            await trio.testing.wait_all_tasks_blocked()
            release.set()
    assert await db.call(_values) == [1, 3]
    db.close()


async def test_calls_on_a_closed_database_fail() -> None:
    """Verify a call after close() raises instead of hanging."""
    db = await _database()
    db.close()
    with trio.fail_after(5), pytest.raises(sqlite3.ProgrammingError):
        await db.call(_values)
