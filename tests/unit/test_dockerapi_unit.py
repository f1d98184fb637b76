"""Pure logic of the Docker client and runtime: parsing, classification, error mapping, event routing.

Engine behaviour itself is tested against the real dockerd in
tests/integration/test_docker_runtime.py; here `httpx.MockTransport` stands in
for the engine only where the logic under test is ours (error mapping, pull
stream errors, exact-name network lookup, event-stream reconnection).
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import trio
import trio.testing

from ring_actors.runtimes import admission
from ring_actors.runtimes.base import InstanceHandle, RegistryAuth
from ring_actors.runtimes.docker import DockerRuntime, classify_pull_error, pick_repo_digest
from ring_actors.runtimes.dockerapi import (
    DockerAPI,
    EngineConflict,
    EngineEvent,
    EngineNotFound,
    ImagePullError,
    _CpuStats,
    _RawStats,
    _reduce_stats,
    compute_cpu_percent,
    demux_frames,
    parse_host,
    split_log_timestamp,
)
from ring_actors.runtimes.errors import EngineUnavailable, FailureKind, RuntimeFailure
from ring_actors.runtimes.registry_auth import (
    CredentialError,
    auth_from_docker_config,
    encode_registry_auth,
    normalize_repository,
    parse_image_ref,
    registry_host,
    resolve_host_auth,
)
from ring_actors.schemas.manifest import ResourceQuantities, Resources

CONTAINER = "c" * 64


# --------------------------------------------------------------------------- parsing


def test_parse_host() -> None:
    """Verify unix://, bare paths and tcp:// engine URLs, and that other schemes are refused."""
    assert parse_host("unix:///var/run/docker.sock") == ("/var/run/docker.sock", "http://docker")
    assert parse_host("/run/podman/podman.sock") == ("/run/podman/podman.sock", "http://docker")
    assert parse_host("tcp://127.0.0.1:2375") == (None, "http://127.0.0.1:2375")
    for bad in ("ssh://host", "unix://relative.sock", "tcp://", "docker.sock"):
        with pytest.raises(ValueError):
            parse_host(bad)


def _frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxI", stream, len(payload)) + payload


def test_demux_frames_keeps_incomplete_frames() -> None:
    """Verify the 8-byte-header demultiplexer across chunk boundaries."""
    data = _frame(1, b"out\n") + _frame(2, b"err\n") + _frame(1, b"tail")
    buffer = bytearray(data[:13])
    assert list(demux_frames(buffer)) == [(1, b"out\n")]
    buffer += data[13:-2]
    assert list(demux_frames(buffer)) == [(2, b"err\n")]
    buffer += data[-2:]
    assert list(demux_frames(buffer)) == [(1, b"tail")]
    assert buffer == bytearray()


def test_split_log_timestamp() -> None:
    """Verify the engine's RFC 3339 prefix is split off log lines, and plain lines are left alone."""
    assert split_log_timestamp(b"2026-11-30T05:57:21.020912059Z hello world") == (
        "2026-11-30T05:57:21.020912059Z",
        b"hello world",
    )
    assert split_log_timestamp(b"no stamp here") == (None, b"no stamp here")


def test_cpu_percent_docker_formula() -> None:
    """Verify CPU % = cpu delta / system delta x online CPUs x 100 (one busy core = 100)."""
    pre = msgspec.convert(
        {"cpu_usage": {"total_usage": 1_000}, "system_cpu_usage": 10_000, "online_cpus": 2}, _CpuStats
    )
    cur = msgspec.convert(
        {"cpu_usage": {"total_usage": 1_500}, "system_cpu_usage": 11_000, "online_cpus": 2}, _CpuStats
    )
    assert compute_cpu_percent(cur, pre) == pytest.approx(100.0)
    empty = _CpuStats()
    assert compute_cpu_percent(cur, empty) == 0.0  # one-shot sample: no previous reading


