"""`ring-actors serve`: bootstrap, the root nursery, and graceful shutdown.

trio.run(main)
└── root nursery
    ├── collector policy   (garbage collector: freeze long-lived objects, reclaim now and then)
    ├── write-behind       (commits deferred writes, e.g. deployment events, every few ms)
    ├── runtime watchers   (one per enabled runtime: engine event stream)
    ├── root supervisor    (deployment actors -> instance actors; safety-net tick)
    ├── background jobs    (health-check history sweep, stats cache, ...)
    └── api                (hypercorn serving the quart-trio app)

SIGTERM/SIGINT stop accepting requests, let in-flight ones finish, then cancel the
tree. Cancellation never stops a workload: the next start re-adopts them.
"""

from __future__ import annotations

import functools
import gc
import logging
import signal
import socket
import sys
import time

import trio

from ring_actors import __version__
from ring_actors.bus import EventBus
from ring_actors.config import ConfigError, Settings, load_secret_key
from ring_actors.recorder import Recorder
from ring_actors.runtimes.registry import connect_runtimes
from ring_actors.services import Services
from ring_actors.store.db import Database
from ring_actors.store.deployments import DeploymentRepo
from ring_actors.store.events import EventRepo
from ring_actors.store.identity import server_identity
from ring_actors.supervisors.context import ActorContext
from ring_actors.supervisors.root import RootSupervisor

log = logging.getLogger("ring_actors.server")


async def build_services(settings: Settings, *, allow_degraded: bool = False) -> Services:
    """Everything but the running tasks: validated key, open database, pinged runtimes."""
    secret_key = load_secret_key()
    # Runtimes first: a server that refuses to start must not have created its database.
    runtimes = await connect_runtimes(settings, allow_degraded=allow_degraded)
    db = await Database.open(settings.database_path)
    from ring_actors.store.users import seed_default_admin

    await seed_default_admin(db)
    bus = EventBus()
    events = EventRepo(db)
    recorder = Recorder(events, bus)
    deployments = DeploymentRepo(db)
    ctx = ActorContext(
        server_id=await server_identity(db),
        runtimes=runtimes,
        deployments=deployments,
        recorder=recorder,
        backoff=settings.backoff,
        stop_timeout=settings.stop_timeout,
        drain_grace=settings.drain_grace,
        apply_timeout=settings.apply_timeout,
        rollout_deadline=settings.rollout_deadline,
        secrets=_secret_source(db, secret_key),
    )
    supervisor = RootSupervisor(ctx, tick_interval=settings.scheduler_interval)
    return Services(
        settings=settings,
        db=db,
        deployments=deployments,
        events=events,
        bus=bus,
        recorder=recorder,
        runtimes=runtimes,
        supervisor=supervisor,
        secret_key=secret_key,
        started_at=time.time(),
        runtime_health={name: "up" for name in runtimes},
    )


GC_RECLAIM_CHECK_INTERVAL = 60.0
GC_RECLAIM_GROWTH = 1.5
"""Reclaim once the frozen objects outnumber those of the last reclaim by this factor."""


