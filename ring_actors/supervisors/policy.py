"""Restart policy as pure functions (spec: lifecycle.md §2–§4): unit-tested with a fake clock.

Ring's budget: an unexpected exit or a transient create failure adds one to
`restart_count`; at MAX_RESTART_COUNT a worker is `crash_loop_back_off` and a job
`failed`. The first retry is immediate; later ones wait min(base * 2^(n-2), max) s.
A worker that stays live for the healthy window gets its count reset to 0.

Unlike Ring, a permanent failure does not fake `restart_count = 5`: the count stays
truthful and the status (e.g. `image_pull_back_off`) stays put while retries slow
to the maximum backoff, so a later-pushed image still recovers.
"""

from __future__ import annotations

from dataclasses import dataclass

from ring_actors.status import Status

MAX_RESTART_COUNT = 5
NON_RETRYABLE_EXIT_CODES = frozenset({126, 127})


@dataclass(frozen=True)
class BackoffSettings:
    base: float = 1.0
    maximum: float = 60.0
    healthy_window: float = 10.0


def backoff_delay(restart_count: int, settings: BackoffSettings) -> float:
    """Delay before the next attempt after `restart_count` failures.

    The first retry is immediate: a single crash is most often transient, and the
    engines' own restart policies retry within ~100 ms (Ring waits for its next
    tick, 10 s). From the second failure on it is Ring's min(base * 2^(n-2), max):
    1, 2, 4 ... 60 s with the defaults. The budget (5) still ends a crash loop.
    """
    if restart_count <= 1:
        return 0.0
    return min(settings.base * 2 ** (restart_count - 2), settings.maximum)


@dataclass(frozen=True)
class ExitDecision:
    """What a deployment does after one of its instances exited on its own."""

    status: Status | None  # new deployment status, None = unchanged
    restart_count: int
    restart: bool  # bring up a replacement (after backoff)
    reasons: tuple[tuple[str, str], ...]  # (level, reason) events to record
    terminal: bool = False


def decide_exit(kind: str, exit_code: int | None, restart_count: int) -> ExitDecision:
    """Classify an unexpected instance exit (Ring's step 4, and the job rules of §3)."""
    if kind == "job":
        if exit_code == 0:
            return ExitDecision(Status.COMPLETED, restart_count, False, (("info", "container_completed"),), True)
        return ExitDecision(Status.FAILED, restart_count, False, (("error", "container_crashed"),), True)
    if exit_code == 0:
        return ExitDecision(Status.COMPLETED, restart_count, False, (("info", "container_completed"),), True)
    count = restart_count + 1
    reasons: list[tuple[str, str]] = [("error", "container_crashed")]
    if count >= MAX_RESTART_COUNT:
        return ExitDecision(Status.CRASH_LOOP_BACK_OFF, count, False, tuple(reasons), True)
    if exit_code in NON_RETRYABLE_EXIT_CODES:
        reasons.append(("error", "non_retryable_exit"))
        return ExitDecision(Status.CREATE_CONTAINER_ERROR, count, True, tuple(reasons))
    return ExitDecision(None, count, True, tuple(reasons))


@dataclass(frozen=True)
class FailureDecision:
    status: Status
    restart_count: int
    retry: bool
    terminal: bool
    permanent: bool


def decide_create_failure(
    kind: str, status: Status, permanent: bool, restart_count: int
) -> FailureDecision:
    """Map a classified create failure to the deployment's next state."""
    if status in (Status.INSUFFICIENT_RESOURCES, Status.FAILED):
        return FailureDecision(status, restart_count, False, True, True)
    if permanent:
        return FailureDecision(status, restart_count, True, False, True)
    count = restart_count + 1
    if count >= MAX_RESTART_COUNT:
        final = Status.FAILED if kind == "job" else Status.CRASH_LOOP_BACK_OFF
        return FailureDecision(final, count, False, True, False)
    return FailureDecision(status, count, True, False, False)


def healthy_window_elapsed(
    restart_count: int, live_since: float | None, last_restart_change: float, now: float, window: float
) -> bool:
    """Windowed reset: live continuously and no count change for `window` seconds."""
    if restart_count <= 0 or live_since is None:
        return False
    return now - max(live_since, last_restart_change) >= window
