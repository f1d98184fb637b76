"""Crash-loop recovery: ring-actors against the engine's own restart policy, on the same image, in one run.

The worker is `sh -c 'sleep 0.5; echo "$TAG $HOSTNAME" > /bench/exit.fifo; exit 1'` on the busybox test image.
The echo is the exit marker (see `common.ExitMarkers`): a separate real-time reader process stamps it, so
"exit" below means "the container announced its exit, one shell statement before `exit 1`".

ring-actors runs IN-PROCESS here (root supervisor + DockerRuntime + a temp SQLite file + the event bus), not
through the HTTP server: that is what lets the benchmark read `ExitStatus.detected_at` from the runtime. A thin
wrapper around the runtime records when `wait_exit` returned and when each `create` began and ended, and a
wrapper around the engine client times every engine call; neither changes what the actors do.

Per restart index k (the replacement after the k-th crash):
- detect: exit -> `ExitStatus.detected_at` (pidfd, or the engine's die event, whichever came first).
- informed: exit -> `wait_exit` returned to the instance actor (exit code known: it waits for the die event).
- replacement running: exit -> the engine's `start` event of the replacement; also StartedAt(new) -
  FinishedAt(old) from engine inspect, the engine's own stamps on both sides.
- crash_loop_back_off: time from apply and from the 5th exit to the status, and containers created.
The engine's restart policy (`RestartPolicy: always`) on the same command gives the same figures from its
event stream (die -> start of the same container) and inspect.
"""

from __future__ import annotations

import contextlib
import functools
import math
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from bench.common import (
    BENCH_LABEL,
    DOCKER_SOCK,
    IMAGE,
    PODMAN_SOCK,
    Clocks,
    EngineClient,
    ExitMarkers,
    alternating,
    event_action,
    event_container,
    event_time,
    exit_markers,
    fmt,
    log,
    md_table,
    median,
    ms,
    p90,
    parse_engine_time,
    ratio,
    remove_leftovers,
    summary,
)

RESTARTS = 4
"""Restart indices compared: ring-actors' budget (5 crashes -> crash_loop_back_off) allows 4 replacements."""
RUN_SECONDS = 0.5
COMMAND = ["sh", "-c", f'sleep {RUN_SECONDS}; echo "$BENCH_TAG $HOSTNAME" > /bench/exit.fifo; exit 1']
API_CALLS = (
    "image_inspect", "image_pull", "ensure_network", "find_network", "container_create", "network_connect",
    "container_start", "container_inspect", "container_stop", "container_remove", "containers_list",
    "container_wait",
)


# --------------------------------------------------------------------------- instrumentation


@dataclass
class Timeline:
    """What the wrappers saw, in trio time."""

    creates: list[dict[str, Any]] = field(default_factory=list)
    exits: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    db_calls: list[tuple[float, float]] = field(default_factory=list)


class TimedRuntime:
    """Delegates to a real runtime; records when `create` ran and when `wait_exit` answered.

    `owned` limits `list_instances` to the benchmark's own deployments: a ring-actors root supervisor reaps
    every `ring_deployment` container whose deployment its database does not know, so without the filter a
    benchmark tree would remove the containers of any other ring-actors server (or test) on the same engine.
    """

    def __init__(self, inner: Any, timeline: Timeline, owned: set[str] | None = None) -> None:
        self._inner = inner
        self._timeline = timeline
        self._owned = owned
        self.name = inner.name

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def list_instances(self, *args: Any, **kwargs: Any) -> Any:
        found = await self._inner.list_instances(*args, **kwargs)
        if self._owned is None:
            return found
        return [o for o in found if o.deployment_id in self._owned]

    async def create(self, spec: Any) -> Any:
        begin = trio.current_time()
        record: dict[str, Any] = {"begin": begin}
        self._timeline.creates.append(record)
        try:
            handle = await self._inner.create(spec)
        except BaseException as exc:
            record.update(end=trio.current_time(), error=repr(exc))
            raise
        record.update(end=trio.current_time(), id=handle.id)
        return handle

    async def wait_exit(self, handle: Any) -> Any:
        status = await self._inner.wait_exit(handle)
        self._timeline.exits.append(
            {"id": handle.id, "detected_at": status.detected_at, "returned": trio.current_time(),
             "exit_code": status.exit_code}
        )
        return status


