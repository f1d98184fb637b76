"""Autoscaling (manifest.md §8): the pure decision rules, then the background job that applies them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from msgspec import UNSET

from ring_actors.background import Autoscaler, DeploymentUsage, StatsCache
from ring_actors.config import load_settings
from ring_actors.schemas.manifest import Autoscale, Deployment
from ring_actors.status import Status
from ring_actors.store.db import Database
from ring_actors.store.deployments import DeploymentRepo
from ring_actors.supervisors.autoscale import (
    DOWN_COOLDOWN,
    MAX_SAMPLE_AGE,
    UP_COOLDOWN,
    AutoscaleSettings,
    Decision,
    decide,
    is_eligible,
)

POLICY = Autoscale(min=1, max=5, target_cpu=50.0)
FRESH = 5.0  # seconds: a recent sample


def fresh(current: int, cpu: float | None, **options: Any) -> Decision | None:
    """A decision with a fresh sample and no earlier action, unless told otherwise."""
    options.setdefault("sample_age", FRESH)
    options.setdefault("since_last_action", None)
    return decide(options.pop("policy", POLICY), current, cpu, **options)


# ---------------------------------------------------------------- the rules


def test_defaults_are_the_spec_values() -> None:
    """Verify 60 s up, 300 s down, ±10 points, 120 s staleness."""
    settings = AutoscaleSettings()
    assert (settings.up_cooldown, settings.down_cooldown, settings.dead_band, settings.max_sample_age) == (
        UP_COOLDOWN, DOWN_COOLDOWN, 10.0, MAX_SAMPLE_AGE) == (60.0, 300.0, 10.0, 120.0)


def test_above_the_dead_band_adds_exactly_one() -> None:
    """Verify CPU far above target moves +1, never straight to max."""
    assert fresh(2, 100.0) == Decision(3, "up")
    assert fresh(2, 60.01) == Decision(3, "up")


def test_below_the_dead_band_removes_exactly_one() -> None:
    """Verify CPU far below target moves -1, never straight to min."""
    assert fresh(4, 0.0) == Decision(3, "down")
    assert fresh(4, 39.99) == Decision(3, "down")


@pytest.mark.parametrize("cpu", [40.0, 45.0, 50.0, 55.0, 60.0])
def test_within_ten_points_holds(cpu: float) -> None:
    """Verify target ± 10 points (edges included) is on target."""
    assert fresh(3, cpu) is None


def test_at_a_bound_the_load_pushes_against_holds() -> None:
    """Verify no step past max under load or past min when idle."""
    assert fresh(5, 100.0) is None
    assert fresh(1, 0.0) is None


def test_at_a_bound_no_cooldown_is_needed_to_leave_it_the_other_way() -> None:
    """Verify at max an idle deployment may step down (after its cooldown) and at min a busy one steps up."""
    assert fresh(5, 0.0) == Decision(4, "down")
    assert fresh(1, 100.0) == Decision(2, "up")


def test_scale_up_waits_for_the_up_cooldown_since_any_action() -> None:
    """Verify a step up needs 60 s since the last action of either direction."""
    assert fresh(2, 100.0, since_last_action=59.9) is None
    assert fresh(2, 100.0, since_last_action=60.0) == Decision(3, "up")


def test_scale_down_waits_for_the_longer_down_cooldown() -> None:
    """Verify a step down needs 300 s since the last action: 61 s is enough to go up, not down."""
    assert fresh(4, 0.0, since_last_action=61.0) is None
    assert fresh(4, 0.0, since_last_action=299.9) is None
    assert fresh(4, 0.0, since_last_action=300.0) == Decision(3, "down")


def test_cooldowns_are_configurable() -> None:
    """Verify the settings' cooldowns replace the defaults."""
    quick = AutoscaleSettings(up_cooldown=1.0, down_cooldown=2.0)
    assert fresh(2, 100.0, since_last_action=1.0, settings=quick) == Decision(3, "up")
    assert fresh(4, 0.0, since_last_action=1.5, settings=quick) is None
    assert fresh(4, 0.0, since_last_action=2.0, settings=quick) == Decision(3, "down")


def test_out_of_bounds_is_clamped_at_once() -> None:
    """Verify a count above max or below min is clamped without cooldown, data or a dead-band signal."""
    assert fresh(8, 50.0, since_last_action=0.0) == Decision(5, "clamp")
    assert fresh(8, None, sample_age=None) == Decision(5, "clamp")
    narrow = Autoscale(min=3, max=6, target_cpu=50.0)
    assert fresh(1, 0.0, policy=narrow, since_last_action=0.0) == Decision(3, "clamp")


@pytest.mark.parametrize("cpu", [None, float("nan"), float("inf"), -1.0])
def test_missing_or_unusable_cpu_holds(cpu: float | None) -> None:
    """Verify no value (or a nonsensical one) never scales, in either direction."""
    assert fresh(3, cpu) is None


