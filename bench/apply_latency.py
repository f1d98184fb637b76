"""Apply -> running: a new deployment until its status is `running`, against a raw engine create+start.

Two ways to drive ring-actors, the first that is available wins (the output says which):
- `server`: the real server in a subprocess (`tests/support/server.py` RingServer, docker runtime enabled).
  The client logs in, keeps one `GET /events?follow=true` SSE stream open, sends `POST /deployments` and
  stops the clock when the stream reports `new_status: running` for that deployment.
- `in-process`: root supervisor + DockerRuntime + temp SQLite file in this process; the clock runs from the
  row insert + notify (what the API handler does) to the `running` status on the event bus.

The baseline is the engine itself, timed by the same client: `POST /containers/create` (same image, command,
labels) then `POST /containers/{id}/start` on the default bridge (`engine`); and the same container ring-actors
builds, which also joins the namespace network `ring_<ns>` before start as Ring does (`engine, same networks`).
Samples alternate ring-actors / engine / engine-same-networks, rotating who goes first.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx
import trio

from bench.common import (
    BENCH_LABEL,
    DOCKER_SOCK,
    IMAGE,
    EngineClient,
    alternating,
    fmt,
    log,
    md_table,
    ms,
    ratio,
    remove_leftovers,
    summary,
)
from bench.crashloop import TimedRuntime, Timeline, instrument_api

COMMAND = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
NAMESPACE = "bench"
NETWORK = f"ring_{NAMESPACE}"


# --------------------------------------------------------------------------- engine baseline


async def engine_once(engine: EngineClient, tag: str, *, same_networks: bool) -> dict[str, float]:
    """Raw create + start. `same_networks`: also join `ring_<ns>` as ring-actors' containers do (Ring's step 12)."""
    body = {"Image": IMAGE, "Cmd": COMMAND, "Labels": {BENCH_LABEL: tag}}
    began = trio.current_time()
    container = await engine.create(body)
    created = trio.current_time()
    if same_networks:
        await engine.request("POST", f"/networks/{NETWORK}/connect", json={"Container": container})
    connected = trio.current_time()
    await engine.start(container)
    ended = trio.current_time()
    await engine.remove(container)
    figures = {"total_ms": ms(ended - began), "create_ms": ms(created - began), "start_ms": ms(ended - connected)}
    if same_networks:
        figures["network_connect_ms"] = ms(connected - created)
    return figures


async def ensure_network(engine: EngineClient) -> None:
    if not await engine.networks(NETWORK):
        await engine.request("POST", "/networks/create", json={
            "Name": NETWORK, "Driver": "bridge", "CheckDuplicate": True,
            "Labels": {"ring.managed": "true", "ring.namespace": NAMESPACE},
        })


# --------------------------------------------------------------------------- ring-actors, in-process


class InProcessRing:
    """The supervision tree with the real Docker runtime, in this trio run."""

    mode = "in-process (root supervisor + DockerRuntime + temp SQLite file; no HTTP)"

    def __init__(self, pull_policy: str | None) -> None:
        self.pull_policy = pull_policy
        self.timeline = Timeline()
        self.owned: set[str] = set()

    @contextlib.asynccontextmanager
    async def running(self):
        from ring_actors.bus import EventBus
        from ring_actors.recorder import Recorder
        from ring_actors.runtimes.docker import DockerRuntime
        from ring_actors.store.db import Database
        from ring_actors.store.deployments import DeploymentRepo
        from ring_actors.store.events import EventRepo
        from ring_actors.supervisors.context import ActorContext
        from ring_actors.supervisors.root import RootSupervisor

        with tempfile.TemporaryDirectory(prefix="ring-bench-apply-") as tmp:
            db = await Database.open(Path(tmp) / "ring.db")
            runtime = DockerRuntime(f"unix://{DOCKER_SOCK}", payload_dir=Path(tmp) / "payload")
            instrument_api(runtime.api, self.timeline)
            self.bus = EventBus()
            self.repo = DeploymentRepo(db)
            ctx = ActorContext(
                runtimes={"docker": TimedRuntime(runtime, self.timeline, self.owned)}, deployments=self.repo,
                recorder=Recorder(EventRepo(db), self.bus), stop_timeout=2.0,
            )
            self.root = RootSupervisor(ctx)
            try:
                async with trio.open_nursery() as nursery:
                    await nursery.start(runtime.serve)
                    await nursery.start(self.root.run)
                    yield self
                    nursery.cancel_scope.cancel(reason="benchmark done")
            finally:
                db.close()
                await runtime.aclose()

    async def apply_once(self, tag: str) -> dict[str, float]:
        from ring_actors.schemas.manifest import Deployment
        from ring_actors.store.db import utcnow

        config = {"image_pull_policy": self.pull_policy} if self.pull_policy else {}
        deployment = Deployment(
            id=str(uuid.uuid4()), created_at=utcnow(), name=f"apply-{tag}", namespace=NAMESPACE, runtime="docker",
            image=IMAGE, command=COMMAND, labels={BENCH_LABEL: tag}, config=config,
        )
        self.owned.add(deployment.id)
        creates_before = len(self.timeline.creates)
        async with self.bus.subscribe(lambda m: m.deployment_id == deployment.id and m.kind == "status") as sub:
            began = trio.current_time()
            await self.repo.insert(deployment)
            self.root.notify(deployment.id)
            with trio.fail_after(30):
                async for message in sub:
                    if message.payload["to"] == "running":
                        break
            ended = trio.current_time()
            await self.repo.set_status(deployment.id, "deleted")
            self.root.notify(deployment.id)
            with trio.fail_after(30):
                async for message in sub:
                    if message.payload["to"] == "purged":
                        break
        create = self.timeline.creates[creates_before]
        calls: dict[str, float] = {}
        for call in self.timeline.calls:
            if create["begin"] - 1e-4 <= call["begin"] <= create["end"]:
                calls[call["call"]] = calls.get(call["call"], 0.0) + ms(call["end"] - call["begin"])
        return {
            "total_ms": ms(ended - began),
            "to_create_begin_ms": ms(create["begin"] - began),
            "create_ms": ms(create["end"] - create["begin"]),
            "create_end_to_running_ms": ms(ended - create["end"]),
            **{f"call_{k}_ms": v for k, v in calls.items()},
        }


# --------------------------------------------------------------------------- ring-actors, real server


def _server_class() -> Any:
    try:
        from tests.support.server import RingServer  # type: ignore[import-not-found]
    except ImportError:
        return None
    return RingServer


class ServerRing:
    """The real server in a subprocess; one SSE stream tells when a deployment is running."""

    mode = "real server (subprocess, HTTP on 127.0.0.1, docker runtime)"

    def __init__(self, pull_policy: str | None) -> None:
        self.pull_policy = pull_policy
        self.statuses: dict[str, list[tuple[str, float]]] = {}
        self._changed = trio.Event()

    @contextlib.asynccontextmanager
    async def running(self):
        server_cls = _server_class()
        with tempfile.TemporaryDirectory(prefix="ring-bench-server-") as tmp:
            server = _start_server(server_cls, Path(tmp))
            try:
                base_url, token = await trio.to_thread.run_sync(_server_endpoint, server)
                async with httpx.AsyncClient(base_url=base_url, timeout=30.0,
                                             headers={"Authorization": f"Bearer {token}"}) as client:
                    self.client = client
                    async with trio.open_nursery() as nursery:
                        connected = trio.Event()
                        nursery.start_soon(self._follow, client, connected)
                        with trio.fail_after(10):
                            await connected.wait()
                        yield self
                        nursery.cancel_scope.cancel(reason="benchmark done")
            finally:
                await trio.to_thread.run_sync(_stop_server, server)

    async def _follow(self, client: httpx.AsyncClient, connected: trio.Event) -> None:
        async with client.stream("GET", "/events", params={"follow": "true"},
                                 timeout=httpx.Timeout(None, connect=5.0)) as response:
            response.raise_for_status()
            connected.set()
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("type") == "status":
                    self.statuses.setdefault(message["deployment_id"], []).append(
                        (message.get("new_status", ""), trio.current_time()))
                    self._changed.set()
                    self._changed = trio.Event()

    async def _until(self, deployment_id: str, status: str) -> float:
        while True:
            for seen, at in self.statuses.get(deployment_id, []):
                if seen == status:
                    return at
            await self._changed.wait()

    async def apply_once(self, tag: str) -> dict[str, float]:
        body = {"name": f"apply-{tag}", "namespace": NAMESPACE, "runtime": "docker", "image": IMAGE,
                "command": COMMAND, "labels": {BENCH_LABEL: tag}}
        if self.pull_policy:
            body["config"] = {"image_pull_policy": self.pull_policy}
        began = trio.current_time()
        response = await self.client.post("/deployments", json=body)
        answered = trio.current_time()
        response.raise_for_status()
        deployment_id = response.json()["id"]
        with trio.fail_after(30):
            running = await self._until(deployment_id, "running")
        (await self.client.delete(f"/deployments/{deployment_id}")).raise_for_status()
        with trio.fail_after(30):
            await self._until(deployment_id, "purged")
        return {"total_ms": ms(running - began), "post_answered_ms": ms(answered - began)}


DEFAULT_TIMING_ENV = {
    "RING_SCHEDULER_INTERVAL": "10",
    "RING_BACKOFF_BASE": "1",
    "RING_BACKOFF_MAX": "60",
    "RING_HEALTHY_WINDOW": "10",
}
"""RingServer speeds its timers up for tests; the benchmark runs the server with Ring's defaults."""


