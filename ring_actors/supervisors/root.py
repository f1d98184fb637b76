"""The root supervisor: one deployment actor per live deployment, plus the safety-net tick.

Start-up re-adopts what the runtimes already run (label `ring_deployment`), so a
server restart never duplicates or loses instances; instances whose deployment no
longer exists are reaped. The API never calls a runtime to change anything: it
writes the store and calls `notify()`.

Deployment actors talk to each other only through the root (`messages.Route`),
e.g. a rollout child asking its parent to drain one instance; the root answers
for a target that has no actor.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

import trio

from ring_actors.actors import IntensityExceeded, Mailbox, supervise
from ring_actors.runtimes.base import InstanceHandle, ObservedInstance
from ring_actors.runtimes.errors import EngineUnavailable
from ring_actors.schemas.manifest import Deployment, Instance
from ring_actors.status import RECONCILED, TERMINAL, Status
from ring_actors.supervisors import messages as dm
from ring_actors.supervisors.context import ActorContext
from ring_actors.supervisors.deployment import DeploymentActor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Notify:
    deployment_id: str


@dataclass(frozen=True)
class NamespaceDeleted:
    name: str


@dataclass(frozen=True)
class ActorFinished:
    deployment_id: str
    actor: DeploymentActor


class RootSupervisor:
    def __init__(self, ctx: ActorContext, *, tick_interval: float = 10.0) -> None:
        self.ctx = ctx
        self.tick_interval = tick_interval
        self.inbox: Mailbox = Mailbox()
        self.actors: dict[str, DeploymentActor] = {}
        self._nursery: trio.Nursery | None = None
        self.ticks = 0
        self._runtime_of: dict[str, str] = {}  # instance id -> runtime name, from the last listing

    # ------------------------------------------------------------ public API

    def notify(self, deployment_id: str) -> None:
        """The stored row changed (created, deleted, re-scaled): converge it."""
        self.inbox.send_nowait(Notify(deployment_id))

    def namespace_deleted(self, name: str) -> None:
        """The namespace row is gone: free what the runtimes hold for it (its network)."""
        self.inbox.send_nowait(NamespaceDeleted(name))

    def live_instances(self, deployment_id: str) -> list[Instance]:
        actor = self.actors.get(deployment_id)
        return actor.live_instances() if actor else []

    def live_view(self, deployment_id: str) -> tuple[object | None, int]:
        """A cache key for `live_instances(deployment_id)`: (owner, version).

        The pair changes whenever the answer may change: the owning actor bumps its
        version after every step, and an actor restarted from the store is a new owner
        whose version starts over. (None, 0) when no actor runs the deployment.
        """
        actor = self.actors.get(deployment_id)
        return (actor, actor.view_version) if actor else (None, 0)

    def handles(self, deployment_id: str) -> list[InstanceHandle]:
        actor = self.actors.get(deployment_id)
        return actor.handles() if actor else []

    # ------------------------------------------------------------ running

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            observed = await self._observe_all()
            rows = await self.ctx.deployments.list()
            await self._start_from(rows, observed)
            task_status.started()
            nursery.start_soon(self._ticker)
            while True:
                message = await self.inbox.receive()
                if isinstance(message, Notify):
                    await self._on_notify(message.deployment_id)
                elif isinstance(message, NamespaceDeleted):
                    nursery.start_soon(self._release_namespace, message.name)
                elif isinstance(message, dm.Route):
                    await self._route(message)
                elif isinstance(message, ActorFinished):
                    if self.actors.get(message.deployment_id) is message.actor:
                        del self.actors[message.deployment_id]
                        # A re-apply may have landed while the old actor finished.
                        await self._on_notify(message.deployment_id, only_if_new=True)

    async def _start_from(
        self, rows: list[Deployment], observed: dict[str, list[ObservedInstance]] | None
    ) -> None:
        by_id = {row.id: row for row in rows}
        # Parents of a rollout still in progress must not grow back while their child drains them.
        draining = {
            row.parent_id for row in rows if row.parent_id and row.status in RECONCILED and row.status != Status.DELETED
        }
        for row in rows:
            if row.runtime not in self.ctx.runtimes:
                continue
            instances = (observed or {}).get(row.id, [])
            if row.status in RECONCILED or any(o.running for o in instances):
                self._spawn(row, instances, in_rollout=row.id in draining)
        if observed is not None:
            for deployment_id, instances in observed.items():
                if deployment_id not in by_id:
                    await self._reap(instances)

    async def _on_notify(self, deployment_id: str, *, only_if_new: bool = False) -> None:
        actor = self.actors.get(deployment_id)
        if actor is not None:
            if not only_if_new:
                actor.inbox.send_nowait(dm.Refresh())
            return
        row = await self.ctx.deployments.get(deployment_id)
        if row is None or row.runtime not in self.ctx.runtimes:
            return
        if row.status in RECONCILED:
            instances = await self._observe_one(row)
            self._spawn(row, instances)

    async def _route(self, route: dm.Route) -> None:
        """Forward a message between deployment actors; answer for targets without an actor."""
        actor = self.actors.get(route.target)
        if actor is not None:
            actor.inbox.send_nowait(route.message)
            return
        if isinstance(route.message, dm.Refresh):
            await self._on_notify(route.target)
            return
        if isinstance(route.message, dm.DrainOne):
            # No actor: the parent is gone, or terminal with nothing left running.
            row = await self.ctx.deployments.get(route.target)
            reply: object = dm.ParentGone(route.target) if row is None else dm.DrainDone(route.target, None, 0)
            sender = self.actors.get(route.sender)
            if sender is not None:
                sender.inbox.send_nowait(reply)

    def _spawn(self, row: Deployment, instances: list[ObservedInstance], *, in_rollout: bool = False) -> None:
        """Start the one actor of this deployment; a no-op when it already has one.

        Callers await the store or the runtime before spawning, so another task
        (the ticker, a notify) may have spawned it meanwhile: two actors for one
        deployment would double its instances.
        """
        if row.id in self.actors:
            return
        actor = DeploymentActor(row, self.ctx, instances, supervisor=self.inbox, in_rollout=in_rollout)
        self.actors[row.id] = actor
        assert self._nursery is not None
        self._nursery.start_soon(self._supervised, actor)

    async def _supervised(self, actor: DeploymentActor) -> None:
        """One_for_one: a crashing deployment actor restarts from the store, alone."""
        first = True

        async def body() -> None:
            nonlocal first
            current = actor
            if not first:
                row = await self.ctx.deployments.get(actor.id)
                if row is None:
                    return
                instances = await self._observe_one(row)
                current = DeploymentActor(row, self.ctx, instances, supervisor=self.inbox)
                current.inbox = actor.inbox  # keep the address others already hold
                self.actors[actor.id] = current
            first = False
            await current.run()

        async def on_crash(exc: BaseException, attempt: int) -> None:
            await self.ctx.recorder.event(
                actor.id,
                actor.deployment.namespace,
                "error",
                "runtime_error",
                f"Deployment supervisor crashed ({exc!r}); restarting it (attempt {attempt})",
            )

        try:
            await supervise(f"deployment {actor.id[:8]}", body, on_crash=on_crash)
        except IntensityExceeded:
            log.error("deployment actor %s gave up after repeated crashes", actor.id[:8])
        finally:
            self.inbox.send_nowait(ActorFinished(actor.id, self.actors.get(actor.id, actor)))

    # ------------------------------------------------------------ observation

    async def _observe_all(self) -> dict[str, list[ObservedInstance]] | None:
        """Every owned instance of every runtime, by deployment id; None if a runtime is down."""
        found: dict[str, list[ObservedInstance]] = defaultdict(list)
        complete = True
        for name, runtime in self.ctx.runtimes.items():
            try:
                for instance in await runtime.list_instances(details=False):
                    found[instance.deployment_id].append(instance)
                    self._runtime_of[instance.id] = name
            except EngineUnavailable as exc:
                log.warning("runtime %s unavailable while listing instances: %s", name, exc)
                complete = False
        return found if complete else None

    async def _observe_one(self, row: Deployment) -> list[ObservedInstance]:
        runtime = self.ctx.runtimes.get(row.runtime)
        if runtime is None:
            return []
        try:
            found = await runtime.list_instances(deployment_id=row.id, details=False)
        except EngineUnavailable:
            return []
        for instance in found:
            self._runtime_of[instance.id] = row.runtime
        return found

    async def _reap(self, instances: list[ObservedInstance]) -> None:
        """Remove instances whose deployment no longer exists (a crash mid-delete).

        Only instances labelled with this server's identity: another server (or a
        test run) sharing the engine keeps its workloads.
        """
        for observed in instances:
            if not self.ctx.server_id or observed.server_id != self.ctx.server_id:
                continue
            runtime = self.ctx.runtimes.get(self._runtime_of.get(observed.id, ""))
            if runtime is None:
                continue
            try:
                handle = await runtime.adopt(observed)
                await runtime.remove(handle, timeout=self.ctx.stop_timeout)
                log.info("reaped orphan instance %s", observed.name)
            except Exception:
                log.exception("reaping orphan instance %s failed", observed.name)

    async def _release_namespace(self, name: str, attempts: int = 30, delay: float = 2.0) -> None:
        """Retry while a deletion in that namespace is still tearing its containers down."""
        pending = dict(self.ctx.runtimes)
        for _ in range(attempts):
            for runtime_name, runtime in list(pending.items()):
                try:
                    if await runtime.release_namespace(name):
                        del pending[runtime_name]
                except EngineUnavailable:
                    continue
                except Exception:
                    log.exception("releasing namespace %s on %s failed", name, runtime_name)
                    del pending[runtime_name]
            if not pending:
                return
            await trio.sleep(delay)
        log.warning("namespace %s: resources still in use on %s; left in place", name, sorted(pending))

    async def _ticker(self) -> None:
        """Safety net only: events and pidfds do the real work."""
        while True:
            await trio.sleep(self.tick_interval)
            self.ticks += 1
            try:
                await self.tick_once()
            except Exception:
                log.exception("reconcile tick failed")

    async def tick_once(self) -> None:
        taken_at = trio.current_time()
        observed = await self._observe_all()
        # Shared snapshots: most rows have their actor already, and are never decoded here.
        snapshots = await self.ctx.deployments.snapshots()
        known = {snapshot.id for snapshot in snapshots}
        for snapshot in snapshots:
            if snapshot.id in self.actors:
                continue
            if not (snapshot.status in RECONCILED or (snapshot.status in TERMINAL and observed is not None)):
                continue
            row = snapshot.deployment()
            if row.runtime not in self.ctx.runtimes:
                continue
            if row.status in RECONCILED:
                self._spawn(row, (observed or {}).get(row.id, []))
            elif observed is not None:
                # Terminal deployments keep nothing running.
                await self._reap([o for o in observed.get(row.id, []) if o.running])
        if observed is None:
            return
        for deployment_id, actor in self.actors.items():
            actor.inbox.send_nowait(dm.Observe(tuple(observed.get(deployment_id, ())), taken_at))
        for deployment_id, instances in observed.items():
            if deployment_id not in known:
                await self._reap(instances)
