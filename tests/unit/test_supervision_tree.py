"""Lifecycle rules of the actor tree, on the SIMULATED runtime (no engine involved)."""

from __future__ import annotations

import trio

from ring_actors.runtimes.errors import FailureKind, RuntimeFailure
from ring_actors.runtimes.simulated import SimulatedRuntime
from ring_actors.store.db import Database

from .actor_harness import running_tree


async def settle() -> None:
    """Let every actor process what is already in its inbox."""
    for _ in range(50):
        await trio.sleep(0.005)


async def test_apply_brings_all_replicas_up_in_parallel() -> None:
    runtime = SimulatedRuntime(create_latency=0.2)
    async with running_tree(runtime) as tree:
        started = trio.current_time()
        deployment = await tree.apply(replicas=4)
        async with tree.watch(deployment.id) as until:
            await until("running")
        # Four creations of 0.2 s each, in parallel, not one per tick.
        assert trio.current_time() - started < 0.6
        assert len(runtime.running_for(deployment.id)) == 4
        assert len(tree.root.live_instances(deployment.id)) == 4
        assert "state_transition" in await tree.reasons(deployment.id)


async def test_crash_is_replaced_and_counted() -> None:
    async with running_tree() as tree:
        deployment = await tree.apply()
        async with tree.watch(deployment.id) as until:
            await until("running")
        [victim] = tree.runtime.running_for(deployment.id)
        tree.runtime.crash(victim.id, 1)
        with trio.fail_after(2):
            while not (
                (instances := tree.runtime.running_for(deployment.id)) and instances[0].id != victim.id
            ):
                await trio.sleep(0.01)
        row = await tree.repo.get(deployment.id)
        assert row.restart_count == 1
        assert victim.id not in tree.runtime.instances, "the crashed instance is removed"
        assert (await tree.reasons(deployment.id)).count("container_crashed") == 1


async def test_crash_loop_reaches_crash_loop_back_off_with_bounded_instances() -> None:
    runtime = SimulatedRuntime(exit_immediately_with=1)
    async with running_tree(runtime) as tree:
        deployment = await tree.apply()
        async with tree.watch(deployment.id) as until:
            await until("crash_loop_back_off")
        await settle()
        row = await tree.repo.get(deployment.id)
        assert row.restart_count == 5
        assert runtime.created == 5
        assert not runtime.running_for(deployment.id)


async def test_job_exit_codes_decide_completed_or_failed() -> None:
    async with running_tree() as tree:
        ok = await tree.apply(name="ok", kind="job")
        bad = await tree.apply(name="bad", kind="job")
        async with tree.watch(ok.id) as until_ok, tree.watch(bad.id) as until_bad:
            await until_ok("running")
            await until_bad("running")
            tree.runtime.crash(tree.runtime.running_for(ok.id)[0].id, 0)
            tree.runtime.crash(tree.runtime.running_for(bad.id)[0].id, 3)
            await until_ok("completed")
            await until_bad("failed")
        await settle()
        assert tree.runtime.created == 2, "terminal jobs are never retried"


async def test_permanent_failure_keeps_status_and_truthful_count() -> None:
    runtime = SimulatedRuntime()
    runtime.fail_images["missing:1"] = RuntimeFailure(FailureKind.IMAGE_NOT_FOUND, "manifest unknown")
    async with running_tree(runtime) as tree:
        deployment = await tree.apply(image="missing:1")
        async with tree.watch(deployment.id) as until:
            await until("image_pull_back_off")
        await settle()
        row = await tree.repo.get(deployment.id)
        assert row.status == "image_pull_back_off"
        assert row.restart_count == 0
        assert "image_pull_back_off" in await tree.reasons(deployment.id)


async def test_transient_failures_exhaust_the_budget() -> None:
    runtime = SimulatedRuntime()
    runtime.fail_next = [RuntimeFailure(FailureKind.NETWORK_CREATION_FAILED, "boom") for _ in range(10)]
    async with running_tree(runtime) as tree:
        deployment = await tree.apply()
        async with tree.watch(deployment.id) as until:
            await until("crash_loop_back_off")
        assert (await tree.repo.get(deployment.id)).restart_count == 5


async def test_insufficient_resources_is_terminal_without_retry() -> None:
    runtime = SimulatedRuntime()
    runtime.fail_images["big"] = RuntimeFailure(FailureKind.INSUFFICIENT_RESOURCES, "insufficient host memory")
    async with running_tree(runtime) as tree:
        deployment = await tree.apply(image="big")
        async with tree.watch(deployment.id) as until:
            await until("insufficient_resources")
        await settle()
        assert (await tree.repo.get(deployment.id)).restart_count == 0


async def test_delete_removes_every_instance_then_purges() -> None:
    async with running_tree() as tree:
        deployment = await tree.apply(replicas=3)
        async with tree.watch(deployment.id) as until:
            await until("running")
            await tree.delete(deployment.id)
            await until("purged")
        assert tree.runtime.running_for(deployment.id) == []
        assert await tree.repo.get(deployment.id) is None
        assert await tree.events.list(deployment.id) == [], "events are purged with the row"


