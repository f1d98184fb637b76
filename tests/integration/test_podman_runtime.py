"""What only PodmanRuntime does, against the REAL Podman service (no mocks).

The tests both engines share are in test_runtime.py (its `podman` params run in this module's xdist group).
Here: the start-up ping and Podman's version, DNS through aardvark-dns, host registry auth from Podman's
auth.json, exit detection measured per source (pidfd + conmon exit file, libpod's `died` event), and
Podman's stats (CPU checked against the kernel's count, zeros for a stopped container). Fixtures
(`runtime`, `scope`, `deadline`) are in conftest.py; helpers in tests.support.runtimes.
"""

from __future__ import annotations

import os
import re
import socket
import statistics
import time
from pathlib import Path

import pytest
import trio

from ring_actors.runtimes.errors import EngineUnavailable
from ring_actors.runtimes.podman import (
    STATS_CPU_WINDOW,
    PodmanRuntime,
    podman_auth_files,
)
from ring_actors.schemas.manifest import ResourceQuantities, Resources
from tests.support.engines import (
    PODMAN_LIBPOD_PREFIX,
)
from tests.support.runtimes import (
    EVENT_DRIVEN_BOUND,
    PODMAN,
    Engine,
    Scope,
    kill_latencies,
    running_runtime,
)

pytestmark = [
    pytest.mark.podman,
    pytest.mark.xdist_group("podman-runtime"),
    pytest.mark.usefixtures("registries", "deadline"),
]

CRASH_BOUND = 0.05
"""pidfd + conmon exit file: the exit code is known well within 50 ms of the exit."""


@pytest.fixture
def engine() -> Engine:
    return PODMAN.require()


async def version_of(runtime: PodmanRuntime, handle) -> str:
    return (await runtime.exec(handle, ["cat", "/VERSION"], 10)).output.strip()


# --------------------------------------------------------------------------- engine, ping


async def test_ping_reads_the_podman_version(runtime: PodmanRuntime) -> None:
    """Verify ping reads Podman's version (4.x here)."""
    await runtime.ping()
    assert runtime.engine_version.startswith("4.")


async def test_ping_fails_fast_naming_the_socket(tmp_path: Path) -> None:
    """Verify a missing socket, and a socket that is not Podman, fail at once with the socket in the message."""
    missing = tmp_path / "no-such" / "podman.sock"
    async with PodmanRuntime(f"unix://{missing}") as absent:
        started = trio.current_time()
        with pytest.raises(EngineUnavailable) as failure:
            await absent.ping()
        assert trio.current_time() - started < 2
    message = str(failure.value)
    assert f"cannot reach the Podman API socket unix://{missing}" in message
    assert "podman system service" in message

    # A service that answers /_ping but has no libpod API (as Docker's socket would).
    sock_path = str(tmp_path / "not-podman.sock")
    listener = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    await listener.bind(sock_path)
    listener.listen()

    async def answer(conn: trio.socket.SocketType) -> None:
        with conn:
            request = await conn.recv(65536)
            body, status = (
                (b"OK", "200 OK")
                if b" /v1.41/_ping " in request
                else (b'{"message":"page not found"}', "404 Not Found")
            )
            await conn.send(
                f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
            )

    async def serve() -> None:
        while True:
            conn, _ = await listener.accept()
            nursery.start_soon(answer, conn)

    async with trio.open_nursery() as nursery, PodmanRuntime(f"unix://{sock_path}") as impostor:
        nursery.start_soon(serve)
        with pytest.raises(EngineUnavailable) as failure:
            await impostor.ping()
        nursery.cancel_scope.cancel(reason="done")
    listener.close()
    assert f"unix://{sock_path}" in str(failure.value)
    assert "not Podman's libpod API" in str(failure.value)


# --------------------------------------------------------------------------- DNS


async def test_dns_through_aardvark_resolves_replicas_and_container_names(
    engine: Engine, runtime: PodmanRuntime, scope: Scope
) -> None:
    """Verify `ring_<ns>` has DNS enabled and Ring's labels; aardvark resolves the deployment name to every
    replica (round robin) and each container name to itself; members reach each other by address."""
    spec = scope.spec("web", command=("httpd", "-f", "-p", "80", "-h", "/www"))
    handle = await runtime.create(spec)
    ring_net = engine.network_name(scope.namespace)
    libpod_net = await engine.get(f"/networks/{ring_net}/json", prefix=PODMAN_LIBPOD_PREFIX)
    assert libpod_net["dns_enabled"] is True, libpod_net
    assert libpod_net["labels"] == {"ring.managed": "true", "ring.namespace": scope.namespace}

    # A second replica: the deployment name resolves to both (round robin), each container name to itself.
    replica = await runtime.create(scope.spec("web", deployment_id=spec.deployment_id, command=spec.command))
    ring_ips = {
        h.name: (await engine.inspect(h.id))["NetworkSettings"]["Networks"][ring_net]["IPAddress"]
        for h in (handle, replica)
    }
    # busybox's own resolver: the static image's libc getaddrinfo crashes on any name (wget, ping).
    # Podman 4.3 (re)starts aardvark-dns for a network asynchronously, and it may still be restarting after
    # another network's last container left: wait (bounded, in the container) until it answers at all.
    ready = "i=0; until busybox nslookup web >/dev/null 2>&1 || [ $i -ge 100 ]; do i=$((i+1)); sleep 0.1; done; "
    lookup = ready + "busybox nslookup web; busybox nslookup " + " ; busybox nslookup ".join(ring_ips)
    client = await runtime.create(scope.spec("client", command=("sh", "-c", lookup)))
    status = await runtime.wait_exit(client)
    output = "\n".join(line.message for line in await runtime.logs(client, tail=None, since=None))
    assert status.exit_code == 0, output
    answers = re.findall(r"Name:\s+(\S+)\s+Address:\s+(\S+)", output)
    by_name: dict[str, set[str]] = {}
    for name, address in answers:
        by_name.setdefault(name.removesuffix(".dns.podman"), set()).add(address)
    assert by_name["web"] == set(ring_ips.values()), output
    for name, address in ring_ips.items():
        assert by_name[name] == {address}, output

    # Traffic between namespace members, by address (the DNS answers above).
    fetch = await runtime.exec(replica, ["wget", "-q", "-O", "-", f"http://{ring_ips[handle.name]}/"], 10)
    assert (fetch.exit_code, fetch.output.strip()) == (0, "v1")
    for done in (client, replica, handle):
        await runtime.remove(done, timeout=0)  # httpd as PID 1 ignores SIGTERM