def _start_server(server_cls: Any, tmp: Path) -> Any:
    server = server_cls(runtimes=("docker",), env=DEFAULT_TIMING_ENV)
    server.start()
    return server


def _server_endpoint(server: Any) -> tuple[str, str]:
    return server.base_url, server.login()


def _stop_server(server: Any) -> None:
    import shutil

    try:
        server.stop()
    finally:
        shutil.rmtree(server.dir, ignore_errors=True)


# --------------------------------------------------------------------------- driver


async def foreign_ring_containers(engine: EngineClient) -> int:
    return len(await engine.list_labelled("ring_deployment"))


async def phase(ring: Any, engine: EngineClient, samples: int) -> dict[str, Any]:
    variants: dict[str, list[dict[str, Any]]] = {"ring-actors": [], "engine": [], "engine, same networks": []}
    async with ring.running():
        # One warm-up of each (first network attach, first pull, connection set-up): not counted.
        await ring.apply_once("warmup")
        await engine_once(engine, "warmup", same_networks=False)
        await engine_once(engine, "warmup", same_networks=True)
        for index, name in alternating(samples, list(variants)):
            tag = uuid.uuid4().hex[:8]
            try:
                if name == "ring-actors":
                    sample = await ring.apply_once(tag)
                else:
                    sample = await engine_once(engine, tag, same_networks=name != "engine")
            except Exception as exc:  # noqa: BLE001 - a benchmark reports, never fails the build
                log(f"apply sample {index} {name} failed: {exc!r}")
                sample = {"error": repr(exc)}
            variants[name].append(sample)
    return {"mode": ring.mode, "samples": variants}


