"""What observers of status changes can rely on, and crash counting across a server restart.

SIMULATED runtime (no engine involved).
"""

from __future__ import annotations

import trio

from ring_actors.runtimes.errors import FailureKind, RuntimeFailure
from ring_actors.runtimes.simulated import SimulatedRuntime
from ring_actors.store.db import Database
from ring_actors.store.deployments import DeploymentRepo
from ring_actors.store.events import Event, EventRepo

from .actor_harness import running_tree


async def test_a_status_change_is_announced_only_once_the_row_holds_it() -> None:
    """Whoever hears `to: X` on the bus and reads the row at once finds X (and its restart_count)."""
    runtime = SimulatedRuntime()
    runtime.fail_next = [RuntimeFailure(FailureKind.NETWORK_CREATION_FAILED, "boom") for _ in range(2)]
    async with running_tree(runtime) as tree:
        original_add = tree.events.add

        async def add_then_yield(event: Event) -> None:
            # As when the write-behind buffer is full and `add` waits for a commit: other
            # tasks run between recording an event and the next write.
            await original_add(event)
            for _ in range(5):
                await trio.sleep(0)

        tree.events.add = add_then_yield  # type: ignore[method-assign]
        seen: list[tuple[str, str, int]] = []
        async with tree.bus.subscribe(lambda m: m.kind == "status") as sub:
            deployment = await tree.apply()
            with trio.fail_after(5):
                async for message in sub:
                    row = await tree.repo.get(deployment.id)
                    assert row is not None
                    seen.append((message.payload["to"], row.status, row.restart_count))
                    if message.payload["to"] == "running":
                        break
    assert seen, "no status change was announced"
    for announced, stored, _ in seen:
        assert stored == announced, seen
    assert seen[-1] == ("running", "running", 2)


async def test_a_crash_while_the_server_was_down_is_counted_once(tmp_path) -> None:
    runtime = SimulatedRuntime()
    db = await Database.open(tmp_path / "ring.db")
    async with running_tree(runtime, db) as tree:
        deployment = await tree.apply()
        async with tree.watch(deployment.id) as until:
            await until("running")
    [instance] = runtime.running_for(deployment.id)
    runtime.crash(instance.id, 1)  # while no server runs
    async with running_tree(runtime, db) as tree:
        with trio.fail_after(5):
            while (await tree.repo.get(deployment.id)).restart_count != 1:
                await trio.sleep(0.01)
        reasons = await tree.reasons(deployment.id)
        assert reasons.count("container_crashed") == 1


async def test_a_crash_counted_just_before_the_server_died_is_not_counted_again(tmp_path) -> None:
    """The dead container outlives its count until the replacement runs; a restart in between must not recount it."""
    runtime = SimulatedRuntime()
    db = await Database.open(tmp_path / "ring.db")
    async with running_tree(runtime, db) as tree:
        deployment = await tree.apply()
        async with tree.watch(deployment.id) as until:
            await until("running")
    [instance] = runtime.running_for(deployment.id)
    runtime.crash(instance.id, 1)
    # What the first server had saved before dying: the count and its event.
    repo, events = DeploymentRepo(db), EventRepo(db)
    row = await repo.get(deployment.id)
    assert row is not None
    row.restart_count = 1
    assert await repo.save(row)
    await events.add(
        Event.new(deployment.id, "error", "container_crashed", f"Container {instance.id[:12]} exited unexpectedly (restart 1)")
    )
    assert len(await events.list(deployment.id, limit=1000)) >= 1
    async with running_tree(runtime, db) as tree:
        with trio.fail_after(5):
            while not runtime.running_for(deployment.id):
                await trio.sleep(0.01)
        async with tree.watch(deployment.id) as until:
            await until("running")
        assert (await tree.repo.get(deployment.id)).restart_count == 1
        assert (await tree.reasons(deployment.id)).count("container_crashed") == 1
