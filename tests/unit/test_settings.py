"""Server settings from config.toml and the environment (config.md §3, plus ring-actors' own knobs)."""

from __future__ import annotations

from pathlib import Path

from ring_actors.config import load_settings


def settings_from(tmp_path: Path, toml: str, **env: str):
    path = tmp_path / "config.toml"
    path.write_text(toml)
    return load_settings(str(path), env={"RING_CONFIG_DIR": str(tmp_path), **env})


def test_defaults(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, "")
    assert settings.scheduler_interval == 10
    assert settings.drain_grace == 2.0
    assert (settings.backoff.base, settings.backoff.maximum, settings.backoff.healthy_window) == (1.0, 60.0, 10.0)


def test_scheduler_table_then_environment(tmp_path: Path) -> None:
    toml = "[server.scheduler]\ninterval = 5\ndrain_grace = 0.5\nbackoff_base = 0.2\n"
    settings = settings_from(tmp_path, toml)
    assert (settings.scheduler_interval, settings.drain_grace, settings.backoff.base) == (5, 0.5, 0.2)
    settings = settings_from(tmp_path, toml, RING_SCHEDULER_INTERVAL="2", RING_DRAIN_GRACE="0", RING_BACKOFF_BASE="0.1")
    assert (settings.scheduler_interval, settings.drain_grace, settings.backoff.base) == (2, 0.0, 0.1)


def test_unusable_values_fall_back(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, "", RING_DRAIN_GRACE="-3", RING_SCHEDULER_INTERVAL="soon")
    assert settings.drain_grace == 0.0
    assert settings.scheduler_interval == 10
