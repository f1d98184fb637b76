"""`doctor`: can this host run ring-actors with this configuration? (spec: cli.md §3.2, §8).

Output: a title line per group, then `  [+] <name>: <detail>` (ok), `  [-] ...`
(failed) or `  [!] ...` (warning: optional helper missing), a blank line between
groups. Exit 1 when any check failed, else 0.

Beyond Ring (cli.md §8): the config file itself is checked; Docker and Podman are
checked by pinging their API socket (what the server needs), not by running the
`docker` binary; containerd gets a socket and CNI check; Firecracker capabilities
are checked on the firecracker binary; optional helpers are warnings.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import trio

from ring_actors.cli.client import Session
from ring_actors.cli.common import add_command
from ring_actors.cli.output import Console
from ring_actors.config import ConfigError, Settings, load_secret_key, load_settings

__all__ = ["Check", "Group", "register", "render_report", "run_checks"]

PROBE_TIMEOUT = 5.0
CNI_DIRS = ("/opt/cni/bin", "/usr/lib/cni", "/usr/libexec/cni")
VIRTIOFSD_PATHS = ("/usr/libexec/virtiofsd", "/usr/lib/qemu/virtiofsd")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    optional: bool = False  # a failed optional check is a warning

    @property
    def failed(self) -> bool:
        return not self.ok and not self.optional


@dataclass
class Group:
    title: str
    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, ok: bool, detail: str, *, optional: bool = False) -> None:
        self.checks.append(Check(name, ok, detail, optional))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_command(
        sub,
        "doctor",
        "check that this host can run the server as configured",
        run_doctor,
        description=(
            "Check the server's prerequisites: RING_SECRET_KEY, the config file, and for each\n"
            "enabled runtime its engine socket or binaries, /dev/kvm, capabilities and assets.\n"
            "Exit status 1 when a required check fails."
        ),
    )


async def run_doctor(args: argparse.Namespace, session: Session) -> int:
    groups = await run_checks(getattr(args, "config", None), getattr(args, "context", None))
    session.out.print(render_report(groups, session.out))
    return 1 if any(c.failed for g in groups for c in g.checks) else 0


def render_report(groups: list[Group], console: Console | None = None) -> str:
    lines: list[str] = []
    for group in groups:
        if lines:
            lines.append("")
        lines.append(group.title)
        for check in group.checks:
            mark, colour = ("[+]", "green") if check.ok else (("[!]", "yellow") if check.optional else ("[-]", "red"))
            if console is not None:
                mark = console.paint(mark, colour)
            lines.append(f"  {mark} {check.name}: {check.detail}")
    return "\n".join(lines)


async def run_checks(
    config_path: str | None = None, context: str | None = None, env: Mapping[str, str] | None = None
) -> list[Group]:
    env = dict(os.environ if env is None else env)
    server = Group("Server")
    try:
        key = load_secret_key(env)
        server.add("RING_SECRET_KEY", True, f"set ({len(key)} bytes)")
    except ConfigError as exc:
        server.add("RING_SECRET_KEY", False, str(exc))
    settings: Settings | None = None
    try:
        settings = load_settings(config_path, context if context != "default" else None, env)
    except ConfigError as exc:
        server.add("config file", False, str(exc))
    groups = [server]
    if settings is None:
        return groups
    path = settings.config_path
    server.add("config file", True, str(path) if path.exists() else f"{path} not found: built-in defaults")
    enabled = settings.enabled_runtimes
    if enabled:
        server.add("runtimes enabled", True, ", ".join(enabled))
    else:
        server.add(
            "runtimes enabled", False, f"none: enable one in {path}, e.g. [server.runtime.docker] enabled = true"
        )
    server.add(
        "database directory",
        settings.database_path.parent.is_dir(),
        str(settings.database_path.parent)
        if settings.database_path.parent.is_dir()
        else f"{settings.database_path.parent} does not exist (created by the server on first start)",
        optional=True,
    )
    if "docker" in enabled or not enabled:
        options = settings.runtimes["docker"].options
        groups.append(await _engine_group("Docker", str(options.get("host", "unix:///var/run/docker.sock"))))
    if "podman" in enabled:
        from ring_actors.runtimes.registry import podman_host

        groups.append(await _engine_group("Podman", podman_host(settings.runtimes["podman"].options, env)))
    if "containerd" in enabled:
        groups.append(_containerd_group(settings.runtimes["containerd"].options, env))
    if "cloud-hypervisor" in enabled:
        groups.append(await _vm_group("Cloud Hypervisor", "cloud-hypervisor", settings, env))
    if "firecracker" in enabled:
        groups.append(await _vm_group("Firecracker", "firecracker", settings, env))
    return groups


async def _engine_group(title: str, host: str) -> Group:
    """Ping the Docker-compatible API the server will use and report the engine version."""
    from ring_actors.runtimes.dockerapi import DockerAPI, EngineAPIError
    from ring_actors.runtimes.errors import EngineUnavailable

    group = Group(title)
    try:
        async with DockerAPI(host, timeout=PROBE_TIMEOUT) as api:
            with trio.fail_after(PROBE_TIMEOUT):
                await api.ping()
                version = await api.version()
        group.add(
            "engine API", True, f"{host} answers ({version.version or 'unknown version'}, API {version.api_version})"
        )
    except (EngineUnavailable, EngineAPIError, OSError, ValueError, trio.TooSlowError) as exc:
        group.add("engine API", False, f"{host}: {exc or type(exc).__name__} — is the engine running?")
    return group


def _containerd_group(options: Mapping[str, object], env: Mapping[str, str]) -> Group:
    group = Group("containerd")
    sock = str(options.get("socket", "/run/containerd/containerd.sock"))
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(PROBE_TIMEOUT)
            probe.connect(sock)
        group.add("socket", True, f"{sock} accepts connections")
    except OSError as exc:
        group.add("socket", False, f"{sock}: {exc.strerror or exc} — is containerd running?")
    dirs = [env["CNI_PATH"]] if env.get("CNI_PATH") else list(CNI_DIRS)
    found = next((d for d in dirs if (Path(d) / "bridge").exists()), None)
    if found:
        group.add("CNI plugins", True, f"bridge plugin in {found}")
    else:
        group.add(
            "CNI plugins", False, f"no 'bridge' plugin in {', '.join(dirs)} (install containernetworking-plugins)"
        )
    return group


async def _version(binary: str) -> tuple[bool, str]:
    try:
        with trio.fail_after(PROBE_TIMEOUT):
            result = await trio.run_process(
                [binary, "--version"], capture_stdout=True, capture_stderr=True, check=False
            )
    except (OSError, trio.TooSlowError) as exc:
        return False, f"{binary}: {getattr(exc, 'strerror', None) or exc or 'timed out'}"
    text = (result.stdout or result.stderr).decode(errors="replace").strip().splitlines()
    if result.returncode != 0:
        return False, f"{binary} --version exited with {result.returncode}"
    return True, text[0] if text else binary


async def _capabilities(binary_path: str) -> tuple[bool, str, bool]:
    """(ok, detail, optional): cap_net_admin and cap_net_raw on the binary (root needs none)."""
    if os.geteuid() == 0:
        return True, "running as root: no file capabilities needed", False
    getcap = shutil.which("getcap")
    if getcap is None:
        return False, "getcap not found (install libcap2-bin) — cannot check capabilities", True
    try:
        with trio.fail_after(PROBE_TIMEOUT):
            result = await trio.run_process([getcap, binary_path], capture_stdout=True, check=False)
    except (OSError, trio.TooSlowError) as exc:
        return False, f"getcap failed: {exc}", True
    text = result.stdout.decode(errors="replace")
    missing = [cap for cap in ("cap_net_admin", "cap_net_raw") if cap not in text]
    if missing:
        return (
            False,
            f"{binary_path} lacks {', '.join(missing)} (setcap cap_net_admin,cap_net_raw+ep {binary_path})",
            False,
        )
    return True, f"{binary_path} has cap_net_admin, cap_net_raw", False


async def _vm_group(title: str, runtime: str, settings: Settings, env: Mapping[str, str]) -> Group:
    group = Group(title)
    options = settings.runtimes[runtime].options
    binary = str(options.get("binary_path", runtime))
    resolved = _resolve_binary(binary)
    if resolved is None:
        group.add("binary", False, f"'{binary}' not found on PATH (set binary_path)")
    else:
        ok, detail = await _version(resolved)
        group.add("binary", ok, detail)
        ok, detail, optional = await _capabilities(resolved)
        group.add("capabilities", ok, detail, optional=optional)
    group.checks.extend(_vm_host_checks(runtime, options, settings.config_dir, env))
    return group


def _resolve_binary(binary: str) -> str | None:
    return shutil.which(binary) or (binary if Path(binary).exists() else None)


def _vm_host_checks(
    runtime: str, options: Mapping[str, object], config_dir: Path, env: Mapping[str, str]
) -> list[Check]:
    """/dev/kvm, the guest firmware or kernel, and the helper binaries (optional ones are warnings)."""
    checks: list[Check] = []
    kvm = Path("/dev/kvm")
    kvm_ok = kvm.exists() and os.access(kvm, os.R_OK | os.W_OK)
    checks.append(Check("/dev/kvm", kvm_ok, "read/write" if kvm_ok else "missing or not read/write for this user"))
    directory = config_dir / runtime
    if runtime == "cloud-hypervisor":
        asset = Path(str(options.get("firmware_path", directory / "vmlinux")))
        found = asset.is_file()
        checks.append(Check("firmware", found, str(asset) if found else f"{asset} not found (set firmware_path)"))
        virtiofsd = env.get("RING_VIRTIOFSD") or next((p for p in VIRTIOFSD_PATHS if Path(p).exists()), None)
        virtiofsd = virtiofsd or shutil.which("virtiofsd")
        detail = virtiofsd or "not found (needed for volumes; set RING_VIRTIOFSD)"
        checks.append(Check("virtiofsd", bool(virtiofsd), detail, optional=True))
    else:
        asset = Path(str(options.get("kernel_path", directory / "vmlinux")))
        found = asset.is_file()
        checks.append(Check("kernel", found, str(asset) if found else f"{asset} not found (set kernel_path)"))
    for helper, purpose in (("socat", "to publish ports"), ("mke2fs", "for cloud-init seeds and volumes")):
        path = shutil.which(helper)
        checks.append(Check(helper, bool(path), path or f"not found (needed {purpose})", optional=True))
    return checks