def test_stale_or_absent_sample_holds() -> None:
    """Verify a sample older than 120 s, or no refresh yet, holds; exactly 120 s is still usable."""
    assert fresh(3, 100.0, sample_age=120.1) is None
    assert fresh(3, 0.0, sample_age=None) is None
    assert fresh(3, 100.0, sample_age=120.0) == Decision(4, "up")


def test_ineligible_deployments_hold_even_out_of_bounds() -> None:
    """Verify an ineligible deployment is left alone, clamp included (its actor clamps its target anyway)."""
    assert fresh(3, 100.0, eligible=False) is None
    assert fresh(9, 100.0, eligible=False) is None


@pytest.mark.parametrize(
    ("status", "child", "drained", "expected"),
    [
        (Status.RUNNING, False, False, True),
        (Status.CREATING, False, False, False),
        (Status.CRASH_LOOP_BACK_OFF, False, False, False),
        (Status.RUNNING, True, False, False),
        (Status.RUNNING, False, True, False),
    ],
)
def test_eligibility(status: str, child: bool, drained: bool, expected: bool) -> None:
    """Verify only `running`, not a rollout child, not a parent being drained, is eligible."""
    assert is_eligible(status, rollout_child=child, being_drained=drained) is expected


def test_an_oscillating_load_does_not_flap() -> None:
    """Verify a load alternating 95 % / 5 % every 10 s never sheds capacity within 200 s."""
    current, last, ups, downs = 3, None, 0, 0
    policy = Autoscale(min=1, max=10, target_cpu=50.0)
    for tick in range(20):
        now = tick * 10.0
        decision = decide(policy, current, 95.0 if tick % 2 == 0 else 5.0, sample_age=FRESH,
                          since_last_action=None if last is None else now - last)
        if decision is not None:
            ups += decision.replicas > current
            downs += decision.replicas < current
            current, last = decision.replicas, now
    assert downs == 0
    assert 1 <= ups <= 4


def test_env_knobs_set_the_cooldowns(tmp_path: Any) -> None:
    """Verify RING_AUTOSCALE_UP_COOLDOWN / RING_AUTOSCALE_DOWN_COOLDOWN reach Settings (0 allowed)."""
    env = {"RING_CONFIG_DIR": str(tmp_path)}
    assert load_settings(env=env).autoscale == AutoscaleSettings()
    env |= {"RING_AUTOSCALE_UP_COOLDOWN": "0", "RING_AUTOSCALE_DOWN_COOLDOWN": "2.5"}
    settings = load_settings(env=env).autoscale
    assert (settings.up_cooldown, settings.down_cooldown) == (0.0, 2.5)


# ---------------------------------------------------------------- the job


@dataclass
class Supervisor:
    notified: list[str] = field(default_factory=list)

    def notify(self, deployment_id: str) -> None:
        self.notified.append(deployment_id)


@dataclass
class Recorder:
    events: list[tuple[str, str, str, str]] = field(default_factory=list)

    async def event(self, deployment_id: str, namespace: str, level: str, reason: str, message: str,
                    component: str = "scheduler") -> None:
        self.events.append((deployment_id, reason, component, message))


class Harness:
    def __init__(self, repo: DeploymentRepo, settings: AutoscaleSettings) -> None:
        self.cache = StatsCache()
        self.supervisor = Supervisor()
        self.recorder = Recorder()
        self.services: Any = type("S", (), {})()
        self.services.deployments = repo
        self.services.supervisor = self.supervisor
        self.services.recorder = self.recorder
        self.services.stats_cache = self.cache
        self.autoscaler = Autoscaler(self.services, settings)

    def sample(self, deployment_id: str, instances: int, cpu_each: float) -> None:
        self.cache.deployments = [DeploymentUsage(
            deployment_id, "web", "ns", "docker", instances, cpu_each * instances, 0, 0, 0, 0, 0, 0, 0, 0)]
        self.cache.last_refresh_unix = int(time.time())


def _row(name: str, **fields: Any) -> Deployment:
    fields.setdefault("status", Status.RUNNING)
    fields.setdefault("autoscale", Autoscale(min=1, max=3, target_cpu=50.0))
    return Deployment(name=name, namespace="ns", runtime="docker", image="busybox", id=f"id-{name}",
                      created_at="2026-01-01T00:00:00.000000Z", **fields)


@pytest.fixture
async def repo() -> DeploymentRepo:
    return DeploymentRepo(await Database.open(":memory:"))