async def bench(*, samples: int, want_server: bool) -> dict[str, Any]:
    engine = EngineClient(DOCKER_SOCK, name="docker")
    await engine.ensure_image(IMAGE)
    await remove_leftovers(engine)
    await ensure_network(engine)
    phases: list[dict[str, Any]] = []
    notes: list[str] = []
    try:
        if want_server and _server_class() is not None:
            # A ring-actors server reaps every `ring_deployment` container its database does not know: never start
            # one while another server's (or a test's) containers are on the engine.
            with trio.move_on_after(60):
                while await foreign_ring_containers(engine):
                    await trio.sleep(2)
            if await foreign_ring_containers(engine):
                notes.append("real-server phase skipped: other ring-actors containers were on the engine and a "
                             "starting server would have reaped them")
            else:
                phases.append(await phase(ServerRing(pull_policy=None), engine, samples))
        elif want_server:
            notes.append("real-server phase skipped: tests/support/server.py (RingServer) not importable")
        phases.append(await phase(InProcessRing(pull_policy=None), engine, samples))
    finally:
        await remove_leftovers(engine)
        await engine.aclose()
    return {"phases": phases, "notes": notes}


def aggregate_phase(raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, samples in raw["samples"].items():
        good = [s for s in samples if "error" not in s]
        keys = sorted({k for s in good for k in s})
        out[name] = {k: summary([s.get(k, math.nan) for s in good]) for k in keys}
        out[name]["failed"] = len(samples) - len(good)
    ours = [s["total_ms"] for s in raw["samples"]["ring-actors"] if "total_ms" in s]
    theirs = [s["total_ms"] for s in raw["samples"]["engine"] if "total_ms" in s]
    same = [s["total_ms"] for s in raw["samples"]["engine, same networks"] if "total_ms" in s]
    out["ratio"] = ratio(ours, theirs)
    out["ratio_same_networks"] = ratio(ours, same)
    return out


def aggregate(raw: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"mode": p["mode"], **aggregate_phase(p)} for p in raw["phases"]]


