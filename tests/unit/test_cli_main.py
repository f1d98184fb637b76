"""Parser surface: help everywhere, version, global options, Ring's command names, entry points."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ring_actors.cli import serve
from ring_actors.cli.completions import command_tree
from ring_actors.cli.main import build_parser, run

REPO = Path(__file__).resolve().parents[2]


def _all_paths() -> list[list[str]]:
    tree = command_tree(build_parser())
    return [node.path.split("/")[1:] for node in tree.walk()]


@pytest.mark.parametrize("path", _all_paths(), ids=lambda p: " ".join(p) or "<root>")
def test_every_command_has_help(path: list[str], capsys) -> None:
    """Verify `--help` works on every command and subcommand and describes it."""
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*path, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: ring-actors")
    assert len(out.splitlines()) > 3


def test_no_command_prints_help(capsys) -> None:
    """Verify `ring-actors` alone prints the help and succeeds, as Ring does."""
    assert run([]) == 0
    assert "commands:" in capsys.readouterr().out


def test_version(capsys) -> None:
    """Verify -V/--version."""
    with pytest.raises(SystemExit):
        run(["-V"])
    assert capsys.readouterr().out.startswith("ring-actors ")


def test_global_options_before_or_after_the_command() -> None:
    """Verify --context/--config work after the subcommand too, and never clobber an earlier value."""
    parser = build_parser()
    args = parser.parse_args(["deployment", "list", "--context", "prod", "--config", "/x.toml"])
    assert (args.context, args.config) == ("prod", "/x.toml")
    args = parser.parse_args(["-c", "prod", "deployment", "list"])
    assert args.context == "prod"
    args = parser.parse_args(["deployment", "logs", "id", "-c", "web"])  # -c is --container here
    assert args.container == "web" and args.context is None


def test_rings_server_start_is_serve() -> None:
    """Verify `server start` and `server` run the same handler as `serve` with the same flags."""
    parser = build_parser()
    for argv in (["serve", "--allow-degraded"], ["server", "start", "--allow-degraded", "--dashboard"], ["server"]):
        args = parser.parse_args(argv)
        assert args.handler is serve.run_serve


def test_ring_flag_spellings_are_accepted() -> None:
    """Verify flags from Ring's CLI reference parse unchanged."""
    parser = build_parser()
    parser.parse_args(["apply", "-f", "x.yaml", "-e", ".env", "-d", "--verbose", "--force"])
    parser.parse_args(["deployment", "list", "-n", "a", "-s", "running", "--type", "job", "-l", "k=v", "-o", "json"])
    parser.parse_args(["deployment", "events", "id", "-l", "error", "--limit", "5", "-f"])
    parser.parse_args(["deployment", "health-checks", "id", "--latest", "--limit", "3", "-o", "json"])
    parser.parse_args(["token", "create", "ci", "-s", "admin", "-n", "prod", "-e", "30d"])
    parser.parse_args(["namespace", "prune", "-a"])
    parser.parse_args(["init", "--runtime", "both", "--port", "3031", "--force"])
    parser.parse_args(["context", "user-token"])


def test_python_dash_m_entry_point(tmp_path: Path) -> None:
    """Verify `python -m ring_actors.cli.main` runs cleanly (no import warning) with the right exit code."""
    env = {"PATH": "/usr/bin:/bin", "RING_CONFIG_DIR": str(tmp_path), "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-W", "error", "-m", "ring_actors.cli.main", "deployment", "list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: not logged in to context 'default'")
    assert "\x1b" not in result.stderr