def instrument_api(api: Any, timeline: Timeline) -> None:
    """Time each engine call of a ring-actors DockerAPI instance (instance attributes; the class is untouched)."""
    for name in API_CALLS:
        method = getattr(api, name, None)
        if method is None:
            continue

        @functools.wraps(method)
        async def timed(*args: Any, __method: Any = method, __name: str = name, **kwargs: Any) -> Any:
            begin = trio.current_time()
            try:
                return await __method(*args, **kwargs)
            finally:
                target = args[0] if args and isinstance(args[0], str) else ""
                timeline.calls.append({"call": __name, "begin": begin, "end": trio.current_time(), "target": target})

        setattr(api, name, timed)


def instrument_db(db: Any, timeline: Timeline) -> None:
    call = db.call

    async def timed(fn: Any) -> Any:
        begin = trio.current_time()
        try:
            return await call(fn)
        finally:
            timeline.db_calls.append((begin, trio.current_time()))

    db.call = timed


# --------------------------------------------------------------------------- observation


@dataclass
class Observed:
    """Engine events of the containers of one run, plus inspect stamps (epoch seconds)."""

    events: list[tuple[str, str, float]] = field(default_factory=list)  # (action, container id, time)
    started_at: dict[str, list[float]] = field(default_factory=dict)
    finished_at: dict[str, list[float]] = field(default_factory=dict)

    def times(self, action: str, container: str | None = None) -> list[float]:
        return [t for a, c, t in self.events if a == action and (container is None or c == container)]


async def observe(engine: EngineClient, channel: trio.MemoryReceiveChannel, observed: Observed,
                  nursery: trio.Nursery) -> None:
    """Record events; inspect after each start/die for the engine's StartedAt/FinishedAt (off the path)."""

    async def stamp(container: str) -> None:
        with contextlib.suppress(Exception):
            info = await engine.inspect(container)
            state = info.get("State") or {}
            started = parse_engine_time(state.get("StartedAt"))
            finished = parse_engine_time(state.get("FinishedAt"))
            if started is not None and started not in observed.started_at.setdefault(container, []):
                observed.started_at[container].append(started)
            if finished is not None and finished not in observed.finished_at.setdefault(container, []):
                observed.finished_at[container].append(finished)

    async for event in channel:
        action = event_action(event)
        container = event_container(event)
        observed.events.append((action, container, event_time(event)))
        if action in ("start", "die"):
            nursery.start_soon(stamp, container)


# --------------------------------------------------------------------------- ring-actors run


def _ring_modules() -> dict[str, Any]:
    """The parts of ring-actors a run assembles (imported late: `python -m bench --only scale` needs no engine)."""
    from ring_actors.bus import EventBus
    from ring_actors.recorder import Recorder
    from ring_actors.schemas.manifest import Deployment, Volume
    from ring_actors.store.db import Database, utcnow
    from ring_actors.store.deployments import DeploymentRepo
    from ring_actors.store.events import EventRepo
    from ring_actors.supervisors.context import ActorContext
    from ring_actors.supervisors.policy import BackoffSettings
    from ring_actors.supervisors.root import RootSupervisor

    return {
        "EventBus": EventBus, "Recorder": Recorder, "Deployment": Deployment, "Volume": Volume,
        "Database": Database, "utcnow": utcnow, "DeploymentRepo": DeploymentRepo, "EventRepo": EventRepo,
        "ActorContext": ActorContext, "BackoffSettings": BackoffSettings, "RootSupervisor": RootSupervisor,
    }


def _runtime_factory(engine_name: str) -> Any:
    if engine_name == "docker":
        from ring_actors.runtimes.docker import DockerRuntime

        return lambda payload: DockerRuntime(f"unix://{DOCKER_SOCK}", payload_dir=payload)
    from ring_actors.runtimes.podman import PodmanRuntime  # type: ignore[import-not-found]

    def build(payload: Path) -> Any:
        try:
            return PodmanRuntime(f"unix://{PODMAN_SOCK}", payload_dir=payload)
        except TypeError:  # a constructor without payload_dir
            return PodmanRuntime(f"unix://{PODMAN_SOCK}", config_dir=payload)

    return build


