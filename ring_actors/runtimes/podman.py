"""Ring's `podman` runtime: the Docker runtime over Podman's Docker-compatible API (runtimes.md §3).

Everything the Docker runtime does works through Podman's compat API
(`/v1.41/...`) with the same client (`dockerapi.DockerAPI`). What differs lives
here, as overrides of `DockerRuntime`'s hooks:

- **Exit detection without the tick** (Ring has none on Podman). The container's
  init process is watched through a pidfd, as on Docker (fires within ~1 ms).
  Podman's own signals are late here: its event stream is read from a file
  polled about every 250 ms (measured: `died` 200 ms after the exit), and its
  wait endpoints answer after 120-700 ms. So the exit code is read from the file
  conmon writes the instant it reaps the container (`<exit dir>/<container id>`,
  the `--exit-dir` on conmon's command line), woken by inotify: about 3 ms after
  the exit, where `GET /containers/{id}/json` needs about 13 ms (it shells out
  to `runc state`) and the `died` event 200 ms. The libpod event stream
  (`/v4.0.0/libpod/events`, translated to Docker's vocabulary) stays the fallback
  and the source of exit codes when no pidfd can be used; the compat
  `/containers/{id}/wait` covers an event-stream outage.
- **OOM kills**: Podman does not notice them here (conmon 2.1.6 writes its `oom`
  marker relative to its working directory, the service's, not into the bundle
  where Podman looks; `State.OOMKilled` stays false). When the pidfd fires, the
  container's memory cgroup still exists for a few hundred ms: its `oom_kill`
  counter says whether the kernel's OOM killer ended it.
- **Events**: the compat stream ignores Docker's `event=die`/`destroy` filters
  and the key-only label filter, so the libpod stream is used, filtered by
  Podman's event names (`died`, `remove`) and by label on our side. Events keep
  the component `docker`, as Ring records them.
- **Host registry auth** reads Podman's `containers/auth.json` (`host_registry_config`,
  else Podman's own lookup order), not only Docker's `config.json`.
- **Bind mounts**: Podman creates a missing bind source directory on the host
  (as root, for a rootful service); Docker refuses. The source must exist, as
  on Docker.
- **Native HEALTHCHECK**: Podman schedules health checks with systemd timers;
  without systemd it logs errors and the check never runs, so it is only set
  where systemd is running (the instance actor's own probes work everywhere).
- **Removal** is checked: Podman 4.3 can report a container removed that it
  still has (under load, racing conmon's own clean-up); it is removed again.
- **Address**: Podman's default network is `podman`, not `bridge` (when the
  container is on it at all: see `DockerRuntime.attach_network_at_create`).

DNS between containers of a namespace works when Podman uses netavark with
aardvark-dns (Podman >= 4 default; `podman info` shows `networkBackend:
netavark`): `POST /networks/create` then enables DNS and container aliases
resolve. With the CNI backend it needs the `dnsname` plugin, which Debian 12
does not package.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import dataclasses
import logging
import os
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import msgspec
import trio

from ring_actors.runtimes.base import (
    OWNER_LABEL,
    ExitStatus,
    InstanceHandle,
    InstanceSpec,
    InstanceStats,
)
from ring_actors.runtimes.docker import EVENTS_RETRY_DELAY, DockerRuntime, _ExitWatch
from ring_actors.runtimes.dockerapi import (
    ContainerInfo,
    DockerAPI,
    EngineAPIError,
    EngineEvent,
    EngineNotFound,
    EventActor,
    Healthcheck,
    ImageInfo,
    MountSpec,
)
from ring_actors.runtimes.errors import (
    EngineUnavailable,
    FailureKind,
    InstanceGone,
    RuntimeFailure,
)
from ring_actors.runtimes.pidfd import PidFd
from ring_actors.runtimes.registry import podman_host
from ring_actors.runtimes.registry_auth import (
    default_docker_config_path,
)

__all__ = [
    "EXIT_FILE_TIMEOUT",
    "LIBPOD_API_VERSION",
    "NETWORK_CREATE_ATTEMPTS",
    "PING_TIMEOUT",
    "REMOVE_ATTEMPTS",
    "STATS_CPU_WINDOW",
    "PodmanRuntime",
    "podman_auth_files",
]

log = logging.getLogger(__name__)

LIBPOD_API_VERSION = "v4.0.0/libpod"
"""Prefix of Podman's native API (events, ping); Podman 4.x serves it."""
PING_TIMEOUT = 10.0
"""Seconds the start-up ping may take before the runtime counts as unreachable."""
EXIT_FILE_TIMEOUT = 2.0
"""Seconds to wait for conmon's exit file after the pidfd fired (normally ~3 ms) before trusting the engine."""
PODMAN_EVENTS = ("died", "start", "kill", "oom", "remove")
"""Podman's names for the container events the Docker runtime routes (`died` = die, `remove` = destroy)."""
_DOCKER_VERBS = {"died": "die", "remove": "destroy"}
STATS_CPU_WINDOW = 1.0
"""Seconds between the two CPU samples of `stats()` (as `docker stats --no-stream`)."""
NETWORK_CREATE_ATTEMPTS = 5
"""Attempts at creating `ring_<namespace>` when Podman's subnet scan races an interface removal."""
REMOVE_ATTEMPTS = 4
"""Extra removals of a container that Podman reported removed but still has."""
_INTERFACE_RACE = "no such network interface"

