"""Rolling updates (lifecycle.md §8.2): the drain protocol's pure rules, then parent and child
deployment actors in the in-process tree on the SIMULATED runtime."""

from __future__ import annotations

import msgspec
import trio

from ring_actors.runtimes.errors import FailureKind, RuntimeFailure
from ring_actors.runtimes.simulated import SimulatedRuntime
from ring_actors.schemas.manifest import TcpCheck
from ring_actors.supervisors import messages as dm
from ring_actors.supervisors.rollout import (
    ChildRollout,
    ChildView,
    DrainCandidate,
    RolloutAction,
    next_action,
    pick_drain_victim,
)

from .actor_harness import running_tree

# ---------------------------------------------------------------------------- pure rules


def view(status: str = "running", live: int = 2, target: int = 2, ready: bool = True) -> ChildView:
    return ChildView(status=status, live=live, target=target, ready=ready)


def test_child_drains_only_when_running_complete_and_ready() -> None:
    """Verify the child asks for a drain only when running, fully up and ready."""
    state = ChildRollout("p")
    assert next_action(state, view(), 0, 60) is RolloutAction.DRAIN
    assert next_action(state, view(status="creating"), 0, 60) is RolloutAction.WAIT
    assert next_action(state, view(live=1), 0, 60) is RolloutAction.WAIT
    assert next_action(state, view(ready=False), 0, 60) is RolloutAction.WAIT
    assert next_action(state, view(live=0, target=0), 0, 60) is RolloutAction.WAIT


def test_one_drain_in_flight_at_a_time_with_a_resend() -> None:
    """Verify a pending DrainOne blocks the next one until its answer, or until it is overdue."""
    state = ChildRollout("p", in_flight_since=10.0)
    assert next_action(state, view(), 20.0, 60) is RolloutAction.WAIT
    assert next_action(state, view(), 70.0, 60) is RolloutAction.DRAIN


def test_forced_drain_needs_one_live_instance_only() -> None:
    """Verify past the deadline the drain goes on without readiness, as long as one instance is live."""
    state = ChildRollout("p", forced=True)
    assert next_action(state, view(live=1, ready=False), 0, 60) is RolloutAction.DRAIN
    assert next_action(state, view(live=0, ready=False), 0, 60) is RolloutAction.WAIT


def test_failed_or_deleted_child_fails_once() -> None:
    """Verify failed, deleted or any terminal child reports the failure exactly once."""
    for status in ("failed", "deleted", "crash_loop_back_off", "insufficient_resources"):
        state = ChildRollout("p")
        assert next_action(state, view(status=status), 0, 60) is RolloutAction.FAIL
        state.failed = True
        assert next_action(state, view(status=status), 0, 60) is RolloutAction.WAIT


def test_victim_is_the_oldest_serving_instance_after_non_serving_ones() -> None:
    """Verify drain order: instances not serving first, then the oldest (ties: slot order)."""
    serving = [
        DrainCandidate("new", True, 5.0, 3),
        DrainCandidate("old", True, 1.0, 9),
        DrainCandidate("mid", True, 3.0, 1),
    ]
    assert pick_drain_victim(serving) == "old"
    assert pick_drain_victim([*serving, DrainCandidate("backoff", False, 0.0, 7)]) == "backoff"
    assert pick_drain_victim([DrainCandidate("b", True, 1.0, 2), DrainCandidate("a", True, 1.0, 1)]) == "a"
    assert pick_drain_victim([]) is None


# ---------------------------------------------------------------------------- tree


def ready_check(**fields) -> TcpCheck:
    fields.setdefault("min_healthy_time", "100ms")
    return TcpCheck(port=8080, interval="20ms", timeout="1s", on_failure="alert", readiness=True, **fields)


async def wait_until(predicate, timeout: float = 5.0):
    with trio.fail_after(timeout):
        while not (value := await predicate()):
            await trio.sleep(0.01)
        return value


async def running_parent(tree, replicas: int, **fields):
    """A parent whose instances were started one after another (so their age order is known)."""
    parent = await tree.apply(replicas=1, image="v1", health_checks=[ready_check()], **fields)
    async with tree.watch(parent.id) as until:
        await until("running", timeout=3)
    for n in range(2, replicas + 1):
        row = await tree.repo.get(parent.id)
        row.replicas = n
        await tree.repo.save(row)
        tree.root.notify(parent.id)

        async def up(n: int = n) -> bool:
            return len(tree.root.live_instances(parent.id)) == n

        await wait_until(up)
        await trio.sleep(0.02)
    return parent, [i.id for i in tree.runtime.running_for(parent.id)]


