"""Shared pieces of the benchmarks: statistics, alternating runs, clocks, a raw engine client, results.

Nothing here imports the code under test: the engine baselines talk to the engine API with a plain httpx
client, so a comparison never goes through ring-actors' own client.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trio

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DOCKER_SOCK = "/var/run/docker.sock"
PODMAN_SOCK = "/run/podman/podman.sock"
API_VERSION = "1.41"
IMAGE = "127.0.0.1:5000/ring-test/busybox:v1"
"""The busybox-static test image (tests/support/engines.py IMAGE_V1)."""
BENCH_LABEL = "ring-bench"
"""Label on every container a benchmark creates itself, so clean-up can find leftovers."""


# --------------------------------------------------------------------------- statistics


def percentile(samples: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method); NaN for no samples."""
    values = sorted(v for v in samples if v is not None and not math.isnan(v))
    if not values:
        return math.nan
    if len(values) == 1:
        return values[0]
    rank = (len(values) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (rank - low)


def median(samples: Sequence[float]) -> float:
    return percentile(samples, 50)


def p90(samples: Sequence[float]) -> float:
    return percentile(samples, 90)


def summary(samples: Sequence[float]) -> dict[str, float]:
    """n, median, p90, p99, min, max, mean of the non-NaN samples."""
    values = [v for v in samples if v is not None and not math.isnan(v)]
    if not values:
        return {"n": 0, "median": math.nan, "p90": math.nan, "p99": math.nan, "min": math.nan, "max": math.nan,
                "mean": math.nan}
    return {
        "n": len(values),
        "median": median(values),
        "p90": p90(values),
        "p99": percentile(values, 99),
        "min": min(values),
        "max": max(values),
        "mean": sum(values) / len(values),
    }


def ratio(ours: Sequence[float] | float, theirs: Sequence[float] | float) -> float:
    """median(ours) / median(theirs): below 1 means ring-actors is faster."""
    a = ours if isinstance(ours, (int, float)) else median(ours)
    b = theirs if isinstance(theirs, (int, float)) else median(theirs)
    if b is None or a is None or math.isnan(a) or math.isnan(b) or b == 0:
        return math.nan
    return a / b


def alternating(rounds: int, variants: Sequence[str]) -> list[tuple[int, str]]:
    """(round, variant) pairs: every round runs each variant once, rotating who goes first.

    Rotation spreads slow drift (a warming page cache, another tenant's load) evenly over the variants.
    """
    order: list[tuple[int, str]] = []
    for index in range(rounds):
        shift = index % len(variants)
        rotated = list(variants[shift:]) + list(variants[:shift])
        order.extend((index, name) for name in rotated)
    return order


# --------------------------------------------------------------------------- clocks


@dataclass(frozen=True)
class Clocks:
    """Maps trio's clock (CLOCK_MONOTONIC plus a random offset) onto wall-clock seconds.

    Engines stamp events with CLOCK_REALTIME; the benchmarks compare those stamps with trio times, so both
    are brought onto one axis. The offsets are sampled back to back, the tightest of several tries.
    """

    trio_minus_mono: float
    wall_minus_mono: float

    @classmethod
    def sample(cls) -> Clocks:
        best: tuple[float, float, float] | None = None
        for _ in range(20):
            m0 = time.monotonic()
            w = time.time()
            t = trio.current_time()
            m1 = time.monotonic()
            if best is None or (m1 - m0) < best[0]:
                best = (m1 - m0, t - (m0 + m1) / 2, w - (m0 + m1) / 2)
        assert best is not None
        return cls(best[1], best[2])

    def trio_to_wall(self, t: float) -> float:
        return t - self.trio_minus_mono + self.wall_minus_mono

    def mono_to_wall(self, m: float) -> float:
        return m + self.wall_minus_mono


_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$")


def parse_engine_time(text: str | None) -> float | None:
    """RFC 3339 with nanoseconds (`2024-05-01T10:00:00.123456789Z`) -> epoch seconds; None for zero/unset."""
    if not text or text.startswith("0001-"):
        return None
    match = _TS.match(text.strip())
    if match is None:
        return None
    base, fraction, zone = match.groups()
    tz = _dt.UTC
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        tz = _dt.timezone(sign * _dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    seconds = _dt.datetime.fromisoformat(base).replace(tzinfo=tz).timestamp()
    return seconds + (int((fraction or "0")[:9].ljust(9, "0")) / 1e9)


# --------------------------------------------------------------------------- raw engine client


class EngineClient:
    """A minimal Docker-API client (Docker or Podman's compat API) for baselines and observation."""

    def __init__(self, sock: str, *, name: str) -> None:
        self.sock = sock
        self.name = name
        self._client = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=sock, retries=0),
            base_url=f"http://engine/v{API_VERSION}",
            timeout=httpx.Timeout(60.0, connect=5.0),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(self, method: str, path: str, *, expect: Iterable[int] = (200, 201, 204, 304),
                      **kwargs: Any) -> Any:
        response = await self._client.request(method, path, **kwargs)
        if response.status_code not in tuple(expect):
            raise RuntimeError(f"{self.name}: {method} {path} -> {response.status_code} {response.text[:300]}")
        if response.content and response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.content

    async def ping(self) -> bool:
        try:
            response = await self._client.get("/_ping", timeout=3.0)
        except (httpx.HTTPError, OSError):
            return False
        return response.status_code == 200

    async def ensure_image(self, image: str) -> None:
        response = await self._client.get(f"/images/{image}/json")
        if response.status_code == 200:
            return
        repo, _, tag = image.rpartition(":")
        await self.request("POST", "/images/create", params={"fromImage": repo, "tag": tag},
                           timeout=httpx.Timeout(300.0))

    async def create(self, body: dict[str, Any], *, name: str | None = None) -> str:
        params = {"name": name} if name else None
        reply = await self.request("POST", "/containers/create", json=body, params=params)
        return reply["Id"]

    async def start(self, container: str) -> None:
        await self.request("POST", f"/containers/{container}/start")

    async def inspect(self, container: str) -> dict[str, Any]:
        return await self.request("GET", f"/containers/{container}/json")

    async def remove(self, container: str) -> None:
        await self.request("DELETE", f"/containers/{container}", params={"force": "true", "v": "true"},
                           expect=(200, 204, 404, 409))

    async def list_labelled(self, label: str) -> list[dict[str, Any]]:
        filters = json.dumps({"label": [label]})
        return await self.request("GET", "/containers/json", params={"all": "true", "filters": filters})

    async def networks(self, name: str) -> list[dict[str, Any]]:
        filters = json.dumps({"name": [name]})
        found = await self.request("GET", "/networks", params={"filters": filters})
        return [n for n in found if n.get("Name") == name]

    @contextlib.asynccontextmanager
    async def events(self, filters: dict[str, list[str]]) -> AsyncIterator[trio.MemoryReceiveChannel]:
        """Stream engine events into a channel of dicts until the context exits (started once connected)."""
        send, receive = trio.open_memory_channel[dict[str, Any]](10_000)
        async with trio.open_nursery() as nursery:
            connected = trio.Event()

            async def pump() -> None:
                async with self._client.stream(
                    "GET", "/events", params={"filters": json.dumps(filters)},
                    timeout=httpx.Timeout(None, connect=5.0),
                ) as response:
                    connected.set()
                    decoder = json.JSONDecoder()
                    buffer = ""
                    async for chunk in response.aiter_text():
                        buffer += chunk
                        while buffer:
                            buffer = buffer.lstrip()
                            try:
                                event, end = decoder.raw_decode(buffer)
                            except json.JSONDecodeError:
                                break
                            buffer = buffer[end:]
                            send.send_nowait(event)

            nursery.start_soon(pump)
            with trio.fail_after(10):
                await connected.wait()
            # Docker answers the headers before the subscription is fully live: give it a moment.
            await trio.sleep(0.05)
            try:
                yield receive
            finally:
                nursery.cancel_scope.cancel()


def event_time(event: dict[str, Any]) -> float:
    """Epoch seconds of an engine event (nanosecond stamp when the engine sends one)."""
    if event.get("timeNano"):
        return int(event["timeNano"]) / 1e9
    return float(event.get("time", 0))


def event_action(event: dict[str, Any]) -> str:
    action = event.get("Action") or event.get("status") or ""
    return action.split(":", 1)[0]


def event_container(event: dict[str, Any]) -> str:
    return (event.get("Actor") or {}).get("ID") or event.get("id") or ""


async def remove_leftovers(engine: EngineClient, label: str = BENCH_LABEL) -> int:
    """Remove every container carrying `label` (a previous run that was interrupted)."""
    leftovers = await engine.list_labelled(label)
    for container in leftovers:
        await engine.remove(container["Id"])
    return len(leftovers)


# --------------------------------------------------------------------------- exit markers

_MARKER_READER = r"""
import os, sys, time
path = sys.argv[1]
try:
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
except (OSError, AttributeError):
    try:
        os.nice(-10)
    except OSError:
        pass
fd = os.open(path, os.O_RDWR)  # read-write: never sees EOF when writers come and go
out = sys.stdout
out.write("ready\n"); out.flush()
pending = b""
while True:
    data = os.read(fd, 65536)
    wall, mono = time.time_ns(), time.monotonic_ns()
    pending += data
    *lines, pending = pending.split(b"\n")
    for line in lines:
        out.write(f"{wall} {mono} {line.decode(errors='replace').strip()}\n")
    out.flush()
"""


@dataclass
class Marker:
    wall: float
    mono: float
    text: str


@dataclass
class ExitMarkers:
    """Wall-clock instants at which containers announced, one shell statement before `exit`, that they exit.

    A container's command ends with `echo "$TAG $HOSTNAME" > /bench/exit.fifo; exit 1`. A separate reader
    process (real-time priority when allowed, so ring-actors' busy event loop cannot delay it) timestamps each
    line the moment the kernel hands it over. The stamp precedes the real exit by the shell's exit path
    (well under a millisecond), so latencies measured from it are, if anything, slightly overstated.
    """

    directory: Path
    markers: list[Marker] = field(default_factory=list)
    _process: Any = None
    _arrived: trio.Event = field(default_factory=trio.Event)

    @property
    def fifo(self) -> Path:
        return self.directory / "exit.fifo"

    def wait_for(self, predicate: Callable[[Marker], bool]) -> Awaitable[Marker]:
        async def waiter() -> Marker:
            while True:
                for marker in self.markers:
                    if predicate(marker):
                        return marker
                await self._arrived.wait()

        return waiter()

    def for_text(self, needle: str) -> list[Marker]:
        return [m for m in self.markers if needle in m.text]


@contextlib.asynccontextmanager
async def exit_markers() -> AsyncIterator[ExitMarkers]:
    """A FIFO in a fresh temp dir (bind-mount it at /bench) plus its reader process."""
    directory = Path(tempfile.mkdtemp(prefix="ring-bench-"))
    os.chmod(directory, 0o777)
    os.mkfifo(directory / "exit.fifo", 0o666)
    markers = ExitMarkers(directory)
    process = await trio.lowlevel.open_process(
        [sys.executable, "-c", _MARKER_READER, str(markers.fifo)], stdout=subprocess.PIPE
    )
    markers._process = process
    try:
        async with trio.open_nursery() as nursery:
            ready = trio.Event()

            async def read() -> None:
                assert process.stdout is not None
                buffer = b""
                async for chunk in process.stdout:
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        text = line.decode(errors="replace")
                        if text == "ready":
                            ready.set()
                            continue
                        wall, mono, rest = text.split(" ", 2)
                        markers.markers.append(Marker(int(wall) / 1e9, int(mono) / 1e9, rest))
                    if lines:
                        markers._arrived.set()
                        markers._arrived = trio.Event()

            nursery.start_soon(read)
            with trio.fail_after(10):
                await ready.wait()
            try:
                yield markers
            finally:
                nursery.cancel_scope.cancel()
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        with trio.move_on_after(2, shield=True):
            await process.wait()
        with contextlib.suppress(OSError):
            (directory / "exit.fifo").unlink()
            directory.rmdir()


# --------------------------------------------------------------------------- process figures


def cpu_seconds() -> float:
    """User + system CPU time of this process (all threads)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    """VmHWM of this process in MiB (the high-water mark of its resident set)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return math.nan


# --------------------------------------------------------------------------- results


def ms(seconds: float | None) -> float:
    return math.nan if seconds is None else seconds * 1000.0


def fmt(value: float | None, digits: int = 0, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}{unit}"


def md_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(cell) for cell in row) + " |")
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    """What the figures depend on: machine, kernel, Python, engine versions, git revision."""
    info: dict[str, Any] = {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "host_cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
    }
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        info["git_revision"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5, check=False,
            cwd=Path(__file__).resolve().parent.parent,
        ).stdout.strip()
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", "ring_actors"], capture_output=True, text=True, timeout=5,
            check=False, cwd=Path(__file__).resolve().parent.parent,
        ).stdout
        info["ring_actors_uncommitted_files"] = len([line for line in status.splitlines() if line.strip()])
    with contextlib.suppress(OSError):
        load = os.getloadavg()
        info["loadavg_at_start"] = [round(x, 2) for x in load]
    return info


def _clean(value: Any) -> Any:
    """JSON cannot carry NaN: write null instead."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_result(name: str, payload: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    """bench/results/NAME.json and NAME.md; returns both paths."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    json_path = RESULTS_DIR / f"{name}.json"
    md_path = RESULTS_DIR / f"{name}.md"
    json_path.write_text(json.dumps(_clean(payload), indent=2, sort_keys=False) + "\n")
    md_path.write_text(markdown.rstrip() + "\n")
    return json_path, md_path


def log(message: str) -> None:
    """Progress on stderr (figures go to stdout and the results files)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
