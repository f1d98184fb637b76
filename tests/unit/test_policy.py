"""The pure restart policy (lifecycle.md §2–§4)."""

from ring_actors.status import Status
from ring_actors.supervisors import policy
from ring_actors.supervisors.policy import BackoffSettings


def test_first_retry_is_immediate_then_backoff_doubles_up_to_the_maximum() -> None:
    settings = BackoffSettings(base=1, maximum=60)
    assert [policy.backoff_delay(n, settings) for n in range(0, 10)] == [0, 0, 1, 2, 4, 8, 16, 32, 60, 60]


def test_worker_crash_counts_and_restarts() -> None:
    decision = policy.decide_exit("worker", 1, 0)
    assert decision.restart and decision.restart_count == 1 and decision.status is None


def test_fifth_crash_is_crash_loop_back_off() -> None:
    decision = policy.decide_exit("worker", 1, 4)
    assert decision.status == Status.CRASH_LOOP_BACK_OFF and not decision.restart and decision.terminal


def test_exit_126_and_127_fast_fail() -> None:
    for code in (126, 127):
        decision = policy.decide_exit("worker", code, 0)
        assert decision.status == Status.CREATE_CONTAINER_ERROR
        assert ("error", "non_retryable_exit") in decision.reasons


def test_worker_exit_zero_completes_like_ring() -> None:
    assert policy.decide_exit("worker", 0, 2).status == Status.COMPLETED


def test_job_outcomes() -> None:
    assert policy.decide_exit("job", 0, 0).status == Status.COMPLETED
    assert policy.decide_exit("job", 3, 0).status == Status.FAILED
    assert policy.decide_exit("job", None, 0).status == Status.FAILED


def test_create_failures() -> None:
    transient = policy.decide_create_failure("worker", Status.NETWORK_ERROR, False, 4)
    assert transient.status == Status.CRASH_LOOP_BACK_OFF and transient.terminal
    job = policy.decide_create_failure("job", Status.ERROR, False, 4)
    assert job.status == Status.FAILED
    permanent = policy.decide_create_failure("worker", Status.IMAGE_PULL_BACK_OFF, True, 0)
    assert permanent.retry and permanent.restart_count == 0 and permanent.status == Status.IMAGE_PULL_BACK_OFF
    admission = policy.decide_create_failure("worker", Status.INSUFFICIENT_RESOURCES, True, 0)
    assert admission.terminal and not admission.retry


def test_healthy_window() -> None:
    assert not policy.healthy_window_elapsed(0, 0.0, 0.0, 100.0, 10)
    assert not policy.healthy_window_elapsed(2, None, 0.0, 100.0, 10)
    assert not policy.healthy_window_elapsed(2, 95.0, 0.0, 100.0, 10)
    assert policy.healthy_window_elapsed(2, 80.0, 85.0, 100.0, 10)