_IN_CLOSE_WRITE = 0x8
_IN_MOVED_TO = 0x80


# --------------------------------------------------------------------------- libpod replies


class _CpuSample(msgspec.Struct, kw_only=True):
    container_id: str = msgspec.field(default="", name="ContainerID")
    cpu_nano: int = msgspec.field(default=0, name="CPUNano")
    system_nano: int = msgspec.field(default=0, name="SystemNano")


class _LibpodStats(msgspec.Struct, kw_only=True):
    """`GET /libpod/containers/stats?stream=false` (only the CPU counters are read)."""

    stats: list[_CpuSample] | None = msgspec.field(default=None, name="Stats")


# --------------------------------------------------------------------------- host-side files


class _DirectoryWatch:
    """One inotify instance on a directory, shared by every waiter for the runtime's lifetime.

    Waiters take turns reading it (a lock: trio lets one task wait on an fd) and
    each read bumps a generation counter, so a waiter learns that the directory
    changed even while another one held the fd. It is opened once because
    closing an inotify instance waits for an RCU grace period (10-20 ms measured
    here) inside close(2), which must not stall the event loop at every exit.
    """

    _libc: ctypes.CDLL | None = None

    def __init__(self, directory: Path) -> None:
        if _DirectoryWatch._libc is None:
            _DirectoryWatch._libc = ctypes.CDLL(None, use_errno=True)
        libc = _DirectoryWatch._libc
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"inotify_init1: {os.strerror(errno)}")
        if libc.inotify_add_watch(fd, os.fsencode(directory), _IN_CLOSE_WRITE | _IN_MOVED_TO) < 0:
            errno = ctypes.get_errno()
            os.close(fd)
            raise OSError(errno, f"inotify_add_watch {directory}: {os.strerror(errno)}")
        self.directory = directory
        self._fd: int | None = fd
        self._generation = 0
        self._lock = trio.Lock()

    @property
    def generation(self) -> int:
        """Bumped whenever files were written or moved into the directory (or the queue overflowed)."""
        return self._generation

    async def changed(self, since: int) -> int:
        """Return the new generation once it differs from `since`.

        Raises:
            trio.ClosedResourceError: the watch was closed (the runtime is closing).
        """
        while self._generation == since:
            async with self._lock:
                if self._generation != since:
                    break
                if self._fd is None:
                    raise trio.ClosedResourceError("directory watch closed")
                await trio.lowlevel.wait_readable(self._fd)
                self._drain()
                self._generation += 1
        return self._generation

    def _drain(self) -> None:
        # Names are not needed: waiters look for their own file after every change.
        while self._fd is not None:
            try:
                if not os.read(self._fd, 64 * 1024):
                    return
            except BlockingIOError:
                return

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            trio.lowlevel.notify_closing(fd)
            os.close(fd)