def markdown(aggs: list[dict[str, Any]], raw: dict[str, Any], samples: int) -> str:
    def cell(stats: dict[str, float] | None) -> str:
        if not stats or not stats.get("n"):
            return "–"
        return f"{fmt(stats['median'])} / {fmt(stats['p90'])}"

    lines = [
        "# Apply → running (real Docker)",
        "",
        (f"{samples} alternating samples per variant and phase (after one unmeasured warm-up each). Image "
        f"`{IMAGE}`, command `{COMMAND[2]}`, manifest defaults (image_pull_policy `Always`). Times in ms, "
        "median / p90. Ratio above 1: ring-actors adds that factor over the bare engine calls; the aim is ≤ 1.2."),
        "",
    ]
    lines += [f"*{note}*\n" for note in raw.get("notes", [])]
    for agg in aggs:
        ring, engine, same = agg["ring-actors"], agg["engine"], agg["engine, same networks"]
        lines += [
            f"## ring-actors driven as: {agg['mode']}",
            "",
            md_table(["", "median / p90", "n"], [
                ["ring-actors: apply → `running`", cell(ring.get("total_ms")), ring.get("total_ms", {}).get("n", 0)],
                ["engine: create + start (API, default bridge)", cell(engine.get("total_ms")),
                 engine.get("total_ms", {}).get("n", 0)],
                [f"engine: create + connect `{NETWORK}` + start (the container ring-actors builds)",
                 cell(same.get("total_ms")), same.get("total_ms", {}).get("n", 0)],
                ["**ratio ring-actors / engine** (medians)", f"**{fmt(agg['ratio'], 2)}**", ""],
                ["ratio ring-actors / engine with the same networks", fmt(agg["ratio_same_networks"], 2), ""],
            ]),
            "",
        ]
        parts = [k for k in ring if k.endswith("_ms") and k != "total_ms"]
        if parts:
            rows = [[k.removesuffix("_ms").replace("call_", "engine call: "), cell(ring[k])] for k in sorted(
                parts, key=lambda k: -(ring[k].get("median") or 0))]
            lines += ["ring-actors stages:", "", md_table(["stage", "median / p90"], rows), ""]
        rows = [[k.removesuffix("_ms"), cell(engine.get(k)), cell(same.get(k))]
                for k in ("create_ms", "network_connect_ms", "start_ms")]
        lines += ["engine calls:", "", md_table(["call", "engine", "engine, same networks"], rows), ""]
    lines += [
        ("Ring's containers join the default `bridge` and `ring_<namespace>` (runtimes.md §2.1 step 12); a second "
        "network costs the engine time at start, which the same-networks baseline isolates."),
    ]
    return "\n".join(lines)


def run(*, quick: bool) -> tuple[dict[str, Any], str]:
    samples = 5 if quick else 20
    want_server = os.environ.get("RING_BENCH_APPLY_MODE", "server") != "in-process"
    raw = trio.run(functools.partial(bench, samples=samples, want_server=want_server))
    aggs = aggregate(raw)
    return {"benchmark": "apply_latency", "samples_per_variant": samples, "summary": aggs, "raw": raw}, markdown(
        aggs, raw, samples)