@contextlib.contextmanager
def replacement_path(runtime: Any, *, previous: bool) -> Any:
    """Select the replacement path for one run: today's, or the one before the dead instance's removal was
    deferred (`InstanceActor.remove_dead_after_replacement`, a class attribute restored afterwards) and the
    namespace network cached (`DockerRuntime.cache_networks`). Variants run one at a time."""
    from ring_actors.instances.actor import InstanceActor

    saved = InstanceActor.remove_dead_after_replacement
    InstanceActor.remove_dead_after_replacement = not previous
    runtime.cache_networks = not previous
    try:
        yield
    finally:
        InstanceActor.remove_dead_after_replacement = saved


async def run_ring(engine_name: str, engine: EngineClient, markers: ExitMarkers, *, backoff_base: float,
                   pull_policy: str | None, timeout: float, previous_path: bool = False) -> dict[str, Any]:
    """One crash loop under ring-actors, in-process, until `crash_loop_back_off`."""
    m = _ring_modules()
    tag = f"ring-{uuid.uuid4().hex[:8]}"
    timeline = Timeline()
    observed = Observed()
    statuses: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="ring-bench-db-") as tmp:
        db = await m["Database"].open(Path(tmp) / "ring.db")
        instrument_db(db, timeline)
        bus = m["EventBus"]()
        repo = m["DeploymentRepo"](db)
        runtime = _runtime_factory(engine_name)(Path(tmp) / "payload")
        instrument_api(runtime.api, timeline)
        owned: set[str] = set()
        timed = TimedRuntime(runtime, timeline, owned)
        ctx = m["ActorContext"](
            runtimes={engine_name: timed}, deployments=repo, recorder=m["Recorder"](m["EventRepo"](db), bus),
            backoff=m["BackoffSettings"](base=backoff_base),
        )
        root = m["RootSupervisor"](ctx)
        config = {"image_pull_policy": pull_policy} if pull_policy else {}
        deployment = m["Deployment"](
            id=str(uuid.uuid4()), created_at=m["utcnow"](), name=f"crashloop-{tag}", namespace="bench",
            runtime=engine_name, image=IMAGE, command=COMMAND, environment={"BENCH_TAG": tag},
            volumes=[m["Volume"](type="bind", source=str(markers.directory), destination="/bench", permission="rw")],
            labels={BENCH_LABEL: tag}, config=config,
        )
        owned.add(deployment.id)
        outcome = "timeout"
        try:
            with replacement_path(runtime, previous=previous_path):
                async with trio.open_nursery() as nursery:
                    await nursery.start(runtime.serve)
                    await nursery.start(root.run)
                    async with engine.events({"type": ["container"], "label": [f"{BENCH_LABEL}={tag}"]}) as channel:
                        nursery.start_soon(observe, engine, channel, observed, nursery)
                        async with bus.subscribe(lambda msg: msg.deployment_id == deployment.id) as sub:
                            clocks = Clocks.sample()
                            applied = trio.current_time()
                            await repo.insert(deployment)
                            root.notify(deployment.id)
                            with trio.move_on_after(timeout):
                                async for message in sub:
                                    if message.kind == "status":
                                        statuses.append((message.payload["to"], trio.current_time()))
                                        if message.payload["to"] == "crash_loop_back_off":
                                            outcome = "crash_loop_back_off"
                                            break
                        await trio.sleep(0.5)  # let the last removal land and the observer catch up
                        await repo.set_status(deployment.id, "deleted")
                        root.notify(deployment.id)
                        with trio.move_on_after(10):
                            while root.actors.get(deployment.id) is not None:
                                await trio.sleep(0.05)
                    nursery.cancel_scope.cancel(reason="run finished")
        finally:
            with trio.move_on_after(20, shield=True):
                await remove_leftovers(engine, f"{BENCH_LABEL}={tag}")
            db.close()
            with contextlib.suppress(Exception):
                await runtime.aclose()
    return analyse_ring(tag, markers, clocks, applied, timeline, observed, statuses, outcome, backoff_base)


