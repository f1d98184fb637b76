"""The server's garbage-collector policy (`server.CollectorPolicy`): freeze survivors, reclaim rarely."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
import trio

from ring_actors.server import (
    GC_RECLAIM_GROWTH,
    CollectorPolicy,
    serve_collector_policy,
)


class Node:
    """An object in a reference cycle: only the cyclic collector can free it."""

    def __init__(self) -> None:
        self.me = self


def _tracked(obj: object) -> bool:
    """Whether the collector still looks at `obj` (frozen objects are in no generation)."""
    return any(candidate is obj for candidate in gc.get_objects())


@pytest.fixture
def policy() -> Iterator[CollectorPolicy]:
    installed = CollectorPolicy()
    installed.install()
    try:
        yield installed
    finally:
        installed.uninstall()  # process-wide state: leave the collector as we found it


def test_survivors_of_a_full_collection_are_frozen(policy: CollectorPolicy) -> None:
    """Verify an object alive at a full collection leaves the collector's generations afterwards."""
    survivor = Node()
    assert _tracked(survivor)
    gc.collect()
    assert not _tracked(survivor)
    assert gc.get_freeze_count() > 0


def test_young_garbage_is_still_collected(policy: CollectorPolicy) -> None:
    """Verify a cycle that dies before any full collection is freed by the next one."""
    doomed = Node()
    gone = weakref.ref(doomed)
    del doomed
    gc.collect()
    assert gone() is None


def test_a_frozen_cycle_waits_for_reclaim(policy: CollectorPolicy) -> None:
    """Verify a cycle dying after it was frozen survives collections until `reclaim()` frees it."""
    late = Node()
    gc.collect()  # frozen now
    gone = weakref.ref(late)
    del late
    gc.collect()
    assert gone() is not None, "frozen: ordinary collections do not see it"
    assert policy.reclaim() >= 1
    assert gone() is None
    assert policy.reclaims == 1


def test_reclaim_runs_only_after_the_frozen_set_grew(policy: CollectorPolicy) -> None:
    """Verify `reclaim_if_grown` waits until the frozen objects grew by GC_RECLAIM_GROWTH."""
    policy.reclaim()
    assert not policy.reclaim_if_grown()
    grown = [Node() for _ in range(int(policy.frozen_after_reclaim * (GC_RECLAIM_GROWTH - 1)) + 1000)]
    gc.collect()  # the new objects survive: frozen
    assert policy.reclaim_if_grown()
    assert policy.reclaims == 2
    del grown


def test_uninstall_restores_the_defaults() -> None:
    """Verify uninstall removes the hook and unfreezes everything."""
    policy = CollectorPolicy()
    policy.install()
    policy.uninstall()
    survivor = Node()
    gc.collect()
    assert _tracked(survivor)
    assert gc.get_freeze_count() == 0


async def test_the_policy_lives_as_long_as_its_task() -> None:
    """Verify `serve_collector_policy` installs the policy on start and removes it when cancelled."""
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            policy = await nursery.start(serve_collector_policy)
            assert policy.installed and gc.get_freeze_count() > 0
            nursery.cancel_scope.cancel(reason="test shutdown")
    assert not policy.installed
    assert gc.get_freeze_count() == 0
