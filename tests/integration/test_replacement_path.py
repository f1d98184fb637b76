"""The crash -> replacement path on the REAL Docker engine and Podman service.

Every test here runs once per engine (ids `docker`, `podman`), each param in its own xdist group. What is
checked is what makes the path short without changing behaviour:

- after an immediate restart the dead container is removed only once its replacement is running, and it is
  removed on every path: replacement running, replacement failed, instance actor cancelled mid-create or
  between the replacement's start and the removal (a shutdown);
- a dead container left behind by a server that died in that window is reaped by re-adoption;
- the namespace network is looked up once per runtime, and created again when it was removed behind the
  runtime's back.

Instance actors are driven directly (a `Mailbox` stands for the deployment actor) where a test needs to
place a cancellation exactly; the engine's own view is read through plain httpx (`Engine`).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from ring_actors.actors import Mailbox
from ring_actors.instances import messages as msg
from ring_actors.instances.actor import InstanceActor
from ring_actors.runtimes.base import InstanceHandle, InstanceSpec
from ring_actors.runtimes.errors import FailureKind
from ring_actors.schemas.manifest import RuntimeConfig
from ring_actors.store.db import Database
from ring_actors.supervisors.policy import BackoffSettings
from tests.support.engines import IMAGE_V1
from tests.support.runtimes import Engine, Scope, engine_params
from tests.unit.actor_harness import running_tree

pytestmark = [
    pytest.mark.parametrize(
        "engine", engine_params({"docker": "replacement-docker", "podman": "replacement-podman"}), indirect=True
    ),
    pytest.mark.usefixtures("registries", "deadline"),
]

TEST_TIMEOUT = 180.0
IMMEDIATE = BackoffSettings(base=0.0, maximum=0.0, healthy_window=30)
"""Every restart immediate: each replacement takes the deferred-removal path."""
CRASH = ("sh", "-c", "sleep 0.3; exit 3")
LOCAL_IMAGE = RuntimeConfig(image_pull_policy="IfNotPresent")


class _Recording:
    """Mixin for a runtime class: a log of creates and removals, and hooks to act inside `create`."""

    def __init__(self, *args: Any, **options: Any) -> None:
        super().__init__(*args, **options)
        self.log: list[tuple[str, str]] = []  # (what, container id or create index): create, created, remove...
        self.before_create: Callable[[int], None] | None = None  # called with the create's index
        self.after_create: Callable[[int, InstanceHandle], None] | None = None
        self._creates = 0
        self._changed = trio.Event()

    async def create(self, spec: InstanceSpec) -> InstanceHandle:
        index = self._creates
        self._creates += 1
        self.record("create", str(index))
        if self.before_create is not None:
            self.before_create(index)
        handle: InstanceHandle = await super().create(spec)  # type: ignore[misc]
        self.record("created", handle.id)
        if self.after_create is not None:
            self.after_create(index, handle)
        return handle

    async def remove(self, handle: InstanceHandle, *, timeout: float = 10.0) -> None:
        self.record("remove", handle.id)
        try:
            await super().remove(handle, timeout=timeout)  # type: ignore[misc]
        finally:
            self.record("removed", handle.id)

    def record(self, what: str, container_id: str) -> None:
        self.log.append((what, container_id))
        self._changed.set()
        self._changed = trio.Event()

    def index(self, what: str, container_id: str) -> int:
        return self.log.index((what, container_id))

    async def until(self, predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
        with trio.fail_after(timeout):
            while not (found := predicate()):
                await self._changed.wait()
            return found


_RECORDING: dict[type, type] = {}


def recording_runtime(engine: Engine) -> Any:
    """The engine's runtime with a log of creates and removals."""
    cls = _RECORDING.setdefault(
        engine.runtime_cls, type(f"Recording{engine.runtime_cls.__name__}", (_Recording, engine.runtime_cls), {})
    )
    return cls(f"unix://{engine.sock}")


async def _next(parent: Mailbox, kind: type, timeout: float = 30.0) -> Any:
    """The deployment actor's side: the next message of `kind` from the instance actor (others skipped)."""
    with trio.fail_after(timeout):
        while True:
            message = await parent.receive()
            if isinstance(message, kind):
                return message


async def _gone(engine: Engine, container_id: str) -> bool:
    return await engine.status(f"/containers/{container_id}/json") == 404