def analyse_ring(tag: str, markers: ExitMarkers, clocks: Clocks, applied: float, timeline: Timeline,
                 observed: Observed, statuses: list[tuple[str, float]], outcome: str,
                 backoff_base: float) -> dict[str, Any]:
    wall = clocks.trio_to_wall
    exits_by_id = {e["id"]: e for e in timeline.exits}
    creates = [c for c in timeline.creates if "id" in c]
    run_markers = markers.for_text(tag)
    by_host = {m.text.split()[-1]: m for m in run_markers}
    crashes: list[dict[str, Any]] = []
    for index, create in enumerate(creates):
        cid = create["id"]
        marker = by_host.get(cid[:12])
        exit_record = exits_by_id.get(cid)
        die = observed.times("die", cid)
        finished = observed.finished_at.get(cid, [])
        crashes.append({
            "id": cid,
            "container": cid[:12],
            "created_begin": wall(create["begin"]), "created_end": wall(create["end"]),
            "start_event": (observed.times("start", cid) or [math.nan])[0],
            "started_at": (observed.started_at.get(cid) or [math.nan])[0],
            "marker": marker.wall if marker else math.nan,
            "detected_at": wall(exit_record["detected_at"]) if exit_record else math.nan,
            "informed": wall(exit_record["returned"]) if exit_record else math.nan,
            "die_event": die[0] if die else math.nan,
            "exit_code": exit_record.get("exit_code") if exit_record else None,
            "finished_at": finished[0] if finished else math.nan,
            "index": index + 1,
        })
    restarts = []
    for k in range(1, len(crashes)):
        old, new = crashes[k - 1], crashes[k]
        exit_t = old["marker"]
        backoff = 0.0 if k <= 1 else backoff_base * 2 ** (k - 2)  # policy.backoff_delay: the first is immediate
        calls = [c for c in timeline.calls
                 if wall(c["begin"]) >= old["informed"] - 1e-4 and wall(c["end"]) <= new["created_end"] + 1e-4]
        db_in_gap = sum(e - b for b, e in timeline.db_calls
                        if old["informed"] - 1e-4 <= wall(b) <= new["created_begin"])
        exit_path = [c for c in timeline.calls
                     if c["target"] == old["id"] and old["detected_at"] - 1e-4 <= wall(c["begin"]) <= old["informed"]]
        restarts.append({
            "k": k,
            "detect_ms": ms(old["detected_at"] - exit_t),
            "informed_ms": ms(old["informed"] - exit_t),
            "engine_die_ms": ms(old["die_event"] - exit_t),
            "finished_at_ms": ms(old["finished_at"] - exit_t),
            "decision_ms": ms(new["created_begin"] - old["informed"] - backoff),
            "db_in_decision_ms": ms(db_in_gap),
            "create_call_ms": ms(new["created_end"] - new["created_begin"]),
            "replacement_start_event_ms": ms(new["start_event"] - exit_t),
            "replacement_running_ms": ms(new["created_end"] - exit_t),
            "outside_start_ms": ms(new["start_event"] - exit_t) - _call_breakdown(
                [c for c in calls if c["call"] == "container_start"], wall).get("container_start", math.nan),
            "die_to_start_ms": ms(new["start_event"] - old["die_event"]),
            "startedat_minus_finishedat_ms": ms(new["started_at"] - old["finished_at"]),
            "backoff_ms": backoff * 1000,
            "engine_calls": _call_breakdown(calls, wall),
            "exit_path_calls": _call_breakdown(exit_path, wall),
            "exit_path_engine_ms": sum(_call_breakdown(exit_path, wall).values()),
        })
    clbo = next((t for s, t in statuses if s == "crash_loop_back_off"), None)
    last_marker = crashes[-1]["marker"] if crashes else math.nan
    return {
        "outcome": outcome,
        "containers_created": len(creates),
        "engine_create_events": len(observed.times("create")),
        "to_crash_loop_back_off_ms": ms(clbo - applied) if clbo is not None else math.nan,
        "last_exit_to_crash_loop_back_off_ms": ms(wall(clbo) - last_marker) if clbo is not None else math.nan,
        "first_create_ms": ms(creates[0]["end"] - applied) if creates else math.nan,
        "crashes": crashes,
        "restarts": restarts,
    }


