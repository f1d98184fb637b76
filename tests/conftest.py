"""Shared fixtures: a real `ring-actors serve` per test module, tokens, an API client.

- `docker_engine` (session): dockerd must answer; raises `EngineNotReady`, never skips.
- `server` (module): a `RingServer` with the docker runtime; deletes what it created
  and checks that no container outlives the module.
- `admin_token`, `api` (module): a login session of the default admin and a client.
- Every end-to-end test runs under a hard timeout (`E2E_TEST_TIMEOUT`).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.support.engines import require_engine
from tests.support.server import RingServer

E2E_TEST_TIMEOUT = 180
"""Seconds an end-to-end test may take before it is failed (a hang is a failure)."""


class E2ETimeout(Exception):
    """The test ran past E2E_TEST_TIMEOUT."""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    usable = "/e2e/" in str(item.path) and threading.current_thread() is threading.main_thread()
    if not usable:
        return (yield)

    def expire(signum: int, frame: object) -> None:
        raise E2ETimeout(f"{item.nodeid} ran longer than {E2E_TEST_TIMEOUT}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(E2E_TEST_TIMEOUT)
    try:
        return (yield)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """Attach the server's log tail to a failed test's report."""
    report = yield
    if report.failed:
        server = getattr(item, "funcargs", {}).get("server")
        if isinstance(server, RingServer):
            report.sections.append(("ring-actors server log (tail)", server.log_tail(80)))
    return report


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """dockerd answers on its socket (raises EngineNotReady otherwise: CI must have it)."""
    require_engine("docker")


@pytest.fixture(scope="module")
def server(docker_engine: None) -> Iterator[RingServer]:
    ring = RingServer(runtimes=("docker",))
    ring.start()
    try:
        yield ring
    finally:
        ring.close()


@pytest.fixture(scope="module")
def admin_token(server: RingServer) -> str:
    return server.login()


@pytest.fixture(scope="module")
def api(server: RingServer, admin_token: str) -> Iterator[httpx.Client]:
    with server.client(admin_token) as client:
        yield client