async def test_dead_container_is_removed_only_after_its_replacement_runs(engine: Engine, cleanup) -> None:
    """Verify each dead container's removal starts after its replacement was created, and it is then gone."""
    runtime = recording_runtime(engine)
    async with running_tree(runtime, backoff=IMMEDIATE) as tree:
        deployment = await tree.apply(
            image=IMAGE_V1, command=list(CRASH), namespace=f"r{engine.namespace_prefix}{uuid.uuid4().hex[:6]}",
            config=LOCAL_IMAGE,
        )
        cleanup.append(deployment.id)
        async with tree.watch(deployment.id) as until:
            await until("crash_loop_back_off", timeout=60)
        created = [cid for what, cid in runtime.log if what == "created"]
        assert len(created) == 5
        # Every dead container but the last had a replacement; each is removed after that one was created.
        await runtime.until(lambda: all(("removed", cid) in runtime.log for cid in created))
        for dead, replacement in itertools.pairwise(created):
            assert runtime.index("created", replacement) < runtime.index("remove", dead), runtime.log
            assert await _gone(engine, dead)
    assert engine.list_containers(deployment.id) == []


async def _first_exit(
    runtime: Any, parent: Mailbox, nursery: trio.Nursery, spec: InstanceSpec
) -> tuple[InstanceActor, InstanceHandle]:
    """Start an instance actor whose first container crashes; return once it reported the exit."""
    actor = InstanceActor("slot", runtime, _returning(spec), parent, stop_timeout=2)
    nursery.start_soon(actor.run)
    started = await _next(parent, msg.Started)
    exited = await _next(parent, msg.Exited)
    assert exited.handle.id == started.handle.id and exited.status.exit_code == 3
    return actor, started.handle


async def test_actor_cancelled_between_replacement_start_and_removal_leaks_nothing(
    engine: Engine, scope: Scope
) -> None:
    """Verify a shutdown right after the replacement started still removes the dead container, not the new one."""
    runtime = recording_runtime(engine)
    spec = scope.spec("crash", command=CRASH)
    parent: Mailbox = Mailbox()
    replacement: list[InstanceHandle] = []
    async with runtime, trio.open_nursery() as nursery:
        await nursery.start(runtime.serve)
        with trio.CancelScope() as actor_scope:
            async with trio.open_nursery() as actor_nursery:
                actor, dead = await _first_exit(runtime, parent, actor_nursery, spec)

                def cancel_once_started(index: int, handle: InstanceHandle) -> None:
                    if index == 1:
                        replacement.append(handle)
                        actor_scope.cancel(reason="server shutdown")

                runtime.after_create = cancel_once_started
                # The replacement idles: only the cancellation can end the actor.
                actor.build_spec = _returning(scope.spec("crash", deployment_id=spec.deployment_id))
                actor.inbox.send_nowait(msg.Restart(0.0))
        assert actor_scope.cancelled_caught
        assert replacement, "the replacement was not created"
        assert await _gone(engine, dead.id), "the dead container leaked"
        assert ("remove", replacement[0].id) not in runtime.log
        assert (await engine.inspect(replacement[0].id))["State"]["Running"], "a shutdown must leave it running"
        await runtime.remove(replacement[0], timeout=0)
        nursery.cancel_scope.cancel(reason="test done")


def _returning(spec: InstanceSpec) -> Callable[[], Any]:
    async def build() -> InstanceSpec:
        return spec

    return build


async def test_actor_cancelled_mid_create_leaks_nothing(engine: Engine, scope: Scope) -> None:
    """Verify a shutdown while the replacement is being created removes the dead container and the half-made one."""
    runtime = recording_runtime(engine)
    spec = scope.spec("crash", command=CRASH)
    parent: Mailbox = Mailbox()
    async with runtime, trio.open_nursery() as nursery:
        await nursery.start(runtime.serve)
        with trio.CancelScope() as actor_scope:
            async with trio.open_nursery() as actor_nursery:
                actor, dead = await _first_exit(runtime, parent, actor_nursery, spec)

                def cancel_at_create(index: int) -> None:
                    if index == 1:
                        actor_scope.cancel(reason="server shutdown")

                runtime.before_create = cancel_at_create
                actor.inbox.send_nowait(msg.Restart(0.0))
        assert actor_scope.cancelled_caught
        assert await _gone(engine, dead.id), "the dead container leaked"
        assert engine.list_containers(spec.deployment_id) == []
        nursery.cancel_scope.cancel(reason="test done")