def _call_breakdown(calls: list[dict[str, Any]], wall: Any) -> dict[str, float]:
    total: dict[str, float] = {}
    for call in calls:
        total[call["call"]] = total.get(call["call"], 0.0) + ms(call["end"] - call["begin"])
    return total


# --------------------------------------------------------------------------- engine restart policy


async def run_engine_policy(engine: EngineClient, markers: ExitMarkers, *, restarts: int) -> dict[str, Any]:
    """The engine's own `RestartPolicy: always` on the same command, until `restarts` restarts happened."""
    tag = f"{engine.name}-{uuid.uuid4().hex[:8]}"
    observed = Observed()
    body = {
        "Image": IMAGE, "Cmd": COMMAND, "Env": [f"BENCH_TAG={tag}"], "Labels": {BENCH_LABEL: tag},
        "HostConfig": {"Binds": [f"{markers.directory}:/bench"], "RestartPolicy": {"Name": "always"}},
    }
    container = ""
    try:
        async with trio.open_nursery() as nursery:
            async with engine.events({"type": ["container"], "label": [f"{BENCH_LABEL}={tag}"]}) as channel:
                nursery.start_soon(observe, engine, channel, observed, nursery)
                began = time.time()
                container = await engine.create(body)
                await engine.start(container)
                with trio.move_on_after(RUN_SECONDS * (restarts + 2) + 2 ** (restarts + 1) * 0.3 + 10):
                    while len(observed.times("die")) < restarts + 1 or len(
                            observed.started_at.get(container, [])) < restarts + 1:
                        await trio.sleep(0.05)
                await trio.sleep(0.1)
            nursery.cancel_scope.cancel()
    finally:
        if container:
            with trio.move_on_after(20, shield=True):
                await engine.remove(container)
    run_markers = markers.for_text(tag)
    starts = observed.times("start")
    dies = observed.times("die")
    started_at = observed.started_at.get(container, [])
    finished_at = observed.finished_at.get(container, [])
    rows = []
    for k in range(1, restarts + 1):
        exit_t = run_markers[k - 1].wall if len(run_markers) >= k else math.nan
        rows.append({
            "k": k,
            "engine_die_ms": ms(dies[k - 1] - exit_t) if len(dies) >= k else math.nan,
            "finished_at_ms": ms(finished_at[k - 1] - exit_t) if len(finished_at) >= k else math.nan,
            "replacement_start_event_ms": ms(starts[k] - exit_t) if len(starts) > k else math.nan,
            "die_to_start_ms": ms(starts[k] - dies[k - 1]) if len(starts) > k and len(dies) >= k else math.nan,
            "startedat_minus_finishedat_ms": (
                ms(started_at[k] - finished_at[k - 1]) if len(started_at) > k and len(finished_at) >= k else math.nan
            ),
            "start_event_vs_startedat_ms": ms(starts[k] - started_at[k]) if len(started_at) > k and len(
                starts) > k else math.nan,
            "die_event_vs_finishedat_ms": ms(dies[k - 1] - finished_at[k - 1]) if len(
                finished_at) >= k and len(dies) >= k else math.nan,
        })
    return {
        "containers_created": len(observed.times("create")),
        "first_start_ms": ms(starts[0] - began) if starts else math.nan,
        "restarts": rows,
    }


# --------------------------------------------------------------------------- driver


PREVIOUS = "ring-actors {engine} (backoff base 0, previous path)"
"""The replacement path before 2026-11-30: dead instance removed alongside the replacement's creation, namespace
network looked up at every create. Kept as a variant so the comparison is made within one run."""


@dataclass(frozen=True)
class Variant:
    name: str
    kind: str  # ring | engine
    engine: str
    backoff_base: float = 1.0
    pull_policy: str | None = None
    previous_path: bool = False


