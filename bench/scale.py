"""Scale on the SIMULATED runtime: thousands of deployment and instance actors, no engine involved.

Every figure here comes from `ring_actors.runtimes.simulated.SimulatedRuntime` (in-memory instances, zero create
latency): it measures ring-actors' own machinery (actors, SQLite store, event bus, HTTP layer), never an engine.

Each size (deployments x 5 instances) runs in a FRESH SUBPROCESS so its peak RSS is its own. The subprocess
builds the server's parts as `ring_actors.server` does (collector policy, write-behind task, SQLite file in WAL
mode, root supervisor with the default 10 s safety-net tick, Ring's default backoff, the server's background jobs,
and the quart-trio app served by hypercorn on 127.0.0.1), with the simulated runtime registered instead of an
engine, then measures:

- converge from empty: rows inserted first (timed apart), then every deployment notified at once; until each
  one published `running` on the event bus.
- idle CPU: process CPU time (user + system, all threads) over a quiet window / wall time, in % of one core.
- re-adoption: the whole server is cancelled (workloads keep running) and a new one is built on the same
  database file and the same simulated runtime; until every instance is adopted and live again. The first
  server's heap is collected before the clock starts (timed apart): a restarted server is a new process.
- `GET /deployments` latency from a client in ANOTHER process (keep-alive, sequential requests): first quiet,
  then while 10 % of all instances crash and are replaced (Ring's default backoff: 1 s before a replacement).
- peak RSS: VmHWM of the subprocess at the end.
When the HTTP layer cannot be imported, the latency phase times `DeploymentRepo.list` + live-instance
composition + JSON encoding in-process instead, and says so. Parts an older tree lacks (collector policy,
write-behind, `Database.statistics`) are skipped or measured by wrapping, so one bench compares two revisions.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import json
import math
import os
import pstats
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import trio

from bench.common import (
    cpu_seconds,
    fmt,
    log,
    md_table,
    ms,
    peak_rss_mb,
    rss_mb,
    summary,
)

INSTANCES = 5
AIMS = {"converge_s": 10.0, "idle_cpu_pct": 5.0, "peak_rss_mb": 400.0, "p99_ms": 50.0}


# --------------------------------------------------------------------------- the server, assembled in-process


def _simulated_runtime_class() -> Any:
    from ring_actors.runtimes.simulated import SimulatedRuntime

    class CountingSimulatedRuntime(SimulatedRuntime):
        """SIMULATED runtime that also counts adoptions (re-adoption finishes when all are adopted)."""

        adopted = 0

        async def adopt(self, observed: Any) -> Any:
            self.adopted += 1
            return await super().adopt(observed)

    return CountingSimulatedRuntime


class DbMeter:
    """SQLite work of every database the benchmark opens, from `Database.statistics()`.

    calls = `call()`s plus write-behind writes (`defer()`, e.g. deployment events): the statements asked for;
    transactions = worker-thread hops, each one transaction (calls queued together share one); busy = time
    inside those transactions (they are serialized: one writer).
    """

    def __init__(self) -> None:
        self._dbs: list[Any] = []
        self._calls = 0  # for a Database without statistics() (older trees): every call is a transaction
        self._busy = 0.0

    def attach(self, db: Any) -> None:
        if hasattr(db, "statistics"):
            self._dbs.append(db)
            return
        call, transaction = db.call, db._transaction

        async def counted(fn: Any) -> Any:
            self._calls += 1
            return await call(fn)

        def timed_transaction(fn: Any) -> Any:
            began = time.perf_counter()
            try:
                return transaction(fn)
            finally:
                self._busy += time.perf_counter() - began

        db.call, db._transaction = counted, timed_transaction

    def snapshot(self) -> tuple[int, float, int]:
        stats = [db.statistics() for db in self._dbs]
        return (self._calls + sum(s.calls + s.deferred for s in stats),
                self._busy + sum(s.busy_seconds for s in stats),
                self._calls + sum(s.transactions for s in stats))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """Services + root supervisor + background jobs + (when importable) the HTTP app, on one DB file."""

    def __init__(self, tmp: Path, runtime: Any, meter: DbMeter, *, gc_default: bool = False) -> None:
        self.tmp = tmp
        self.gc_default = gc_default  # experiment: CPython's default collector instead of the server's policy
        self.gc_policy: Any = None
        self.runtime = runtime
        self.meter = meter
        self.http = "none"
        self.port = 0
        self.running_ids: set[str] = set()
        self.all_running = trio.Event()
        self.expected = 0
        self.scale_ups = 0
        self.last_scale_up = 0.0
        self.crashes_counted = 0
        self.crash_loop_back_off = 0

    async def build(self) -> None:
        from ring_actors.bus import EventBus
        from ring_actors.config import load_settings
        from ring_actors.recorder import Recorder
        from ring_actors.services import Services
        from ring_actors.store.db import Database
        from ring_actors.store.deployments import DeploymentRepo
        from ring_actors.store.events import EventRepo
        from ring_actors.supervisors.context import ActorContext
        from ring_actors.supervisors.root import RootSupervisor

        settings = load_settings(env={"RING_CONFIG_DIR": str(self.tmp), "RING_DATABASE_PATH": str(self.tmp / "ring.db")})
        self.settings = settings
        db = await Database.open(settings.database_path)
        self.meter.attach(db)
        with contextlib.suppress(ImportError):
            from ring_actors.store.users import seed_default_admin

            await seed_default_admin(db)
        bus = EventBus()
        events = EventRepo(db)
        recorder = Recorder(events, bus)
        deployments = DeploymentRepo(db)
        ctx = ActorContext(
            runtimes={"simulated": self.runtime}, deployments=deployments, recorder=recorder,
            backoff=settings.backoff, stop_timeout=settings.stop_timeout, rollout_deadline=settings.rollout_deadline,
        )
        supervisor = RootSupervisor(ctx, tick_interval=settings.scheduler_interval)
        self.db, self.bus, self.repo, self.supervisor = db, bus, deployments, supervisor
        self.services = Services(
            settings=settings, db=db, deployments=deployments, events=events, bus=bus, recorder=recorder,
            runtimes={"simulated": self.runtime}, supervisor=supervisor, secret_key=os.urandom(32),
            started_at=time.time(), runtime_health={"simulated": "up"},
        )
        # Counting happens inside the bus's accept hook: exact publish instants, nothing buffered or dropped.
        bus._subscribers.add(_Tap(self))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            # As ring_actors.server: the collector policy lives as long as the server (its start
            # collects what the previous server left, as a new process would start clean).
            with contextlib.suppress(ImportError):
                from ring_actors.server import serve_collector_policy

                if not self.gc_default:
                    self.gc_policy = await nursery.start(serve_collector_policy)
            if hasattr(self.db, "serve_write_behind"):
                await nursery.start(self.db.serve_write_behind)
            await nursery.start(self.runtime.serve)
            await nursery.start(self.supervisor.run)
            self.tree_started = trio.current_time()
            with contextlib.suppress(ImportError):
                from ring_actors.background import jobs

                for job in jobs(self.services):
                    nursery.start_soon(job)
            await self._serve_http(nursery)
            task_status.started()

    async def _serve_http(self, nursery: trio.Nursery) -> None:
        try:
            from hypercorn.config import Config as HypercornConfig
            from hypercorn.trio import serve as hypercorn_serve

            from ring_actors.http.app import create_app
        except ImportError as exc:
            self.http = f"none ({exc.name or exc} not importable)"
            return
        app = create_app(self.services)
        config = HypercornConfig()
        self.port = _free_port()
        config.bind = [f"127.0.0.1:{self.port}"]
        config.accesslog = None
        config.errorlog = None
        await nursery.start(lambda task_status: hypercorn_serve(app, config, task_status=task_status))
        self.http = "quart-trio app (ring_actors.http.app.create_app) served by hypercorn on 127.0.0.1"


class _Tap:
    """Looks like a bus subscription; counts `running` statuses and `scale_up` events as they are published."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def offer(self, message: Any) -> None:
        server = self.server
        if message.kind == "status" and message.payload.get("to") == "running":
            server.running_ids.add(message.deployment_id)
            if server.expected and len(server.running_ids) >= server.expected and not server.all_running.is_set():
                server.converged_at = trio.current_time()
                server.all_running.set()
        elif message.kind == "event" and message.payload.get("reason") == "scale_up":
            server.scale_ups += 1
            server.last_scale_up = trio.current_time()
        elif message.kind == "event" and message.payload.get("reason") == "container_crashed":
            server.crashes_counted += 1
        elif message.kind == "status" and message.payload.get("to") == "crash_loop_back_off":
            server.crash_loop_back_off += 1


