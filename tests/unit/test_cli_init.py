"""`init` and `doctor` without touching the real configuration."""

from __future__ import annotations

import base64
import io
import stat
from pathlib import Path

import pytest
import tomli

from ring_actors.cli.doctor import Check, Group, render_report, run_checks
from ring_actors.cli.init import generate_secret_key, render_config
from ring_actors.cli.main import run


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RING_CONFIG_DIR", str(tmp_path / "ring"))
    monkeypatch.delenv("RING_CONFIG_FILE", raising=False)
    monkeypatch.delenv("RING_SECRET_KEY", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO())
    return tmp_path / "ring"


def test_secret_key_is_32_bytes_base64() -> None:
    """Verify the generated key has the format the server validates."""
    assert len(base64.b64decode(generate_secret_key(), validate=True)) == 32


@pytest.mark.parametrize(
    ("runtime", "tables"),
    [("docker", ["docker"]), ("both", ["docker", "cloud_hypervisor"]), ("firecracker", ["firecracker"])],
)
def test_render_config_is_loadable(runtime: str, tables: list[str], tmp_path: Path) -> None:
    """Verify the written config parses, has one current context and enables exactly the chosen runtimes."""
    data = tomli.loads(render_config(runtime, 3031, "127.0.0.1", tmp_path))
    assert data["contexts"]["default"] == {
        "current": True,
        "host": "127.0.0.1",
        "api": {"scheme": "http", "port": 3031},
    }
    assert sorted(data["server"]["runtime"]) == sorted(tables)
    assert all(t["enabled"] for t in data["server"]["runtime"].values())
    assert "salt" not in str(data)


def test_init_non_interactive_writes_files(config_home: Path, capsys) -> None:
    """Verify init without a TTY uses defaults, writes a 0600 key, prints the export line and exits 0."""
    assert run(["init"]) == 0
    out = capsys.readouterr().out
    key = (config_home / "secret-key").read_text()
    assert key.endswith("\n") and len(base64.b64decode(key.strip())) == 32
    assert stat.S_IMODE((config_home / "secret-key").stat().st_mode) == 0o600
    assert "(non-interactive stdin detected — using runtime: docker, port: 3030)" in out
    assert f'export RING_SECRET_KEY="{key.strip()}"' in out
    assert "→ Pre-flight checks (ring-actors doctor):" in out
    assert "  [+] RING_SECRET_KEY: set (32 bytes)" in out  # the new key is used for the checks
    assert tomli.loads((config_home / "config.toml").read_text())["server"]["runtime"]["docker"]["enabled"]


def test_init_refuses_to_overwrite_without_force(config_home: Path, capsys) -> None:
    """Verify existing files are kept unless --force, and --force regenerates the key."""
    assert run(["init", "--runtime", "podman", "--port", "4000"]) == 0
    key = (config_home / "secret-key").read_text()
    capsys.readouterr()
    assert run(["init"]) == 1
    assert "already exists. Use --force to overwrite it" in capsys.readouterr().err
    assert run(["init", "--force", "--runtime", "docker", "--port", "3030"]) == 0
    assert (config_home / "secret-key").read_text() != key


def test_render_report_format() -> None:
    """Verify the `[+]`/`[-]`/`[!]` lines and blank lines between groups."""
    groups = [
        Group("Server", [Check("RING_SECRET_KEY", True, "set (32 bytes)")]),
        Group(
            "Cloud Hypervisor", [Check("binary", False, "not found"), Check("socat", False, "missing", optional=True)]
        ),
    ]
    assert render_report(groups) == (
        "Server\n  [+] RING_SECRET_KEY: set (32 bytes)\n\n"
        "Cloud Hypervisor\n  [-] binary: not found\n  [!] socat: missing"
    )


async def test_doctor_checks_key_config_and_runtimes(tmp_path: Path) -> None:
    """Verify doctor reports a bad key, an unparseable config, and per-runtime groups for enabled runtimes only."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[contexts.default\n")
    groups = await run_checks(str(bad), None, {"RING_SECRET_KEY": "c2hvcnQ=", "RING_CONFIG_DIR": str(tmp_path)})
    checks = {c.name: c for c in groups[0].checks}
    assert "exactly 32 bytes" in checks["RING_SECRET_KEY"].detail and checks["RING_SECRET_KEY"].failed
    assert checks["config file"].failed and "cannot parse" in checks["config file"].detail

    good = tmp_path / "good.toml"
    good.write_text(
        '[server.runtime.containerd]\nenabled = true\nsocket = "/nonexistent.sock"\n'
        '[server.runtime.firecracker]\nenabled = true\nbinary_path = "/nonexistent/firecracker"\n'
    )
    env = {"RING_SECRET_KEY": generate_secret_key(), "RING_CONFIG_DIR": str(tmp_path), "CNI_PATH": str(tmp_path)}
    groups = await run_checks(str(good), None, env)
    assert [g.title for g in groups] == ["Server", "containerd", "Firecracker"]
    containerd = {c.name: c for c in groups[1].checks}
    assert containerd["socket"].failed and containerd["CNI plugins"].failed
    firecracker = {c.name: c for c in groups[2].checks}
    assert firecracker["binary"].failed and firecracker["kernel"].failed


def test_doctor_exit_code(config_home: Path, capsys) -> None:
    """Verify doctor exits 1 when a required check fails (no secret key here)."""
    assert run(["doctor"]) == 1
    assert "  [-] RING_SECRET_KEY: RING_SECRET_KEY environment variable is not set" in capsys.readouterr().out