async def test_dead_container_is_removed_when_the_replacement_fails(engine: Engine, scope: Scope) -> None:
    """Verify a failed replacement is reported and the dead container is removed anyway."""
    runtime = recording_runtime(engine)
    spec = scope.spec("crash", command=CRASH)
    missing = scope.spec(
        "crash", deployment_id=spec.deployment_id, image=f"{IMAGE_V1}-missing{uuid.uuid4().hex[:6]}",
        pull_policy="Never",
    )
    parent: Mailbox = Mailbox()
    async with runtime, trio.open_nursery() as nursery:
        await nursery.start(runtime.serve)
        actor, dead = await _first_exit(runtime, parent, nursery, spec)
        actor.build_spec = _returning(missing)
        actor.inbox.send_nowait(msg.Restart(0.0))
        failed = await _next(parent, msg.CreateFailed)
        assert failed.failure.kind is FailureKind.IMAGE_NOT_FOUND
        await runtime.until(lambda: ("removed", dead.id) in runtime.log)
        assert await _gone(engine, dead.id)
        actor.inbox.send_nowait(msg.Stop())
        await _next(parent, msg.Stopped)
        assert engine.list_containers(spec.deployment_id) == []
        nursery.cancel_scope.cancel(reason="test done")


async def test_dead_container_left_by_a_dead_server_is_reaped_on_readoption(
    engine: Engine, cleanup, tmp_path: Path
) -> None:
    """Verify an exited labelled container found at start-up is removed and replaced (the server-crash window)."""
    db_path = tmp_path / "ring.db"
    ns = f"r{engine.namespace_prefix}{uuid.uuid4().hex[:6]}"
    db = await Database.open(db_path)
    try:
        async with running_tree(engine.new_runtime(), db=db, backoff=IMMEDIATE) as tree:
            deployment = await tree.apply(
                image=IMAGE_V1, command=["sh", "-c", "sleep 300"], namespace=ns, config=LOCAL_IMAGE
            )
            cleanup.append(deployment.id)
            async with tree.watch(deployment.id) as until:
                await until("running", timeout=60)
        # The tree is gone (as after a crash: nothing removed); its container dies while no server runs.
        (first,) = engine.list_containers(deployment.id)
        engine.kill_now(first["Id"])
        with trio.fail_after(20):
            while engine.inspect_now(first["Id"])["State"]["Running"]:
                await trio.sleep(0.05)
        async with running_tree(engine.new_runtime(), db=db, backoff=IMMEDIATE) as tree:
            with trio.fail_after(60):  # test-side observation of the engine
                while True:
                    containers = engine.list_containers(deployment.id)
                    ids = [c["Id"] for c in containers]
                    if first["Id"] not in ids and any(c["State"] == "running" for c in containers):
                        break
                    await trio.sleep(0.1)
            assert "container_crashed" in await tree.reasons(deployment.id)
    finally:
        db.close()


async def test_namespace_network_is_looked_up_once_and_recreated_when_removed(engine: Engine, scope: Scope) -> None:
    """Verify creates trust the ensured network, and one removed behind our back is created again."""
    runtime = engine.new_runtime()
    lookups: list[str] = []
    find_network = runtime.api.find_network

    async def counting_find_network(name: str) -> Any:
        lookups.append(name)
        return await find_network(name)

    runtime.api.find_network = counting_find_network  # type: ignore[method-assign]
    network = engine.network_name(scope.namespace)
    async with runtime:
        first = await runtime.create(scope.spec("web"))
        # Podman's network creation may race another container's interface removal and be retried
        # (PodmanRuntime._ensure_namespace_network), each attempt looking the network up again.
        assert lookups and set(lookups) == {network}
        ensured = len(lookups)
        second = await runtime.create(scope.spec("web"))
        assert len(lookups) == ensured, "the second create looked the network up again"
        for handle in (first, second):
            await runtime.remove(handle, timeout=0)
        async with engine.client() as client:
            for found in await engine.networks_named(network):
                with trio.fail_after(10):  # the removed containers' endpoints may take a moment to go
                    while (await client.delete(f"/networks/{found['Id']}")).status_code not in (200, 204, 404):
                        await trio.sleep(0.1)
        assert await engine.networks_named(network) == []
        third = await runtime.create(scope.spec("web"))
        assert len(lookups) > ensured and set(lookups) == {network}, "the removed network was not looked up again"
        assert len(await engine.networks_named(network)) == 1
        info = await engine.inspect(third.id)
        assert info["State"]["Running"] and set(info["NetworkSettings"]["Networks"]) == {network}
        await runtime.remove(third, timeout=0)