# --------------------------------------------------------------------------- images


async def test_podman_host_auth_lookup_order() -> None:
    """Podman's own credentials files, in its order, when no host_registry_config is set."""
    env = {"REGISTRY_AUTH_FILE": "/a/auth.json", "XDG_RUNTIME_DIR": "/run/user/1000"}
    assert podman_auth_files(env)[:2] == [Path("/a/auth.json"), Path("/run/user/1000/containers/auth.json")]
    assert podman_auth_files({})[0] == Path(f"/run/containers/{os.geteuid()}/auth.json")


# --------------------------------------------------------------------------- exit detection


def _ms(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:.1f} ms {[round(v * 1000, 1) for v in values]}"


async def test_kill_is_detected_with_pidfd_exit_file_and_libpod_events(
    engine: Engine, runtime: PodmanRuntime, scope: Scope, tmp_path: Path
) -> None:
    """Verify kill -9 and `podman kill` are known (with exit code) well under 50 ms; measure each source.

    pidfd + conmon exit file (default); pidfd + engine (no exit files: the code waits for libpod's
    `died`); libpod events alone (no pidfd).
    """
    detected, informed = await kill_latencies(engine, runtime, scope, times=7)
    _, [cli_returned] = await kill_latencies(engine, runtime, scope, times=1, via="cli")  # CLI start-up included
    assert runtime.exit_code_sources == {"conmon": 8}

    async with running_runtime(engine, tmp_path, use_exit_files=False) as no_files:
        _, engine_code = await kill_latencies(engine, no_files, scope, times=3)
        assert no_files.exit_code_sources == {"engine": 3}
    async with running_runtime(engine, tmp_path, use_pidfd=False) as no_pidfd:
        events_only, _ = await kill_latencies(engine, no_pidfd, scope, times=3)
    print(
        f"\nkill -9 -> pidfd fired: {_ms(detected)}"
        f"\nkill -9 -> wait_exit returned with the code (pidfd + conmon exit file): {_ms(informed)}"
        f"\n`podman kill` (CLI start-up included) -> wait_exit returned: {cli_returned * 1000:.1f} ms"
        f"\nkill -9 -> wait_exit returned, code from libpod's `died` event (no exit files): {_ms(engine_code)}"
        f"\nkill -9 -> libpod `died` event (no pidfd): {_ms(events_only)}"
    )
    assert statistics.median(informed) < CRASH_BOUND
    assert max(detected + informed) < EVENT_DRIVEN_BOUND
    # Podman writes its events to a file it re-reads every ~250 ms: late, but still not a poll of ours.
    assert max(engine_code + events_only) < 4 * EVENT_DRIVEN_BOUND


# --------------------------------------------------------------------------- stats


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def test_stats_are_sane(runtime: PodmanRuntime, scope: Scope) -> None:
    """Verify one stats sample: memory usage/limit, pids, and a CPU % matching what the kernel counted.

    The busy loop's share of a core depends on the host's load, so the figure is checked against the
    process's own CPU time over the same second rather than against a fixed threshold.
    """
    spec = scope.spec(
        "stats",
        command=("sh", "-c", "while true; do :; done"),
        resources=Resources(limits=ResourceQuantities(memory="128Mi")),
    )
    handle = await runtime.create(spec)
    assert handle.pid
    cpu_before, wall_before = _cpu_seconds(handle.pid), time.monotonic()
    sample = await runtime.stats(handle)
    expected = (_cpu_seconds(handle.pid) - cpu_before) / (time.monotonic() - wall_before) * 100
    print(f"\nCPU %: stats() {sample.cpu_percent:.1f}, kernel over the same call {expected:.1f}")
    assert sample.instance_id == handle.id[:12] and sample.instance_name == handle.name
    assert sample.memory_usage > 0
    assert sample.memory_limit == 128 << 20
    assert sample.pids >= 1
    assert sample.cpu_percent > 1
    assert abs(sample.cpu_percent - expected) < max(15.0, expected * 0.3), (sample, expected)
    assert sample.cpu_percent <= 100 * (os.cpu_count() or 1) + 5
    assert sample.rx_bytes > 0 and sample.read_bytes >= 0
    assert sample.restart_count == 0
    await runtime.remove(handle)

    # A stopped container: zeros at once (Podman's compat endpoint answers it with an empty body).
    stopped = await runtime.create(scope.spec("stopped", command=("true",)))
    await runtime.wait_exit(stopped)
    started = trio.current_time()
    sample = await runtime.stats(stopped)
    assert (sample.cpu_percent, sample.memory_usage, sample.pids) == (0.0, 0, 0)
    assert trio.current_time() - started < STATS_CPU_WINDOW
    await runtime.remove(stopped)
