"""The in-memory rows of `DeploymentRepo`: write-through, filters, copies, and the cases that drop it."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import pytest
import trio
from msgspec import UNSET
from trio.testing import wait_all_tasks_blocked

from ring_actors.schemas.manifest import Deployment
from ring_actors.store.db import Database
from ring_actors.store.deployments import DeploymentFilter, DeploymentRepo, update_state

TIMEOUT = 10


def _deployment(name: str, **fields: Any) -> Deployment:
    fields.setdefault("namespace", "ns")
    fields.setdefault("created_at", f"2026-01-01T00:00:0{len(name) % 10}.000000Z")
    return Deployment(name=name, runtime="simulated", image="busybox", id=f"id-{name}", **fields)


class CallCounter:
    """Counts `Database.call`s: a read answered from memory makes none."""

    def __init__(self, db: Database) -> None:
        self.calls = 0
        real = db.call

        async def counted(fn: Callable[[sqlite3.Connection], Any]) -> Any:
            self.calls += 1
            return await real(fn)

        db.call = counted  # type: ignore[method-assign]


async def _stored(db: Database, deployment_id: str) -> sqlite3.Row | None:
    return await db.call(lambda conn: conn.execute("SELECT * FROM deployment WHERE id=?", (deployment_id,)).fetchone())


@pytest.fixture
async def db() -> Database:
    return await Database.open(":memory:")


async def test_writes_are_visible_to_the_next_read_without_sql(db: Database) -> None:
    """Verify insert, save, set_status and update_state show in the next list/get, answered from memory."""
    with trio.fail_after(TIMEOUT):
        repo = DeploymentRepo(db)
        assert await repo.list() == []  # loads the (empty) table once
        counter = CallCounter(db)
        web = _deployment("web")
        await repo.insert(web)
        assert [d.id for d in await repo.list()] == ["id-web"]
        web.restart_count = 3
        web.labels = {"tier": "front"}
        assert await repo.save(web)
        await repo.set_status(web.id, "running")
        got = await repo.get(web.id)
        assert (got.status, got.restart_count, got.labels) == ("running", 3, {"tier": "front"})
        got.status = "crash_loop_back_off"
        got.image_digest = "sha256:abc"
        assert await update_state(repo, got)
        again = await repo.get(web.id)
        assert (again.status, again.image_digest) == ("crash_loop_back_off", "sha256:abc")
        assert counter.calls == 4  # the four writes: no read went to SQLite
        row = await _stored(db, web.id)
        assert (row["status"], row["restart_count"]) == ("crash_loop_back_off", 3)


async def test_purge_removes_the_row(db: Database) -> None:
    """Verify a purged row is gone from list and get, and writes to it report False."""
    with trio.fail_after(TIMEOUT):
        repo = DeploymentRepo(db)
        web, api = _deployment("web"), _deployment("api")
        await repo.insert(web)
        await repo.insert(api)
        await repo.purge(web.id)
        assert [d.id for d in await repo.list()] == [api.id]
        assert await repo.get(web.id) is None
        assert await repo.set_status(web.id, "deleted") is False
        assert await repo.save(web) is False
        assert await repo.get(web.id) is None


async def test_rows_written_before_the_repo_existed_are_loaded(db: Database) -> None:
    """Verify a new repo on an existing database loads every row, columns overriding the body."""
    with trio.fail_after(TIMEOUT):
        first = DeploymentRepo(db)
        web = _deployment("web", parent_id="id-old")
        await first.insert(web)
        await first.set_status(web.id, "running")
        second = DeploymentRepo(db)
        [loaded] = await second.list()
        assert (loaded.status, loaded.parent_id, loaded.instances) == ("running", "id-old", [])


async def test_filters_and_order_match_the_sql_they_replace(db: Database) -> None:
    """Verify every selector (empty lists match nothing) and the order by created_at, then id."""
    with trio.fail_after(TIMEOUT):
        repo = DeploymentRepo(db)
        same = "2026-01-01T00:00:01.000000Z"
        rows = [
            _deployment("b", created_at=same, labels={"app": "x", "tier": "web"}),
            _deployment("a", created_at=same, labels={"app": "y"}),
            _deployment("c", created_at="2026-01-01T00:00:00.000000Z", namespace="other", kind="job"),
            _deployment("d", created_at="2026-01-01T00:00:02.000000Z", status="running", labels={"tier": "db"}),
        ]
        for row in rows:
            await repo.insert(row)

        async def ids(**selector: Any) -> list[str]:
            return [d.id for d in await repo.list(DeploymentFilter(**selector))]

        assert [d.id for d in await repo.list()] == ["id-c", "id-a", "id-b", "id-d"]
        assert await ids(namespaces=["ns"]) == ["id-a", "id-b", "id-d"]
        assert await ids(namespaces=[]) == []
        assert await ids(statuses=["running", "failed"]) == ["id-d"]
        assert await ids(kinds=["job"]) == ["id-c"]
        assert await ids(ids=["id-b", "id-c", "id-zz"]) == ["id-c", "id-b"]
        assert await ids(labels=[("tier", None)]) == ["id-b", "id-d"]
        assert await ids(labels=[("tier", "web"), ("app", "x")]) == ["id-b"]
        assert await ids(labels=[("tier", "web"), ("app", "y")]) == []
        assert await ids(namespaces=["ns"], statuses=["creating"], labels=[("app", None)]) == ["id-a", "id-b"]
        await repo.set_status("id-a", "running")
        assert await ids(statuses=["running"]) == ["id-a", "id-d"]
        await repo.purge("id-c")
        assert [d.id for d in await repo.list()] == ["id-a", "id-b", "id-d"]


async def test_returned_objects_are_copies(db: Database) -> None:
    """Verify mutating what insert took, or what get/list returned, never changes the cached row."""
    with trio.fail_after(TIMEOUT):
        repo = DeploymentRepo(db)
        web = _deployment("web", labels={"app": "web"})
        await repo.insert(web)
        web.labels["app"] = "changed-after-insert"
        web.status = "changed-after-insert"
        got = await repo.get(web.id)
        got.status = "running"
        got.labels["app"] = "mutated"
        got.config.password = "secret"
        got.command.append("extra")
        [listed] = await repo.list()
        listed.replicas = 9
        fresh = await repo.get(web.id)
        assert (fresh.status, fresh.labels, fresh.command, fresh.replicas) == ("creating", {"app": "web"}, [], 1)
        assert fresh.config.password is UNSET
        assert [d.id for d in await repo.list(DeploymentFilter(labels=[("app", "web")]))] == [web.id]


async def test_snapshot_version_changes_with_every_write(db: Database) -> None:
    """Verify the row version readers key their caches on moves with each write, and only then."""
    with trio.fail_after(TIMEOUT):
        repo = DeploymentRepo(db)
        web = _deployment("web")
        await repo.insert(web)
        seen = [(await repo.snapshot(web.id)).version]
        seen.append((await repo.snapshot(web.id)).version)
        assert seen[0] == seen[1]
        await repo.set_status(web.id, "running")
        seen.append((await repo.snapshot(web.id)).version)
        await repo.save(web)
        seen.append((await repo.snapshot(web.id)).version)
        assert len(set(seen)) == 3


async def test_a_read_sees_a_write_issued_before_it_before_it_commits(db: Database) -> None:
    """Verify a read after a write was issued shows it at once, as a read queued behind it in SQLite did."""
    with trio.fail_after(TIMEOUT):
        repo = DeploymentRepo(db)
        web = _deployment("web")
        await repo.insert(web)
        await repo.list()  # loaded: from now on reads never wait for SQLite
        gate = trio.Event()
        real = db.call

        async def held(fn: Callable[[sqlite3.Connection], Any]) -> Any:
            await gate.wait()
            return await real(fn)

        db.call = held  # type: ignore[method-assign]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(repo.set_status, web.id, "deleted")
            await wait_all_tasks_blocked()
            assert (await repo.get(web.id)).status == "deleted"
            gate.set()
        db.call = real  # type: ignore[method-assign]
        assert (await _stored(db, web.id))["status"] == "deleted"


async def test_guarded_writes_are_predicted_as_sqlite_decides(db: Database) -> None:
    """Verify update_state never resurrects a deleted row and set_status honours only_if_not, in memory too."""
    with trio.fail_after(TIMEOUT):
        repo = DeploymentRepo(db)
        web = _deployment("web")
        await repo.insert(web)
        assert await repo.set_status(web.id, "deleted")
        stale = await repo.get(web.id)
        stale.status = "running"
        assert await update_state(repo, stale) is False
        assert await repo.set_status(web.id, "failed", only_if_not=["deleted"]) is False
        counter = CallCounter(db)
        assert (await repo.get(web.id)).status == "deleted"
        assert counter.calls == 0  # still cached: the predictions matched SQLite


async def test_a_failed_write_drops_the_cache(db: Database) -> None:
    """Verify a write SQLite refuses (duplicate id) leaves no trace: the next read reloads the table."""
    with trio.fail_after(TIMEOUT):
        repo = DeploymentRepo(db)
        await repo.insert(_deployment("web"))
        await repo.list()
        with pytest.raises(sqlite3.IntegrityError):
            await repo.insert(_deployment("web", namespace="elsewhere"))
        counter = CallCounter(db)
        [row] = await repo.list()
        assert row.namespace == "ns"
        assert counter.calls == 1  # reloaded


async def test_a_cancelled_write_drops_the_cache(db: Database) -> None:
    """Verify a write cancelled before it ran does not stay in memory."""
    with trio.fail_after(TIMEOUT):
        repo = DeploymentRepo(db)
        web = _deployment("web")
        await repo.insert(web)
        await repo.list()
        real = db.call

        async def never(fn: Callable[[sqlite3.Connection], Any]) -> Any:
            await trio.sleep_forever()

        db.call = never  # type: ignore[method-assign]
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(repo.set_status, web.id, "deleted")
                await wait_all_tasks_blocked()
                scope.cancel()
        db.call = real  # type: ignore[method-assign]
        assert (await repo.get(web.id)).status == "creating"


async def test_a_write_made_behind_the_repo_is_caught_at_the_next_write(db: Database) -> None:
    """Verify a row changed by other SQL is noticed when the repo's next write reads it back."""
    with trio.fail_after(TIMEOUT):
        repo = DeploymentRepo(db)
        web = _deployment("web")
        await repo.insert(web)
        await repo.list()
        await db.call(lambda conn: conn.execute("UPDATE deployment SET restart_count=9 WHERE id=?", (web.id,)))
        assert (await repo.get(web.id)).restart_count == 0  # not seen: the repo is the only writer by contract
        await repo.set_status(web.id, "running")
        got = await repo.get(web.id)
        assert (got.status, got.restart_count) == ("running", 9)


