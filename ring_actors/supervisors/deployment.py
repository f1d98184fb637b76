"""The deployment actor: keeps one deployment's instances at its target.

It owns the deployment's lifecycle state (status, restart budget, the healthy
window clock) and one instance actor per slot. Instance actors report what
happened (Started, Exited, CreateFailed, Stopped); this actor decides with the
pure rules of `policy` and persists the outcome. Scale-up and scale-down happen
in parallel, not one instance per tick.

Health checks: instance actors probe (each check on its own interval) and send
`ProbeResult`s here; this actor records them, counts failures per (instance,
check index), fires `on_failure`, and holds the first promotion to `running`
behind the readiness gate (`readiness`). A rollout child drives the drain of
its parent with the messages of `rollout`, routed by the root supervisor.
"""

from __future__ import annotations

import itertools
import logging
import math
import uuid
from dataclasses import dataclass

import msgspec
import trio
from msgspec import UNSET

from ring_actors.actors import Mailbox
from ring_actors.instances import messages as im
from ring_actors.instances.actor import InstanceActor
from ring_actors.runtimes.base import InstanceHandle, ObservedInstance, Runtime
from ring_actors.schemas.manifest import Deployment, HealthCheck, Instance
from ring_actors.status import Status, is_terminal
from ring_actors.store.deployments import update_state
from ring_actors.store.health import HealthCheckResult
from ring_actors.supervisors import messages as dm
from ring_actors.supervisors import policy, readiness, rollout
from ring_actors.supervisors.context import ActorContext
from ring_actors.supervisors.spec_builder import ResolutionFailure, build_instance_spec

log = logging.getLogger(__name__)

ACTOR_RESTARTS = 3  # instance-actor bugs tolerated per slot before the slot counts a failure
MAX_PROBE_RESTARTS = 5
"""Health-check restarts allowed without a failure-free healthy window; one more -> crash_loop_back_off."""
DRAIN_RESEND_SLACK = 30.0  # seconds past grace + stop timeout before a lost DrainOne is sent again


@dataclass(eq=False)
class Slot:
    id: str
    actor: InstanceActor
    order: int
    state: str = "starting"  # starting | live | waiting | draining | stopping
    handle: InstanceHandle | None = None
    live_since: float | None = None
    actor_failures: int = 0