def variants_for(engines: dict[str, EngineClient], ring_engines: set[str]) -> list[Variant]:
    found = [
        Variant("ring-actors docker (backoff base 1 s, Ring default)", "ring", "docker", 1.0),
        Variant("ring-actors docker (backoff base 0)", "ring", "docker", 0.0),
        Variant("ring-actors docker (backoff base 0, pull IfNotPresent)", "ring", "docker", 0.0, "IfNotPresent"),
        Variant(PREVIOUS.format(engine="docker"), "ring", "docker", 0.0, previous_path=True),
        Variant("docker restart=always", "engine", "docker"),
    ]
    if "podman" in engines:
        if "podman" in ring_engines:
            found.append(Variant("ring-actors podman (backoff base 0)", "ring", "podman", 0.0))
            found.append(Variant(PREVIOUS.format(engine="podman"), "ring", "podman", 0.0, previous_path=True))
        found.append(Variant("podman restart=always", "engine", "podman"))
    return [v for v in found if v.engine in engines and (v.kind == "engine" or v.engine in ring_engines)]


def _ring_available(engine_name: str) -> bool:
    try:
        _runtime_factory(engine_name)
    except ImportError:
        return False
    return True


async def bench(*, rounds: int, quick: bool = False) -> dict[str, Any]:
    engines: dict[str, EngineClient] = {}
    for name, sock in (("docker", DOCKER_SOCK), ("podman", PODMAN_SOCK)):
        client = EngineClient(sock, name=name)
        if await client.ping():
            engines[name] = client
            await client.ensure_image(IMAGE)
            await remove_leftovers(client)
        else:
            await client.aclose()
    if "docker" not in engines:
        raise RuntimeError("Docker does not answer on " + DOCKER_SOCK)
    ring_engines = {name for name in engines if _ring_available(name)}
    variants = variants_for(engines, ring_engines)
    if quick:
        variants = [v for v in variants if v.pull_policy is None]
    results: dict[str, list[dict[str, Any]]] = {v.name: [] for v in variants}
    by_name = {v.name: v for v in variants}
    try:
        async with exit_markers() as markers:
            for round_index, name in alternating(rounds, [v.name for v in variants]):
                variant = by_name[name]
                if variant.kind == "ring" and variant.backoff_base >= 1.0 and round_index % 2:
                    continue  # mostly backoff sleep: half the rounds are enough
                log(f"crashloop round {round_index + 1}/{rounds}: {name}")
                engine = engines[variant.engine]
                try:
                    if variant.kind == "ring":
                        run = await run_ring(variant.engine, engine, markers, backoff_base=variant.backoff_base,
                                             pull_policy=variant.pull_policy,
                                             timeout=30 + 20 * variant.backoff_base,
                                             previous_path=variant.previous_path)
                    else:
                        run = await run_engine_policy(engine, markers, restarts=RESTARTS)
                except Exception as exc:  # noqa: BLE001 - a benchmark reports, never fails the build
                    log(f"  {name} failed: {exc!r}")
                    run = {"error": repr(exc)}
                results[name].append(run)
    finally:
        for client in engines.values():
            await client.aclose()
    return {"variants": [v.__dict__ for v in variants], "runs": results}


FIGURES = (
    ("detect_ms", "exit → detected (detected_at)"),
    ("informed_ms", "exit → instance actor informed (wait_exit returned)"),
    ("engine_die_ms", "exit → engine `die` event"),
    ("replacement_start_event_ms", "exit → replacement `start` event"),
    ("startedat_minus_finishedat_ms", "FinishedAt(old) → StartedAt(new) (inspect)"),
    ("die_to_start_ms", "`die` → `start` (events)"),
    ("replacement_running_ms", "exit → create() returned (replacement running, ring view)"),
    ("outside_start_ms", "exit → replacement `start` event, minus the engine's container_start call"),
    ("exit_path_engine_ms", "engine calls between detection and informed"),
    ("decision_ms", "informed → create() begins, minus backoff"),
    ("db_in_decision_ms", "  of which SQLite calls"),
    ("create_call_ms", "create() duration"),
)