async def test_writes_issued_while_the_table_loads_are_applied_on_top(db: Database) -> None:
    """Verify a write issued while the first load is on its way is in the installed cache."""
    with trio.fail_after(TIMEOUT):
        await DeploymentRepo(db).insert(_deployment("old"))
        repo = DeploymentRepo(db)
        loaded: list[list[str]] = []

        async def reader() -> None:
            loaded.append([d.id for d in await repo.list()])

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await wait_all_tasks_blocked()  # the reader waits on its load
            await repo.insert(_deployment("new"))
        counter = CallCounter(db)
        assert sorted(d.id for d in await repo.list()) == ["id-new", "id-old"]
        assert counter.calls == 0
        assert loaded[0] in (["id-old"], ["id-new", "id-old"])  # either: the insert raced the read


async def test_concurrent_writes_end_as_sqlite_has_them(db: Database) -> None:
    """Verify many writers at once (batched in one transaction, resumed in any order) leave the stored rows."""
    with trio.fail_after(TIMEOUT):
        repo = DeploymentRepo(db)
        rows = [_deployment(f"web-{i}") for i in range(5)]
        for row in rows:
            await repo.insert(row)

        async def bump(row: Deployment, count: int) -> None:
            copy = await repo.get(row.id)
            copy.restart_count = count
            copy.status = f"s{count}"
            await update_state(repo, copy)

        async with trio.open_nursery() as nursery:
            for count in range(40):
                nursery.start_soon(bump, rows[count % 5], count)
            nursery.start_soon(repo.set_status, rows[0].id, "deleted")
        stored = await db.call(lambda conn: conn.execute("SELECT id, status, restart_count FROM deployment").fetchall())
        counter = CallCounter(db)
        cached = {d.id: (d.status, d.restart_count) for d in await repo.list()}
        assert cached == {row["id"]: (row["status"], row["restart_count"]) for row in stored}
        assert counter.calls == 0
