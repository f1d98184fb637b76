"""The readiness gate (lifecycle.md §7): pure aggregation, then the gate in the tree (SIMULATED runtime)."""

from __future__ import annotations

import math

import trio

from ring_actors.runtimes.simulated import SimulatedRuntime
from ring_actors.schemas.manifest import CommandCheck, HttpCheck, TcpCheck
from ring_actors.supervisors.readiness import (
    DEFAULT_HEALTHY_WINDOW,
    GateState,
    ReadinessBoard,
    ReadinessSettings,
)

from .actor_harness import running_tree


def tcp(**fields) -> TcpCheck:
    fields.setdefault("interval", "20ms")
    fields.setdefault("timeout", "1s")
    fields.setdefault("on_failure", "alert")
    fields.setdefault("readiness", True)
    return TcpCheck(port=8080, **fields)


# ---------------------------------------------------------------------------- settings


def test_settings_take_the_max_window_and_start_period_over_readiness_checks() -> None:
    """Verify the healthy window is the max effective min_healthy_time (unset = 10 s) and start_period the max."""
    settings = ReadinessSettings.from_checks(
        [
            tcp(min_healthy_time="2s", start_period="500ms"),
            tcp(readiness=False, min_healthy_time="60s", start_period="60s"),  # not a readiness check
            tcp(min_healthy_time="3s", start_period="1s"),
        ]
    )
    assert settings.indices == (0, 2)
    assert settings.healthy_window == 3.0
    assert settings.start_period == 1.0
    assert settings.deadline(100.0, 600.0) == 701.0
    assert settings.deadline(None, 600.0) == math.inf, "no deadline before the first instance start"


def test_settings_defaults_and_malformed_values() -> None:
    """Verify unset or malformed min_healthy_time counts as 10 s and a malformed start_period as 0."""
    assert ReadinessSettings.from_checks([tcp()]).healthy_window == DEFAULT_HEALTHY_WINDOW
    settings = ReadinessSettings.from_checks([tcp(min_healthy_time="1m", start_period="1.5s")])
    assert (settings.healthy_window, settings.start_period) == (DEFAULT_HEALTHY_WINDOW, 0.0)
    assert ReadinessSettings.from_checks([tcp(min_healthy_time="200ms"), tcp()]).healthy_window == 10.0
    none = ReadinessSettings.from_checks([tcp(readiness=False)])
    assert not none.gated
    assert none.deadline(1.0, 600.0) == math.inf


# ---------------------------------------------------------------------------- the board


def test_gate_states_over_every_instance_and_check() -> None:
    """Verify the gate needs a result for every (instance, check), none failing, for the whole window."""
    board = ReadinessBoard([0, 2])
    assert board.evaluate([], 0, 1).state is GateState.NO_INSTANCES
    assert board.evaluate(["a"], 0, 1).state is GateState.PENDING_NO_RESULT
    board.record("a", 0, "success", 1.0)
    board.record("a", 2, "success", 1.5)
    board.record("a", 1, "failed", 1.5)  # not a readiness check: ignored
    decision = board.evaluate(["a"], 2.0, 1.0)
    assert (decision.state, decision.opens_at) == (GateState.PENDING_MIN_HEALTHY_TIME, 2.5)
    assert board.evaluate(["a"], 2.5, 1.0).open
    # A second instance must be ready too.
    assert board.evaluate(["a", "b"], 3.0, 1.0).state is GateState.PENDING_NO_RESULT
    board.record("b", 0, "success", 3.0)
    board.record("b", 2, "timeout", 3.0)
    assert board.evaluate(["a", "b"], 3.0, 1.0).state is GateState.FAILING
    assert not board.instance_ready("b") and board.instance_ready("a")
    board.record("b", 2, "success", 3.2)
    assert board.evaluate(["a", "b"], 4.0, 1.0).state is GateState.PENDING_MIN_HEALTHY_TIME
    assert board.evaluate(["a", "b"], 4.2, 1.0).open


def test_ready_since_is_the_first_success_after_the_last_failure() -> None:
    """Verify repeated successes keep the original ready-since and a failure restarts the window."""
    board = ReadinessBoard([0])
    board.record("a", 0, "success", 1.0)
    board.record("a", 0, "success", 5.0)
    assert board.evaluate(["a"], 6.0, 5.0).open, "still green since 1.0"
    board.record("a", 0, "failed", 6.5)
    board.record("a", 0, "success", 7.0)
    assert board.evaluate(["a"], 11.0, 5.0).opens_at == 12.0
    board.forget("a")
    assert board.evaluate(["a"], 20.0, 5.0).state is GateState.PENDING_NO_RESULT


# ---------------------------------------------------------------------------- the gate in the tree


