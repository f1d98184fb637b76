"""`init`: write a starter config.toml and a secret key (spec: cli.md §3.1; config.md §2, §7).

Differences from Ring: no legacy `user.salt` line; the context host defaults to
127.0.0.1 (the server binds it, and the seeded admin/changeme account should not
be reachable from the network by default; `--host 0.0.0.0` opts in); `--config`
/ `RING_CONFIG_FILE` choose where config.toml goes.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
from pathlib import Path

import trio

from ring_actors.cli.client import Session
from ring_actors.cli.common import add_command, prompt, stdin_is_tty
from ring_actors.cli.doctor import render_report, run_checks
from ring_actors.cli.output import CliError
from ring_actors.config import DEFAULT_PORT, config_dir, config_file

__all__ = ["RUNTIME_CHOICES", "generate_secret_key", "register", "render_config"]

RUNTIME_CHOICES = ("docker", "podman", "containerd", "cloud-hypervisor", "firecracker", "both")
_LABELS = {
    "docker": "Docker",
    "podman": "Podman",
    "containerd": "containerd",
    "cloud-hypervisor": "Cloud Hypervisor",
    "firecracker": "Firecracker (experimental)",
    "both": "Both (Docker + Cloud Hypervisor)",
}

_RUNTIME_TABLES = {
    "docker": (
        "docker",
        [
            '# host = "unix:///var/run/docker.sock"',
            "# use_host_registry_auth = false",
            '# host_registry_config = "/root/.docker/config.json"',
        ],
    ),
    "podman": (
        "podman",
        ['# host = "unix:///run/podman/podman.sock"', "# use_host_registry_auth = false"],
    ),
    "containerd": (
        "containerd",
        ['# socket = "/run/containerd/containerd.sock"', '# namespace = "ring"', "# use_host_registry_auth = false"],
    ),
    "cloud-hypervisor": (
        "cloud_hypervisor",
        [
            '# binary_path = "cloud-hypervisor"',
            '# firmware_path = "{dir}/cloud-hypervisor/vmlinux"',
            '# socket_dir = "{dir}/cloud-hypervisor/sockets"',
            "# max_console_log_bytes = 10485760",
            "# max_console_log_backups = 3",
        ],
    ),
    "firecracker": (
        "firecracker",
        [
            '# binary_path = "firecracker"',
            '# kernel_path = "{dir}/firecracker/vmlinux"',
            '# socket_dir = "{dir}/firecracker/sockets"',
            '# boot_args = "console=ttyS0 reboot=k panic=1 pci=off"',
        ],
    ),
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        sub,
        "init",
        "write a starter config.toml and a secret key",
        run_init,
        description=(
            "Create $RING_CONFIG_DIR/config.toml (one context, the chosen runtime enabled) and\n"
            "$RING_CONFIG_DIR/secret-key (32 random bytes, base64, mode 0600), print the\n"
            "`export RING_SECRET_KEY=...` line, then run the doctor's checks.\n"
            "Missing settings are prompted for on a terminal; elsewhere defaults are used."
        ),
        epilog="example:\n  ring-actors init --runtime docker --port 3030",
    )
    parser.add_argument(
        "--runtime", choices=RUNTIME_CHOICES, help="runtime to enable (both = docker + cloud-hypervisor)"
    )
    parser.add_argument("--port", type=_port, help=f"API port (default {DEFAULT_PORT})")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address the server binds and the CLI connects to (default 127.0.0.1)"
    )
    parser.add_argument(
        "--force", action="store_true", help="overwrite existing files (a new key makes stored secrets unreadable)"
    )


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError("port must be between 1 and 65535")
    return value


def generate_secret_key() -> str:
    """32 random bytes, standard base64 with padding (config.md §7)."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


def render_config(runtime: str, port: int, host: str, directory: Path) -> str:
    enabled = ("docker", "cloud-hypervisor") if runtime == "both" else (runtime,)
    lines = [
        "# ring-actors configuration, written by `ring-actors init`.",
        "# Reference: config.toml keys in the ring-actors documentation (same keys as Ring).",
        "",
        "[contexts.default]",
        "current = true",
        f'host = "{host}"',
        'api.scheme = "http"',
        f"api.port = {port}",
        "",
        "[server.scheduler]",
        "interval = 10",
    ]
    for name in enabled:
        table, comments = _RUNTIME_TABLES[name]
        lines += ["", f"[server.runtime.{table}]", "enabled = true"]
        lines += [c.format(dir=directory) for c in comments]
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), mode)
        handle.write(text)


async def _choose_runtime() -> str:
    menu = "\n".join(f"  {i}) {_LABELS[name]}" for i, name in enumerate(RUNTIME_CHOICES, start=1))
    while True:
        answer = await trio.to_thread.run_sync(lambda: prompt(f"Runtime:\n{menu}\nChoose", default="1"))
        if answer.isdigit() and 1 <= int(answer) <= len(RUNTIME_CHOICES):
            return RUNTIME_CHOICES[int(answer) - 1]
        if answer in RUNTIME_CHOICES:
            return answer


async def _choose_port() -> int:
    while True:
        answer = await trio.to_thread.run_sync(lambda: prompt("API port", default=str(DEFAULT_PORT)))
        try:
            return _port(answer)
        except argparse.ArgumentTypeError as exc:
            print(exc)


async def run_init(args: argparse.Namespace, session: Session) -> int:
    config_path, _ = config_file(getattr(args, "config", None))
    key_path = config_dir() / "secret-key"
    if not args.force:
        for path in (config_path, key_path):
            if path.exists():
                raise CliError(
                    f"{path} already exists. Use --force to overwrite it "
                    "(a new secret key makes stored secrets unreadable)."
                )
    runtime, port = args.runtime, args.port
    if runtime is None or port is None:
        if not stdin_is_tty():
            runtime, port = runtime or "docker", port or DEFAULT_PORT
            session.out.print(f"(non-interactive stdin detected — using runtime: {runtime}, port: {port})")
        else:
            try:
                runtime = runtime or await _choose_runtime()
                port = port or await _choose_port()
            except EOFError as exc:
                raise CliError("init cancelled") from exc
    key = generate_secret_key()
    _write(config_path, render_config(runtime, port, args.host, config_dir()), 0o644)
    _write(key_path, key + "\n", 0o600)
    out = session.out
    out.success(f"✓ Wrote {config_path}")
    out.success(f"✓ Wrote {key_path} (mode 0600)")
    export = f'export RING_SECRET_KEY="{key}"'
    width = len(export) + 4
    out.print("")
    out.print("┌" + "─" * width + "┐")
    out.print("│  " + "The server reads its secret key from the environment:".ljust(width - 2) + "│")
    out.print("│  " + export.ljust(width - 2) + "│")
    out.print("└" + "─" * width + "┘")
    out.print("")
    out.print("→ Pre-flight checks (ring-actors doctor):")
    env = dict(os.environ)
    env.setdefault("RING_SECRET_KEY", key)
    if not env["RING_SECRET_KEY"]:
        env["RING_SECRET_KEY"] = key
    groups = await run_checks(str(config_path), None, env)
    out.print(render_report(groups, out))
    if any(c.failed for g in groups for c in g.checks):
        out.warning("Some checks failed: fix them before starting the server (run `ring-actors doctor` again).")
    out.print("")
    out.print("→ Next steps:")
    out.print(f"  1. {export}")
    out.print("  2. ring-actors serve")
    out.print("  3. ring-actors login -u admin -p changeme")
    out.print("  4. ring-actors user update --password '<a new password>'")
    return 0
