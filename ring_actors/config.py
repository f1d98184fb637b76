"""config.toml and environment variables (spec: config.md).

One `Settings` object is built at start-up from, in order of precedence:
environment variables, the config file, built-in defaults. Unlike Ring, a TOML
syntax error is a start-up error, not a silent fallback to defaults.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli

from ring_actors.supervisors.autoscale import AutoscaleSettings
from ring_actors.supervisors.policy import BackoffSettings

DEFAULT_PORT = 3030


class ConfigError(Exception):
    """The configuration cannot be used; the message says what to change."""


def config_dir(env: dict[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("RING_CONFIG_DIR") or Path.home() / ".config" / "kemeter" / "ring")


def config_file(explicit: str | None = None, env: dict[str, str] | None = None) -> tuple[Path, bool]:
    """The config path and whether the user named it explicitly (--config or RING_CONFIG_FILE)."""
    env = os.environ if env is None else env
    if explicit:
        return Path(explicit), True
    if env.get("RING_CONFIG_FILE"):
        return Path(env["RING_CONFIG_FILE"]), True
    return config_dir(env) / "config.toml", False


@dataclass
class Context:
    name: str = "default"
    host: str = "127.0.0.1"
    scheme: str = "http"
    port: int = DEFAULT_PORT
    cors_origins: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"{self.scheme}://{host}:{self.port}"


@dataclass
class RuntimeSettings:
    name: str
    enabled: bool = False
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Settings:
    context: Context
    contexts: dict[str, Context]
    config_dir: Path
    config_path: Path
    scheduler_interval: float = 10.0
    apply_timeout: float = 300.0
    rollout_deadline: float = 600.0
    backoff: BackoffSettings = field(default_factory=BackoffSettings)
    runtimes: dict[str, RuntimeSettings] = field(default_factory=dict)
    database_path: Path = Path("ring.db")
    dashboard_enabled: bool = False
    dashboard_listen: str = "127.0.0.1:3031"
    stop_timeout: float = 10.0
    drain_grace: float = 2.0  # rollout: seconds an instance is out of the served list before it is stopped
    autoscale: AutoscaleSettings = field(default_factory=AutoscaleSettings)
    """Autoscaler cooldowns: RING_AUTOSCALE_UP_COOLDOWN / RING_AUTOSCALE_DOWN_COOLDOWN (seconds, >= 0)."""
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def enabled_runtimes(self) -> list[str]:
        return sorted(name for name, rt in self.runtimes.items() if rt.enabled)


RUNTIME_TABLES = {
    "docker": "docker",
    "podman": "podman",
    "containerd": "containerd",
    "cloud_hypervisor": "cloud-hypervisor",
    "firecracker": "firecracker",
}


def _read_toml(path: Path, explicit: bool) -> dict[str, Any]:
    if not path.exists():
        if explicit:
            raise ConfigError(f"config file {path} does not exist")
        return {}
    try:
        return tomli.loads(path.read_text())
    except tomli.TOMLDecodeError as exc:
        raise ConfigError(f"cannot parse {path}: {exc}") from exc


def _contexts(data: dict[str, Any]) -> dict[str, Context]:
    found: dict[str, Context] = {}
    for name, table in (data.get("contexts") or {}).items():
        api = table.get("api") or {}
        found[name] = Context(
            name=name,
            host=str(table.get("host", "127.0.0.1")),
            scheme=str(api.get("scheme", "http")),
            port=int(api.get("port", DEFAULT_PORT)),
            cors_origins=list(api.get("cors_origins", [])),
        )
        found[name].current = bool(table.get("current", False))  # type: ignore[attr-defined]
    return found


def select_context(contexts: dict[str, Context], wanted: str | None) -> Context:
    """--context NAME, else the first `current = true`, else built-in defaults."""
    if wanted:
        if wanted in contexts:
            return contexts[wanted]
        raise ConfigError(f"context '{wanted}' is not defined in the config file")
    for context in contexts.values():
        if getattr(context, "current", False):
            return context
    return contexts.get("default") or Context()


def _env_float(env: dict[str, str], name: str, default: float, *, positive: bool = True) -> float:
    value = env.get(name)
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except ValueError:
        return default
    return number if (number > 0 or not positive) else default


def _autoscale_settings(env: dict[str, str]) -> AutoscaleSettings:
    """Cooldowns from the environment (0 allowed: tests decide every interval); defaults are the spec's."""
    defaults = AutoscaleSettings()
    return AutoscaleSettings(
        up_cooldown=max(0.0, _env_float(env, "RING_AUTOSCALE_UP_COOLDOWN", defaults.up_cooldown, positive=False)),
        down_cooldown=max(
            0.0, _env_float(env, "RING_AUTOSCALE_DOWN_COOLDOWN", defaults.down_cooldown, positive=False)
        ),
    )


