"""The /metrics stats cache samples runtimes only while someone reads it (background.StatsCache)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
import trio
import trio.testing

from ring_actors.background import StatsCache
from ring_actors.runtimes.base import InstanceHandle, InstanceStats
from ring_actors.schemas.manifest import Deployment
from ring_actors.status import Status

INTERVAL = 10.0
WINDOW = 60.0


@dataclass
class CountingRuntime:
    """Answers stats for any handle and counts the calls: each is one runtime round trip."""

    calls: int = 0

    async def stats(self, handle: InstanceHandle) -> InstanceStats:
        self.calls += 1
        return InstanceStats(handle.id, handle.name, cpu_percent=1.5, memory_usage=1000)


@dataclass
class Rows:
    rows: list[Deployment] = field(default_factory=list)

    async def list(self, selector: Any = None) -> list[Deployment]:
        return [row for row in self.rows if selector is None or selector.matches(row)]


def _services(runtime: CountingRuntime, instances: int = 3) -> Any:
    row = Deployment(id="d-1", created_at="2024-01-01T00:00:00Z", name="web", namespace="default",
                     runtime="sim", image="busybox", status=Status.RUNNING)
    handles = [InstanceHandle(f"i-{n}", f"web-{n}", row.id) for n in range(instances)]
    supervisor = SimpleNamespace(handles=lambda deployment_id: handles if deployment_id == row.id else [])
    return SimpleNamespace(deployments=Rows([row]), runtimes={"sim": runtime}, supervisor=supervisor)


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def test_no_sampling_until_someone_reads(autojump_clock: trio.testing.MockClock) -> None:
    """Verify an unread cache never calls the runtime, however long the server idles."""
    runtime = CountingRuntime()
    cache = StatsCache(read_window=WINDOW)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(cache.run, _services(runtime), INTERVAL)
        await trio.sleep(100 * INTERVAL)
        assert runtime.calls == 0
        nursery.cancel_scope.cancel()


async def test_first_read_starts_sampling_at_once_then_every_interval(autojump_clock: trio.testing.MockClock) -> None:
    """Verify the first read wakes the sampler (no data yet, as at start), then samples come every interval."""
    runtime = CountingRuntime()
    cache = StatsCache(read_window=WINDOW)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(cache.run, _services(runtime), INTERVAL)
        await trio.sleep(5 * INTERVAL)
        assert cache.deployments == [] and cache.last_refresh_unix == 0, "nothing sampled before the first read"
        await trio.testing.wait_all_tasks_blocked()
        assert cache.refreshes == 1 and runtime.calls == 3, "one sample per instance, right after the read"
        [usage] = cache.deployments
        assert usage.instances == 3 and usage.cpu_usage_percent == 4.5 and usage.memory_usage_bytes == 3000
        assert cache.last_refresh_unix > 0
        await trio.sleep(2.5 * INTERVAL)
        assert cache.refreshes == 3, "still wanted: one refresh per interval"
        nursery.cancel_scope.cancel()


async def test_sampling_stops_after_the_read_window_and_resumes_on_read(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Verify sampling stops WINDOW after the last read, drops the stale usage, and restarts on the next read."""
    runtime = CountingRuntime()
    cache = StatsCache(read_window=WINDOW)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(cache.run, _services(runtime), INTERVAL)
        assert cache.deployments == []
        await trio.sleep(WINDOW + 2 * INTERVAL)
        paused_at = cache.refreshes
        assert paused_at == WINDOW / INTERVAL + 1, "one refresh per interval until the window closed"
        await trio.sleep(100 * INTERVAL)
        assert cache.refreshes == paused_at, "nobody read: no sampling"
        assert cache.deployments == [], "after a pause the cache reads as at start: no stale usage"
        await trio.testing.wait_all_tasks_blocked()
        assert cache.refreshes == paused_at + 1, "the read woke the sampler"
        assert len(cache.deployments) == 1
        nursery.cancel_scope.cancel()


async def test_regular_reads_keep_it_sampling(autojump_clock: trio.testing.MockClock) -> None:
    """Verify a scraper reading more often than the window keeps every interval sampled."""
    runtime = CountingRuntime()
    cache = StatsCache(read_window=WINDOW)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(cache.run, _services(runtime), INTERVAL)
        cache.deployments  # noqa: B018 - a read is the demand signal
        for _ in range(10):  # a scrape every 50 s, 500 s in all
            await trio.sleep(WINDOW - INTERVAL)
            cache.deployments  # noqa: B018
        await trio.sleep(INTERVAL / 2)  # off the beat: the refresh due at 500 s has run
        assert cache.refreshes == 10 * (WINDOW - INTERVAL) / INTERVAL + 1, "every interval from 0 to 500 s"
        nursery.cancel_scope.cancel()