# --------------------------------------------------------------------------- the phases


def _deployment(index: int) -> Any:
    from ring_actors.schemas.manifest import Deployment
    from ring_actors.store.db import utcnow

    return Deployment(
        id=str(uuid.uuid4()), created_at=utcnow(), name=f"svc-{index:05d}", namespace=f"team-{index % 20:02d}",
        runtime="simulated", image="127.0.0.1:5000/ring-test/busybox:v1", replicas=INSTANCES,
        command=["sh", "-c", "sleep 3600"], labels={"app": f"svc-{index % 50}", "tier": "bench"},
        environment={"LOG_LEVEL": "info"},
    )


@contextlib.contextmanager
def _maybe_profile(enabled: bool, sink: dict[str, Any], key: str):
    """cProfile this block into sink[KEY_profile_tottime|cumulative] when enabled."""
    if not enabled:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        for sort in ("tottime", "cumulative"):
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(sort).print_stats(25)
            sink[f"{key}_profile_{sort}"] = out.getvalue()


class GcMeter:
    """Pauses of the cyclic garbage collector (they stop the event loop), per phase."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float, float]] = []  # (generation, started monotonic, seconds)
        self._began = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.pauses.append((info.get("generation", -1), time.monotonic(), time.perf_counter() - self._began))

    def window(self, start: float, end: float) -> dict[str, Any]:
        inside = [(g, d) for g, at, d in self.pauses if start <= at <= end]
        full = [d for g, d in inside if g == 2]
        return {"collections": len(inside), "total_s": sum(d for _, d in inside),
                "max_pause_ms": ms(max((d for _, d in inside), default=0.0)), "gen2_collections": len(full),
                "gen2_max_pause_ms": ms(max(full, default=0.0))}


async def child(size: int, idle: float, quiet: float, churn: float, profile: str | None,
                gc_default: bool = False) -> dict[str, Any]:
    profiles = set((profile or "").split(",")) - {""}
    result: dict[str, Any] = {"deployments": size, "instances": size * INSTANCES, "gc_default": gc_default}
    gc_meter = GcMeter()
    result["_gc"] = gc_meter
    runtime = _simulated_runtime_class()()
    meter = DbMeter()
    with tempfile.TemporaryDirectory(prefix="ring-bench-scale-") as tmp_name:
        tmp = Path(tmp_name)
        # ---- first server: converge from empty, then idle
        server = Server(tmp, runtime, meter, gc_default=gc_default)
        await server.build()
        async with trio.open_nursery() as nursery:
            await nursery.start(server.run)
            result["http"] = server.http
            rows = [_deployment(i) for i in range(size)]
            began = trio.current_time()
            for row in rows:
                await server.repo.insert(row)
            result["insert_s"] = trio.current_time() - began
            server.expected = size
            calls0, busy0, hops0 = meter.snapshot()
            cpu0 = cpu_seconds()
            lag: list[float] = []

            async def lag_probe() -> None:
                # How late a task wakes from a 10 ms sleep: one event-loop cycle under this load.
                while True:
                    planned = trio.current_time() + 0.01
                    await trio.sleep_until(planned)
                    lag.append(trio.current_time() - planned)

            probe_scope = trio.CancelScope()

            async def run_probe() -> None:
                with probe_scope:
                    await lag_probe()

            nursery.start_soon(run_probe)
            with _maybe_profile("converge" in profiles, result, "converge"):
                began = trio.current_time()
                for row in rows:
                    server.supervisor.notify(row.id)
                with trio.move_on_after(300):
                    await server.all_running.wait()
                converged = server.all_running.is_set()
                result["converge_s"] = (server.converged_at - began) if converged else math.nan
            probe_scope.cancel()
            result["converge_loop_lag_ms"] = summary([ms(x) for x in lag])
            result["converge_gc"] = gc_meter.window(time.monotonic() - (trio.current_time() - began), time.monotonic())
            calls1, busy1, hops1 = meter.snapshot()
            result["converge_db_calls"] = calls1 - calls0
            result["converge_db_transactions"] = hops1 - hops0
            result["converge_db_busy_s"] = busy1 - busy0
            result["converge_cpu_s"] = cpu_seconds() - cpu0
            result["converged"] = converged
            result["instances_running"] = sum(1 for i in runtime.instances.values() if i.running)
            result["rss_after_converge_mb"] = rss_mb()
            await trio.sleep(2.0)  # let trailing persists land
            calls0, busy0, hops0 = meter.snapshot()
            ticks0 = server.supervisor.ticks
            with _maybe_profile("idle" in profiles, result, "idle"):
                wall0, cpu0 = time.monotonic(), cpu_seconds()
                await trio.sleep(idle)
                wall1, cpu1 = time.monotonic(), cpu_seconds()
            calls1, busy1, hops1 = meter.snapshot()
            result["idle_gc"] = gc_meter.window(wall0, wall1)
            result["idle_window_s"] = wall1 - wall0
            result["idle_cpu_pct"] = 100.0 * (cpu1 - cpu0) / (wall1 - wall0)
            result["idle_ticks"] = server.supervisor.ticks - ticks0
            result["idle_db_calls"] = calls1 - calls0
            result["idle_db_busy_s"] = busy1 - busy0
            # Nothing crashed in this phase: every counted crash is a false one (e.g. a stale safety-net
            # observation delivered after an instance went live).
            result["gc_reclaims_first_server"] = server.gc_policy.reclaims if server.gc_policy else None
            if server.gc_policy is not None:
                # The policy's one long pause, which it runs at most once a minute and only after the frozen
                # heap grew by half (none fell inside the windows above): measured here, on purpose.
                reclaim_began = time.perf_counter()
                server.gc_policy.reclaim()
                result["gc_reclaim_pause_ms"] = ms(time.perf_counter() - reclaim_began)
            result["false_crashes_converge_idle"] = server.crashes_counted
            result["crash_loop_back_off_converge_idle"] = server.crash_loop_back_off
            nursery.cancel_scope.cancel(reason="simulated server restart")
        server.db.close()
        # A restarted server is a new process: it does not inherit the old one's heap. Collect what the
        # first server left (its actors are reference cycles) before the clock starts, timed apart.
        del server
        collect_began = time.perf_counter()
        gc.collect()
        result["restart_old_heap_collect_s"] = time.perf_counter() - collect_began

        # ---- second server on the same DB file and the same simulated runtime: re-adoption
        runtime.adopted = 0
        server = Server(tmp, runtime, meter, gc_default=gc_default)
        began = trio.current_time()
        readopt_profile = _maybe_profile("readopt" in profiles, result, "readopt")
        readopt_profile.__enter__()
        await server.build()
        async with trio.open_nursery() as nursery:
            await nursery.start(server.run)
            result["readopt_tree_started_s"] = trio.current_time() - began
            total = sum(1 for i in runtime.instances.values() if i.running)
            result["readopt_expected"] = total
            with trio.move_on_after(120):
                while runtime.adopted < total or sum(
                        len(server.supervisor.live_instances(row.id)) for row in rows) < total:
                    await trio.sleep(0.01)
            result["readopt_s"] = trio.current_time() - began
            readopt_profile.__exit__(None, None, None)
            result["readopt_live"] = sum(len(server.supervisor.live_instances(row.id)) for row in rows)
            result["created_during_readopt"] = runtime.created - result["instances"]
            await trio.sleep(1.0)

            # ---- GET /deployments while 10 % of the instances crash and restart
            with _maybe_profile("http" in profiles, result, "http"):
                await latency_phase(server, runtime, rows, quiet, churn, result)
            nursery.cancel_scope.cancel(reason="benchmark done")
        server.db.close()
    result["peak_rss_mb"] = peak_rss_mb()
    result["gc_objects_tracked_at_end"] = len(gc.get_objects())
    del result["_gc"]
    return result


async def latency_phase(server: Server, runtime: Any, rows: list[Any], quiet: float, churn: float,
                        result: dict[str, Any]) -> None:
    crashes = max(1, len(runtime.instances) // 10)
    victims = random.Random(7).sample(sorted(runtime.instances), crashes)
    marks: dict[str, float] = {}
    server.scale_ups = 0

    async def inject() -> None:
        await trio.sleep(quiet)
        marks["churn_start"] = time.monotonic()
        spread = churn * 0.6
        for index, victim in enumerate(victims):
            target = marks["churn_start"] + spread * index / len(victims)
            delay = target - time.monotonic()
            if delay > 0:
                await trio.sleep(delay)
            if victim in runtime.instances and runtime.instances[victim].running:
                runtime.crash(victim, 1)
        marks["crashes_done"] = time.monotonic()

    if server.port:
        result["latency_client"] = "separate process, httpx keep-alive, sequential GET /deployments over HTTP"
        token = await _login(server.port)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(inject)
            proc = await trio.run_process(
                [sys.executable, "-m", "bench.scale", "--client", f"http://127.0.0.1:{server.port}", token,
                 str(quiet + churn)],
                capture_stdout=True, check=False, cwd=str(Path(__file__).resolve().parent.parent),
            )
        samples = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    else:
        result["latency_client"] = (
            "HTTP layer not importable: in-process DeploymentRepo.list + live_instances + JSON encode, timed "
            "from a concurrent trio task")
        samples = {"at": [], "latency": [], "bytes": []}
        async with trio.open_nursery() as nursery:
            nursery.start_soon(inject)
            end = time.monotonic() + quiet + churn
            while time.monotonic() < end:
                began = time.monotonic()
                body = await _compose(server)
                samples["at"].append(began)
                samples["latency"].append(time.monotonic() - began)
                samples["bytes"].append(len(body))
    # The client's window may end before every replacement is up: wait (bounded) for the stragglers.
    with trio.move_on_after(60):
        while server.scale_ups < len(victims):
            await trio.sleep(0.05)
    recovered_by = server.last_scale_up
    start, done = marks.get("churn_start", math.inf), marks.get("crashes_done", math.inf)
    quiet_lat = [lat for at, lat in zip(samples["at"], samples["latency"]) if at < start]
    churn_lat = [lat for at, lat in zip(samples["at"], samples["latency"]) if at >= start]
    result["crashed"] = len(victims)
    result["replaced"] = server.scale_ups
    result["crash_window_s"] = done - start if done < math.inf else math.nan
    trio_minus_mono = trio.current_time() - time.monotonic()
    result["recovered_after_last_crash_s"] = (
        recovered_by - trio_minus_mono - done if server.scale_ups and done < math.inf else math.nan)
    result["response_bytes"] = samples["bytes"][-1] if samples["bytes"] else 0
    gc_meter: GcMeter = result["_gc"]
    first = samples["at"][0] if samples["at"] else start
    last = samples["at"][-1] if samples["at"] else start
    result["quiet_gc"] = gc_meter.window(first, start)
    result["churn_gc"] = gc_meter.window(start, last)
    result["quiet_latency_ms"] = summary([ms(x) for x in quiet_lat])
    result["churn_latency_ms"] = summary([ms(x) for x in churn_lat])
    result["errors"] = samples.get("errors", 0)


async def _login(port: int) -> str:
    import httpx

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        reply = await client.post("/login", json={"username": "admin", "password": "changeme"})
        reply.raise_for_status()
        return reply.json()["token"]


async def _compose(server: Server) -> bytes:
    import msgspec

    rows = await server.repo.list()
    body = []
    for row in rows:
        item = msgspec.to_builtins(row)
        item["instances"] = msgspec.to_builtins(server.supervisor.live_instances(row.id))
        body.append(item)
    return msgspec.json.encode(body)


def client_main(base_url: str, token: str, seconds: float) -> None:
    """The concurrent client (its own process): sequential keep-alive GETs, monotonic stamps."""
    import httpx

    samples: dict[str, Any] = {"at": [], "latency": [], "bytes": [], "errors": 0}
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            began = time.monotonic()
            try:
                reply = client.get("/deployments")
                size = len(reply.content)
                ok = reply.status_code == 200
            except httpx.HTTPError:
                ok, size = False, 0
            latency = time.monotonic() - began
            if not ok:
                samples["errors"] += 1
                continue
            samples["at"].append(began)
            samples["latency"].append(latency)
            samples["bytes"].append(size)
    print(json.dumps(samples))


# --------------------------------------------------------------------------- the parent


def run_size(size: int, *, idle: float, quiet: float, churn: float, profile: str | None = None,
             gc_default: bool = False) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.scale", "--child", str(size), "--idle", str(idle), "--quiet",
               str(quiet), "--churn", str(churn)]
    if profile:
        command += ["--profile", profile]
    if gc_default:
        command += ["--gc-default"]
    began = time.monotonic()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=str(Path(__file__).resolve().parent.parent),
                          timeout=900, check=False)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"scale child {size} exited {proc.returncode}:\n{tail}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s"] = time.monotonic() - began
    return result


def misses(result: dict[str, Any]) -> list[str]:
    found = []
    if not (result.get("converge_s", math.inf) < AIMS["converge_s"]):
        found.append("converge")
    if not (result.get("readopt_s", math.inf) < AIMS["converge_s"]):
        found.append("readopt")
    if not (result.get("idle_cpu_pct", math.inf) < AIMS["idle_cpu_pct"]):
        found.append("idle")
    p99 = max(result.get("quiet_latency_ms", {}).get("p99") or math.inf,
              result.get("churn_latency_ms", {}).get("p99") or 0)
    if not (p99 < AIMS["p99_ms"]):
        found.append("http")
    return found


def _gc_cell(*windows: dict[str, Any] | None) -> str:
    found = [w for w in windows if w]
    if not found:
        return "–"
    return (f"{sum(w['gen2_collections'] for w in found)} / "
            f"{fmt(max(w['max_pause_ms'] for w in found), 0)}")


def markdown(results: list[dict[str, Any]], profiles: dict[str, Any],
             experiments: list[dict[str, Any]] | None = None) -> str:
    experiments = experiments or []
    def lat(stats: dict[str, Any], key: str) -> str:
        return fmt(stats.get(key), 1) if stats and stats.get("n") else "–"

    header = (["figure (SIMULATED runtime)"] + [f"{r['deployments']} × {INSTANCES}" for r in results]
              + [e["label"] for e in experiments] + ["aim"])
    results = results + experiments
    rows = [
        ["insert rows (not part of converge), s"] + [fmt(r.get("insert_s"), 2) for r in results] + [""],
        ["**converge from empty**, s"] + [fmt(r.get("converge_s"), 2) for r in results] + ["< 10"],
        ["  event-loop lag during converge (late wake-up of a 10 ms sleep), p50 / p99 ms"]
        + [f"{fmt((r.get('converge_loop_lag_ms') or {}).get('median'), 1)} / "
           f"{fmt((r.get('converge_loop_lag_ms') or {}).get('p99'), 1)}" for r in results] + [""],
        ["  GC during converge: total s / longest pause ms"]
        + [f"{fmt((r.get('converge_gc') or {}).get('total_s'), 2)} / {fmt((r.get('converge_gc') or {}).get('max_pause_ms'), 0)}"
           for r in results] + [""],
        ["  SQLite calls (incl. write-behind writes) / transactions (worker-thread hops) during converge"]
        + [f"{r.get('converge_db_calls', '–')} / {r.get('converge_db_transactions', '–')}" for r in results] + [""],
        ["  SQLite busy inside transactions (one writer), s"] + [fmt(r.get("converge_db_busy_s"), 2) for r in results] + [""],
        ["  process CPU during converge, s"] + [fmt(r.get("converge_cpu_s"), 2) for r in results] + [""],
        ["**re-adoption after restart**, s"] + [fmt(r.get("readopt_s"), 2) for r in results] + ["< 10"],
        ["  false crashes counted during converge + idle / deployments sent to crash_loop_back_off"]
        + [f"{r.get('false_crashes_converge_idle', '–')} / {r.get('crash_loop_back_off_converge_idle', '–')}"
           for r in results] + ["0 / 0"],
        ["  re-adoption: root supervisor started (observe + list + spawn), s"]
        + [fmt(r.get("readopt_tree_started_s"), 2) for r in results] + [""],
        ["  instances created during re-adoption"] + [str(r.get("created_during_readopt", "–")) for r in results]
        + ["0"],
        ["  before re-adoption, not part of it: collecting the first server's heap (a new process has none), s"]
        + [fmt(r.get("restart_old_heap_collect_s"), 2) for r in results] + [""],
        ["**idle CPU**, % of one core"] + [fmt(r.get("idle_cpu_pct"), 2) for r in results] + ["< 5"],
        ["  safety-net ticks / SQLite calls in the idle window"]
        + [f"{r.get('idle_ticks', '–')} / {r.get('idle_db_calls', '–')}" for r in results] + [""],
        [("  collector policy: one reclaim after converge (unfreeze + full collection; at most once a minute, "
          "after 50 % growth), pause ms")] + [fmt(r.get("gc_reclaim_pause_ms"), 0) for r in results] + [""],
        ["**peak RSS** (VmHWM), MiB"] + [fmt(r.get("peak_rss_mb"), 0) for r in results] + ["< 400"],
        ["  RSS after converge, MiB"] + [fmt(r.get("rss_after_converge_mb"), 0) for r in results] + [""],
        ["GET /deployments quiet, p50 / p99 ms"]
        + [f"{lat(r.get('quiet_latency_ms'), 'median')} / {lat(r.get('quiet_latency_ms'), 'p99')}" for r in results]
        + [""],
        ["**GET /deployments during 10 % crashes, p50 / p99 ms**"]
        + [f"{lat(r.get('churn_latency_ms'), 'median')} / {lat(r.get('churn_latency_ms'), 'p99')}" for r in results]
        + ["p99 < 50"],
        ["  requests (quiet + churn)"]
        + [f"{r.get('quiet_latency_ms', {}).get('n', 0)} + {r.get('churn_latency_ms', {}).get('n', 0)}"
           for r in results] + [""],
        ["  GC: gen-2 collections / longest pause ms, quiet + churn"]
        + [_gc_cell(r.get("quiet_gc"), r.get("churn_gc")) for r in results] + [""],
        ["  response size, KiB"] + [fmt((r.get("response_bytes") or 0) / 1024, 0) for r in results] + [""],
        ["  instances crashed / replaced"] + [f"{r.get('crashed', '–')} / {r.get('replaced', '–')}" for r in results]
        + [""],
        ["  last replacement up, s after the last crash (1 s backoff included)"]
        + [fmt(r.get("recovered_after_last_crash_s"), 2) for r in results] + [""],
    ]
    http = results[0].get("http", "?") if results else "?"
    client = results[0].get("latency_client", "?") if results else "?"
    lines = [
        "# Scale (SIMULATED runtime: in-memory instances, no engine)",
        "",
        ("Each size in a fresh subprocess; server parts assembled as `ring_actors.server` does (collector policy; "
        "write-behind task; SQLite file, WAL; root supervisor with the 10 s safety-net tick; Ring's default backoff; "
        f"background jobs), with the simulated runtime registered. HTTP: {http}. Latency client: {client}. "
        "Re-adoption starts after the first server's heap is collected (timed apart: a restart is a new process)."),
        "",
        md_table(header, rows),
        "",
    ]
    if profiles:
        lines += ["## Profiles of missed aims (cProfile, largest size)", ""]
        for key, text in profiles.items():
            lines += [f"### {key}", "", "```", text.strip()[:6000], "```", ""]
    return "\n".join(lines)


def run(*, quick: bool) -> tuple[dict[str, Any], str]:
    sizes = [100, 500] if quick else [100, 500, 2000]
    idle, quiet, churn = (5.0, 2.0, 4.0) if quick else (30.0, 6.0, 12.0)
    results = []
    for size in sizes:
        log(f"scale: {size} deployments x {INSTANCES} instances (SIMULATED runtime)")
        try:
            results.append(run_size(size, idle=idle, quiet=quiet, churn=churn))
        except Exception as exc:  # noqa: BLE001 - a benchmark reports, never fails the build
            log(f"scale: size {size} failed: {exc}")
            results.append({"deployments": size, "error": str(exc)})
    profiles: dict[str, Any] = {}
    experiments: list[dict[str, Any]] = []
    largest = results[-1] if results else {}
    if not quick and "error" not in largest:
        missed = misses(largest)
        if missed:
            phases = ",".join(sorted({"readopt" if m == "readopt" else m for m in missed}))
            log(f"scale: aims missed at {largest['deployments']} ({phases}); profiling those phases (cProfile)")
            try:
                profiled = run_size(largest["deployments"], idle=10.0, quiet=quiet, churn=churn, profile=phases)
                profiles = {k: v for k, v in profiled.items() if "_profile_" in k}
            except Exception as exc:  # noqa: BLE001 - a benchmark reports, never fails the build
                profiles = {"error": f"profile run failed: {exc}"}
        log(f"scale: experiment at {largest['deployments']}: CPython's default garbage collector instead of "
            "the server's collector policy")
        try:
            experiment = run_size(largest["deployments"], idle=idle, quiet=quiet, churn=churn, gc_default=True)
            experiment["label"] = f"{largest['deployments']} × {INSTANCES}, default GC, no policy (experiment)"
            experiments.append(experiment)
        except Exception as exc:  # noqa: BLE001 - a benchmark reports, never fails the build
            log(f"scale: GC experiment failed: {exc}")
    payload = {"benchmark": "scale", "runtime": "SIMULATED", "aims": AIMS, "sizes": results,
               "experiments": experiments, "profiles": profiles}
    return payload, markdown([r for r in results if "error" not in r], profiles, experiments)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", type=int)
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument("--quiet", type=float, default=5.0)
    parser.add_argument("--churn", type=float, default=15.0)
    parser.add_argument("--profile", help="comma-separated phases: converge,idle,readopt,http")
    parser.add_argument("--gc-default", action="store_true",
                        help="experiment: CPython's default garbage collector, without the server's collector policy")
    parser.add_argument("--client", nargs=3, metavar=("URL", "TOKEN", "SECONDS"))
    args = parser.parse_args()
    if args.client:
        client_main(args.client[0], args.client[1], float(args.client[2]))
        return
    import logging

    logging.basicConfig(level=logging.CRITICAL)  # 10 % crashes log thousands of lines otherwise
    result = trio.run(child, args.child, args.idle, args.quiet, args.churn, args.profile, args.gc_default)
    print(json.dumps(result, default=lambda v: None if isinstance(v, float) and math.isnan(v) else str(v)))


if __name__ == "__main__":
    main()