class DeploymentActor:
    def __init__(
        self,
        deployment: Deployment,
        ctx: ActorContext,
        adopted: list[ObservedInstance] = (),  # type: ignore[assignment]
        *,
        supervisor: Mailbox | None = None,
        in_rollout: bool = False,
    ) -> None:
        self.deployment = deployment
        self.ctx = ctx
        self.runtime: Runtime = ctx.runtimes[deployment.runtime]
        self.inbox: Mailbox = Mailbox()
        self.slots: dict[str, Slot] = {}
        self._order = itertools.count()
        self._adopted = list(adopted)
        self._nursery: trio.Nursery | None = None
        self._done = False
        self._live_since: float | None = None
        self._last_restart_change = trio.current_time()
        self._component = "containerd" if deployment.runtime == "containerd" else "docker"
        self._supervisor = supervisor  # the root's inbox: routes messages to other deployments
        # Health checks and the readiness gate.
        self._checks: tuple[HealthCheck, ...] = tuple(deployment.health_checks)
        self._readiness = readiness.ReadinessSettings.from_checks(self._checks)
        self._board = readiness.ReadinessBoard(self._readiness.indices)
        self._failures: dict[tuple[str, int], int] = {}
        self._probe_restarts = 0
        self._last_probe_restart = -math.inf
        self._last_probe_failure = -math.inf
        self._first_start: float | None = None
        self._deadline_fired = False
        self._promoted = deployment.status == Status.RUNNING  # only the first promotion is gated
        # Rolling updates: as a parent (drained) and as a child (draining its parent).
        self._retained: int | None = None  # instance cap while a child drains this deployment
        self._hold_adopted = in_rollout
        self._drains: dict[str, str] = {}  # slot id -> child id waiting for its DrainDone
        self._rollout = rollout.ChildRollout(deployment.parent_id) if deployment.parent_id else None
        # What live_instances() last computed. Only this actor's own task changes the slots and the
        # readiness board, so the view is dropped after each step of its loop and recomputed on demand.
        self._view: list[Instance] | None = None
        # The status observers (SSE, webhooks, `apply --wait`) last heard of. A change is
        # announced only once the row holding it is saved, so whoever reacts to it reads
        # the new row, restart_count included.
        self._announced = deployment.status
        self._last_resolution: tuple[str, str] | None = None  # last pre-create resolution error
        self.view_version = 0  # bumped with every drop: readers key their caches on it

    @property
    def id(self) -> str:
        return self.deployment.id

    # ---------------------------------------------------------------- running

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await self._adopt(self._adopted)
            self._adopted = []
            await self._converge()
            self._drop_view()
            while not self._done:
                message = None
                # Only the wait is bounded by the next wake-up: a handler is never cut short.
                with trio.move_on_at(self._next_wake()):
                    message = await self.inbox.receive()
                if message is not None:
                    await self._handle(message)
                    self._drop_view()
                if not self._done:
                    # Every pass, so that a deadline reached while messages keep coming is still seen.
                    await self._on_timer()
                    self._drop_view()
            nursery.cancel_scope.cancel()

    def _drop_view(self) -> None:
        self._view = None
        self.view_version += 1

    def live_instances(self) -> list[Instance]:
        """What `GET /deployments/{id}` shows: the instances that serve right now.

        With readiness checks, an instance is listed only while every readiness
        check's latest result on it is a success, and a rollout parent's instance
        leaves the list as soon as it is picked for draining: a proxy that
        follows the API never routes to an instance that is not ready or about
        to stop.
        """
        if self._view is None:
            self._view = [
                Instance(id=s.handle.id, address=s.handle.address or UNSET, name=s.handle.name)
                for s in sorted(self.slots.values(), key=lambda s: s.order)
                if self._serving(s) and s.handle is not None
            ]
        return list(self._view)

    def handles(self) -> list[InstanceHandle]:
        return [s.handle for s in self.slots.values() if s.handle is not None and s.state != "stopping"]

    # ---------------------------------------------------------------- messages

    async def _handle(self, message: object) -> None:
        match message:
            case im.Started():
                await self._on_started(message)
            case im.Exited():
                await self._on_exited(message)
            case im.CreateFailed():
                await self._on_create_failed(message)
            case im.Stopped():
                await self._on_stopped(message)
            case im.ActorFailed():
                await self._on_actor_failed(message)
            case dm.Refresh():
                await self._reload()
            case dm.Observe():
                await self._on_observe(message)
            case im.ProbeResult():
                await self._on_probe_result(message)
            case dm.DrainOne():
                self._on_drain_one(message)
            case dm.DrainDue():
                self._on_drain_due(message)
            case dm.DrainDone():
                await self._on_drain_done(message)
            case dm.DrainAbort():
                self._retained = None
            case dm.ParentGone():
                await self._on_parent_gone(message)
            case _:
                log.warning("deployment %s: unexpected message %r", self.id[:8], message)
        await self._converge()

    async def _on_started(self, message: im.Started) -> None:
        slot = self.slots.get(message.slot)
        if slot is None:
            return
        slot.handle = message.handle
        self._last_resolution = None
        if slot.state == "stopping":
            return
        if self._stopping_everything():
            self._stop(slot)
            return
        slot.state = "live"
        slot.live_since = trio.current_time()
        if self._live_since is None:
            self._live_since = slot.live_since
        if self._first_start is None:
            self._first_start = slot.live_since
        self._push_probes(slot)
        if message.handle.image_digest and self.deployment.image_digest != message.handle.image_digest:
            self.deployment.image_digest = message.handle.image_digest
            await self._persist()
        live = self._count("live")
        await self._event(
            "info", "scale_up", f"Scaled up from {live - 1} to {live} replicas", self._component
        )
        await self._maybe_promote()

    async def _on_exited(self, message: im.Exited) -> None:
        slot = self.slots.get(message.slot)
        if slot is None or slot.state == "stopping":
            return
        self._forget(message.handle.id)
        if slot.state == "draining":
            self._stop(slot)  # it was leaving anyway: not a crash
            return
        slot.state = "waiting"
        slot.live_since = None
        self._refresh_live_since()
        exit_code = message.status.exit_code
        decision = policy.decide_exit(self.deployment.kind, exit_code, self.deployment.restart_count)
        short = message.handle.id[:12]
        for level, reason in decision.reasons:
            if reason == "container_crashed":
                text = f"Container {short} exited unexpectedly (restart {decision.restart_count})"
                if exit_code is not None:
                    text += f" with exit code {exit_code}"
                elif message.status.removed:
                    text += ": removed outside ring-actors"
            elif reason == "non_retryable_exit":
                text = f"Container {short} exited with code {exit_code}: command not executable or not found"
            else:
                text = f"Container {short} completed with exit code 0"
            await self._event(level, reason, text, self._component)
        await self._set_restart_count(decision.restart_count)
        if decision.status is not None:
            await self._set_status(decision.status)
        if decision.restart and not self._stopping_everything():
            delay = policy.backoff_delay(decision.restart_count, self.ctx.backoff)
            slot.state = "starting"
            slot.actor.inbox.send_nowait(im.Restart(delay))
        else:
            self._retire(slot, keep=self.deployment.kind == "job" or exit_code == 0)
        await self._persist()

    async def _on_create_failed(self, message: im.CreateFailed) -> None:
        slot = self.slots.get(message.slot)
        if slot is None or slot.state == "stopping":
            if slot is not None:
                slot.actor.inbox.send_nowait(im.Stop())
            return
        failure = message.failure
        disposition = failure.disposition
        decision = policy.decide_create_failure(
            self.deployment.kind, disposition.status, disposition.permanent, self.deployment.restart_count
        )
        if isinstance(failure, ResolutionFailure):
            # Resolution runs before any engine call: the scheduler's (lifecycle.md §12). A
            # retry that fails the same way is not news: one event until something changes.
            key = (disposition.reason, failure.message)
            if key != self._last_resolution:
                await self._event("error", disposition.reason, failure.message, "scheduler")
            self._last_resolution = key
        else:
            self._last_resolution = None
            await self._event("error", disposition.reason, failure.message, self._component)
        await self._set_restart_count(decision.restart_count)
        await self._set_status(decision.status)
        if decision.retry and not self._stopping_everything():
            delay = (
                self.ctx.backoff.maximum
                if decision.permanent
                else policy.backoff_delay(decision.restart_count, self.ctx.backoff)
            )
            slot.state = "starting"
            slot.actor.inbox.send_nowait(im.Restart(delay))
        else:
            self._retire(slot, keep=False)
        await self._persist()

    async def _on_stopped(self, message: im.Stopped) -> None:
        slot = self.slots.pop(message.slot, None)
        if slot is None:
            return
        self._refresh_live_since()
        if message.handle is not None:
            self._forget(message.handle.id)
        child = self._drains.pop(slot.id, None)
        if child is not None:
            instance_id = message.handle.id if message.handle is not None else None
            self._send_to(child, dm.DrainDone(self.id, instance_id, self._remaining()))
        if message.handle is not None and self.deployment.status == Status.DELETED:
            await self._event(
                "info", "container_deletion", f"Container {message.handle.name} deleted", self._component
            )

    async def _on_actor_failed(self, message: im.ActorFailed) -> None:
        slot = self.slots.get(message.slot)
        if slot is None:
            return
        slot.actor_failures += 1
        await self._event("error", "runtime_error", f"Instance supervisor failed: {message.error}")
        if slot.actor_failures > ACTOR_RESTARTS:
            # Give up on this slot's actor; a fresh slot replaces it through converge().
            self.slots.pop(slot.id)
            if message.handle is not None:
                self._spawn_stopper(message.handle)
            return
        slot.actor = self._make_actor(slot.id, handle=message.handle, initial_delay=0.1 * slot.actor_failures)
        assert self._nursery is not None
        self._nursery.start_soon(slot.actor.run)
        self._push_probes(slot)  # the new actor starts without a probe set

    async def _on_observe(self, message: dm.Observe) -> None:
        """Safety net: instances that vanished, and strays nobody owns."""
        seen = {o.id: o for o in message.instances}
        known = {s.handle.id for s in self.slots.values() if s.handle is not None}
        for slot in self.slots.values():
            if (
                slot.state in ("live", "draining")
                and slot.handle is not None
                and slot.handle.id not in seen
                and slot.live_since is not None
                and slot.live_since < message.taken_at
            ):
                slot.actor.inbox.send_nowait(im.Vanished())
        creating = any(s.state == "starting" for s in self.slots.values())
        if creating:
            return
        for observed in message.instances:
            # Running or not: a half-made instance (create interrupted, apply timeout) is a stray too.
            if observed.id not in known:
                log.warning("deployment %s: removing stray instance %s", self.id[:8], observed.name)
                self._spawn_stopper(await self.runtime.adopt(observed))

    async def _reload(self) -> None:
        row = await self.ctx.deployments.get(self.id)
        if row is None:
            row = msgspec.structs.replace(self.deployment, status=Status.DELETED)
        old = self.deployment.status
        row.image_digest = row.image_digest or self.deployment.image_digest
        self.deployment = row
        if not row.parent_id:
            self._rollout = None
        elif self._rollout is None or self._rollout.parent_id != row.parent_id:
            self._rollout = rollout.ChildRollout(row.parent_id)
        if old != row.status:
            self._push_probes()
        self._announce()

    # ---------------------------------------------------------------- converge

    async def _converge(self) -> None:
        status = self.deployment.status
        if self._rollout is not None and (status == Status.DELETED or is_terminal(status)):
            await self._rollout_step()  # reports the failed rollout once, lets the parent grow back
        if status == Status.DELETED:
            await self._teardown()
            return
        if is_terminal(status):
            for slot in list(self.slots.values()):
                if slot.state != "stopping":
                    self._stop(slot)
            if not self.slots:
                self._done = True
            return
        active = [s for s in self.slots.values() if s.state not in ("stopping", "draining")]
        target = self._target()
        missing = target - len(active)
        if missing > 0:
            delay = self._remaining_backoff()
            for _ in range(missing):
                self._spawn_slot(initial_delay=delay)
        elif missing < 0:
            # Prefer removing slots that are not serving yet, then the newest.
            victims = sorted(active, key=lambda s: (s.state == "live", -s.order))[: -missing]
            before = self._count("live")
            for slot in victims:
                self._stop(slot)
            after = self._count("live")
            await self._event(
                "info", "scale_down", f"Scaled down from {before} to {after} replicas", self._component
            )
        await self._maybe_promote()
        await self._rollout_step()

    async def _teardown(self) -> None:
        for slot in list(self.slots.values()):
            if slot.state != "stopping":
                self._stop(slot)
        if self.slots:
            return
        await self._event("info", "cleanup_scheduled", "All instances removed; deployment purged")
        await self.ctx.deployments.purge(self.id)
        self.ctx.recorder.status_changed(self.id, self.deployment.namespace, Status.DELETED, "purged")
        self._done = True

    async def _maybe_promote(self) -> None:
        """creating (or a retried error status) -> running once every instance is up."""
        status = self.deployment.status
        if status == Status.RUNNING or is_terminal(status) or status == Status.DELETED:
            return
        live = self._count("live")
        if live == 0 or live < self.deployment.target_replicas:
            return
        if not self.readiness_open():
            return
        self._promoted = True
        await self._set_status(Status.RUNNING)
        await self._event(
            "info",
            "state_transition",
            f"Status changed from {status} to running ({live} containers)",
        )
        await self._persist()

    def readiness_open(self) -> bool:
        """The readiness gate (lifecycle.md §7) for the first promotion only.

        Open without readiness checks, for jobs, once promoted, and for a rollout
        child whose deadline forced the drain. Otherwise every readiness check
        must be green on every live instance for the healthy window.
        """
        if self._promoted or self.deployment.kind == "job" or not self._readiness.gated:
            return True
        if self._rollout is not None and self._rollout.forced:
            return True
        return self._gate().open

    def _gate(self) -> readiness.GateDecision:
        live = [s.handle.id for s in self.slots.values() if s.state == "live" and s.handle is not None]
        return self._board.evaluate(live, trio.current_time(), self._readiness.healthy_window)

    def _serving(self, slot: Slot) -> bool:
        if slot.state != "live" or slot.handle is None:
            return False
        return not self._readiness.gated or self._board.instance_ready(slot.handle.id)

    # ---------------------------------------------------------------- timers

    def _next_wake(self) -> float:
        """The earliest future moment something time-based is due (run() also checks after each message)."""
        now = trio.current_time()
        wakes = [math.inf]
        if self.deployment.restart_count > 0 and self._live_since is not None:
            start = max(self._live_since, self._last_restart_change)
            wakes.append(start + self.ctx.backoff.healthy_window)
        gate_matters = not self._promoted or self._rollout is not None
        if self._readiness.gated and self.deployment.kind == "worker" and gate_matters:
            opens_at = self._gate().opens_at
            if opens_at is not None:
                wakes.append(opens_at)
            if not self._deadline_fired and not self._stopping_everything():
                wakes.append(self._readiness.deadline(self._first_start, self.ctx.rollout_deadline))
        if self._rollout is not None and self._rollout.in_flight_since is not None:
            wakes.append(self._rollout.in_flight_since + self._drain_resend_after())
        return min((w for w in wakes if w > now), default=math.inf)

    async def _on_timer(self) -> None:
        await self._check_readiness_deadline()
        await self._maybe_promote()
        await self._rollout_step()
        now = trio.current_time()
        if policy.healthy_window_elapsed(
            self.deployment.restart_count,
            self._live_since,
            self._last_restart_change,
            now,
            self.ctx.backoff.healthy_window,
        ) and self.deployment.kind == "worker" and not is_terminal(self.deployment.status):
            await self._set_restart_count(0)
            await self._event("info", "restart_count_reset", "restart_count reset to 0 after staying healthy")
            await self._persist()

    async def _check_readiness_deadline(self) -> None:
        """`start_period + rollout deadline` after the first instance start (lifecycle.md §7, §8.2).

        A plain deployment that is still not ready goes `failed`; a rollout child
        instead forces the drain of its parent.
        """
        if self._deadline_fired or not self._readiness.gated or self.deployment.kind != "worker":
            return
        if self._stopping_everything():
            return
        deadline = self._readiness.deadline(self._first_start, self.ctx.rollout_deadline)
        if trio.current_time() < deadline:
            return
        self._deadline_fired = True
        allowed = self._readiness.start_period + self.ctx.rollout_deadline
        if self._rollout is not None:
            if self._promoted and self._gate().open:
                return
            self._rollout.forced = True
            await self._event(
                "warning", "rolling_update_deadline_forced", rollout.forced_message(self._rollout.parent_id, allowed)
            )
            return
        if self._promoted:
            return
        await self._event(
            "error",
            "readiness_deadline_exceeded",
            f"Readiness checks did not pass within {allowed:g}s of the first instance start"
            f" (start_period {self._readiness.start_period:g}s + rollout deadline {self.ctx.rollout_deadline:g}s)"
            f": {self._gate().state.value}",
        )
        await self._set_status(Status.FAILED)
        await self._persist()
        await self._converge()

    def _remaining_backoff(self) -> float:
        if self.deployment.restart_count <= 0:
            return 0.0
        ready_at = self._last_restart_change + policy.backoff_delay(
            self.deployment.restart_count, self.ctx.backoff
        )
        return max(0.0, ready_at - trio.current_time())

    # ---------------------------------------------------------------- helpers

    async def _adopt(self, observed: list[ObservedInstance]) -> None:
        """Take over instances found in the runtime after a (re)start of the server."""
        running = sorted((o for o in observed if o.running), key=lambda o: o.created_at)
        for item in observed:
            if item.running:
                continue
            handle = await self.runtime.adopt(item)
            if item.exit_code not in (None, 0) and not is_terminal(self.deployment.status):
                # It crashed while the server was away: count it like any other crash.
                await self._on_exited_while_away(handle, item.exit_code)
            if not (self.deployment.kind == "job" and is_terminal(self.deployment.status)):
                self._spawn_stopper(handle)
        for item in running:
            handle = await self.runtime.adopt(item)
            slot = self._spawn_slot(handle=handle)
            slot.state = "live"
            slot.handle = handle
            slot.live_since = trio.current_time()
            self._push_probes(slot)
        if running:
            self._live_since = trio.current_time()
            self._first_start = self._live_since
            if self._hold_adopted:
                # A child is draining us: never grow back while it runs.
                self._retained = len(running)
        await self._maybe_promote()

    async def _on_exited_while_away(self, handle: InstanceHandle, exit_code: int) -> None:
        # A crash counted just before the server died leaves its container behind until the
        # replacement runs; its `container_crashed` event says it was counted already.
        if await self.ctx.recorder.events.exists(self.id, "container_crashed", f"Container {handle.id[:12]} "):
            return
        decision = policy.decide_exit(self.deployment.kind, exit_code, self.deployment.restart_count)
        await self._event(
            "error",
            "container_crashed",
            f"Container {handle.id[:12]} exited unexpectedly (restart {decision.restart_count})"
            f" with exit code {exit_code} while the server was down",
            self._component,
        )
        await self._set_restart_count(decision.restart_count)
        if decision.status is not None:
            await self._set_status(decision.status)
        await self._persist()

    def _make_actor(
        self, slot_id: str, *, handle: InstanceHandle | None = None, initial_delay: float = 0.0
    ) -> InstanceActor:
        async def build():  # resolved at each create: picks up changed secrets/configs
            return await build_instance_spec(self.deployment, self.ctx.secrets, self.ctx.server_id)

        return InstanceActor(
            slot_id,
            self.runtime,
            build,
            self.inbox,
            handle=handle,
            initial_delay=initial_delay,
            stop_timeout=self.ctx.stop_timeout,
            apply_timeout=self.ctx.apply_timeout,
        )

    def _spawn_slot(self, *, handle: InstanceHandle | None = None, initial_delay: float = 0.0) -> Slot:
        slot_id = uuid.uuid4().hex[:12]
        slot = Slot(slot_id, self._make_actor(slot_id, handle=handle, initial_delay=initial_delay), next(self._order))
        self.slots[slot_id] = slot
        assert self._nursery is not None
        self._nursery.start_soon(slot.actor.run)
        return slot

    def _spawn_stopper(self, handle: InstanceHandle) -> None:
        """Remove an instance no slot owns (intentional: never counted)."""
        slot = self._spawn_slot(handle=handle)
        slot.handle = handle
        self._stop(slot)

    def _stop(self, slot: Slot) -> None:
        slot.state = "stopping"
        self._drop_view()
        slot.actor.inbox.send_nowait(im.Stop())

    def _retire(self, slot: Slot, *, keep: bool) -> None:
        self.slots.pop(slot.id, None)
        self._drop_view()
        slot.actor.inbox.send_nowait(im.Retire(keep=keep))
        self._refresh_live_since()

    def _stopping_everything(self) -> bool:
        return self.deployment.status == Status.DELETED or is_terminal(self.deployment.status)

    def _count(self, state: str) -> int:
        return sum(1 for s in self.slots.values() if s.state == state)

    def _refresh_live_since(self) -> None:
        if self._count("live") == 0:
            self._live_since = None

    async def _set_restart_count(self, value: int) -> None:
        if value != self.deployment.restart_count:
            self.deployment.restart_count = value
            self._last_restart_change = trio.current_time()

    async def _set_status(self, status: str) -> None:
        """Change the status in memory; `_persist` saves it, then announces it."""
        if self.deployment.status == status:
            return
        self.deployment.status = status
        self._push_probes()

    async def _persist(self) -> None:
        if self.deployment.autoscale is not UNSET:
            # The autoscaler owns desired_replicas: carry the stored value so this write never
            # undoes a decision whose Refresh is still in the inbox (no checkpoint until the write).
            stored = await self.ctx.deployments.get(self.id)
            if stored is not None:
                self.deployment.desired_replicas = stored.desired_replicas
        if await update_state(self.ctx.deployments, self.deployment):
            self._announce()
        else:
            await self._reload()

    def _announce(self) -> None:
        """Publish the status change once it is durable (never a status the store lacks)."""
        status = self.deployment.status
        if status != self._announced:
            old, self._announced = self._announced, status
            self.ctx.recorder.status_changed(self.id, self.deployment.namespace, old, status)

    async def _event(self, level: str, reason: str, message: str, component: str = "scheduler") -> None:
        await self.ctx.recorder.event(self.id, self.deployment.namespace, level, reason, message, component)

    def _target(self) -> int:
        target = self.deployment.target_replicas
        return target if self._retained is None else max(0, min(target, self._retained))

    def _remaining(self) -> int:
        return sum(1 for s in self.slots.values() if s.state != "stopping")

    def _send_to(self, deployment_id: str, message: object) -> None:
        """Another deployment's actor, through the root supervisor."""
        if self._supervisor is not None:
            self._supervisor.send_nowait(dm.Route(deployment_id, message, self.id))

    # ---------------------------------------------------------------- health checks

    def _probe_checks(self) -> tuple[tuple[int, HealthCheck], ...]:
        """Which checks run now (lifecycle.md §6): all when running; readiness only while a worker is creating."""
        status = self.deployment.status
        if status == Status.RUNNING:
            return tuple(enumerate(self._checks))
        if status in (Status.CREATING, Status.PENDING) and self.deployment.kind == "worker":
            return tuple((i, self._checks[i]) for i in self._readiness.indices)
        return ()

    def _push_probes(self, slot: Slot | None = None) -> None:
        """Tell live instance actors which checks to run (they restart their probe tasks on a change)."""
        if not self._checks:
            return
        probe = im.Probe(self._probe_checks(), host_network=self.deployment.network_mode == "host")
        for target in [slot] if slot is not None else list(self.slots.values()):
            if target.state == "live":
                target.actor.inbox.send_nowait(probe)

    def _forget(self, instance_id: str) -> None:
        self._board.forget(instance_id)
        for key in [k for k in self._failures if k[0] == instance_id]:
            del self._failures[key]

    async def _on_probe_result(self, result: im.ProbeResult) -> None:
        slot = self.slots.get(result.slot)
        if slot is None or slot.state != "live" or slot.handle is None or slot.handle.id != result.instance_id:
            return  # stale: the instance was replaced, is draining or stopping
        if not 0 <= result.index < len(self._checks) or self._stopping_everything():
            return
        check = self._checks[result.index]
        await self._record_probe(result)
        now = trio.current_time()
        if check.readiness:
            self._board.record(result.instance_id, result.index, result.status, now)
        if result.status != "success":
            self._last_probe_failure = now
        elif self._probe_restarts and (
            now - max(self._last_probe_failure, self._last_probe_restart) >= self.ctx.backoff.healthy_window
        ):
            self._probe_restarts = 0
        if self.deployment.status != Status.RUNNING:
            return  # counters and actions only in running (lifecycle.md §6.1)
        key = (result.instance_id, result.index)
        if result.status == "success":
            self._failures.pop(key, None)
            return
        grace = readiness.duration_or(check.start_period, 0.0)
        if slot.live_since is not None and now - slot.live_since < grace:
            return  # still within this check's start_period on this instance
        count = self._failures.get(key, 0) + 1
        if count < max(check.threshold, 1):
            self._failures[key] = count
            return
        self._failures.pop(key, None)
        await self._on_failure(check, slot, result)

    async def _record_probe(self, result: im.ProbeResult) -> None:
        if self.ctx.health is None:
            return
        try:
            await self.ctx.health.add(
                HealthCheckResult.new(
                    self.id,
                    result.check_type,
                    result.status,
                    result.message,
                    started_at=result.started_at,
                    finished_at=result.finished_at,
                    instance_id=result.instance_id,
                    check_index=result.index,
                )
            )
        except Exception:
            log.exception("deployment %s: cannot store a health-check result", self.id[:8])

    async def _on_failure(self, check: HealthCheck, slot: Slot, result: im.ProbeResult) -> None:
        """Fire the check's `on_failure` once (lifecycle.md §6.1)."""
        instance = result.instance_id
        if check.on_failure == "alert":
            await self._event(
                "error", "health_check_alert", f"Health check failed for instance {instance}: {result.message}",
                "health_checker",
            )
            return
        if check.on_failure == "stop":
            await self._event(
                "warning",
                "health_check_stop",
                f"Health check failed for instance {instance} ({result.message}), triggering deployment stop",
                "health_checker",
            )
            await self._set_status(Status.DELETED)
            await self._persist()
            return
        if self._probe_restarts >= MAX_PROBE_RESTARTS:
            await self._event(
                "error",
                "health_check_restart_budget_exhausted",
                f"Health check failed for instance {instance} ({result.message}); health checks already"
                f" restarted instances {self._probe_restarts} times without"
                f" {self.ctx.backoff.healthy_window:g}s free of failures: giving up",
                "health_checker",
            )
            await self._set_status(Status.CRASH_LOOP_BACK_OFF)
            await self._persist()
            return
        self._probe_restarts += 1
        self._last_probe_restart = trio.current_time()
        await self._event(
            "warning",
            "health_check_instance_restart",
            f"Health check failed for instance {instance} ({result.message}), triggering instance restart",
            "health_checker",
        )
        self._forget(instance)
        slot.state = "starting"
        slot.live_since = None
        self._refresh_live_since()
        published = any(port.published > 0 for port in self.deployment.ports)
        slot.actor.inbox.send_nowait(im.Replace(remove_first=published))

    # ---------------------------------------------------------------- rolling updates: parent side

    def _on_drain_one(self, message: dm.DrainOne) -> None:
        """Pick the next instance to drain for a child: out of service now, stopped after the grace."""
        if message.child_id in self._drains.values():
            return  # already draining one for this child; its DrainDone will follow
        candidates = [s for s in self.slots.values() if s.state not in ("stopping", "draining")]
        if self._stopping_everything() or not candidates:
            self._send_to(message.child_id, dm.DrainDone(self.id, None, self._remaining()))
            return
        key = rollout.pick_drain_victim(
            [
                rollout.DrainCandidate(s.id, self._serving(s), s.live_since or 0.0, s.order)
                for s in candidates
            ]
        )
        victim = self.slots[key]
        self._retained = len(candidates) - 1
        self._drains[victim.id] = message.child_id
        if victim.state != "live":
            self._stop(victim)
            return
        victim.state = "draining"  # leaves live_instances() at once
        self._drop_view()
        victim.actor.inbox.send_nowait(im.Probe(()))
        self._refresh_live_since()
        assert self._nursery is not None
        self._nursery.start_soon(self._drain_after_grace, victim.id)

    async def _drain_after_grace(self, slot_id: str) -> None:
        await trio.sleep(self.ctx.drain_grace)
        self.inbox.send_nowait(dm.DrainDue(slot_id))

    def _on_drain_due(self, message: dm.DrainDue) -> None:
        slot = self.slots.get(message.slot)
        if slot is not None and slot.state == "draining":
            self._stop(slot)

    # ---------------------------------------------------------------- rolling updates: child side

    def _drain_resend_after(self) -> float:
        return self.ctx.drain_grace + self.ctx.stop_timeout + DRAIN_RESEND_SLACK

    async def _rollout_step(self) -> None:
        state = self._rollout
        if state is None or self._done:
            return
        view = rollout.ChildView(
            status=self.deployment.status,
            live=self._count("live"),
            target=self._target(),
            ready=not self._readiness.gated or self._gate().open,
        )
        now = trio.current_time()
        action = rollout.next_action(state, view, now, self._drain_resend_after())
        if action is rollout.RolloutAction.DRAIN:
            state.in_flight_since = now
            self._send_to(state.parent_id, dm.DrainOne(self.id))
        elif action is rollout.RolloutAction.FAIL:
            state.failed = True
            await self._event(
                "error", "rolling_update_failed", rollout.failed_message(state.parent_id, self.deployment.status)
            )
            self._send_to(state.parent_id, dm.DrainAbort(self.id))

    async def _on_drain_done(self, message: dm.DrainDone) -> None:
        state = self._rollout
        if state is None or message.parent_id != state.parent_id:
            return
        state.in_flight_since = None
        if message.instance_id is not None:
            state.steps += 1
            await self._event(
                "info",
                "rolling_update_step",
                rollout.step_message(message.instance_id, state.parent_id, message.remaining),
            )
        if message.remaining > 0 or state.failed:
            return
        # The parent is empty: delete it (its actor purges the row) and stand alone.
        await self.ctx.deployments.set_status(state.parent_id, Status.DELETED)
        self._send_to(state.parent_id, dm.Refresh())
        self._rollout = None
        self.deployment.parent_id = UNSET
        await self._persist()
        await self._event("info", "rolling_update_complete", rollout.complete_message(state.parent_id, state.steps))

    async def _on_parent_gone(self, message: dm.ParentGone) -> None:
        if self._rollout is None or self._rollout.parent_id != message.parent_id:
            return
        log.info("deployment %s: parent %s is gone; rollout link cleared", self.id[:8], message.parent_id[:8])
        self._rollout = None
        self.deployment.parent_id = UNSET
        await self._persist()