@dataclass(frozen=True)
class _HostLayout:
    """Where this Podman service keeps per-container state on the host (the same for all its containers).

    Learnt once from a running container: conmon (the parent of the container's
    init process) names the exit directory on its command line; the init
    process's cgroup gives the memory cgroup path pattern.
    """

    exit_dir: Path
    oom_file: str | None  # path pattern with `{id}`: memory.oom_control (v1) or memory.events (v2)

    def exit_file(self, container_id: str) -> Path:
        return self.exit_dir / container_id

    def read_exit_code(self, container_id: str) -> int | None:
        """The code conmon recorded, or None when the file is not (or no longer) there.

        A few bytes on a tmpfs: read in place rather than through a worker thread.
        """
        try:
            text = self.exit_file(container_id).read_text().strip()
        except OSError:
            return None
        return int(text) if text.lstrip("-").isdigit() else None

    def oom_killed(self, container_id: str) -> bool:
        """True when the container's memory cgroup counted an OOM kill (readable until Podman cleans up)."""
        if self.oom_file is None:
            return False
        try:
            with open(self.oom_file.format(id=container_id), encoding="ascii") as file:
                for line in file:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value) > 0
        except (OSError, ValueError):
            pass
        return False


def _parent_pid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as file:
            stat = file.read()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # the command name may contain spaces and parentheses
    return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None


def _conmon_exit_dir(conmon_pid: int, container_id: str) -> Path | None:
    """`--exit-dir` of the conmon process supervising `container_id`, or None if it is not one."""
    try:
        with open(f"/proc/{conmon_pid}/cmdline", "rb") as file:
            argv = [arg.decode(errors="replace") for arg in file.read().split(b"\0")]
    except OSError:
        return None
    if not argv or Path(argv[0]).name != "conmon":
        return None
    options: dict[str, str] = {}
    for index, arg in enumerate(argv):
        if arg.startswith("--") and "=" in arg:
            key, _, value = arg.partition("=")
            options[key] = value
        elif index + 1 < len(argv):
            options.setdefault(arg, argv[index + 1])
    if container_id not in (options.get("-c"), options.get("--cid")):
        return None
    exit_dir = options.get("--exit-dir")
    return Path(exit_dir) if exit_dir and exit_dir.startswith("/") else None


def _oom_file_pattern(pid: int, container_id: str) -> str | None:
    """The memory cgroup file with the container's `oom_kill` counter, as a pattern with `{id}`."""
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8", errors="replace") as file:
            lines = file.read().splitlines()
    except OSError:
        return None
    candidates = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            candidates.append(f"/sys/fs/cgroup/memory{path}/memory.oom_control")
        elif controllers == "" and not any(":memory:" in other for other in lines):
            candidates.append(f"/sys/fs/cgroup{path}/memory.events")
    for candidate in candidates:
        if container_id in candidate and os.path.exists(candidate):
            return candidate.replace("{", "{{").replace("}", "}}").replace(container_id, "{id}")
    return None


def _discover_layout(pid: int, container_id: str) -> _HostLayout | None:
    parent = _parent_pid(pid)
    exit_dir = _conmon_exit_dir(parent, container_id) if parent else None
    if exit_dir is None or not exit_dir.is_dir():
        return None
    return _HostLayout(exit_dir=exit_dir, oom_file=_oom_file_pattern(pid, container_id))