async def test_rollout_drains_the_parent_oldest_first_and_completes() -> None:
    """Verify a ready child drains its parent one instance at a time, oldest first, then the parent is
    deleted and purged and the child stands alone; something is served at every moment."""
    runtime = SimulatedRuntime()
    runtime.unhealthy_images.add("v2")  # the child starts not ready
    async with running_tree(runtime) as tree:
        tree.ctx.drain_grace = 0.05
        parent, oldest_first = await running_parent(tree, 3)
        gaps: list[float] = []

        async def sample() -> None:
            # A proxy following the API: what is listed must be up and ready, and never nothing.
            while True:
                listed = tree.root.live_instances(parent.id) + tree.root.live_instances(child.id)
                if not listed:
                    gaps.append(trio.current_time())
                for instance in listed:
                    sim = runtime.instances.get(instance.id)
                    assert sim is not None and sim.running and sim.healthy, "only ready instances are listed"
                await trio.sleep(0.002)

        child = await tree.apply(replicas=3, image="v2", parent_id=parent.id, health_checks=[ready_check()])
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sample)
            await wait_until(lambda: _count_running(runtime, child.id, 3))
            await trio.sleep(0.4)
            assert len(runtime.running_for(parent.id)) == 3, "nothing drained before the child is ready"
            assert "rolling_update_step" not in await tree.reasons(child.id)
            for instance in runtime.running_for(child.id):
                runtime.set_healthy(instance.id, True)
            await wait_until(lambda: _has(tree, child.id, "rolling_update_complete"))
            nursery.cancel_scope.cancel()
        assert gaps == [], "the service was never without a ready instance"
        steps = [e.message for e in reversed(await tree.events.list(child.id)) if e.reason == "rolling_update_step"]
        assert steps == [
            f"Rolling update: removed instance {oldest_first[0]} from parent {parent.id} (2 remaining)",
            f"Rolling update: removed instance {oldest_first[1]} from parent {parent.id} (1 remaining)",
            f"Rolling update: removed instance {oldest_first[2]} from parent {parent.id} (0 remaining)",
        ]
        await wait_until(lambda: _purged(tree, parent.id))
        row = await tree.repo.get(child.id)
        assert row.parent_id is msgspec.UNSET
        assert row.status == "running"
        assert runtime.running_for(parent.id) == []
        assert len(runtime.running_for(child.id)) == 3
        assert (await tree.repo.get(parent.id)) is None


async def _count_running(runtime: SimulatedRuntime, deployment_id: str, n: int) -> bool:
    return len(runtime.running_for(deployment_id)) == n


async def _has(tree, deployment_id: str, reason: str) -> bool:
    return reason in await tree.reasons(deployment_id)


async def _purged(tree, deployment_id: str) -> bool:
    return await tree.repo.get(deployment_id) is None


async def test_child_without_readiness_checks_drains_once_running() -> None:
    """Verify a child with liveness checks only drains its parent as soon as it is running."""
    async with running_tree() as tree:
        tree.ctx.drain_grace = 0.01
        parent, _ = await running_parent(tree, 2)
        child = await tree.apply(
            replicas=2,
            image="v2",
            parent_id=parent.id,
            health_checks=[TcpCheck(port=8080, interval="1s", timeout="1s", on_failure="restart")],
        )
        await wait_until(lambda: _has(tree, child.id, "rolling_update_complete"))
        await wait_until(lambda: _purged(tree, parent.id))


async def test_failed_child_leaves_the_parent_serving() -> None:
    """Verify a child that ends terminal reports rolling_update_failed and the parent keeps every instance."""
    runtime = SimulatedRuntime()
    runtime.fail_images["v2"] = RuntimeFailure(FailureKind.INSUFFICIENT_RESOURCES, "insufficient host memory")
    async with running_tree(runtime) as tree:
        parent, before = await running_parent(tree, 2)
        child = await tree.apply(replicas=2, image="v2", parent_id=parent.id, health_checks=[ready_check()])
        await wait_until(lambda: _has(tree, child.id, "rolling_update_failed"))
        await trio.sleep(0.3)
        events = [e for e in await tree.events.list(child.id) if e.reason == "rolling_update_failed"]
        assert len(events) == 1 and events[0].level == "error"
        assert events[0].message.endswith(f"Parent deployment {parent.id} is still running.")
        assert [i.id for i in runtime.running_for(parent.id)] == before
        assert (await tree.repo.get(parent.id)).status == "running"
        assert len(tree.root.live_instances(parent.id)) == 2


async def test_crash_looping_child_fails_the_rollout() -> None:
    """Verify a child whose instances keep crashing ends crash_loop_back_off and fails the rollout."""
    runtime = SimulatedRuntime()
    async with running_tree(runtime) as tree:
        parent, before = await running_parent(tree, 2)
        runtime.fail_images["v2"] = RuntimeFailure(FailureKind.NETWORK_CREATION_FAILED, "no network")
        child = await tree.apply(replicas=1, image="v2", parent_id=parent.id, health_checks=[ready_check()])
        async with tree.watch(child.id) as until:
            await until("crash_loop_back_off", timeout=5)
        await wait_until(lambda: _has(tree, child.id, "rolling_update_failed"))
        assert [i.id for i in runtime.running_for(parent.id)] == before