def test_reduce_stats_sums_interfaces_and_blkio() -> None:
    """Verify network counters sum over interfaces, blkio ops match case-insensitively, cache is excluded."""
    raw = msgspec.json.decode(
        json.dumps(
            {
                "read": "2026-11-30T00:00:00Z",
                "memory_stats": {"usage": 10_000, "limit": 1 << 20, "stats": {"total_inactive_file": 4_000}},
                "networks": {
                    "eth0": {"rx_bytes": 10, "tx_bytes": 20, "rx_packets": 1, "tx_packets": 2},
                    "eth1": {"rx_bytes": 5, "tx_bytes": 5, "rx_packets": 1, "tx_packets": 1},
                },
                "blkio_stats": {
                    "io_service_bytes_recursive": [
                        {"op": "Read", "value": 100},
                        {"op": "write", "value": 30},
                        {"op": "Total", "value": 130},
                    ]
                },
                "pids_stats": {"current": 3, "limit": 100},
            }
        ),
        type=_RawStats,
    )
    stats = _reduce_stats(raw)
    assert (stats.rx_bytes, stats.tx_bytes, stats.rx_packets, stats.tx_packets) == (15, 25, 2, 3)
    assert (stats.read_bytes, stats.write_bytes) == (100, 30)
    assert (stats.memory_usage, stats.memory_limit) == (6_000, 1 << 20)
    assert (stats.pids, stats.pids_limit) == (3, 100)


def test_event_decoding() -> None:
    """Verify a real dockerd `die` event decodes with its container id and exit code."""
    line = (
        b'{"status":"die","id":"' + CONTAINER.encode() + b'","from":"busybox","Type":"container","Action":"die",'
        b'"Actor":{"ID":"' + CONTAINER.encode() + b'","Attributes":{"exitCode":"137","name":"x"}},'
        b'"scope":"local","time":1796017742,"timeNano":1796017742033256436}'
    )
    event = msgspec.json.decode(line, type=EngineEvent)
    assert (event.object_id, event.verb, event.attributes["exitCode"]) == (CONTAINER, "die", "137")
    assert event.time_nano == 1796017742033256436
    exec_event = EngineEvent(type="container", action="exec_start: sh -c true")
    assert exec_event.verb == "exec_start"


# --------------------------------------------------------------------------- images and credentials


@pytest.mark.parametrize(
    ("image", "repository", "tag", "digest", "registry"),
    [
        ("nginx", "nginx", "latest", None, "docker.io"),
        ("nginx:1.25", "nginx", "1.25", None, "docker.io"),
        ("library/nginx:1.25", "library/nginx", "1.25", None, "docker.io"),
        ("127.0.0.1:5000/ring-test/busybox", "127.0.0.1:5000/ring-test/busybox", "latest", None, "127.0.0.1:5000"),
        ("localhost/app:v2", "localhost/app", "v2", None, "localhost"),
        ("ghcr.io/o/app@sha256:abc", "ghcr.io/o/app", None, "sha256:abc", "ghcr.io"),
        ("reg:5000/app:v1@sha256:abc", "reg:5000/app", "v1", "sha256:abc", "reg:5000"),
    ],
)
def test_parse_image_ref(image: str, repository: str, tag: str | None, digest: str | None, registry: str) -> None:
    """Verify `name[:tag]` (bare = latest) and `name@sha256:…` parsing and the registry host rule."""
    ref = parse_image_ref(image)
    assert (ref.repository, ref.tag, ref.digest, ref.registry) == (repository, tag, digest, registry)
    assert registry_host(image) == registry
    assert ref.pull_tag == (digest or tag)


def test_parse_image_ref_rejects_garbage() -> None:
    """Verify empty names, tags and digests are refused."""
    for bad in ("", "nginx:", "nginx@", "nginx@nodigest", "reg/"):
        with pytest.raises(ValueError):
            parse_image_ref(bad)


def test_normalize_repository() -> None:
    """Verify familiar Docker Hub names normalise so RepoDigests entries can be matched."""
    assert normalize_repository("busybox") == "docker.io/library/busybox"
    assert normalize_repository("docker.io/busybox") == "docker.io/library/busybox"
    assert normalize_repository("index.docker.io/me/app") == "docker.io/me/app"
    assert normalize_repository("127.0.0.1:5000/x/y") == "127.0.0.1:5000/x/y"


def test_pick_repo_digest() -> None:
    """Verify the RepoDigests entry of the image's own repository wins, else the first one."""
    digests = ["other/repo@sha256:111", "busybox@sha256:222"]
    assert pick_repo_digest(digests, parse_image_ref("busybox:latest")) == "sha256:222"
    assert pick_repo_digest(["docker.io/library/busybox@sha256:333"], parse_image_ref("busybox")) == "sha256:333"
    assert pick_repo_digest(digests, parse_image_ref("unrelated:1")) == "sha256:111"
    assert pick_repo_digest(None, parse_image_ref("busybox")) is None