async def test_gate_holds_creating_until_ready_for_the_window_then_opens() -> None:
    """Verify a worker stays creating (and unlisted) while its readiness check fails, and is promoted
    only after every instance has been green for min_healthy_time."""
    runtime = SimulatedRuntime()
    runtime.unhealthy_images.add("slow-start")
    async with running_tree(runtime) as tree:
        deployment = await tree.apply(image="slow-start", replicas=2, health_checks=[tcp(min_healthy_time="400ms")])
        async with tree.watch(deployment.id) as until:
            with trio.fail_after(2):
                while len(runtime.running_for(deployment.id)) < 2:
                    await trio.sleep(0.01)
            await trio.sleep(0.5)
            assert (await tree.repo.get(deployment.id)).status == "creating", "held by the gate"
            assert tree.root.live_instances(deployment.id) == [], "not ready: not served"
            first, second = runtime.running_for(deployment.id)
            runtime.set_healthy(first.id, True)
            await trio.sleep(0.6)
            assert (await tree.repo.get(deployment.id)).status == "creating", "every instance must be ready"
            assert [i.id for i in tree.root.live_instances(deployment.id)] == [first.id], "ready ones are served"
            runtime.set_healthy(second.id, True)
            green = trio.current_time()
            await until("running", timeout=3)
            assert trio.current_time() - green >= 0.4 - 0.05, "promoted only after min_healthy_time"
        with trio.fail_after(2):  # the event is written just after the status changes
            while "state_transition" not in (reasons := await tree.reasons(deployment.id)):
                await trio.sleep(0.01)
        assert reasons.count("state_transition") == 1
        assert len(tree.root.live_instances(deployment.id)) == 2


async def test_without_readiness_checks_running_is_immediate() -> None:
    """Verify liveness-only checks do not gate the promotion."""
    runtime = SimulatedRuntime()
    runtime.unhealthy_images.add("sick")
    async with running_tree(runtime) as tree:
        deployment = await tree.apply(image="sick", health_checks=[tcp(readiness=False, interval="1s")])
        async with tree.watch(deployment.id) as until:
            await until("running", timeout=2)


async def test_deadline_from_the_first_instance_start_fails_the_deployment() -> None:
    """Verify a deployment never ready within start_period + rollout deadline goes failed with
    readiness_deadline_exceeded, and its instances are removed."""
    runtime = SimulatedRuntime(create_latency=0.3)  # time before the first start does not count
    runtime.unhealthy_images.add("never")
    async with running_tree(runtime) as tree:
        tree.ctx.rollout_deadline = 0.4
        deployment = await tree.apply(image="never", health_checks=[tcp(start_period="200ms")])
        async with tree.watch(deployment.id) as until:
            applied = trio.current_time()
            await until("failed", timeout=3)
            elapsed = trio.current_time() - applied
        assert elapsed >= 0.3 + 0.2 + 0.4 - 0.05, f"failed after {elapsed:.2f}s"
        events = await tree.events.list(deployment.id)
        exceeded = [e for e in events if e.reason == "readiness_deadline_exceeded"]
        assert len(exceeded) == 1 and exceeded[0].level == "error"
        assert "within 0.6s of the first instance start" in exceeded[0].message
        with trio.fail_after(2):
            while runtime.running_for(deployment.id):
                await trio.sleep(0.01)


async def test_deadline_does_not_fire_once_ready() -> None:
    """Verify a deployment that became ready in time is not failed when the deadline passes."""
    async with running_tree() as tree:
        tree.ctx.rollout_deadline = 0.3
        deployment = await tree.apply(health_checks=[tcp(min_healthy_time="100ms")])
        async with tree.watch(deployment.id) as until:
            await until("running", timeout=2)
        await trio.sleep(0.5)
        assert (await tree.repo.get(deployment.id)).status == "running"


async def test_only_the_first_promotion_is_gated() -> None:
    """Verify running is never reverted by readiness; a not-ready instance only leaves the served list."""
    runtime = SimulatedRuntime()
    async with running_tree(runtime) as tree:
        deployment = await tree.apply(
            health_checks=[tcp(min_healthy_time="100ms", threshold=1000)]  # alert far away
        )
        async with tree.watch(deployment.id) as until:
            await until("running", timeout=2)
        [instance] = runtime.running_for(deployment.id)
        runtime.set_healthy(instance.id, False)
        await trio.sleep(0.3)
        assert (await tree.repo.get(deployment.id)).status == "running"
        assert tree.root.live_instances(deployment.id) == []
        runtime.set_healthy(instance.id, True)
        with trio.fail_after(2):
            while not tree.root.live_instances(deployment.id):
                await trio.sleep(0.01)


async def test_command_and_http_readiness_checks_gate_too() -> None:
    """Verify command and http readiness checks feed the same gate."""
    runtime = SimulatedRuntime()
    async with running_tree(runtime) as tree:
        deployment = await tree.apply(
            health_checks=[
                CommandCheck(
                    command="true",
                    interval="20ms",
                    timeout="1s",
                    on_failure="alert",
                    readiness=True,
                    min_healthy_time="100ms",
                ),
                HttpCheck(
                    url="http://localhost:8080/",
                    interval="20ms",
                    timeout="1s",
                    on_failure="alert",
                    readiness=True,
                    min_healthy_time="100ms",
                ),
            ]
        )
        with trio.fail_after(2):
            while not runtime.running_for(deployment.id):
                await trio.sleep(0.01)
        [instance] = runtime.running_for(deployment.id)
        instance.http_status = 302  # a redirect is not ready
        await trio.sleep(0.3)
        assert (await tree.repo.get(deployment.id)).status == "creating"
        instance.http_status = 200
        async with tree.watch(deployment.id) as until:
            await until("running", timeout=2)