def aggregate(raw: dict[str, Any]) -> dict[str, Any]:
    """Per variant, per restart index: median / p90 of each figure; plus the crash-loop totals."""
    out: dict[str, Any] = {}
    for name, runs in raw["runs"].items():
        good = [r for r in runs if "error" not in r]
        per_k: dict[int, dict[str, dict[str, float]]] = {}
        for k in range(1, RESTARTS + 1):
            rows = [row for r in good for row in r.get("restarts", []) if row["k"] == k]
            per_k[k] = {key: summary([row.get(key, math.nan) for row in rows]) for key, _ in FIGURES}
            calls: dict[str, list[float]] = {}
            for row in rows:
                for call, value in (row.get("engine_calls") or {}).items():
                    calls.setdefault(call, []).append(value)
            per_k[k]["engine_calls"] = {call: summary(values) for call, values in calls.items()}
        all_rows = [row for r in good for row in r.get("restarts", [])]
        out[name] = {
            "runs": len(runs),
            "failed_runs": len(runs) - len(good),
            "per_restart": per_k,
            "all_restarts": {key: summary([row.get(key, math.nan) for row in all_rows]) for key, _ in FIGURES},
            "containers_created": summary([r.get("containers_created", math.nan) for r in good]),
            "to_crash_loop_back_off_ms": summary([r.get("to_crash_loop_back_off_ms", math.nan) for r in good]),
            "last_exit_to_crash_loop_back_off_ms": summary(
                [r.get("last_exit_to_crash_loop_back_off_ms", math.nan) for r in good]),
            "outcomes": [r.get("outcome", "error" if "error" in r else "") for r in runs],
            "first_create_ms": summary([r.get("first_create_ms", math.nan) for r in good]),
        }
        if good and "first_start_ms" in good[0]:
            out[name]["first_start_ms"] = summary([r["first_start_ms"] for r in good])
    return out


