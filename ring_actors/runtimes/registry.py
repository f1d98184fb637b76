"""Builds the enabled runtimes from settings and checks each one answers.

ring-actors follows the documented rule (config.md §4): an enabled runtime that
cannot be reached stops the server at start-up, naming the runtime and the reason.
"""

from __future__ import annotations

import os
from pathlib import Path

from ring_actors.config import ConfigError, Settings
from ring_actors.runtimes.base import Runtime
from ring_actors.runtimes.errors import EngineUnavailable


def podman_host(options: dict, env: dict[str, str] | None = None) -> str:
    """Rootless first: RING_PODMAN_HOST, DOCKER_HOST, XDG runtime dir, /run/user/$UID, rootful."""
    env = os.environ if env is None else env
    if options.get("host"):
        return str(options["host"])
    for name in ("RING_PODMAN_HOST", "DOCKER_HOST"):
        if env.get(name):
            return env[name]
    candidates = []
    if env.get("XDG_RUNTIME_DIR"):
        candidates.append(Path(env["XDG_RUNTIME_DIR"]) / "podman" / "podman.sock")
    uid = env.get("UID") or str(os.getuid())
    candidates.append(Path(f"/run/user/{uid}/podman/podman.sock"))
    candidates.append(Path("/run/podman/podman.sock"))
    for path in candidates:
        if path.exists():
            return f"unix://{path}"
    return f"unix://{candidates[-1]}"


def host_auth_options(options: dict) -> dict:
    """`use_host_registry_auth` / `host_registry_config` of a runtime table (config.md §3.6-§3.7)."""
    flag = options.get("use_host_registry_auth", False)
    if not isinstance(flag, bool):
        raise ConfigError(f"use_host_registry_auth must be true or false, not {flag!r}")
    path = options.get("host_registry_config")
    if path is not None and not isinstance(path, str):
        raise ConfigError(f"host_registry_config must be a path string, not {path!r}")
    return {"use_host_registry_auth": flag, "host_registry_config": os.path.expanduser(path) if path else None}


def build_runtime(name: str, options: dict, settings: Settings) -> Runtime:
    if name == "docker":
        from ring_actors.runtimes.docker import DockerRuntime

        return DockerRuntime(
            str(options.get("host", "unix:///var/run/docker.sock")),
            config_dir=settings.config_dir,
            **host_auth_options(options),
        )
    if name == "podman":
        from ring_actors.runtimes.podman import PodmanRuntime

        return PodmanRuntime(podman_host(options), config_dir=settings.config_dir, **host_auth_options(options))
    if name == "simulated":
        from ring_actors.runtimes.simulated import SimulatedRuntime

        return SimulatedRuntime()
    raise ConfigError(f"runtime '{name}' is not available in this build of ring-actors")


async def connect_runtimes(settings: Settings, *, allow_degraded: bool = False) -> dict[str, Runtime]:
    """Every enabled runtime, pinged. Raises ConfigError naming what is wrong."""
    enabled = settings.enabled_runtimes
    if not enabled:
        raise ConfigError(
            "Refusing to start: no container runtime is enabled. Enable one in "
            f"{settings.config_path}, e.g.\n\n  [server.runtime.docker]\n  enabled = true\n"
        )
    runtimes: dict[str, Runtime] = {}
    problems: list[str] = []
    for name in enabled:
        try:
            runtime = build_runtime(name, settings.runtimes[name].options, settings)
            await runtime.ping()
        except (EngineUnavailable, ConfigError, OSError) as exc:
            problems.append(f"{name}: {exc}")
            continue
        runtimes[name] = runtime
    if problems and not (allow_degraded and runtimes):
        raise ConfigError(
            "Refusing to start: enabled runtime(s) unreachable:\n  "
            + "\n  ".join(problems)
            + "\nStart the engine, or disable the runtime in the config file"
            + (" (or pass --allow-degraded)." if runtimes else ".")
        )
    return runtimes
