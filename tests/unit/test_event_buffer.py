"""Deployment events written behind (`EventRepo.add` -> `Database.defer`): order, read-your-writes, shutdown."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import trio

from ring_actors.bus import EventBus
from ring_actors.recorder import Recorder
from ring_actors.store.db import Database
from ring_actors.store.events import WRITE_BEHIND_HIGH_WATER, Event, EventRepo

DEPLOYMENT = "d-1"


def _count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM deployment_event").fetchone()[0]


def _committed(path: Path) -> list[str]:
    """Event messages as another connection sees them: only what is committed."""
    with sqlite3.connect(path) as other:
        return [row[0] for row in other.execute("SELECT message FROM deployment_event ORDER BY seq")]


async def test_add_does_not_wait_for_the_database() -> None:
    """Verify `add` only queues: no transaction runs until something reads or flushes."""
    db = await Database.open(":memory:")
    events = EventRepo(db)
    before = db.statistics().transactions
    for n in range(3):
        await events.add(Event.new(DEPLOYMENT, "info", "scale_up", f"event {n}"))
    stats = db.statistics()
    assert stats.transactions == before
    assert stats.deferred_pending == 3
    db.close()


async def test_reads_see_every_event_added_before_them_newest_first() -> None:
    """Verify read-your-writes through the repo and through any `Database.call`, in `seq` order."""
    db = await Database.open(":memory:")
    events = EventRepo(db)
    for n in range(5):
        await events.add(Event.new(DEPLOYMENT, "info", "scale_up", f"event {n}"))
    assert [e.message for e in await events.list(DEPLOYMENT)] == [f"event {n}" for n in reversed(range(5))]
    await events.add(Event.new(DEPLOYMENT, "error", "container_crashed", "event 5"))
    assert await db.call(_count) == 6, "a raw SQL read sees the event added just before it"
    assert [e.message for e in await events.list(DEPLOYMENT, level="error")] == ["event 5"]
    db.close()


async def test_a_call_sees_events_added_before_it_but_not_after() -> None:
    """Verify ordering between deferred writes and calls: a call runs after what was deferred before it."""
    db = await Database.open(":memory:")
    events = EventRepo(db)
    await events.add(Event.new(DEPLOYMENT, "info", "scale_up", "first"))
    seen_by_call = await db.call(_count)
    await events.add(Event.new(DEPLOYMENT, "info", "scale_up", "second"))
    assert seen_by_call == 1
    assert [e.message for e in await events.list(DEPLOYMENT)] == ["second", "first"]
    db.close()


async def test_a_delete_after_add_removes_the_buffered_events() -> None:
    """Verify a purge (DELETE) issued after `add` sees the buffered events: nothing reappears after it."""
    db = await Database.open(":memory:")
    events = EventRepo(db)
    await events.add(Event.new(DEPLOYMENT, "info", "cleanup_scheduled", "purged next"))
    await db.call(lambda conn: conn.execute("DELETE FROM deployment_event WHERE deployment_id=?", (DEPLOYMENT,)))
    await db.flush()
    assert await events.list(DEPLOYMENT) == []
    db.close()


async def test_close_commits_what_is_still_buffered(tmp_path: Path) -> None:
    """Verify `close()` commits buffered events: a graceful shutdown loses none."""
    path = tmp_path / "ring.db"
    db = await Database.open(path)
    events = EventRepo(db)
    for n in range(4):
        await events.add(Event.new(DEPLOYMENT, "info", "scale_up", f"event {n}"))
    assert _committed(path) == []
    db.close()
    assert _committed(path) == [f"event {n}" for n in range(4)]
    reopened = await Database.open(path)
    assert len(await EventRepo(reopened).list(DEPLOYMENT)) == 4
    reopened.close()


async def test_the_writer_commits_on_its_own_and_flushes_when_cancelled(tmp_path: Path) -> None:
    """Verify `serve_write_behind` commits without any other call, and commits the rest when cancelled."""
    path = tmp_path / "ring.db"
    db = await Database.open(path)
    events = EventRepo(db)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(db.serve_write_behind)
            await events.add(Event.new(DEPLOYMENT, "info", "scale_up", "one"))
            while _committed(path) != ["one"]:
                await trio.sleep(0.001)  # nothing to await: the writer works behind the caller's back
            # Cancel in the same step as the add: the delay never elapses, the final flush commits it.
            await events.add(Event.new(DEPLOYMENT, "info", "scale_up", "two"))
            nursery.cancel_scope.cancel(reason="test shutdown")
    assert db.statistics().deferred_pending == 0
    assert _committed(path) == ["one", "two"]
    db.close()


async def test_the_buffer_is_bounded() -> None:
    """Verify `add` waits for a commit once the buffer holds WRITE_BEHIND_HIGH_WATER events."""
    db = await Database.open(":memory:")
    events = EventRepo(db)
    for n in range(WRITE_BEHIND_HIGH_WATER + 10):
        await events.add(Event.new(DEPLOYMENT, "info", "scale_up", f"event {n}"))
        assert db.statistics().deferred_pending < WRITE_BEHIND_HIGH_WATER
    assert await db.call(_count) == WRITE_BEHIND_HIGH_WATER + 10
    db.close()


async def test_recorder_publishes_events_a_subscriber_can_read_back() -> None:
    """Verify an SSE-style reader that hears an event on the bus finds it stored (backlog reads flush)."""
    db = await Database.open(":memory:")
    bus = EventBus()
    events = EventRepo(db)
    recorder = Recorder(events, bus)
    async with bus.subscribe(lambda m: m.kind == "event") as subscription:
        recorded = await recorder.event(DEPLOYMENT, "default", "info", "scale_up", "Scaled up from 0 to 1 replicas")
        with trio.fail_after(5):
            async for message in subscription:
                assert message.payload["id"] == recorded.id
                break
        assert [e.id for e in await events.list(DEPLOYMENT)] == [recorded.id]
    db.close()