def test_registry_auth_header() -> None:
    """Verify X-Registry-Auth is URL-safe base64 of {username, password, serveraddress}."""
    header = encode_registry_auth(RegistryAuth(server="127.0.0.1:5001", username="u", password="p?>"))
    assert header is not None
    assert json.loads(base64.urlsafe_b64decode(header)) == {
        "username": "u",
        "password": "p?>",
        "serveraddress": "127.0.0.1:5001",
    }
    assert encode_registry_auth(None) is None


def test_auth_from_docker_config() -> None:
    """Verify config.json `auths` lookup: Docker Hub keys in Ring's order, URL keys, `auth` base64."""
    token = base64.b64encode(b"hubuser:hubpass").decode()
    config = {
        "auths": {
            "docker.io": {"username": "second", "password": "x"},
            "https://index.docker.io/v1/": {"auth": token},
            "https://reg.example:5000/v2/": {"username": "r", "password": "s"},
        }
    }
    assert auth_from_docker_config(config, "docker.io") == RegistryAuth("docker.io", "hubuser", "hubpass")
    assert auth_from_docker_config(config, "reg.example:5000") == RegistryAuth("reg.example:5000", "r", "s")
    assert auth_from_docker_config(config, "elsewhere.io") is None
    with pytest.raises(CredentialError):
        auth_from_docker_config({"auths": {"bad.io": {"auth": "bm9jb2xvbg=="}}}, "bad.io")


async def test_resolve_host_auth_reads_files_and_helpers(tmp_path: Path) -> None:
    """Verify resolve_host_auth reads a config file, and a missing credential helper is a CredentialError."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"auths": {"reg.io": {"username": "a", "password": "b"}}}))
    assert await resolve_host_auth("reg.io", config_path=path) == RegistryAuth("reg.io", "a", "b")
    assert await resolve_host_auth("reg.io", config_path=tmp_path / "missing.json") is None
    with pytest.raises(CredentialError):
        await resolve_host_auth("reg.io", config={"credHelpers": {"reg.io": "ring-test-no-such-helper"}})


@pytest.mark.parametrize(
    ("message", "kind", "prefix"),
    [
        ("manifest for r/x:nope not found: manifest unknown: manifest unknown", FailureKind.IMAGE_NOT_FOUND, "image"),
        ("unauthorized: authentication required", FailureKind.IMAGE_PULL_FAILED, "registry authentication failed"),
        ('Head "http://r/v2/x/manifests/v1": no basic auth credentials', FailureKind.IMAGE_PULL_FAILED, "registry"),
        (
            'Get "http://127.0.0.1:5999/v2/": dial tcp 127.0.0.1:5999: connect: connection refused',
            FailureKind.IMAGE_PULL_FAILED,
            "cannot reach the registry",
        ),
        ("something odd", FailureKind.IMAGE_PULL_FAILED, "failed to pull image"),
    ],
)
def test_classify_pull_error(message: str, kind: FailureKind, prefix: str) -> None:
    """Verify pull errors map to Ring's kinds and messages, keeping the engine's text."""
    failure = classify_pull_error("img:v1", message)
    assert failure.kind is kind
    assert failure.message.startswith(prefix)
    assert failure.message.endswith(f"(original error: {message})")
    assert failure.disposition.permanent is (kind is FailureKind.IMAGE_NOT_FOUND)


# --------------------------------------------------------------------------- admission


def test_required_memory_prefers_requests() -> None:
    """Verify required = requests.memory, else limits.memory, else not gated."""
    both = Resources(limits=ResourceQuantities(memory="1Gi"), requests=ResourceQuantities(memory="256Mi"))
    assert admission.required_memory(both) == 256 << 20
    assert admission.required_memory(Resources(limits=ResourceQuantities(memory="1G"))) == 10**9
    assert admission.required_memory(Resources(limits=ResourceQuantities(cpu="1"))) is None
    assert admission.required_memory(None) is None


def test_check_host_memory_message(tmp_path: Path) -> None:
    """Verify Ring's insufficient-memory message and the MemAvailable parser."""
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24683656 kB\nMemFree:  1 kB\nMemAvailable:    2097152 kB\n")
    assert admission.mem_available(str(meminfo)) == 2 << 30
    with pytest.raises(RuntimeFailure) as failure:
        admission.check_host_memory(
            "web", Resources(requests=ResourceQuantities(memory="3Gi")), available=admission.mem_available(str(meminfo))
        )
    assert failure.value.kind is FailureKind.INSUFFICIENT_RESOURCES
    assert failure.value.message == (
        "insufficient host memory for 'web': needs 3072 MiB but only 2048 MiB is available — free memory on the "
        "host or lower resources.requests.memory / resources.limits.memory"
    )
    admission.check_host_memory("web", Resources(requests=ResourceQuantities(memory="1Gi")), available=2 << 30)


