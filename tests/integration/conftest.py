"""Fixtures of the engine integration tests (Docker and Podman, real engines, no mocks).

- `engine` (function): the `Engine` profile under test (tests.support.runtimes). A shared module
  parametrises it with `pytest.mark.parametrize("engine", engine_params({...}), indirect=True)`, one
  param per engine with its own xdist group; an engine-specific module overrides it with a plain fixture.
- `registries` (session): both test registries answer (raises, never skips).
- `deadline`: fails the test after `TEST_TIMEOUT` seconds of its module, else the engine's `test_timeout`.
- `runtime`, `scope`: the engine's runtime with its event watcher, and one test's namespace, removed at
  teardown; the test fails if a container labelled for it outlives it.
- `cleanup`: deployment ids (lifecycle tests) whose containers are force-removed after the test; the
  test fails if one survives that (Podman 4.3 can report a container removed that survives it).

No fixture here is autouse: modules opt in (`pytest.mark.usefixtures`), so other integration modules are
not affected.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trio

from ring_actors.runtimes.docker import DockerRuntime
from tests.support.engines import AUTH_REGISTRY, REGISTRY, require_registry
from tests.support.runtimes import Engine, Scope, running_runtime


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> Engine:
    """The engine of this param; it must answer (raises EngineNotReady, never skips)."""
    chosen: Engine = request.param
    return chosen.require()


@pytest.fixture(scope="session")
def registries() -> None:
    """Both test registries answer (raises, never skips)."""
    require_registry(REGISTRY)
    require_registry(AUTH_REGISTRY)


@pytest.fixture
async def deadline(request: pytest.FixtureRequest, engine: Engine, nursery: trio.Nursery) -> None:
    """Every test has a timeout: a crashing fixture task cancels the test and reports why."""
    timeout: float = getattr(request.module, "TEST_TIMEOUT", engine.test_timeout)

    async def watchdog() -> None:
        await trio.sleep(timeout)
        raise TimeoutError(f"test did not finish within {timeout} s")

    nursery.start_soon(watchdog)


@pytest.fixture
async def runtime(engine: Engine, tmp_path: Path) -> AsyncIterator[DockerRuntime]:
    async with running_runtime(engine, tmp_path) as rt:
        yield rt


@pytest.fixture
async def scope(engine: Engine) -> AsyncIterator[Scope]:
    test_scope = Scope(engine)
    try:
        yield test_scope
    finally:
        with trio.move_on_after(60, shield=True):
            await test_scope.cleanup()
            for deployment_id in test_scope.deployment_ids:
                assert await engine.containers_of(deployment_id) == [], "containers outlived the test"


@pytest.fixture
def cleanup(engine: Engine) -> Iterator[list[str]]:
    """Deployment ids whose containers are removed after the test (cancelling a tree leaves them running)."""
    ids: list[str] = []
    yield ids
    for deployment_id in ids:
        engine.force_remove_all(deployment_id)
    leftovers = [c["Names"] for deployment_id in ids for c in engine.list_containers(deployment_id)]
    assert leftovers == [], f"forced removal left containers behind: {leftovers}"