async def test_job_stores_desired_replicas_records_and_notifies(repo: DeploymentRepo) -> None:
    """Verify a decision is stored as desired_replicas (replicas untouched), recorded as `autoscale_up`
    by component `autoscaler`, and the root supervisor is told."""
    await repo.insert(_row("web"))
    harness = Harness(repo, AutoscaleSettings(up_cooldown=0))
    harness.sample("id-web", 1, 95.0)
    await harness.autoscaler.step()
    stored = await repo.get("id-web")
    assert stored is not None and stored.desired_replicas == 2 and stored.replicas == 1
    assert stored.target_replicas == 2
    assert [(r, c) for _, r, c, _ in harness.recorder.events] == [("autoscale_up", "autoscaler")]
    assert "from 1 to 2" in harness.recorder.events[0][3]
    assert harness.supervisor.notified == ["id-web"]


async def test_job_uses_the_average_per_instance_not_the_sum(repo: DeploymentRepo) -> None:
    """Verify three instances at 30 % each (90 % summed) scale down against a 50 % target, not up."""
    await repo.insert(_row("web", desired_replicas=3))
    harness = Harness(repo, AutoscaleSettings(down_cooldown=0))
    harness.sample("id-web", 3, 30.0)
    await harness.autoscaler.step()
    stored = await repo.get("id-web")
    assert stored is not None and stored.desired_replicas == 2
    assert harness.recorder.events[0][1] == "autoscale_down"


async def test_job_keeps_its_cooldown_clock_between_steps(repo: DeploymentRepo) -> None:
    """Verify the last action time is kept: a second step inside the cooldown holds."""
    await repo.insert(_row("web"))
    harness = Harness(repo, AutoscaleSettings(up_cooldown=3600))
    harness.sample("id-web", 1, 95.0)
    await harness.autoscaler.step()
    harness.sample("id-web", 2, 95.0)
    await harness.autoscaler.step()
    stored = await repo.get("id-web")
    assert stored is not None and stored.desired_replicas == 2
    assert len(harness.recorder.events) == 1


async def test_job_skips_rollout_children_and_drained_parents(repo: DeploymentRepo) -> None:
    """Verify neither side of a rollout is autoscaled, even far out of bounds."""
    await repo.insert(_row("parent", desired_replicas=9))
    await repo.insert(_row("child", parent_id="id-parent", desired_replicas=9))
    harness = Harness(repo, AutoscaleSettings(up_cooldown=0))
    harness.sample("id-parent", 1, 95.0)
    await harness.autoscaler.step()
    assert harness.recorder.events == [] and harness.supervisor.notified == []
    for name in ("parent", "child"):
        stored = await repo.get(f"id-{name}")
        assert stored is not None and stored.desired_replicas == 9


async def test_job_skips_deployments_that_are_not_running(repo: DeploymentRepo) -> None:
    """Verify a `creating` deployment is left alone."""
    await repo.insert(_row("web", status=Status.CREATING, desired_replicas=9))
    harness = Harness(repo, AutoscaleSettings(up_cooldown=0))
    await harness.autoscaler.step()
    assert harness.recorder.events == []


async def test_job_reads_the_stats_cache_only_while_autoscaled_deployments_exist(repo: DeploymentRepo) -> None:
    """Verify the job keeps the on-demand stats sampler alive only for autoscaled deployments."""
    await repo.insert(_row("plain", autoscale=UNSET))
    harness = Harness(repo, AutoscaleSettings())
    await harness.autoscaler.step()
    assert not harness.cache.wanted(), "no autoscaled deployment, yet the cache was read"
    await repo.insert(_row("web"))
    await harness.autoscaler.step()
    assert harness.cache.wanted()


async def test_a_clamp_needs_no_sample(repo: DeploymentRepo) -> None:
    """Verify replicas above max are clamped before any stats exist."""
    await repo.insert(_row("web", replicas=5))
    harness = Harness(repo, AutoscaleSettings())
    await harness.autoscaler.step()
    stored = await repo.get("id-web")
    assert stored is not None and stored.desired_replicas == 3 and stored.replicas == 5
    assert harness.recorder.events[0][1] == "autoscale_clamp"


async def test_actor_state_writes_keep_the_autoscaler_value(repo: DeploymentRepo) -> None:
    """Verify the deployment actor's persist path (stored desired_replicas carried, then update_state)
    does not undo a decision made after the actor last read its row."""
    from ring_actors.supervisors.deployment import DeploymentActor

    await repo.insert(_row("web"))
    in_actor = await repo.get("id-web")  # the actor's copy, read before the decision
    harness = Harness(repo, AutoscaleSettings(up_cooldown=0))
    harness.sample("id-web", 1, 95.0)
    await harness.autoscaler.step()

    actor: Any = DeploymentActor.__new__(DeploymentActor)  # only what _persist touches
    actor.deployment = in_actor
    actor.ctx = type("C", (), {"deployments": repo})()
    actor._announced = in_actor.status
    in_actor.restart_count = 1
    await DeploymentActor._persist(actor)
    stored = await repo.get("id-web")
    # Without the carry, the stale copy would have written desired_replicas back to unset.
    assert stored is not None and stored.restart_count == 1 and stored.desired_replicas == 2