def load_settings(
    explicit_path: str | None = None,
    context_name: str | None = None,
    env: dict[str, str] | None = None,
) -> Settings:
    env = dict(os.environ if env is None else env)
    path, explicit = config_file(explicit_path, env)
    data = _read_toml(path, explicit)
    contexts = _contexts(data)
    context = select_context(contexts, context_name)
    server = data.get("server") or {}
    scheduler = server.get("scheduler") or {}
    directory = config_dir(env)

    interval = float(scheduler.get("interval", 10))
    interval = _env_float(env, "RING_SCHEDULER_INTERVAL", interval)
    backoff = BackoffSettings(
        base=_env_float(env, "RING_BACKOFF_BASE", float(scheduler.get("backoff_base", 1.0))),
        maximum=_env_float(env, "RING_BACKOFF_MAX", float(scheduler.get("backoff_max", 60.0))),
        healthy_window=_env_float(
            env, "RING_HEALTHY_WINDOW", float(scheduler.get("healthy_window", 10.0))
        ),
    )
    runtimes: dict[str, RuntimeSettings] = {}
    for table_name, runtime_name in RUNTIME_TABLES.items():
        table = dict((server.get("runtime") or {}).get(table_name) or {})
        runtimes[runtime_name] = RuntimeSettings(
            runtime_name, bool(table.pop("enabled", False)), table
        )
    dashboard = server.get("dashboard") or {}
    dashboard_enabled = bool(dashboard.get("enabled", False))
    if env.get("RING_DASHBOARD", "").lower() in ("1", "true", "yes", "on"):
        dashboard_enabled = True
    database = env.get("RING_DATABASE_PATH") or str(directory / "ring.db")
    return Settings(
        context=context,
        contexts=contexts,
        config_dir=directory,
        config_path=path,
        scheduler_interval=interval,
        apply_timeout=_env_float(env, "RING_APPLY_TIMEOUT", 300.0),
        rollout_deadline=_env_float(env, "RING_ROLLOUT_DEADLINE", 600.0),
        backoff=backoff,
        runtimes=runtimes,
        database_path=Path(database),
        dashboard_enabled=dashboard_enabled,
        dashboard_listen=env.get("RING_DASHBOARD_LISTEN") or dashboard.get("listen_address", "127.0.0.1:3031"),
        stop_timeout=float(scheduler.get("stop_timeout", 10.0)),
        drain_grace=max(0.0, _env_float(env, "RING_DRAIN_GRACE", float(scheduler.get("drain_grace", 2.0)), positive=False)),
        autoscale=_autoscale_settings(env),
        raw=data,
    )


def load_secret_key(env: dict[str, str] | None = None) -> bytes:
    """Validate RING_SECRET_KEY with Ring's exact messages (config.md §7)."""
    env = os.environ if env is None else env
    value = env.get("RING_SECRET_KEY")
    if not value:
        raise ConfigError(
            "RING_SECRET_KEY environment variable is not set. Generate one with: openssl rand -base64 32"
        )
    try:
        key = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"RING_SECRET_KEY is not valid base64: {exc}") from exc
    if len(key) != 32:
        raise ConfigError(f"RING_SECRET_KEY must decode to exactly 32 bytes (256 bits), got {len(key)}")
    return key
