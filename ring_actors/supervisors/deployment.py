"""The deployment actor: keeps one deployment's instances at its target.

It owns the deployment's lifecycle state (status, restart budget, the healthy
window clock) and one instance actor per slot. Instance actors report what
happened (Started, Exited, CreateFailed, Stopped); this actor decides with the
pure rules of `policy` and persists the outcome. Scale-up and scale-down happen
in parallel, not one instance per tick.
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
from ring_actors.schemas.manifest import Deployment, Instance
from ring_actors.status import Status, is_terminal
from ring_actors.store.deployments import update_state
from ring_actors.supervisors import messages as dm
from ring_actors.supervisors import policy
from ring_actors.supervisors.context import ActorContext
from ring_actors.supervisors.spec_builder import build_instance_spec

log = logging.getLogger(__name__)

ACTOR_RESTARTS = 3  # instance-actor bugs tolerated per slot before the slot counts a failure


@dataclass(eq=False)
class Slot:
    id: str
    actor: InstanceActor
    order: int
    state: str = "starting"  # starting | live | waiting | stopping
    handle: InstanceHandle | None = None
    live_since: float | None = None
    actor_failures: int = 0


class DeploymentActor:
    def __init__(
        self,
        deployment: Deployment,
        ctx: ActorContext,
        adopted: list[ObservedInstance] = (),  # type: ignore[assignment]
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
            while not self._done:
                with trio.move_on_at(self._next_wake()):
                    message = await self.inbox.receive()
                    await self._handle(message)
                    continue
                await self._on_timer()
            nursery.cancel_scope.cancel()

    def live_instances(self) -> list[Instance]:
        """What `GET /deployments/{id}` shows: the instances that are up right now."""
        return [
            Instance(id=s.handle.id, address=s.handle.address or UNSET, name=s.handle.name)
            for s in sorted(self.slots.values(), key=lambda s: s.order)
            if s.state == "live" and s.handle is not None
        ]

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
            case _:
                log.warning("deployment %s: unexpected message %r", self.id[:8], message)
        await self._converge()

    async def _on_started(self, message: im.Started) -> None:
        slot = self.slots.get(message.slot)
        if slot is None:
            return
        slot.handle = message.handle
        if slot.state == "stopping":
            return
        if self._stopping_everything():
            self._stop(slot)
            return
        slot.state = "live"
        slot.live_since = trio.current_time()
        if self._live_since is None:
            self._live_since = slot.live_since
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

    async def _on_observe(self, message: dm.Observe) -> None:
        """Safety net: instances that vanished, and strays nobody owns."""
        seen = {o.id: o for o in message.instances}
        known = {s.handle.id for s in self.slots.values() if s.handle is not None}
        for slot in self.slots.values():
            if slot.state == "live" and slot.handle is not None and slot.handle.id not in seen:
                slot.actor.inbox.send_nowait(im.Vanished())
        creating = any(s.state == "starting" for s in self.slots.values())
        if creating:
            return
        for observed in message.instances:
            if observed.id not in known and observed.running:
                log.warning("deployment %s: removing stray instance %s", self.id[:8], observed.name)
                self._spawn_stopper(await self.runtime.adopt(observed))

    async def _reload(self) -> None:
        row = await self.ctx.deployments.get(self.id)
        if row is None:
            row = msgspec.structs.replace(self.deployment, status=Status.DELETED)
        old = self.deployment.status
        row.image_digest = row.image_digest or self.deployment.image_digest
        self.deployment = row
        if old != row.status:
            self.ctx.recorder.status_changed(self.id, row.namespace, old, row.status)

    # ---------------------------------------------------------------- converge

    async def _converge(self) -> None:
        status = self.deployment.status
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
        active = [s for s in self.slots.values() if s.state != "stopping"]
        target = self.deployment.target_replicas
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
        await self._set_status(Status.RUNNING)
        await self._event(
            "info",
            "state_transition",
            f"Status changed from {status} to running ({live} containers)",
        )
        await self._persist()

    def readiness_open(self) -> bool:
        """The readiness gate; without readiness checks it is always open."""
        return True

    # ---------------------------------------------------------------- timers

    def _next_wake(self) -> float:
        if self.deployment.restart_count > 0 and self._live_since is not None:
            start = max(self._live_since, self._last_restart_change)
            return start + self.ctx.backoff.healthy_window
        return math.inf

    async def _on_timer(self) -> None:
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
        if running:
            self._live_since = trio.current_time()
        await self._maybe_promote()

    async def _on_exited_while_away(self, handle: InstanceHandle, exit_code: int) -> None:
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
            return await build_instance_spec(self.deployment, self.ctx.secrets)

        return InstanceActor(
            slot_id,
            self.runtime,
            build,
            self.inbox,
            handle=handle,
            initial_delay=initial_delay,
            stop_timeout=self.ctx.stop_timeout,
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
        slot.actor.inbox.send_nowait(im.Stop())

    def _retire(self, slot: Slot, *, keep: bool) -> None:
        self.slots.pop(slot.id, None)
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
        old = self.deployment.status
        if old == status:
            return
        self.deployment.status = status
        self.ctx.recorder.status_changed(self.id, self.deployment.namespace, old, status)

    async def _persist(self) -> None:
        if not await update_state(self.ctx.deployments, self.deployment):
            await self._reload()

    async def _event(self, level: str, reason: str, message: str, component: str = "scheduler") -> None:
        await self.ctx.recorder.event(self.id, self.deployment.namespace, level, reason, message, component)
