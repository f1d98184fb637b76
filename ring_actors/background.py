"""Background jobs the server runs next to the API (server.py starts `jobs(services)`).

- stats cache: one runtime stats sample per instance of every `running`
  deployment, summed per deployment, every scheduler interval; `/metrics` reads
  it so a scrape never calls a runtime (api.md §15). Sampling runs only while
  someone reads the cache: it starts at the first read and stops
  `STATS_READ_WINDOW` seconds after the last one. Sampling 10,000 instances
  every 10 s for nobody was most of an idle server's CPU.
- health-check history sweep: every 300 s, retention of `store.health`.
- webhooks (`ring_actors.webhooks.run_webhooks`): the enqueuer and the delivery worker.
- autoscaler (`Autoscaler`): every scheduler interval, one decision per autoscaled
  deployment (`supervisors.autoscale.decide`) from the stats cache; a change is stored
  as `desired_replicas` and the root supervisor is told. It reads the stats cache only
  while autoscaled deployments exist, so it keeps sampling alive only for them.

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
from msgspec import UNSET

from ring_actors.runtimes.base import InstanceHandle, InstanceStats, Runtime
from ring_actors.schemas.manifest import Deployment
from ring_actors.services import Services
from ring_actors.status import Status
from ring_actors.store.deployments import DeploymentFilter
from ring_actors.store.health import HealthCheckRepo
from ring_actors.supervisors.autoscale import (
    AutoscaleSettings,
    Decision,
    decide,
    is_eligible,
)
from ring_actors.webhooks import run_webhooks

__all__ = [
    "AUTOSCALE_COMPONENT",
    "HISTORY_SWEEP_INTERVAL",
    "STATS_CALL_TIMEOUT",
    "STATS_READ_WINDOW",
    "Autoscaler",
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


AUTOSCALE_COMPONENT = "autoscaler"
_AUTOSCALE_REASONS = {"up": "autoscale_up", "down": "autoscale_down", "clamp": "autoscale_clamp"}


class Autoscaler:
    """Decides `desired_replicas` for every autoscaled deployment, once per `step()`.

    Owns the cooldown clocks (`trio.current_time()` of each deployment's last action),
    in memory only: a server restart resets them (lifecycle.md §11). A decision is
    stored through the deployment repo, recorded as an event (`autoscale_up`,
    `autoscale_down`, `autoscale_clamp`; component `autoscaler`) and handed to the
    root supervisor, whose deployment actor reloads the row and converges to the new
    `target_replicas`. The actor's own `scale_up` / `scale_down` events follow as
    instances come and go.
    """

    def __init__(self, services: Services, settings: AutoscaleSettings | None = None) -> None:
        self._services = services
        self._settings = settings or getattr(services.settings, "autoscale", None) or AutoscaleSettings()
        self._last_action: dict[str, float] = {}
        self.decisions = 0

    async def step(self) -> None:
        repo = self._services.deployments
        snapshots = await repo.snapshots()
        draining = {s.parent_id for s in snapshots if s.parent_id and s.status != Status.DELETED}
        candidates = [
            row for row in await repo.list(DeploymentFilter(statuses=[Status.RUNNING]))
            if row.autoscale is not UNSET and row.kind != "job"
        ]
        known = {row.id for row in candidates}
        self._last_action = {k: v for k, v in self._last_action.items() if k in known}
        if not candidates:
            return  # no read: the stats cache may pause when nobody else looks
        cache = stats_cache(self._services)
        usage = {u.deployment_id: u for u in cache.deployments}
        refreshed = cache.last_refresh_unix
        sample_age = max(0.0, time.time() - refreshed) if refreshed else None
        now = trio.current_time()
        for row in candidates:
            found = usage.get(row.id)
            cpu = found.cpu_usage_percent / found.instances if found and found.instances else None
            last = self._last_action.get(row.id)
            decision = decide(
                row.autoscale,  # type: ignore[arg-type]
                _stored_count(row),
                cpu,
                sample_age=sample_age,
                since_last_action=None if last is None else now - last,
                eligible=is_eligible(row.status, rollout_child=bool(row.parent_id), being_drained=row.id in draining),
                settings=self._settings,
            )
            if decision is not None and await self._apply(row, decision, cpu):
                self._last_action[row.id] = now

    async def _apply(self, seen: Deployment, decision: Decision, cpu: float | None) -> bool:
        """Store the decision unless the row changed under it; True when stored."""
        repo = self._services.deployments
        row = await repo.get(seen.id)
        # No checkpoint from here to `save` issuing its write: the row saved is the row read.
        if row is None or row.status != Status.RUNNING or row.autoscale != seen.autoscale:
            return False
        before = _stored_count(row)
        if before != _stored_count(seen):
            return False  # changed meanwhile (re-apply, rollout): decide again next interval
        row.desired_replicas = decision.replicas
        if not await repo.save(row):
            return False
        self.decisions += 1
        await self._services.recorder.event(
            row.id,
            row.namespace,
            "info",
            _AUTOSCALE_REASONS[decision.action],
            _message(row, decision, before, cpu),
            AUTOSCALE_COMPONENT,
        )
        self._services.supervisor.notify(row.id)
        return True

    async def run(self, interval: float) -> None:
        """`step()` every `interval` seconds until cancelled; a failed step is logged and retried."""
        await _every(interval, "autoscaler", self.step)


def _stored_count(row: Deployment) -> int:
    return row.desired_replicas if row.desired_replicas is not UNSET else row.replicas


def _message(row: Deployment, decision: Decision, before: int, cpu: float | None) -> str:
    policy = row.autoscale
    assert policy is not UNSET
    if decision.action == "clamp":
        return (
            f"Autoscaler clamped desired replicas from {before} to {decision.replicas} "
            f"(bounds {policy.min}-{policy.max})"
        )
    direction = "above" if decision.action == "up" else "below"
    return (
        f"Autoscaler scaling {decision.action} from {before} to {decision.replicas} replicas: "
        f"average CPU {cpu:.1f}% is {direction} target {policy.target_cpu:g}%"
    )


async def autoscale_forever(services: Services) -> None:
    await Autoscaler(services).run(services.settings.scheduler_interval)


def jobs(services: Services) -> list[Callable[[], Awaitable[None]]]:
    """The long-running tasks for the server's root nursery."""
    return [
        functools.partial(refresh_stats_forever, services),
        functools.partial(sweep_history_forever, services),
        functools.partial(run_webhooks, services),
        functools.partial(autoscale_forever, services),
    ]
