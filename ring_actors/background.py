"""Background jobs the server runs next to the API (server.py starts `jobs(services)`).

- stats cache: one runtime stats sample per instance of every `running`
  deployment, summed per deployment, every scheduler interval; `/metrics` reads
  it so a scrape never calls a runtime (api.md §15). Sampling runs only while
  someone reads the cache: it starts at the first read and stops
  `STATS_READ_WINDOW` seconds after the last one. Sampling 10,000 instances
  every 10 s for nobody was most of an idle server's CPU.
- health-check history sweep: every 300 s, retention of `store.health`.
- webhooks (`ring_actors.webhooks.run_webhooks`): the enqueuer and the delivery worker.

Each job survives its own failures (logged) and stops only when cancelled.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from ring_actors.runtimes.base import InstanceHandle, InstanceStats, Runtime
from ring_actors.services import Services
from ring_actors.status import Status
from ring_actors.store.deployments import DeploymentFilter
from ring_actors.store.health import HealthCheckRepo
from ring_actors.webhooks import run_webhooks

__all__ = [
    "HISTORY_SWEEP_INTERVAL",
    "STATS_CALL_TIMEOUT",
    "STATS_READ_WINDOW",
    "DeploymentUsage",
    "StatsCache",
    "collect_stats",
    "jobs",
    "stats_cache",
]

log = logging.getLogger(__name__)

HISTORY_SWEEP_INTERVAL = 300.0
STATS_READ_WINDOW = 600.0
"""Seconds the stats cache keeps sampling after its last read: longer than any usual scrape interval."""
STATS_CALL_TIMEOUT = 5.0
"""Bound on one runtime stats call; a slow instance is left out of that sample."""


@dataclass(frozen=True)
class DeploymentUsage:
    deployment_id: str
    name: str
    namespace: str
    runtime: str
    instances: int
    cpu_usage_percent: float
    memory_usage_bytes: int
    memory_limit_bytes: int
    network_rx_bytes: int
    network_tx_bytes: int
    disk_read_bytes: int
    disk_write_bytes: int
    pids: int
    restarts: int


class StatsCache:
    """The latest per-deployment usage; replaced whole at each refresh.

    Reading `deployments` or `last_refresh_unix` counts as demand: the sampler
    (`run`) wakes at once if it was paused and keeps sampling every interval
    until nobody has read for `read_window` seconds; then it pauses and drops the
    per-deployment data. So the first read after a pause sees no per-deployment
    usage, exactly as right after start (api.md §15: omitted until the cache has
    data), and the reads after it see samples at most one interval old.
    """

    def __init__(self, *, read_window: float | None = None) -> None:
        self._deployments: list[DeploymentUsage] = []
        self._last_refresh_unix = 0
        self._read_window = STATS_READ_WINDOW if read_window is None else read_window
        self._last_read = -math.inf
        self._demand = trio.Event()
        self._limiter: trio.CapacityLimiter | None = None
        self.refreshes = 0

    @property
    def deployments(self) -> list[DeploymentUsage]:
        """The latest usage, sorted by namespace and name. Reading it (inside trio) is demand."""
        self._mark_read()
        return self._deployments

    @deployments.setter
    def deployments(self, value: list[DeploymentUsage]) -> None:
        self._deployments = value

    @property
    def last_refresh_unix(self) -> int:
        """Unix time of the last refresh, 0 before the first. Reading it is demand too."""
        self._mark_read()
        return self._last_refresh_unix

    @last_refresh_unix.setter
    def last_refresh_unix(self, value: int) -> None:
        self._last_refresh_unix = value

    def _mark_read(self) -> None:
        self._last_read = trio.current_time()
        self._demand.set()

    def wanted(self) -> bool:
        """Whether anyone read the cache within the read window."""
        return trio.current_time() - self._last_read <= self._read_window

    async def run(self, services: Services, interval: float) -> None:
        """Refresh every `interval` while wanted; wait for a read, without sampling, otherwise.

        Runs until cancelled; a failed refresh is logged and retried at the next interval.
        """
        while True:
            if not self.wanted():
                # Nobody looks: stop sampling, and drop what would only grow stale. The next
                # reader finds the cache as a fresh server has it and wakes the sampler.
                self._deployments = []
                self._demand = trio.Event()
                await self._demand.wait()
            try:
                await self.refresh(services)
            except Exception:
                log.exception("background job stats cache failed; retrying in %gs", interval)
            await trio.sleep(interval)

    async def refresh(self, services: Services) -> None:
        rows = await services.deployments.list(DeploymentFilter(statuses=[Status.RUNNING]))
        found: list[DeploymentUsage] = []

        async def one(row) -> None:  # noqa: ANN001 - a Deployment
            runtime = services.runtimes.get(row.runtime)
            handles = services.supervisor.handles(row.id)
            if runtime is None or not handles:
                return
            samples, _ = await collect_stats(runtime, handles)
            if not samples:
                return
            found.append(
                DeploymentUsage(
                    deployment_id=row.id,
                    name=row.name,
                    namespace=row.namespace,
                    runtime=row.runtime,
                    instances=len(samples),
                    cpu_usage_percent=round(sum(s.cpu_percent for s in samples), 2),
                    memory_usage_bytes=sum(s.memory_usage for s in samples),
                    memory_limit_bytes=sum(s.memory_limit for s in samples),
                    network_rx_bytes=sum(s.rx_bytes for s in samples),
                    network_tx_bytes=sum(s.tx_bytes for s in samples),
                    disk_read_bytes=sum(s.read_bytes for s in samples),
                    disk_write_bytes=sum(s.write_bytes for s in samples),
                    pids=sum(s.pids for s in samples),
                    # Ring exports engine restart counters (always 0 on Docker); the
                    # deployment's own restart_count is what people mean (api.md §16).
                    restarts=row.restart_count,
                )
            )

        if self._limiter is None:
            self._limiter = trio.CapacityLimiter(16)
        limiter = self._limiter

        async def bounded(row) -> None:  # noqa: ANN001
            async with limiter:
                await one(row)

        async with trio.open_nursery() as nursery:
            for row in rows:
                nursery.start_soon(bounded, row)
        self._deployments = sorted(found, key=lambda u: (u.namespace, u.name, u.deployment_id))
        self._last_refresh_unix = int(time.time())
        self.refreshes += 1


async def collect_stats(
    runtime: Runtime, handles: list[InstanceHandle], *, call_timeout: float = STATS_CALL_TIMEOUT
) -> tuple[list[InstanceStats], list[str]]:
    """One stats sample per handle, concurrently, each bounded by `timeout`.

    Returns the samples that arrived (in handle order) and one message per instance
    that failed or was too slow: partial results rather than a failed request.
    """
    results: list[InstanceStats | None] = [None] * len(handles)
    errors: list[str] = []

    async def sample(index: int, handle: InstanceHandle) -> None:
        with trio.move_on_after(call_timeout) as scope:
            try:
                results[index] = await runtime.stats(handle)
            except Exception as exc:  # noqa: BLE001 - reported per instance, never fatal
                errors.append(f"{handle.name}: {exc}")
        if scope.cancelled_caught:
            errors.append(f"{handle.name}: stats timed out after {call_timeout:g}s")

    async with trio.open_nursery() as nursery:
        for index, handle in enumerate(handles):
            nursery.start_soon(sample, index, handle)
    return [r for r in results if r is not None], errors


def stats_cache(services: Services) -> StatsCache:
    """The server's stats cache, shared by the refresher and `/metrics`.

    Kept as an attribute of `Services` (created on first use) until Services grows a
    field for it.
    """
    cache = getattr(services, "stats_cache", None)
    if cache is None:
        cache = StatsCache()
        services.stats_cache = cache
    return cache


async def _every(interval: float, what: str, step: Callable[[], Awaitable[object]]) -> None:
    while True:
        try:
            await step()
        except Exception:
            log.exception("background job %s failed; retrying in %gs", what, interval)
        await trio.sleep(interval)


async def refresh_stats_forever(services: Services) -> None:
    await stats_cache(services).run(services, services.settings.scheduler_interval)


async def sweep_history_forever(services: Services) -> None:
    repo = HealthCheckRepo(services.db)

    async def sweep() -> None:
        removed = await repo.sweep()
        if removed:
            log.info("health-check history: removed %d old rows", removed)

    await _every(HISTORY_SWEEP_INTERVAL, "health-check sweep", sweep)


def jobs(services: Services) -> list[Callable[[], Awaitable[None]]]:
    """The long-running tasks for the server's root nursery."""
    return [
        functools.partial(refresh_stats_forever, services),
        functools.partial(sweep_history_forever, services),
        functools.partial(run_webhooks, services),
    ]
