"""An in-process supervision tree on any runtime (SIMULATED for unit tests, real engines for integration)."""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import trio

from ring_actors.bus import EventBus
from ring_actors.recorder import Recorder
from ring_actors.runtimes.simulated import SimulatedRuntime
from ring_actors.schemas.manifest import Deployment
from ring_actors.store.db import Database, utcnow
from ring_actors.store.deployments import DeploymentRepo
from ring_actors.store.events import EventRepo
from ring_actors.store.identity import server_identity
from ring_actors.supervisors.context import ActorContext
from ring_actors.supervisors.policy import BackoffSettings
from ring_actors.supervisors.root import RootSupervisor

FAST = BackoffSettings(base=0.01, maximum=0.05, healthy_window=0.3)


@dataclass
class Tree:
    db: Database
    repo: DeploymentRepo
    events: EventRepo
    bus: EventBus
    runtime: Any
    root: RootSupervisor
    ctx: ActorContext

    async def apply(self, **fields) -> Deployment:
        fields.setdefault("name", "web")
        fields.setdefault("namespace", "default")
        fields.setdefault("runtime", self.runtime.name)
        fields.setdefault("image", "busybox")
        deployment = Deployment(id=str(uuid.uuid4()), created_at=utcnow(), **fields)
        await self.repo.insert(deployment)
        self.root.notify(deployment.id)
        return deployment

    async def delete(self, deployment_id: str) -> None:
        await self.repo.set_status(deployment_id, "deleted")
        self.root.notify(deployment_id)

    async def reasons(self, deployment_id: str) -> list[str]:
        return [e.reason for e in reversed(await self.events.list(deployment_id, limit=1000))]

    @asynccontextmanager
    async def watch(self, deployment_id: str):
        """Yield an async function waiting for a given status of this deployment (via the bus)."""
        async with self.bus.subscribe(lambda m: m.deployment_id == deployment_id and m.kind == "status") as sub:

            async def until(status: str, timeout: float = 5.0) -> None:
                current = await self.repo.get(deployment_id)
                if (current.status if current else "purged") == status:
                    return
                with trio.fail_after(timeout):
                    async for message in sub:
                        if message.payload["to"] == status:
                            return

            yield until


@asynccontextmanager
async def running_tree(
    runtime: Any = None, db: Database | None = None, tick: float = 3600, backoff: BackoffSettings = FAST
):
    runtime = runtime or SimulatedRuntime()
    db = db or await Database.open(":memory:")
    bus = EventBus()
    events = EventRepo(db)
    repo = DeploymentRepo(db)
    ctx = ActorContext(
        server_id=await server_identity(db),
        runtimes={runtime.name: runtime}, deployments=repo, recorder=Recorder(events, bus), backoff=backoff, stop_timeout=2
    )
    root = RootSupervisor(ctx, tick_interval=tick)
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.serve)
        await nursery.start(root.run)
        yield Tree(db, repo, events, bus, runtime, root, ctx)
        nursery.cancel_scope.cancel()
