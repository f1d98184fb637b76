"""Building runtimes from the `[server.runtime.*]` tables (no engine is contacted: `__init__` does no I/O)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ring_actors.config import ConfigError
from ring_actors.runtimes.registry import build_runtime, host_auth_options


class _Settings:
    config_dir = Path("/tmp/ring-actors-test-config")


@pytest.mark.parametrize("name", ["docker", "podman"])
async def test_host_auth_flags_reach_the_runtime(name: str) -> None:
    runtime = build_runtime(
        name,
        {"host": "unix:///nonexistent.sock", "use_host_registry_auth": True, "host_registry_config": "~/auth.json"},
        _Settings(),  # type: ignore[arg-type]
    )
    try:
        assert runtime.use_host_registry_auth is True
        assert runtime.host_registry_config == Path.home() / "auth.json"
        assert runtime.host_auth_files() == [Path.home() / "auth.json"]
    finally:
        await runtime.aclose()


@pytest.mark.parametrize("name", ["docker", "podman"])
async def test_host_auth_is_off_unless_the_server_allows_it(name: str) -> None:
    runtime = build_runtime(name, {"host": "unix:///nonexistent.sock"}, _Settings())  # type: ignore[arg-type]
    try:
        assert runtime.use_host_registry_auth is False
        assert runtime.host_registry_config is None
    finally:
        await runtime.aclose()


def test_host_auth_options_reject_wrong_types() -> None:
    with pytest.raises(ConfigError, match="use_host_registry_auth must be true or false"):
        host_auth_options({"use_host_registry_auth": "yes"})
    with pytest.raises(ConfigError, match="host_registry_config must be a path string"):
        host_auth_options({"host_registry_config": 3})