# --------------------------------------------------------------------------- client error mapping (mock engine)


def _api(handler: Any) -> DockerAPI:
    return DockerAPI("unix:///nonexistent/docker.sock", transport=httpx.MockTransport(handler))


async def test_status_codes_map_to_typed_errors() -> None:
    """Verify 404 -> EngineNotFound, 409 -> EngineConflict, with the engine's message."""

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/json"):
            return httpx.Response(404, json={"message": "No such container: x"})
        return httpx.Response(409, json={"message": "Container x is not running"})

    async with _api(handler) as api:
        with pytest.raises(EngineNotFound, match="No such container: x"):
            await api.container_inspect("x")
        with pytest.raises(EngineConflict, match="not running"):
            await api.exec_create("x", ["true"])


async def test_connection_errors_are_engine_unavailable() -> None:
    """Verify a missing socket is EngineUnavailable, naming the host."""
    async with DockerAPI("unix:///nonexistent/ring-test.sock") as api:
        with pytest.raises(EngineUnavailable, match="ring-test.sock"):
            await api.ping()


async def test_pull_errors_inside_a_200_stream_are_detected() -> None:
    """Verify a pull whose progress stream carries {"error": ...} raises ImagePullError."""
    progress = [
        {"status": "Pulling from ring-test/private", "id": "v1"},
        {"errorDetail": {"message": "unauthorized: authentication required"}, "error": "unauthorized: x"},
    ]
    seen: dict[str, str] = {}

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.update(request.url.params)
        seen["auth"] = request.headers.get("X-Registry-Auth", "")
        body = b"".join(json.dumps(line).encode() + b"\r\n" for line in progress)
        return httpx.Response(200, content=body)

    async with _api(handler) as api:
        with pytest.raises(ImagePullError, match="unauthorized"):
            await api.image_pull("127.0.0.1:5001/ring-test/private", "v1", registry_auth="abc")
    assert seen == {"fromImage": "127.0.0.1:5001/ring-test/private", "tag": "v1", "auth": "abc"}


async def test_ensure_network_matches_exact_names_and_creates_once() -> None:
    """Verify ensure_network ignores substring matches and concurrent calls create one network."""
    created: list[str] = []
    networks = [{"Name": "ring_ab", "Id": "n-ab"}]

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            await trio.sleep(0.01)  # give concurrent callers a chance to interleave
            return httpx.Response(200, json=networks)
        name = json.loads(request.content)["Name"]
        created.append(name)
        networks.append({"Name": name, "Id": f"n-{len(created)}"})
        return httpx.Response(201, json={"Id": f"n-{len(created)}"})

    async with _api(handler) as api:
        results: list[str] = []

        async def ensure() -> None:
            results.append((await api.ensure_network("ring_a")).id)

        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(ensure)
    assert created == ["ring_a"]
    assert results == ["n-1"] * 5


# --------------------------------------------------------------------------- event routing (mock engine)


async def wait_until(predicate: Any, within: float = 5.0) -> None:
    """Poll a test condition (assertion helper; the code under test never polls)."""
    with trio.fail_after(within):
        while not predicate():  # noqa: ASYNC110
            await trio.sleep(0.005)


