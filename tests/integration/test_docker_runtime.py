"""What only DockerRuntime does, against the REAL dockerd (no mocks).

The tests both engines share are in test_runtime.py (its `docker` params run in this module's xdist group).
Here: DNS by deployment and container name through Docker's embedded resolver, exit detection measured
through the pidfd and through the `die` event alone, and Docker's stats sample. Fixtures (`runtime`,
`scope`, `deadline`) are in conftest.py; helpers in tests.support.runtimes.
"""

from __future__ import annotations

import os
import statistics

import pytest

from ring_actors.runtimes.docker import DockerRuntime
from ring_actors.schemas.manifest import ResourceQuantities, Resources
from tests.support.runtimes import (
    DOCKER,
    EVENT_DRIVEN_BOUND,
    Engine,
    Scope,
    kill_latencies,
    running_runtime,
)

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("docker-runtime"), pytest.mark.usefixtures("deadline")]


@pytest.fixture
def engine() -> Engine:
    return DOCKER.require()


async def test_dns_resolves_deployment_and_container_names(runtime: DockerRuntime, scope: Scope) -> None:
    """Verify DNS inside the namespace network: by deployment name and by container name."""
    handle = await runtime.create(scope.spec("web", command=("httpd", "-f", "-p", "80", "-h", "/www")))
    for target in ("web", handle.name):
        client = await runtime.create(
            scope.spec("client", command=("wget", "-q", "-O", "-", f"http://{target}/index.html"))
        )
        status = await runtime.wait_exit(client)
        lines = [line.message for line in await runtime.logs(client, tail=None, since=None)]
        assert status.exit_code == 0, lines
        assert lines == ["v1"]
        await runtime.remove(client)
    await runtime.remove(handle, timeout=0)  # httpd as PID 1 ignores SIGTERM


async def test_kill_is_detected_event_driven_pidfd_and_die_event(
    engine: Engine, runtime: DockerRuntime, scope: Scope, tmp_path
) -> None:
    """Verify kill -9 of the container's PID and `docker kill` are detected well under a poll interval.

    Measures both paths: pidfd (default) and the engine's `die` event alone (use_pidfd=False).
    """
    pidfd_latencies, _ = await kill_latencies(engine, runtime, scope, times=3)
    cli_latencies, _ = await kill_latencies(engine, runtime, scope, times=1, via="cli")
    pidfd_latencies += cli_latencies
    async with running_runtime(engine, tmp_path, use_pidfd=False) as events_only:
        event_latencies, _ = await kill_latencies(engine, events_only, scope, times=3)
    print(
        f"\nexit detection latency: pidfd median {statistics.median(pidfd_latencies) * 1000:.1f} ms "
        f"{[round(x * 1000, 1) for x in pidfd_latencies]}; die event median "
        f"{statistics.median(event_latencies) * 1000:.1f} ms {[round(x * 1000, 1) for x in event_latencies]}"
    )
    assert max(pidfd_latencies + event_latencies) < EVENT_DRIVEN_BOUND
    assert statistics.median(pidfd_latencies) < 0.1


async def test_stats_are_sane(runtime: DockerRuntime, scope: Scope) -> None:
    """Verify one stats sample: memory usage/limit, pids, CPU % of a busy loop (one core = 100)."""
    spec = scope.spec(
        "stats",
        command=("sh", "-c", "trap 'exit 0' TERM; while true; do :; done"),
        resources=Resources(limits=ResourceQuantities(memory="128Mi")),
    )
    handle = await runtime.create(spec)
    sample = await runtime.stats(handle)
    assert sample.instance_id == handle.id[:12] and sample.instance_name == handle.name
    assert sample.memory_usage > 0
    assert sample.memory_limit == 128 << 20
    assert sample.pids >= 1
    # A busy loop: clearly non-zero (two samples a second apart), never above all cores (other suites compete).
    assert 1 < sample.cpu_percent <= 100 * (os.cpu_count() or 1) + 5, sample
    assert sample.rx_packets >= 0 and sample.read_bytes >= 0
    assert sample.restart_count == 0
    await runtime.remove(handle)