async def test_scale_down_is_intentional_not_a_crash() -> None:
    async with running_tree() as tree:
        deployment = await tree.apply(replicas=3)
        async with tree.watch(deployment.id) as until:
            await until("running")
        row = await tree.repo.get(deployment.id)
        row.replicas = 1
        await tree.repo.save(row)
        tree.root.notify(deployment.id)
        with trio.fail_after(2):
            while len(tree.runtime.running_for(deployment.id)) != 1:
                await trio.sleep(0.01)
        await settle()
        row = await tree.repo.get(deployment.id)
        assert row.restart_count == 0
        assert row.status == "running"
        assert "scale_down" in await tree.reasons(deployment.id)


async def test_windowed_reset_after_a_healthy_window() -> None:
    async with running_tree() as tree:
        deployment = await tree.apply()
        async with tree.watch(deployment.id) as until:
            await until("running")
        tree.runtime.crash(tree.runtime.running_for(deployment.id)[0].id, 1)
        with trio.fail_after(3):
            while "restart_count_reset" not in await tree.reasons(deployment.id):
                await trio.sleep(0.02)
        assert (await tree.repo.get(deployment.id)).restart_count == 0


async def test_server_restart_readopts_without_duplicates(tmp_path) -> None:
    runtime = SimulatedRuntime()
    db = await Database.open(tmp_path / "ring.db")
    async with running_tree(runtime, db) as tree:
        deployment = await tree.apply(replicas=3)
        async with tree.watch(deployment.id) as until:
            await until("running")
    # The tree is cancelled: workloads must be untouched.
    before = {i.id for i in runtime.running_for(deployment.id)}
    assert len(before) == 3
    async with running_tree(runtime, db) as tree:
        await settle()
        assert {i.id for i in runtime.running_for(deployment.id)} == before
        assert runtime.created == 3
        assert len(tree.root.live_instances(deployment.id)) == 3
        # Adopted instances are watched like any other.
        victim = next(iter(before))
        runtime.crash(victim, 2)
        with trio.fail_after(2):
            while runtime.created != 4:
                await trio.sleep(0.01)


async def test_orphans_of_unknown_deployments_are_reaped(tmp_path) -> None:
    runtime = SimulatedRuntime()
    db = await Database.open(tmp_path / "ring.db")
    async with running_tree(runtime, db) as tree:
        deployment = await tree.apply(replicas=2)
        async with tree.watch(deployment.id) as until:
            await until("running")
    await tree.repo.purge(deployment.id)  # e.g. the server died mid-delete
    async with running_tree(runtime, db):
        await settle()
        assert runtime.running_for(deployment.id) == []


async def test_safety_net_tick_notices_instances_removed_behind_our_back() -> None:
    async with running_tree(tick=0.1) as tree:
        deployment = await tree.apply()
        async with tree.watch(deployment.id) as until:
            await until("running")
        [victim] = tree.runtime.running_for(deployment.id)
        # Removed without any exit notification reaching a waiter.
        del tree.runtime.instances[victim.id]
        with trio.fail_after(3):
            while not tree.runtime.running_for(deployment.id):
                await trio.sleep(0.02)


async def test_instances_of_another_server_are_never_reaped(tmp_path) -> None:
    """Two servers (two databases) share one engine: neither removes the other's workloads."""
    runtime = SimulatedRuntime()
    async with running_tree(runtime, await Database.open(tmp_path / "a.db")) as first:
        deployment = await first.apply(replicas=2)
        async with first.watch(deployment.id) as until:
            await until("running")
        async with running_tree(runtime, await Database.open(tmp_path / "b.db"), tick=0.05) as second:
            for _ in range(5):
                await second.root.tick_once()
            await settle()
            assert len(runtime.running_for(deployment.id)) == 2
            assert second.root.actors == {}


async def test_notify_and_tick_racing_never_start_two_actors() -> None:
    """The ticker and a notify may both find a row without an actor; only one may spawn."""
    async with running_tree(tick=3600) as tree:
        deployment = await tree.apply(replicas=1)
        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(tree.root.tick_once)
                tree.root.notify(deployment.id)
        async with tree.watch(deployment.id) as until:
            await until("running")
        await settle()
        assert tree.runtime.created == 1


async def test_apply_timeout_fails_the_attempt_and_the_stray_is_removed() -> None:
    """RING_APPLY_TIMEOUT bounds a create; what it half-made is cleaned by the safety net."""
    runtime = SimulatedRuntime(create_latency=0.5)
    async with running_tree(runtime, tick=0.1) as tree:
        tree.ctx.apply_timeout = 0.05
        deployment = await tree.apply()
        with trio.fail_after(5):
            while "apply_timeout" not in await tree.reasons(deployment.id):
                await trio.sleep(0.02)
        row = await tree.repo.get(deployment.id)
        assert row.restart_count >= 1
        runtime.create_latency = 0  # the engine recovers: the next attempt succeeds
        # A stray the engine made although the create was abandoned: no slot owns it.
        from ring_actors.runtimes.base import InstanceSpec

        stray = await runtime.create(InstanceSpec(deployment.id, "web", "default", "busybox"))
        runtime.crash(stray.id, 0)  # never started properly: not running
        async with tree.watch(deployment.id) as until:
            await until("running")
        with trio.fail_after(5):
            while stray.id in runtime.instances:
                await trio.sleep(0.05)


async def test_a_deleted_namespace_is_released_in_every_runtime() -> None:
    async with running_tree() as tree:
        tree.root.namespace_deleted("gone")
        with trio.fail_after(2):
            while tree.runtime.released_namespaces != ["gone"]:
                await trio.sleep(0.01)