class FakeEngine:
    """Just enough of the engine for DockerRuntime's watcher and wait_exit."""

    def __init__(self) -> None:
        self.events_requests: list[dict[str, str]] = []
        self.wait_calls = 0
        self.running = True
        self.exit_code = 0
        self.stopped = trio.Event()
        self.publish, self._events = trio.open_memory_channel[bytes](10)

    def die(self, code: int) -> None:
        self.running, self.exit_code = False, code
        self.stopped.set()
        event = {
            "Type": "container",
            "Action": "die",
            "Actor": {"ID": CONTAINER, "Attributes": {"exitCode": str(code)}},
            "time": 1,
            "timeNano": 1_000_000_001,
        }
        self.publish.send_nowait(json.dumps(event).encode() + b"\n")

    def end_stream(self) -> None:
        """The engine drops the subscription (and every later one ends at once)."""
        self.publish.close()

    async def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/events"):
            self.events_requests.append(dict(request.url.params))
            if len(self.events_requests) == 1:
                return httpx.Response(500, json={"message": "engine starting"})
            return httpx.Response(200, content=self._event_body())
        if path.endswith(f"/containers/{CONTAINER}/json"):
            state = {"Status": "running" if self.running else "exited", "Running": self.running, "Pid": 0}
            state["ExitCode"] = self.exit_code
            return httpx.Response(200, json={"Id": CONTAINER, "State": state})
        if path.endswith(f"/containers/{CONTAINER}/wait"):
            self.wait_calls += 1
            await self.stopped.wait()
            return httpx.Response(200, json={"StatusCode": self.exit_code})
        return httpx.Response(404, json={"message": f"unexpected {request.method} {path}"})

    async def _event_body(self) -> AsyncIterator[bytes]:
        try:
            async for item in self._events:
                yield item
        except trio.ClosedResourceError:
            return


async def _start_live(nursery: trio.Nursery, runtime: DockerRuntime) -> None:
    await nursery.start(runtime.serve)  # reports started after the first (failed) attempt
    await wait_until(lambda: runtime.events_live)


async def test_watcher_reconnects_and_routes_die_events() -> None:
    """Verify serve() survives a failed subscription and routes a die event to wait_exit (no /wait)."""
    engine = FakeEngine()
    runtime = DockerRuntime(api=_api(engine.handler), use_pidfd=False, events_retry_delay=0.01)
    handle = InstanceHandle(id=CONTAINER, name="ns_web_00000000", deployment_id="d")
    result: list[Any] = []
    async with trio.open_nursery() as nursery:
        await _start_live(nursery, runtime)

        async def waiter() -> None:
            result.append(await runtime.wait_exit(handle))
            nursery.cancel_scope.cancel(reason="waiter done")

        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked(cushion=0.02)
        assert runtime.statistics().waiters == 1
        engine.die(3)
    assert result[0].exit_code == 3 and not result[0].removed
    assert engine.wait_calls == 0
    assert runtime.statistics().reconnects >= 1 and runtime.statistics().waiters == 0
    assert json.loads(engine.events_requests[0]["filters"]) == {
        "type": ["container"],
        "label": ["ring_deployment"],
        "event": ["die", "start", "kill", "oom", "destroy"],
    }


async def test_waiter_falls_back_to_engine_wait_when_the_stream_drops() -> None:
    """Verify a waiter without pidfd switches to POST /wait when the stream ends, and reconnect replays."""
    engine = FakeEngine()
    runtime = DockerRuntime(api=_api(engine.handler), use_pidfd=False, events_retry_delay=0.05)
    handle = InstanceHandle(id=CONTAINER, name="ns_web_00000000", deployment_id="d")
    result: list[Any] = []
    async with trio.open_nursery() as nursery:
        await _start_live(nursery, runtime)

        async def waiter() -> None:
            result.append(await runtime.wait_exit(handle))
            nursery.cancel_scope.cancel(reason="waiter done")

        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked(cushion=0.02)
        engine.end_stream()
        await wait_until(lambda: engine.wait_calls == 1)
        await wait_until(lambda: len(engine.events_requests) >= 3)
        engine.running, engine.exit_code = False, 9
        engine.stopped.set()
    assert result[0].exit_code == 9
    assert "since" not in engine.events_requests[1]
    assert "since" in engine.events_requests[2], "a reconnect replays what it may have missed"


async def test_wait_exit_cancellation_unregisters() -> None:
    """Verify a cancelled wait_exit leaves no waiter behind."""
    engine = FakeEngine()
    runtime = DockerRuntime(api=_api(engine.handler), use_pidfd=False)
    handle = InstanceHandle(id=CONTAINER, name="n", deployment_id="d")
    with trio.move_on_after(0.2) as scope:
        await runtime.wait_exit(handle)
    assert scope.cancelled_caught
    assert runtime.statistics().waiters == 0