async def test_aborted_drain_lets_the_parent_grow_back() -> None:
    """Verify a parent drained by a child that then gives up (DrainAbort) returns to its full size."""
    runtime = SimulatedRuntime()
    async with running_tree(runtime) as tree:
        tree.ctx.drain_grace = 0.05
        parent, before = await running_parent(tree, 3)
        tree.root.inbox.send_nowait(dm.Route(parent.id, dm.DrainOne("some-child"), sender="some-child"))
        await wait_until(lambda: _count_running(runtime, parent.id, 2))
        assert before[0] not in {i.id for i in runtime.running_for(parent.id)}, "the oldest went first"
        await trio.sleep(0.2)
        assert len(runtime.running_for(parent.id)) == 2, "a drained parent does not grow back by itself"
        tree.root.inbox.send_nowait(dm.Route(parent.id, dm.DrainAbort("some-child"), sender="some-child"))
        await wait_until(lambda: _count_running(runtime, parent.id, 3))
        assert (await tree.repo.get(parent.id)).restart_count == 0, "draining is never a crash"


async def test_deleted_child_mid_rollout_aborts_the_drain() -> None:
    """Verify deleting the child stops the rollout and the parent grows back to its size."""
    runtime = SimulatedRuntime()
    async with running_tree(runtime) as tree:
        tree.ctx.drain_grace = 5.0  # the first drained instance stays out of service for a while
        parent, before = await running_parent(tree, 2)
        child = await tree.apply(replicas=2, image="v2", parent_id=parent.id, health_checks=[ready_check()])

        async def one_draining() -> bool:
            return len(tree.root.live_instances(parent.id)) == 1

        await wait_until(one_draining)
        await tree.delete(child.id)
        await wait_until(lambda: _purged(tree, child.id))
        # The drained one is removed after its grace; the parent returns to 2 and keeps serving.
        with trio.fail_after(10):
            while not (
                len(tree.root.live_instances(parent.id)) == 2
                and before[0] not in {i.id for i in runtime.running_for(parent.id)}
            ):
                await trio.sleep(0.02)
        assert (await tree.repo.get(parent.id)).status == "running"


async def test_deadline_forces_the_drain_of_a_never_ready_child() -> None:
    """Verify a child not ready by start_period + rollout deadline forces the drain with a warning."""
    runtime = SimulatedRuntime()
    runtime.unhealthy_images.add("v2")
    async with running_tree(runtime) as tree:
        tree.ctx.drain_grace = 0.01
        parent, _ = await running_parent(tree, 2)
        tree.ctx.rollout_deadline = 0.3
        child = await tree.apply(replicas=1, image="v2", parent_id=parent.id, health_checks=[ready_check()])
        await wait_until(lambda: _has(tree, child.id, "rolling_update_complete"))
        events = await tree.events.list(child.id)
        forced = [e for e in events if e.reason == "rolling_update_deadline_forced"]
        assert len(forced) == 1 and forced[0].level == "warning"
        assert "readiness_deadline_exceeded" not in [e.reason for e in events], "children are exempt"
        await wait_until(lambda: _purged(tree, parent.id))
        assert (await tree.repo.get(child.id)).status == "running"


async def test_parent_gone_clears_the_link() -> None:
    """Verify a child whose parent row no longer exists drops its parent_id."""
    async with running_tree() as tree:
        child = await tree.apply(replicas=1, parent_id="no-such-parent", health_checks=[ready_check()])

        async def unlinked() -> bool:
            row = await tree.repo.get(child.id)
            return row.status == "running" and row.parent_id is msgspec.UNSET

        await wait_until(unlinked)
        reasons = await tree.reasons(child.id)
        assert "rolling_update_complete" not in reasons and "rolling_update_failed" not in reasons


async def test_server_restart_mid_rollout_does_not_regrow_the_parent(tmp_path) -> None:
    """Verify after a restart the drained parent is not scaled back up while its child still drains it."""
    from ring_actors.store.db import Database

    runtime = SimulatedRuntime()
    runtime.unhealthy_images.add("v2")
    db = await Database.open(tmp_path / "ring.db")
    async with running_tree(runtime, db) as tree:
        tree.ctx.drain_grace = 0.5  # the second drain is still in its grace when the server stops
        parent, _ = await running_parent(tree, 3)
        child = await tree.apply(replicas=1, image="v2", parent_id=parent.id, health_checks=[ready_check()])
        await wait_until(lambda: _count_running(runtime, child.id, 1))
        [instance] = runtime.running_for(child.id)
        runtime.set_healthy(instance.id, True)
        await wait_until(lambda: _has(tree, child.id, "rolling_update_step"))
    left = len(runtime.running_for(parent.id))
    assert left == 2
    runtime.unhealthy_images.clear()
    async with running_tree(runtime, db) as tree:
        tree.ctx.drain_grace = 0.01
        await trio.sleep(0.05)
        assert len(runtime.running_for(parent.id)) <= left, "no regrowth while the child drains"
        await wait_until(lambda: _has(tree, child.id, "rolling_update_complete"))
        await wait_until(lambda: _purged(tree, parent.id))