def podman_auth_files(env: Mapping[str, str] | None = None) -> list[Path]:
    """Where Podman looks for registry credentials, in its order (containers-auth.json(5)).

    `$REGISTRY_AUTH_FILE`; `$XDG_RUNTIME_DIR/containers/auth.json` (as root without
    it: `/run/containers/0/auth.json`); `~/.config/containers/auth.json`; then
    Docker's `config.json`, which Podman also reads.
    """
    env = os.environ if env is None else env
    files: list[Path] = []
    if env.get("REGISTRY_AUTH_FILE"):
        files.append(Path(env["REGISTRY_AUTH_FILE"]))
    if env.get("XDG_RUNTIME_DIR"):
        files.append(Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    else:
        files.append(Path(f"/run/containers/{os.geteuid()}/auth.json"))
    files.append(Path.home() / ".config" / "containers" / "auth.json")
    files.append(default_docker_config_path())
    return files


def _has_systemd() -> bool:
    """sd_booted(3): Podman schedules HEALTHCHECKs with systemd timers, which need a running systemd."""
    return os.path.isdir("/run/systemd/system")


# --------------------------------------------------------------------------- runtime


class PodmanRuntime(DockerRuntime):
    """The `podman` runtime: `DockerRuntime` over Podman's Docker-compatible API.

    Args:
        host: API socket URL; default: `registry.podman_host()` (RING_PODMAN_HOST,
            DOCKER_HOST, the rootless sockets, then `/run/podman/podman.sock`).
        config_dir, payload_dir, api, use_pidfd, events_retry_delay: as `DockerRuntime`.
        libpod: a client of the libpod API to share (default: one on `host`).
        use_exit_files: read exit codes from conmon's exit files (default: whenever
            a pidfd is used); False leaves them to the engine.
        use_host_registry_auth: allow deployments to use `config.use_host_auth`.
        host_registry_config: credentials file for host auth (e.g. Podman's
            `containers/auth.json`); default: Podman's lookup (`podman_auth_files`).

    `__init__` does no I/O. Close with `aclose()` (or `async with`).
    """

    component = "docker"  # Ring records Podman's events with component `docker`.

    def __init__(
        self,
        host: str | None = None,
        *,
        config_dir: Path | None = None,
        payload_dir: Path | None = None,
        api: DockerAPI | None = None,
        libpod: DockerAPI | None = None,
        use_pidfd: bool | None = None,
        use_exit_files: bool | None = None,
        events_retry_delay: float = EVENTS_RETRY_DELAY,
        use_host_registry_auth: bool = False,
        host_registry_config: Path | str | None = None,
    ) -> None:
        host = host or podman_host({})
        super().__init__(
            host,
            name="podman",
            config_dir=config_dir,
            payload_dir=payload_dir,
            api=api,
            use_pidfd=use_pidfd,
            events_retry_delay=events_retry_delay,
            use_host_registry_auth=use_host_registry_auth,
            host_registry_config=host_registry_config,
        )
        self._owns_libpod = libpod is None
        self.libpod = libpod if libpod is not None else DockerAPI(host, api_version=LIBPOD_API_VERSION)
        self._use_exit_files = self._use_pidfd if use_exit_files is None else use_exit_files and self._use_pidfd
        self.engine_version = ""
        self._layout: _HostLayout | None = None
        self._exit_watch: _DirectoryWatch | None = None
        self._exit_code_sources: collections.Counter[str] = collections.Counter()
        self._healthcheck_warned = False

    async def aclose(self) -> None:
        try:
            if self._exit_watch is not None:
                self._exit_watch.close()
                self._exit_watch = None
            if self._owns_libpod:
                await self.libpod.aclose()
        finally:
            await super().aclose()

    async def __aenter__(self) -> Self:
        return self

    @property
    def exit_code_sources(self) -> dict[str, int]:
        """How many exit codes came from conmon's exit file (`conmon`) and how many from the engine (`engine`)."""
        return dict(self._exit_code_sources)

    # ----------------------------------------------------------------- engine

    async def ping(self) -> None:
        """Check the socket answers and really is Podman (the libpod API), within PING_TIMEOUT.

        Raises:
            EngineUnavailable: naming the socket, the reason and how to fix it.
        """
        not_libpod: EngineAPIError | None = None
        try:
            with trio.fail_after(PING_TIMEOUT):
                await self.api.ping()
                try:
                    await self.libpod.ping()
                except EngineAPIError as exc:
                    not_libpod = exc
                else:
                    self.engine_version = (await self.libpod.version()).version
        except trio.TooSlowError as exc:
            raise EngineUnavailable(
                f"the Podman API socket {self.host} did not answer within {PING_TIMEOUT:g} s; "
                "is `podman system service` hung?"
            ) from exc
        except EngineAPIError as exc:
            raise EngineUnavailable(f"Podman at {self.host} is not ready: {exc.message}") from exc
        except EngineUnavailable as exc:
            path = self.host.removeprefix("unix://")
            raise EngineUnavailable(
                f"cannot reach the Podman API socket {self.host} ({exc.__cause__ or exc}). Start it with "
                f"`podman system service --time=0 unix://{path}` (rootless: `systemctl --user enable --now "
                "podman.socket`), or set [server.runtime.podman] host / RING_PODMAN_HOST"
            ) from exc
        if not_libpod is not None:
            raise EngineUnavailable(
                f"the service on {self.host} answers the Docker API but not Podman's libpod API "
                f"(GET /{LIBPOD_API_VERSION}/_ping: {not_libpod.status_code} {not_libpod.message}): is it Docker's "
                "socket? Point [server.runtime.podman] host (or RING_PODMAN_HOST) at Podman's API socket"
            ) from not_libpod
        log.info("podman: Podman %s answers on %s", self.engine_version or "(unknown version)", self.host)

    def _event_filters(self) -> dict[str, list[str]]:
        # No label filter: Podman 4.3 only matches `label=key=value`, never a bare key.
        return {"type": ["container"], "event": list(PODMAN_EVENTS)}

    @contextlib.asynccontextmanager
    async def _open_event_stream(self, since: str | None) -> AsyncIterator[AsyncIterator[EngineEvent]]:
        """The libpod event stream, filtered to our containers and spoken in Docker's vocabulary."""
        async with (
            self.libpod.open_events(filters=self._event_filters(), since=since) as events,
            contextlib.aclosing(self._docker_events(events)) as translated,
        ):
            yield translated

    @staticmethod
    async def _docker_events(events: AsyncIterator[EngineEvent]) -> AsyncGenerator[EngineEvent, None]:
        async for event in events:
            translated = _to_docker_event(event)
            if translated is not None:
                yield translated

    # ----------------------------------------------------------------- create

    def host_auth_files(self) -> list[Path]:
        """`host_registry_config`, else Podman's own lookup (`podman_auth_files`)."""
        return [self.host_registry_config] if self.host_registry_config else podman_auth_files()

    async def _ensure_namespace_network(self, namespace: str) -> None:
        """As Docker, riding out Podman's subnet-allocation race.

        To pick a free subnet Podman lists the host's interfaces and their
        addresses; an interface deleted in between (any container stopping
        anywhere on the host) fails the whole call with `route ip+net: no such
        network interface`. Nothing was created, so trying again is safe.
        """
        for attempt in range(1, NETWORK_CREATE_ATTEMPTS + 1):
            try:
                await super()._ensure_namespace_network(namespace)
                return
            except RuntimeFailure as failure:
                if _INTERFACE_RACE not in failure.message or attempt == NETWORK_CREATE_ATTEMPTS:
                    raise
                log.info("podman: network creation raced an interface removal (%s); retrying", failure.message)
            await trio.sleep(0.05 * attempt)

    async def _mounts(self, spec: InstanceSpec, image: ImageInfo) -> list[MountSpec]:
        """As Docker, but refuse a missing bind source instead of letting Podman create it on the host."""
        if self.api.is_local:
            for mount in spec.mounts:
                if mount.kind == "bind" and mount.source and mount.source.startswith("/"):
                    exists = await trio.Path(mount.source).exists()
                    if not exists:
                        raise RuntimeFailure(
                            FailureKind.INSTANCE_CREATION_FAILED,
                            f'invalid mount config for type "bind": bind source path does not exist: {mount.source}',
                        )
        return await super()._mounts(spec, image)

    def _healthcheck(self, spec: InstanceSpec) -> Healthcheck | None:  # type: ignore[override]
        check = super()._healthcheck(spec)
        if check is not None and not _has_systemd():
            if not self._healthcheck_warned:
                self._healthcheck_warned = True
                log.warning(
                    "podman: no systemd on this host, so Podman cannot run native HEALTHCHECKs; they are not set "
                    "(ring-actors' own health checks still run)"
                )
            return None
        return check

    def _address_of(self, info: ContainerInfo) -> str | None:
        """IP on Podman's default network (`podman`, Docker's `bridge`) if present, else as Docker."""
        if info.host_config.network_mode == "host":
            return None
        default = (info.network_settings.networks or {}).get("podman")
        if default is not None and default.ip_address:
            return default.ip_address
        return super()._address_of(info)

    # ----------------------------------------------------------------- remove

    async def remove(self, handle: InstanceHandle, *, timeout: float = 10.0) -> None:
        """As Docker, then make sure the container is really gone.

        Podman 4.3 can answer a removal as done while the container survives it
        (seen under load, the removal racing conmon's `podman container cleanup`
        of a container that had just exited): it drops out of listings but still
        inspects, and would never be removed again. Check, and remove again.

        Raises:
            RuntimeFailure: the container survives REMOVE_ATTEMPTS removals.
        """
        await super().remove(handle, timeout=timeout)
        for attempt in range(1, REMOVE_ATTEMPTS + 1):
            try:
                await self.api.container_inspect(handle.id)
            except EngineNotFound:
                return
            log.warning("podman: %s survived its removal; removing it again (attempt %d)", handle.name, attempt)
            await trio.sleep(0.2 * attempt)
            try:
                await self.api.container_remove(handle.id, force=True, volumes=True)
            except EngineNotFound:
                return
            except EngineAPIError as exc:
                log.warning("podman: removing %s again failed: %s", handle.name, exc.message)
        raise RuntimeFailure(
            FailureKind.RUNTIME_ERROR, f"cannot remove {handle.name}: it survived {REMOVE_ATTEMPTS + 1} removals"
        )

    # ----------------------------------------------------------------- stats

    async def stats(self, handle: InstanceHandle) -> InstanceStats:
        """As Docker, with CPU % measured over STATS_CPU_WINDOW from libpod's counters.

        Podman's compat `stats?stream=false` has no previous sample (CPU % would
        always be 0) and its stream only moves every few seconds; libpod reports
        the container's CPU time and the wall clock, so two samples a second
        apart give the rate (one fully used core = 100, as Docker counts). A
        stopped container gives zeros at once (Podman's compat endpoint answers
        it with an empty body).
        """
        first = await self._cpu_sample(handle)
        started = trio.current_time()
        try:
            sample = await super().stats(handle)
        except msgspec.DecodeError:
            info = await self._inspect(handle)
            sample = InstanceStats(handle.id[:12], handle.name, restart_count=info.restart_count)
        if first is None or not first.system_nano:
            return sample  # not running: nothing to measure
        await trio.sleep(max(0.0, STATS_CPU_WINDOW - (trio.current_time() - started)))
        second = await self._cpu_sample(handle)
        if second is None:
            return sample
        elapsed = second.system_nano - first.system_nano
        used = second.cpu_nano - first.cpu_nano
        cpu_percent = used / elapsed * 100.0 if elapsed > 0 and used > 0 else 0.0
        return dataclasses.replace(sample, cpu_percent=cpu_percent)

    async def _cpu_sample(self, handle: InstanceHandle) -> _CpuSample | None:
        """libpod's CPU counters for the container; None when Podman cannot give them (CPU % is then 0)."""
        params = {"containers": handle.id, "stream": "false"}
        try:
            reply = await self.libpod.get("/containers/stats", _LibpodStats, params=params)
        except EngineNotFound as exc:
            raise InstanceGone(handle.id) from exc
        except (EngineAPIError, msgspec.DecodeError) as exc:
            log.debug("podman: no CPU counters for %s: %s", handle.name, exc)
            return None
        for entry in reply.stats or ():
            if entry.container_id and (
                handle.id.startswith(entry.container_id) or entry.container_id.startswith(handle.id)
            ):
                return entry
        return None

    # ----------------------------------------------------------------- exit detection

    def _open_pidfd(self, pid: int, container_id: str) -> PidFd | None:
        pidfd = super()._open_pidfd(pid, container_id)
        if pidfd is not None and self._use_exit_files and self._layout is None:
            # The process is alive and verified: conmon and its cgroup can be read now.
            self._layout = _discover_layout(pid, container_id)
            if self._layout is not None:
                log.debug("podman: exit files in %s, OOM counter %s", self._layout.exit_dir, self._layout.oom_file)
        return pidfd

    async def _exit_status(self, container_id: str, watch: _ExitWatch, detected_at: float) -> ExitStatus:
        """After detection: conmon's exit file (~3 ms) races the engine (die event, else inspect)."""
        layout = self._layout if self._use_exit_files else None
        engine_status = super()._exit_status
        if watch.settled or layout is None:
            self._exit_code_sources["engine"] += 1
            return await engine_status(container_id, watch, detected_at)
        result: ExitStatus | None = None
        source = "engine"

        async with trio.open_nursery() as race:

            async def from_conmon() -> None:
                nonlocal result, source
                code = await self._wait_exit_file(layout, container_id)
                if code is not None and result is None:
                    oom = layout.oom_killed(container_id)
                    result = ExitStatus(exit_code=code, oom_killed=oom, detected_at=detected_at)
                    source = "conmon"
                    race.cancel_scope.cancel(reason="exit code read from conmon's exit file")

            async def from_engine() -> None:
                nonlocal result
                status = await engine_status(container_id, watch, detected_at)
                if result is None:
                    result = status
                    race.cancel_scope.cancel(reason="exit code reported by the engine")

            race.start_soon(from_conmon)
            race.start_soon(from_engine)
        assert result is not None
        self._exit_code_sources[source] += 1
        return result

    async def _wait_exit_file(self, layout: _HostLayout, container_id: str) -> int | None:
        """Wait (bounded) for conmon to record the exit code; None if it does not (or inotify is unavailable)."""
        watch = self._exit_watch
        if watch is None or watch.directory != layout.exit_dir:
            try:
                watch = _DirectoryWatch(layout.exit_dir)
            except OSError as exc:
                log.debug("podman: cannot watch %s (%s); the engine reports exit codes", layout.exit_dir, exc)
                return layout.read_exit_code(container_id)
            if self._exit_watch is not None:
                self._exit_watch.close()
            self._exit_watch = watch
        # Note the generation before the first look: a file written in between still counts as a change.
        generation = watch.generation
        code = layout.read_exit_code(container_id)
        with trio.move_on_after(EXIT_FILE_TIMEOUT):
            while code is None:
                generation = await watch.changed(generation)
                code = layout.read_exit_code(container_id)
        return code


def _to_docker_event(event: EngineEvent) -> EngineEvent | None:
    """A libpod event as the Docker runtime's router expects it, or None when it is not ours."""
    attributes = event.attributes
    if OWNER_LABEL not in attributes:
        return None
    verb = event.verb
    action = _DOCKER_VERBS.get(verb, verb)
    if action == "die":
        attributes = {**attributes, "exitCode": attributes.get("containerExitCode", "")}
    return EngineEvent(
        type=event.type or "container",
        action=action,
        status=action,
        id=event.object_id,
        actor=EventActor(id=event.object_id, attributes=attributes),
        time=event.time,
        time_nano=event.time_nano,
    )