def markdown(agg: dict[str, Any], raw: dict[str, Any], rounds: int) -> str:
    names = [v["name"] for v in raw["variants"]]
    lines = [
        "# Crash-loop recovery (real Docker and Podman engines; ring-actors in-process)",
        "",
        (f"{rounds} alternating round(s) per variant (the base-1-s variant, mostly backoff sleep, in every other "
        f"round). Worker: `{COMMAND[2]}` on `{IMAGE}`. "
        "Times in ms, median (p90) over rounds. *exit* = the container's exit marker (a FIFO write one statement "
        "before `exit 1`, stamped by a separate real-time reader process). ring-actors runs in-process: root "
        "supervisor + DockerRuntime + temp SQLite file; Ring's default backoff is base 1 s (1, 2, 4, 8 s)."),
        "",
    ]

    def cell(stats: dict[str, float]) -> str:
        if not stats or not stats.get("n"):
            return "–"
        return f"{fmt(stats['median'])} ({fmt(stats['p90'])})"

    for key, label in (
        ("detect_ms", "Crash detection: exit → detected"),
        ("informed_ms", "exit → instance actor informed (exit code known)"),
        ("engine_die_ms", "exit → engine `die` event"),
        ("replacement_start_event_ms", "exit → replacement running (engine `start` event)"),
        ("startedat_minus_finishedat_ms", "FinishedAt(dead) → StartedAt(replacement), engine inspect"),
        ("die_to_start_ms", "`die` → `start` (engine events)"),
        ("outside_start_ms", ("exit → replacement running, minus the engine's own `container_start` call "
                              "(ring-actors' share of the path; the start call is the engine's and swings with load)")),
    ):
        rows = []
        for name in names:
            per = agg[name]["per_restart"]
            rows.append([name] + [cell(per[k][key]) for k in range(1, RESTARTS + 1)])
        lines += [f"## {label}", "", md_table(["variant"] + [f"restart {k}" for k in range(1, RESTARTS + 1)], rows),
                  ""]
    for engine_name in ("docker", "podman"):
        theirs_name = f"{engine_name} restart=always"
        ours_b0 = f"ring-actors {engine_name} (backoff base 0)"
        ours_b1 = f"ring-actors {engine_name} (backoff base 1 s, Ring default)"
        if theirs_name not in agg or ours_b0 not in agg:
            continue
        rows = []
        for k in range(1, RESTARTS + 1):
            def med(name: str, k: int = k) -> float:
                return agg.get(name, {}).get("per_restart", {}).get(k, {}).get(
                    "replacement_start_event_ms", {}).get("median", math.nan)

            ours, b1, theirs = med(ours_b0), med(ours_b1), med(theirs_name)
            before = med(PREVIOUS.format(engine=engine_name))
            rows.append([k, fmt(ours), fmt(before), fmt(b1), fmt(theirs), fmt(ratio(ours, theirs), 2),
                         fmt(ratio(before, theirs), 2), fmt(ratio(b1, theirs), 2)])
        lines += [f"## Ratio: exit → replacement running, ring-actors / {engine_name.capitalize()}'s own restart policy",
                  "", "Below 1: ring-actors is faster.", "",
                  md_table(["restart", "ring-actors base 0", "base 0, previous path", "ring-actors base 1 s",
                            f"{engine_name} always", "ratio base 0", "ratio previous path", "ratio base 1 s"], rows),
                  ""]
    rows = []
    for name in names:
        a = agg[name]
        if name.startswith("ring-actors"):
            rows.append([name, cell(a["containers_created"]), cell(a["to_crash_loop_back_off_ms"]),
                         cell(a["last_exit_to_crash_loop_back_off_ms"]), ", ".join(sorted(set(a["outcomes"])))])
        else:
            rows.append([name, "1 (same container restarted)", "never (restarts forever)", "–", "–"])
    lines += ["## Crash loop totals", "", md_table(
        ["variant", "containers created", "apply → crash_loop_back_off", "5th exit → crash_loop_back_off",
         "outcome"], rows), ""]
    rows = []
    for name in names:
        if not name.startswith("ring-actors"):
            continue
        per = agg[name]["all_restarts"]
        rows.append([name, cell(per["detect_ms"]), cell(per["informed_ms"]), cell(per["exit_path_engine_ms"]),
                     cell(per["decision_ms"]), cell(per["db_in_decision_ms"]), cell(per["create_call_ms"]),
                     cell(per["replacement_running_ms"])])
    lines += ["## Where the crash → replacement time goes (ring-actors, all restarts pooled)", "",
              ("*engine calls in between* = engine requests the runtime made after detection before answering "
              "`wait_exit` (the post-`die` inspect). *decision* = from `wait_exit` returning to the replacement's `create()` starting, minus the "
              "configured backoff (message to the deployment actor, event + state writes, Restart message, "
              "spec build)."), "",
              md_table(["variant", "exit → detected", "exit → informed", "engine calls in between",
                        "decision (− backoff)", "SQLite in decision", "create()", "exit → create() returned"],
                       rows), ""]
    for name in names:
        if not name.startswith("ring-actors"):
            continue
        calls: dict[str, list[float]] = {}
        for k in range(1, RESTARTS + 1):
            for call, stats in agg[name]["per_restart"][k]["engine_calls"].items():
                if stats.get("n"):
                    calls.setdefault(call, []).append(stats["median"])
        if calls:
            rows = [[call, fmt(median(values), 1)] for call, values in sorted(calls.items(), key=lambda i: -median(i[1]))]
            lines += [f"### Engine calls inside one replacement: {name}", "",
                      ("From `wait_exit` returning to the replacement's `create()` returning. The dead container is "
                      "removed once its replacement runs, so its stop/remove are not listed, except in the *previous "
                      "path* variants, where they run concurrently with the replacement's creation; there "
                      "`ensure_network` (which includes its `find_network`) is looked up at every create."), "",
                      md_table(["engine call", "median ms per replacement"], rows), ""]
    return "\n".join(lines)


def run(*, quick: bool) -> tuple[dict[str, Any], str]:
    rounds = 1 if quick else 5
    raw = trio.run(functools.partial(bench, rounds=rounds, quick=quick))
    agg = aggregate(raw)
    payload = {"benchmark": "crashloop", "rounds": rounds, "summary": agg, "raw": raw}
    return payload, markdown(agg, raw, rounds)


__all__ = ["median", "p90", "run"]