class CollectorPolicy:
    """Short pauses of Python's cyclic garbage collector on a server holding ~10^6 live objects.

    A full collection walks every tracked object: at 2,000 deployments x 5 instances,
    over a million (tasks, channels, closures of the actors) and 0.5-1 s during which
    the event loop stands still, each time the heap has grown by a quarter. What
    survives a full collection is nearly all long-lived, so it is frozen
    (`gc.freeze()`: out of every later collection) and the next full collection walks
    only what is newer. Objects freed by reference counting go as before (measured:
    deleting or crash-replacing instances leaves nothing behind); only a reference
    cycle that dies after being frozen stays, until `reclaim()` unfreezes and collects
    everything once. `serve_collector_policy` reclaims when the frozen set has grown
    by GC_RECLAIM_GROWTH since the last time: a few times while a server grows, never
    in a steady state, and such cycles can never hold more than half the live heap.
    """

    def __init__(self) -> None:
        self.installed = False
        self.frozen_after_reclaim = 0
        self.reclaims = 0

    def install(self) -> None:
        """Collect what is garbage now, freeze the rest, and freeze survivors of every full collection."""
        if self.installed:
            return
        gc.collect()  # at start-up: small, and nothing dead gets frozen
        gc.freeze()  # modules, configuration: they live as long as the server
        gc.callbacks.append(self._on_collection)
        self.frozen_after_reclaim = gc.get_freeze_count()
        self.installed = True

    def uninstall(self) -> None:
        """Back to CPython's defaults; every frozen object is collectable again."""
        if not self.installed:
            return
        gc.callbacks.remove(self._on_collection)
        gc.unfreeze()
        self.installed = False

    def reclaim(self) -> int:
        """Unfreeze and collect everything (one long pause); returns the objects collected."""
        gc.unfreeze()
        collected = gc.collect()  # its "stop" callback freezes the survivors again
        self.frozen_after_reclaim = gc.get_freeze_count()
        self.reclaims += 1
        return collected

    def reclaim_if_grown(self) -> bool:
        """Reclaim when the frozen set grew by GC_RECLAIM_GROWTH since the last reclaim."""
        if gc.get_freeze_count() < GC_RECLAIM_GROWTH * max(self.frozen_after_reclaim, 1):
            return False
        began = time.perf_counter()
        collected = self.reclaim()
        log.info(
            "garbage collector: reclaimed %d objects in %.0f ms; %d long-lived objects frozen",
            collected,
            (time.perf_counter() - began) * 1000,
            self.frozen_after_reclaim,
        )
        return True

    def _on_collection(self, phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info.get("generation") == 2:
            gc.freeze()


async def serve_collector_policy(
    *,
    check_interval: float = GC_RECLAIM_CHECK_INTERVAL,
    task_status: trio.TaskStatus[CollectorPolicy] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Apply `CollectorPolicy` for as long as this task runs; reclaim when the frozen set grew.

    Started first in the server's root nursery: the policy lives exactly as long as
    the server, and cancellation (shutdown) restores CPython's defaults.
    """
    policy = CollectorPolicy()
    policy.install()
    try:
        task_status.started(policy)
        while True:
            await trio.sleep(check_interval)
            policy.reclaim_if_grown()
    finally:
        policy.uninstall()


def _secret_source(db: Database, key: bytes):
    try:
        from ring_actors.store.secrets import StoreSecretSource
    except ImportError:
        from ring_actors.supervisors.spec_builder import NoSecrets

        return NoSecrets()
    return StoreSecretSource(db, key)


def banner(settings: Settings, runtimes: list[str]) -> str:
    host, port = settings.context.host, settings.context.port
    lines = [f"  ring-actors {__version__}  ready", ""]
    if host in ("0.0.0.0", "::"):
        lines.append(f"  ➜  Local:     http://127.0.0.1:{port}")
        lines.append(f"  ➜  Network:   http://{_lan_ip() or '(no LAN address detected)'}:{port}")
    elif host in ("127.0.0.1", "localhost"):
        lines.append(f"  ➜  Local:     http://127.0.0.1:{port}")
    else:
        lines.append(f"  ➜  Network:   http://{host}:{port}")
    lines.append("  ➜  Dashboard: disabled")
    lines.append(f"  ➜  Runtimes:  {', '.join(sorted(runtimes))}")
    return "\n".join(lines)


def _lan_ip() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("10.255.255.255", 1))  # no packet is sent for UDP connect
            return probe.getsockname()[0]
    except OSError:
        return None


async def serve(settings: Settings, *, allow_degraded: bool = False) -> None:
    from hypercorn.config import Config as HypercornConfig
    from hypercorn.trio import serve as hypercorn_serve

    from ring_actors.http.app import create_app

    services = await build_services(settings, allow_degraded=allow_degraded)
    app = create_app(services)
    config = HypercornConfig()
    config.bind = [f"{settings.context.host}:{settings.context.port}"]
    config.graceful_timeout = 10
    config.accesslog = None
    shutdown = trio.Event()
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_collector_policy)
            # Before the supervisor, so events recorded from the first actor step on are committed
            # within milliseconds; on shutdown it commits what is left (db.close() catches stragglers).
            await nursery.start(services.db.serve_write_behind)
            for runtime in services.runtimes.values():
                await nursery.start(runtime.serve)
            await nursery.start(services.supervisor.run)
            nursery.start_soon(_watch_signals, shutdown)
            for job in _background_jobs(services):
                nursery.start_soon(job)

            async def api() -> None:
                await hypercorn_serve(app, config, shutdown_trigger=shutdown.wait)
                nursery.cancel_scope.cancel()  # the API drained: stop the rest, leave workloads

            nursery.start_soon(api)
            print(banner(settings, list(services.runtimes)), flush=True)
    finally:
        services.db.close()
        log.info("ring-actors stopped; workloads left running")


def _background_jobs(services: Services) -> list:
    try:
        from ring_actors.background import jobs
    except ImportError:
        return []
    return jobs(services)


async def _watch_signals(shutdown: trio.Event) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log.info("received %s: shutting down (workloads keep running)", signal.Signals(signum).name)
            shutdown.set()
            return


def run_server(settings: Settings, *, allow_degraded: bool = False) -> int:
    """Entry point of `ring-actors serve`; returns the process exit code."""
    try:
        trio.run(functools.partial(serve, settings, allow_degraded=allow_degraded))
    except ConfigError as exc:
        print(f"Refusing to start: {exc}" if not str(exc).startswith("Refusing") else str(exc), file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"ring-actors: cannot serve the API: {exc}", file=sys.stderr)
        return 1
    return 0
