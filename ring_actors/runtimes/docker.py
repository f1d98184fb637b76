"""Ring's Docker runtime on the Docker Engine API (spec: runtimes.md §2, manifest.md §5–§12).

`DockerRuntime` implements `runtimes.base.Runtime`: admission, pull policy,
per-namespace network with DNS aliases, the container itself, and everything
the instance actors need afterwards (exit detection, exec, logs, stats).

Crash detection is event-driven. `wait_exit` watches the container's init
process through a pidfd (the kernel tells us the moment it exits) and takes the
exit code from the engine's `die` event, routed by container id from the one
event stream that `serve()` keeps open. Without a usable PID it relies on the
event stream alone, and while the stream is down it blocks on the engine's
`POST /containers/{id}/wait`. Nothing polls.

The runtime keeps no per-deployment state the engine does not hold (labels), so
a restarted server re-adopts everything with `list_instances()` + `adopt()`.
Podman reuses this class through its Docker-compatible API: engine-specific
choices are small overridable methods (`_event_filters`, `_open_event_stream`,
`registry_auth_for`, `_address_of`, `_file_mode`). `runtimes.podman.PodmanRuntime`
also overrides `_ensure_image`, `_ensure_namespace_network`, `_mounts`,
`_healthcheck`, `_open_pidfd`, `_exit_status` and `stats`: keep their signatures.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import trio
from msgspec import UNSET

from ring_actors.runtimes import admission
from ring_actors.runtimes.base import (
    OWNER_LABEL,
    SERVER_LABEL,
    ExecResult,
    ExitStatus,
    InstanceHandle,
    InstanceSpec,
    InstanceStats,
    LogLine,
    Mount,
    ObservedInstance,
    RegistryAuth,
)
from ring_actors.runtimes.dockerapi import (
    ContainerCreate,
    ContainerInfo,
    ContainerState,
    CreateHostConfig,
    DockerAPI,
    EndpointConfig,
    EngineAPIError,
    EngineConflict,
    EngineEvent,
    EngineNotFound,
    EngineNotModified,
    Healthcheck,
    ImageInfo,
    MountSpec,
    NetworkingConfig,
    PortBinding,
)
from ring_actors.runtimes.errors import (
    EngineUnavailable,
    FailureKind,
    InstanceGone,
    RuntimeFailure,
)
from ring_actors.runtimes.pidfd import PidFd, belongs_to_container, pidfd_supported
from ring_actors.runtimes.registry_auth import (
    CredentialError,
    ImageRef,
    default_docker_config_path,
    encode_registry_auth,
    normalize_repository,
    parse_image_ref,
    resolve_host_auth,
)
from ring_actors.schemas.quantities import parse_cpu, parse_duration, parse_memory

__all__ = [
    "DIE_EVENT_GRACE",
    "EVENTS_RETRY_DELAY",
    "PULL_POLICIES",
    "DockerRuntime",
    "WatcherStatistics",
    "classify_pull_error",
    "default_payload_dir",
    "pick_repo_digest",
]

log = logging.getLogger(__name__)

PULL_POLICIES = ("Always", "IfNotPresent", "Never")
EVENTS_RETRY_DELAY = 1.0
"""Seconds between reconnections of the event stream (Ring: 5 s; missed events are replayed with `since`)."""
DIE_EVENT_GRACE = 5.0
"""Seconds to wait, after the pidfd fired, for the engine's `die` event before asking `/wait` instead."""
CLEANUP_TIMEOUT = 15.0
"""Bound on shielded clean-up (removing a half-created container)."""
WAIT_FALLBACK_LIMIT = 32
"""At most this many `POST /wait` long-polls at once (only while the event stream is down)."""
NETWORK_PREFIX = "ring_"
WATCHED_EVENTS = ("die", "start", "kill", "oom", "destroy")
_EXITED_RE = re.compile(r"Exited \((-?\d+)\)")


# --------------------------------------------------------------------------- pure helpers


def classify_pull_error(image: str, message: str) -> RuntimeFailure:
    """Turn an engine pull error into Ring's classified failure (lifecycle.md §4).

    Not found → IMAGE_NOT_FOUND (permanent); authentication refused or registry
    unreachable → IMAGE_PULL_FAILED (transient), with Ring's messages and the
    engine's text kept as `(original error: …)`.
    """
    text = message.lower()
    if "manifest unknown" in text or "not found" in text or re.search(r"\b404\b", text):
        return RuntimeFailure(
            FailureKind.IMAGE_NOT_FOUND,
            f"image '{image}' not found in the registry (original error: {message})",
        )
    auth_markers = (
        "unauthorized",
        "authentication required",
        "no basic auth credentials",
        "incorrect username or password",
        "access denied",
        "denied",
        "forbidden",
    )
    if any(marker in text for marker in auth_markers) or re.search(r"\b40[13]\b", text):
        return RuntimeFailure(
            FailureKind.IMAGE_PULL_FAILED,
            f"registry authentication failed for '{image}' — check config.server, config.username and "
            f"config.password (original error: {message})",
        )
    unreachable_markers = (
        "connection refused",
        "no such host",
        "i/o timeout",
        "dial tcp",
        "network is unreachable",
        "no route to host",
        "connection reset",
        "tls handshake",
        "server gave http response to https client",
        "timeout exceeded",
        "temporary failure in name resolution",
        "context deadline exceeded",
        "eof",
    )
    if any(marker in text for marker in unreachable_markers):
        return RuntimeFailure(
            FailureKind.IMAGE_PULL_FAILED,
            f"cannot reach the registry for '{image}' — is it up and the registry host correct? "
            f"(original error: {message})",
        )
    return RuntimeFailure(FailureKind.IMAGE_PULL_FAILED, f"failed to pull image '{image}' (original error: {message})")


def pick_repo_digest(repo_digests: Sequence[str] | None, ref: ImageRef) -> str | None:
    """The `sha256:…` digest of `ref` from an image's RepoDigests (matching repo, else the first)."""
    entries = [entry for entry in repo_digests or () if "@" in entry]
    if not entries:
        return None
    wanted = ref.normalized_repository
    for entry in entries:
        repository, _, digest = entry.partition("@")
        if normalize_repository(repository) == wanted:
            return digest
    return entries[0].partition("@")[2]


def _parse_time(text: str) -> float:
    """Engine RFC 3339 (nanosecond) time -> Unix seconds; 0.0 for zero/unknown times."""
    if not text or text.startswith("0001-01-01"):
        return 0.0
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        match = re.match(r"^(.*?\.\d{1,6})\d*(Z|[+-]\d{2}:\d{2})$", text)
        if not match:
            return 0.0
        try:
            return datetime.fromisoformat(match.group(1) + match.group(2).replace("Z", "+00:00")).timestamp()
        except ValueError:
            return 0.0


def _ns(duration: str | Any) -> int:
    """Manifest duration (`500ms`, `30s`) -> nanoseconds; 0 (engine default) when unset or invalid."""
    if duration is UNSET or not duration:
        return 0
    try:
        return int(parse_duration(duration) * 1_000_000_000)
    except ValueError:
        return 0


def default_payload_dir(config_dir: Path | None = None) -> Path:
    """Where config/secret payload files go: a private runtime directory (tmpfs on most hosts).

    `$XDG_RUNTIME_DIR/ring-actors/configs`, else `/run/ring-actors/configs` as
    root, else `<config_dir>/run/configs`, else a per-user directory in the
    system temp dir. Ring used the system temp dir, world-readable.
    """
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        return Path(runtime_dir) / "ring-actors" / "configs"
    if os.geteuid() == 0:
        return Path("/run/ring-actors/configs")
    if config_dir is not None:
        return Path(config_dir) / "run" / "configs"
    return Path(tempfile.gettempdir()) / f"ring-actors-{os.geteuid()}" / "configs"


def _numeric_user(user: str) -> tuple[int, int | None] | None:
    """`"1000"` / `"1000:1000"` -> (uid, gid); None for names (`nginx`) we cannot resolve."""
    uid, _, gid = user.partition(":")
    if not uid.isdigit() or (gid and not gid.isdigit()):
        return None
    return int(uid), int(gid) if gid else None


class _NetworkGone(Exception):
    """The namespace network, trusted from the cache, no longer exists in the engine."""


@dataclass(frozen=True)
class WatcherStatistics:
    events_live: bool
    waiters: int
    events_routed: int
    reconnects: int


class _ExitWatch:
    """What the event router learned about one container, for one `wait_exit` call."""

    __slots__ = ("_wakeup", "died", "exit_code", "oom", "destroyed")

    def __init__(self) -> None:
        self._wakeup = trio.Event()
        self.died = False
        self.exit_code: int | None = None
        self.oom = False
        self.destroyed = False

    @property
    def settled(self) -> bool:
        return self.died or self.destroyed

    def notify(self) -> None:
        self._wakeup.set()

    async def wait(self) -> None:
        """Sleep until the next `notify()` (state is re-read by the caller afterwards)."""
        await self._wakeup.wait()
        self._wakeup = trio.Event()


# --------------------------------------------------------------------------- runtime


class DockerRuntime:
    """The `docker` runtime (Ring semantics) over one `DockerAPI` client.

    Args:
        host: engine URL, `unix:///path` or `tcp://host:port`.
        name: runtime key (`docker`); Podman passes its own.
        config_dir: the server's configuration directory (`RING_CONFIG_DIR`); only
            used to place payload files when no runtime directory exists.
        payload_dir: private directory for config/secret payload files
            (default: `default_payload_dir(config_dir)`).
        api: an existing client to share (then `aclose()` does not close it).
        use_pidfd: watch container processes through pidfds (default: when the
            engine is on a local Unix socket and the kernel supports it).
        events_retry_delay: seconds between event-stream reconnections.

    `__init__` does no I/O. Close with `aclose()` (or `async with`).
    """

    component = "docker"
    attach_network_at_create = True
    """Create the container directly on `ring_<namespace>` with its DNS aliases.

    Ring creates it on the default `bridge` and then connects `ring_<namespace>`:
    a second network costs ~100 ms at start here, and the shared default bridge
    joins every namespace's containers together, defeating per-namespace isolation.
    """

    def __init__(
        self,
        host: str = "unix:///var/run/docker.sock",
        *,
        name: str = "docker",
        config_dir: Path | None = None,
        payload_dir: Path | None = None,
        api: DockerAPI | None = None,
        use_pidfd: bool | None = None,
        events_retry_delay: float = EVENTS_RETRY_DELAY,
        use_host_registry_auth: bool = False,
        host_registry_config: Path | str | None = None,
    ) -> None:
        self.name = name
        self.host = host
        self.use_host_registry_auth = use_host_registry_auth
        self.host_registry_config = Path(host_registry_config) if host_registry_config else None
        self._owns_api = api is None
        self.api = api if api is not None else DockerAPI(host)
        self.payload_dir = Path(payload_dir) if payload_dir is not None else default_payload_dir(config_dir)
        self._use_pidfd = (self.api.is_local and pidfd_supported()) if use_pidfd is None else use_pidfd
        self.events_retry_delay = events_retry_delay
        self._watches: dict[str, set[_ExitWatch]] = {}
        self._events_live = False
        self._files_lock = trio.Lock()
        self._wait_limiter = trio.CapacityLimiter(WAIT_FALLBACK_LIMIT)
        self._events_routed = 0
        self._reconnects = 0
        self._creating: dict[str, int] = {}
        self._networks: set[str] = set()
        self.cache_networks = True
        """Trust a `ring_<namespace>` network once ensured instead of looking it up at every create.

        A network removed behind our back shows as a create/start failure naming
        it; the network is then ensured again and the instance created once more.
        """

    async def aclose(self) -> None:
        if self._owns_api:
            await self.api.aclose()

    async def __aenter__(self) -> DockerRuntime:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def events_live(self) -> bool:
        """True while `serve()` holds a live subscription to the engine's event stream."""
        return self._events_live

    # ----------------------------------------------------------------- engine

    async def ping(self) -> None:
        """Raise EngineUnavailable with the reason when the engine cannot be used."""
        try:
            await self.api.ping()
        except EngineAPIError as exc:
            raise EngineUnavailable(f"{self.name} engine at {self.host} is not ready: {exc.message}") from exc

    def _event_filters(self) -> dict[str, list[str]]:
        return {"type": ["container"], "label": [OWNER_LABEL], "event": list(WATCHED_EVENTS)}

    def _open_event_stream(
        self, since: str | None
    ) -> contextlib.AbstractAsyncContextManager[AsyncIterator[EngineEvent]]:
        """How the event stream is requested (Podman may override)."""
        return self.api.open_events(filters=self._event_filters(), since=since)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep one event-stream subscription open and route container events to `wait_exit` callers.

        Reports started once the first subscription is live (or has failed, so a
        server never hangs on a dead engine), then reconnects forever after
        `events_retry_delay`, replaying what it missed with `since` (routing is
        idempotent, so replayed duplicates are harmless). While the stream is
        down, waiters without a pidfd block on `POST /containers/{id}/wait`.
        Runs until cancelled.
        """
        started = False
        since: float | None = None  # engine time (Unix seconds) to replay from on reconnect
        try:
            while True:
                last_event: float | None = None
                connected = False
                try:
                    async with self._open_event_stream(None if since is None else f"{since:.9f}") as events:
                        self._events_live = connected = True
                        self._wake_all()
                        log.debug("%s: event stream connected", self.name)
                        if not started:
                            task_status.started()
                            started = True
                        async for event in events:
                            if event.time_nano or event.time:
                                last_event = event.time_nano / 1e9 if event.time_nano else float(event.time)
                            self._route(event)
                    log.warning("%s: event stream closed by the engine; reconnecting", self.name)
                except (EngineUnavailable, EngineAPIError) as exc:
                    log.warning(
                        "%s: event stream unavailable (%s); retrying in %.1f s", self.name, exc, self.events_retry_delay
                    )
                finally:
                    self._events_live = False
                    self._wake_all()
                if connected:
                    # Every event until the disconnection was routed: replay from there (1 s of slack).
                    since = max(last_event or 0.0, time.time() - 1.0)
                self._reconnects += 1
                if not started:
                    task_status.started()
                    started = True
                await trio.sleep(self.events_retry_delay)
        finally:
            self._events_live = False

    def statistics(self) -> WatcherStatistics:
        """The event watcher's state, for debugging and `/metrics`."""
        return WatcherStatistics(
            events_live=self._events_live,
            waiters=sum(len(watches) for watches in self._watches.values()),
            events_routed=self._events_routed,
            reconnects=self._reconnects,
        )

    def _wake_all(self) -> None:
        for watches in self._watches.values():
            for watch in watches:
                watch.notify()

    def _route(self, event: EngineEvent) -> None:
        """Deliver one engine event to the waiters of its container (never blocks)."""
        if event.type and event.type != "container":
            return
        self._events_routed += 1
        verb = event.verb
        container = event.object_id
        attrs = event.attributes
        if verb in ("die", "oom", "kill"):
            log.info(
                "%s: container_%s %s (%s) deployment=%s exit_code=%s",
                self.name,
                {"die": "died", "oom": "oom", "kill": "killed"}[verb],
                attrs.get("name", ""),
                container[:12],
                attrs.get(OWNER_LABEL, ""),
                attrs.get("exitCode", ""),
            )
        for watch in self._watches.get(container, ()):
            if verb == "die":
                watch.died = True
                code = attrs.get("exitCode", "")
                watch.exit_code = int(code) if code.lstrip("-").isdigit() else None
                watch.notify()
            elif verb == "oom":
                watch.oom = True
            elif verb == "destroy":
                watch.destroyed = True
                watch.notify()

    # ----------------------------------------------------------------- create

    async def create(self, spec: InstanceSpec) -> InstanceHandle:
        """Admission, pull, network, create, connect and start one container (runtimes.md §2.1).

        Returns the handle as soon as the container started, even if it exits at
        once (`wait_exit` reports that). Any failure or cancellation after the
        container exists removes it again (bounded, shielded) before raising.

        Raises:
            RuntimeFailure: classified (insufficient resources, image not found /
                pull failed, network creation failed, instance creation failed,
                file system error).
            EngineUnavailable: the engine cannot be reached.
        """
        admission.check_host_memory(spec.deployment_name, spec.resources)
        try:
            ref = parse_image_ref(spec.image)
        except ValueError as exc:
            raise RuntimeFailure(FailureKind.IMAGE_NOT_FOUND, str(exc)) from exc
        image = await self._ensure_image(spec, ref)
        trusted = False  # the network was not looked up now: it may have been removed since
        if spec.network_mode != "host":
            trusted = not await self._namespace_network(spec.namespace)
        name = f"{spec.namespace}_{spec.deployment_name}_{secrets.token_hex(4)}"

        self._creating[spec.deployment_id] = self._creating.get(spec.deployment_id, 0) + 1
        try:
            mounts = await self._mounts(spec, image)
            body = self._container_body(spec, ref, mounts, name)
            try:
                container_id, info = await self._create_and_start(spec, body, name, trusted=trusted)
            except _NetworkGone:
                log.info("%s: network %s was removed; creating it again", self.name, self.network_name(spec.namespace))
                self._networks.discard(self.network_name(spec.namespace))
                await self._namespace_network(spec.namespace)
                container_id, info = await self._create_and_start(spec, body, name, trusted=False)
        finally:
            self._creating[spec.deployment_id] -= 1
            if not self._creating[spec.deployment_id]:
                del self._creating[spec.deployment_id]

        return InstanceHandle(
            id=container_id,
            name=name,
            deployment_id=spec.deployment_id,
            pid=info.state.pid or None if info.state.running else None,
            address=self._address_of(info),
            created_at=_parse_time(info.created) or time.time(),
            image_digest=pick_repo_digest(image.repo_digests, ref),
        )

    async def _create_and_start(
        self, spec: InstanceSpec, body: ContainerCreate, name: str, *, trusted: bool
    ) -> tuple[str, ContainerInfo]:
        """Create and start the container; a container that fails to start is removed again.

        Raises:
            _NetworkGone: `trusted` (the namespace network came from the cache) and
                the engine says that network does not exist (Podman at create,
                Docker at start); nothing is left behind.
            RuntimeFailure: as `create`.
        """
        try:
            container_id = await self.api.container_create(body, name=name)
        except EngineAPIError as exc:
            if trusted and self._network_missing(spec, exc):
                raise _NetworkGone from exc
            if isinstance(exc, EngineNotFound):
                raise RuntimeFailure(
                    FailureKind.IMAGE_NOT_FOUND, f"image '{spec.image}' vanished before create: {exc.message}"
                ) from exc
            raise RuntimeFailure(
                FailureKind.INSTANCE_CREATION_FAILED, f"failed to create container '{name}': {exc.message}"
            ) from exc
        try:
            return container_id, await self._connect_and_start(spec, container_id, name, trusted=trusted)
        except BaseException:
            with trio.move_on_after(CLEANUP_TIMEOUT, shield=True):
                await self._discard(container_id)
            raise

    def _network_missing(self, spec: InstanceSpec, exc: EngineAPIError) -> bool:
        """The engine refused because `ring_<namespace>` does not exist (it names the network)."""
        text = exc.message.lower()
        return "not found" in text and self.network_name(spec.namespace).lower() in text

    async def _connect_and_start(
        self, spec: InstanceSpec, container_id: str, name: str, *, trusted: bool = False
    ) -> ContainerInfo:
        if spec.network_mode != "host" and not self.attach_network_at_create:
            network = self.network_name(spec.namespace)
            try:
                await self.api.network_connect(network, container_id, aliases=[spec.deployment_name, name])
            except EngineAPIError as exc:
                if trusted and self._network_missing(spec, exc):
                    raise _NetworkGone from exc
                raise RuntimeFailure(
                    FailureKind.INSTANCE_CREATION_FAILED,
                    f"failed to connect container '{name}' to network '{network}': {exc.message}",
                ) from exc
        try:
            await self.api.container_start(container_id)
        except EngineAPIError as exc:
            if trusted and self._network_missing(spec, exc):
                raise _NetworkGone from exc
            raise RuntimeFailure(
                FailureKind.INSTANCE_CREATION_FAILED, f"failed to start container '{name}': {exc.message}"
            ) from exc
        try:
            return await self.api.container_inspect(container_id)
        except EngineNotFound as exc:
            raise RuntimeFailure(
                FailureKind.INSTANCE_CREATION_FAILED, f"container '{name}' disappeared right after start"
            ) from exc

    async def _discard(self, container_id: str) -> None:
        """Best-effort removal of a container we failed to set up (never raises)."""
        try:
            await self.api.container_remove(container_id, force=True, volumes=True)
        except (EngineAPIError, EngineUnavailable) as exc:
            log.warning("%s: could not remove failed container %s: %s", self.name, container_id[:12], exc)

    # ----------------------------------------------------------------- images

    def registry_auth_for(self, spec: InstanceSpec, ref: ImageRef) -> RegistryAuth | None:
        """Credentials for pulling `ref`: the inline ones (host/secret auth arrive resolved)."""
        return spec.registry_auth

    def host_auth_files(self) -> list[Path]:
        """Where host credentials are read: `host_registry_config`, else Docker's `config.json`."""
        return [self.host_registry_config] if self.host_registry_config else [default_docker_config_path()]

    async def host_registry_auth(self, ref: ImageRef) -> RegistryAuth:
        """Credentials for `ref`'s registry from the host's credentials files (runtimes.md §2.1 step 3).

        Never falls back to an anonymous pull: a deployment that asked for host
        credentials and cannot have them fails with a message saying what to do.

        Raises:
            RuntimeFailure: IMAGE_PULL_FAILED when the server does not allow host
                auth, no file has an entry for the registry, or a file/helper fails.
        """
        registry = ref.registry
        if not self.use_host_registry_auth:
            raise RuntimeFailure(
                FailureKind.IMAGE_PULL_FAILED,
                f"deployment asks for host registry credentials (config.use_host_auth) for '{registry}', but the "
                f"{self.name} runtime does not allow it: set use_host_registry_auth = true under "
                f"[server.runtime.{self.name}], or give config.server/username/password",
            )
        files = self.host_auth_files()
        for path in files:
            try:
                auth = await resolve_host_auth(registry, config_path=path)
            except CredentialError as exc:
                raise RuntimeFailure(
                    FailureKind.IMAGE_PULL_FAILED, f"cannot read host registry credentials from {path}: {exc}"
                ) from exc
            if auth is not None:
                return auth
        raise RuntimeFailure(
            FailureKind.IMAGE_PULL_FAILED,
            f"no host registry credentials for '{registry}' in {', '.join(str(path) for path in files)} "
            f"(log in with `{self.name} login {registry}`)",
        )

    async def _local_image(self, ref: ImageRef) -> ImageInfo | None:
        try:
            return await self.api.image_inspect(ref.reference)
        except EngineNotFound:
            return None

    async def _ensure_image(self, spec: InstanceSpec, ref: ImageRef) -> ImageInfo:
        """Apply the pull policy (manifest.md §11) and return the local image."""
        if spec.use_host_auth:
            spec = dataclasses.replace(spec, registry_auth=await self.host_registry_auth(ref))
        policy = spec.pull_policy if spec.pull_policy in PULL_POLICIES else "Always"
        if policy != "Always" or ref.digest:
            local = await self._local_image(ref)
            if local is not None:
                return local
            if policy == "Never":
                raise RuntimeFailure(
                    FailureKind.IMAGE_NOT_FOUND,
                    f"image '{spec.image}' is not present locally and image_pull_policy=Never forbids pulling",
                    permanent=True,
                )
        auth = self.registry_auth_for(spec, ref)
        try:
            await self.api.image_pull(ref.repository, ref.pull_tag, registry_auth=encode_registry_auth(auth))
        except EngineAPIError as exc:
            raise classify_pull_error(spec.image, exc.message) from exc
        local = await self._local_image(ref)
        if local is None:
            raise RuntimeFailure(FailureKind.IMAGE_NOT_FOUND, f"image '{spec.image}' is not present after pulling it")
        return local

    # ----------------------------------------------------------------- network

    @staticmethod
    def network_name(namespace: str) -> str:
        return f"{NETWORK_PREFIX}{namespace}"

    async def _namespace_network(self, namespace: str) -> bool:
        """Make sure `ring_<namespace>` exists; True when it was looked up (or created) now.

        Once ensured, the network is trusted for later creates (`cache_networks`):
        the lookup would sit on every create's path, and on Podman it queues for
        the network lock, which Podman's own clean-up of an exited container
        holds for a few hundred milliseconds.
        """
        name = self.network_name(namespace)
        if self.cache_networks and name in self._networks:
            return False
        await self._ensure_namespace_network(namespace)
        self._networks.add(name)
        return True

    async def _ensure_namespace_network(self, namespace: str) -> None:
        name = self.network_name(namespace)
        try:
            await self.api.ensure_network(name, labels={"ring.managed": "true", "ring.namespace": namespace})
        except EngineAPIError as exc:
            raise RuntimeFailure(
                FailureKind.NETWORK_CREATION_FAILED, f"failed to create network '{name}': {exc.message}"
            ) from exc

    async def release_namespace(self, namespace: str) -> bool:
        """Remove `ring_<namespace>` after the namespace is deleted (Ring never frees it).

        Returns False while containers still use it (a deletion still tearing down):
        the caller retries. A network that is already gone counts as released.
        """
        self._networks.discard(self.network_name(namespace))
        network = await self.api.find_network(self.network_name(namespace))
        if network is None:
            return True
        try:
            await self.api.network_remove(network.id or network.name)
        except EngineNotFound:
            return True
        except EngineAPIError as exc:
            log.info("%s: network %s still in use: %s", self.name, network.name, exc.message)
            return False
        return True

    # ----------------------------------------------------------------- mounts

    async def _mounts(self, spec: InstanceSpec, image: ImageInfo) -> list[MountSpec]:
        result: list[MountSpec] = []
        for mount in spec.mounts:
            if mount.kind == "bind":
                if not mount.source:
                    raise RuntimeFailure(
                        FailureKind.INSTANCE_CREATION_FAILED, f"bind mount for {mount.destination} has no source"
                    )
                if mount.source.startswith("/"):
                    result.append(
                        MountSpec(type="bind", source=mount.source, target=mount.destination, read_only=mount.read_only)
                    )
                else:  # Docker semantics: a relative "bind" source names a volume
                    result.append(MountSpec.volume(mount.source, mount.destination, read_only=mount.read_only))
            elif mount.kind == "volume":
                result.append(await self._named_volume(spec, mount))
            elif mount.kind == "file":
                path = await self._write_file_mount(spec, mount, image)
                result.append(MountSpec(type="bind", source=str(path), target=mount.destination, read_only=True))
            else:
                raise RuntimeFailure(
                    FailureKind.INSTANCE_CREATION_FAILED, f"unknown mount kind {mount.kind!r} for {mount.destination}"
                )
        return result

    async def _named_volume(self, spec: InstanceSpec, mount: Mount) -> MountSpec:
        if not mount.source:
            raise RuntimeFailure(
                FailureKind.INSTANCE_CREATION_FAILED, f"volume mount for {mount.destination} has no source"
            )
        labels = {"ring.managed": "true", "ring.namespace": spec.namespace, "ring.deployment": spec.deployment_name}
        try:
            await self.api.volume_create(mount.source, driver=mount.driver or "local", labels=labels)
        except EngineAPIError as exc:
            raise RuntimeFailure(
                FailureKind.INSTANCE_CREATION_FAILED, f"failed to provision volume '{mount.source}': {exc.message}"
            ) from exc
        driver = mount.driver if mount.driver and mount.driver != "local" else None
        return MountSpec.volume(mount.source, mount.destination, read_only=mount.read_only, driver=driver)

    def deployment_files_dir(self, deployment_id: str) -> Path:
        """The private directory holding a deployment's config/secret payload files."""
        return self.payload_dir / deployment_id

    def _file_mode(self, spec: InstanceSpec, image: ImageInfo) -> tuple[int, int | None, int | None]:
        """(mode, uid, gid) for a payload file: private to the container's user when we know it.

        The directory is 0700, so the file is never readable by other host users;
        the file mode matters inside the container. When the container runs as a
        named user we cannot map to a UID, the file is made world-readable (0644),
        as a config file in an image would be.
        """
        owner: tuple[int, int | None] | None
        if spec.user is not None and spec.user.id is not None:
            owner = (spec.user.id, spec.user.group)
        else:
            image_user = image.config.user if image.config and image.config.user else "0"
            owner = _numeric_user(image_user)
        if owner is None:
            return 0o644, None, None
        uid, gid = owner
        if os.geteuid() == 0:
            return 0o600, uid, gid
        if uid == os.geteuid():
            return 0o600, None, None
        return 0o644, None, None

    async def _write_file_mount(self, spec: InstanceSpec, mount: Mount, image: ImageInfo) -> Path:
        content = mount.content or b""
        mode, uid, gid = self._file_mode(spec, image)
        directory = self.deployment_files_dir(spec.deployment_id)
        path = directory / hashlib.sha256(content).hexdigest()

        def write() -> None:
            for parent in (self.payload_dir.parent, self.payload_dir, directory):
                parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            for parent in (self.payload_dir, directory):
                os.chmod(parent, 0o700)
            tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                if uid is not None:
                    os.fchown(fd, uid, gid if gid is not None else -1)
                os.fchmod(fd, mode)
                view = memoryview(content)
                while view:
                    view = view[os.write(fd, view) :]
            except BaseException:
                os.close(fd)
                tmp.unlink(missing_ok=True)
                raise
            os.close(fd)
            os.replace(tmp, path)

        async with self._files_lock:
            try:
                await trio.to_thread.run_sync(write)
            except OSError as exc:
                raise RuntimeFailure(
                    FailureKind.FILE_SYSTEM_ERROR,
                    f"cannot write the payload for {mount.destination} to {path}: {exc}",
                ) from exc
        return path

    async def _cleanup_files(self, deployment_id: str) -> None:
        """Delete the deployment's payload dir once none of its containers remain (best effort)."""
        directory = self.deployment_files_dir(deployment_id)
        if not directory.exists():
            return
        async with self._files_lock:
            if self._creating.get(deployment_id):
                return
            try:
                remaining = await self.api.containers_list(filters={"label": [f"{OWNER_LABEL}={deployment_id}"]})
            except (EngineAPIError, EngineUnavailable):
                return
            if remaining or self._creating.get(deployment_id):
                return
            await trio.to_thread.run_sync(lambda: shutil.rmtree(directory, ignore_errors=True))

    # ----------------------------------------------------------------- container body

    def _container_body(
        self, spec: InstanceSpec, ref: ImageRef, mounts: list[MountSpec], name: str = ""
    ) -> ContainerCreate:
        host_mode = spec.network_mode == "host"
        host = CreateHostConfig(
            mounts=mounts or None,
            privileged=bool(spec.user is not None and spec.user.privileged),
            network_mode="host" if host_mode else None,
        )
        networking: NetworkingConfig | None = None
        if not host_mode and self.attach_network_at_create:
            network = self.network_name(spec.namespace)
            host.network_mode = network
            networking = NetworkingConfig(
                endpoints_config={network: EndpointConfig(aliases=[spec.deployment_name, name])}
            )
        exposed: dict[str, dict[str, Any]] | None = None
        if spec.ports and not host_mode:
            exposed = {}
            bindings: dict[str, list[PortBinding]] = {}
            for port in spec.ports:
                key = f"{port.target}/{port.protocol}"
                exposed[key] = {}
                bindings.setdefault(key, []).append(
                    PortBinding(host_ip=port.host_ip or "0.0.0.0", host_port=str(port.published))
                )
            host.port_bindings = bindings
        try:
            self._apply_resources(spec, host)
        except ValueError as exc:
            raise RuntimeFailure(FailureKind.INSTANCE_CREATION_FAILED, f"invalid resources: {exc}") from exc
        labels = dict(spec.labels)
        labels[OWNER_LABEL] = spec.deployment_id  # the user cannot override ownership
        if spec.server_id:
            labels[SERVER_LABEL] = spec.server_id
        return ContainerCreate(
            image=ref.reference,
            cmd=list(spec.command) or None,
            env=[f"{key}={value}" for key, value in spec.env.items()] or None,
            labels=labels,
            user=self._user(spec),
            exposed_ports=exposed,
            healthcheck=self._healthcheck(spec),
            host_config=host,
            networking_config=networking,
        )

    @staticmethod
    def _apply_resources(spec: InstanceSpec, host: CreateHostConfig) -> None:
        resources = spec.resources
        if resources is None:
            return
        if resources.limits is not UNSET:
            if resources.limits.cpu is not UNSET:
                host.nano_cpus = parse_cpu(resources.limits.cpu)
            if resources.limits.memory is not UNSET:
                host.memory = parse_memory(resources.limits.memory)
        if resources.requests is not UNSET and resources.requests.memory is not UNSET:
            host.memory_reservation = parse_memory(resources.requests.memory)

    @staticmethod
    def _user(spec: InstanceSpec) -> str | None:
        if spec.user is None or spec.user.id is None:
            return None
        if spec.user.group is not None:
            return f"{spec.user.id}:{spec.user.group}"
        return str(spec.user.id)

    @staticmethod
    def _healthcheck(spec: InstanceSpec) -> Healthcheck | None:
        check = spec.native_healthcheck
        if check is None:
            return None
        return Healthcheck(
            test=["CMD-SHELL", check.command],
            interval=_ns(check.interval),
            timeout=_ns(check.timeout),
            retries=check.threshold,
            start_period=_ns(check.start_period),
        )

    def _address_of(self, info: ContainerInfo) -> str | None:
        """IP on the `bridge` network if present, else the first network with an IP; None in host mode."""
        if info.host_config.network_mode == "host":
            return None
        networks = info.network_settings.networks or {}
        bridge = networks.get("bridge")
        if bridge is not None and bridge.ip_address:
            return bridge.ip_address
        for endpoint in networks.values():
            if endpoint.ip_address:
                return endpoint.ip_address
        return None

    # ----------------------------------------------------------------- exit detection

    def _open_pidfd(self, pid: int, container_id: str) -> PidFd | None:
        """A pidfd on the container's init process, or None when we cannot trust one."""
        if not self._use_pidfd or pid <= 0:
            return None
        try:
            pidfd = PidFd.open(pid)
        except OSError:  # ProcessLookupError: already gone; PermissionError etc.: not ours to watch
            return None
        # The PID came from the engine: make sure it is this container's process in our PID namespace.
        if not belongs_to_container(pid, container_id):
            pidfd.close()
            return None
        return pidfd

    @staticmethod
    def _status_from_state(state: ContainerState, detected_at: float, *, removed: bool = False) -> ExitStatus:
        finished = bool(state.finished_at) and not state.finished_at.startswith("0001")
        exited = state.status in ("exited", "dead") or finished
        return ExitStatus(
            exit_code=state.exit_code if exited else None,
            oom_killed=state.oom_killed,
            removed=removed,
            detected_at=detected_at,
        )

    async def wait_exit(self, handle: InstanceHandle) -> ExitStatus:
        """Return as soon as the container has stopped (event-driven, never polled).

        The kernel (pidfd) or the engine's `die` event, whichever comes first,
        sets `detected_at`; the exit code and OOM flag then come from the engine.
        A container already stopped returns at once; one that no longer exists
        returns `removed=True`. Cancellation closes the pidfd and unregisters.

        Raises:
            EngineUnavailable: the engine cannot be reached at the start and no
                pidfd can stand in for it (once waiting, engine outages are
                ridden out: retried, or covered by the pidfd).
        """
        container_id = handle.id
        watch = _ExitWatch()
        self._watches.setdefault(container_id, set()).add(watch)
        pidfd: PidFd | None = None
        try:
            try:
                info = await self.api.container_inspect(container_id)
            except EngineNotFound:
                return ExitStatus(exit_code=None, removed=True, detected_at=trio.current_time())
            except EngineUnavailable:
                # The engine is away (restarting?): the kernel can still tell us when the process ends.
                pidfd = self._open_pidfd(handle.pid or 0, container_id)
                if pidfd is None:
                    raise
            else:
                if not info.state.running:
                    return self._status_from_state(info.state, trio.current_time())
                pidfd = self._open_pidfd(info.state.pid, info.id or container_id)
            detected_at = await self._first_exit_signal(container_id, watch, pidfd)
            return await self._exit_status(container_id, watch, detected_at)
        finally:
            watches = self._watches.get(container_id)
            if watches is not None:
                watches.discard(watch)
                if not watches:
                    del self._watches[container_id]
            if pidfd is not None:
                pidfd.close()

    async def _first_exit_signal(self, container_id: str, watch: _ExitWatch, pidfd: PidFd | None) -> float:
        """Wait for the first sign of exit (pidfd readable, die/destroy event, /wait); return when."""
        detected_at: float | None = None

        async with trio.open_nursery() as nursery:

            def detected() -> None:
                nonlocal detected_at
                if detected_at is None:
                    detected_at = trio.current_time()
                nursery.cancel_scope.cancel(reason="instance exit detected")

            if pidfd is not None:

                async def watch_process() -> None:
                    await pidfd.wait()
                    detected()

                nursery.start_soon(watch_process)

            async def watch_engine() -> None:
                # With a pidfd standing guard, a stream outage needs no /wait connection per container.
                await self._engine_exit(container_id, watch, use_wait=pidfd is None)
                detected()

            nursery.start_soon(watch_engine)
        assert detected_at is not None
        return detected_at

    async def _engine_exit(self, container_id: str, watch: _ExitWatch, *, use_wait: bool) -> None:
        """Return when the engine reports the container stopped.

        Normally through the event router (`watch` is notified on die/destroy and
        on every change of the stream's state). While the stream is down and
        `use_wait` is set, block on `POST /containers/{id}/wait` instead; those
        long-polls are capped by a limiter so an outage cannot exhaust the
        connection pool.
        """
        while not watch.settled:
            if self._events_live or not use_wait:
                await watch.wait()
                continue
            try:
                async with self._wait_limiter:
                    result = await self.api.container_wait(container_id)
            except EngineNotFound:
                watch.destroyed = True
            except (EngineAPIError, EngineUnavailable) as exc:
                log.debug("%s: wait on %s failed (%s); retrying", self.name, container_id[:12], exc)
                with trio.move_on_after(self.events_retry_delay):
                    await watch.wait()
                continue
            else:
                watch.died = True
                watch.exit_code = result.status_code

    async def _exit_status(self, container_id: str, watch: _ExitWatch, detected_at: float) -> ExitStatus:
        """After detection: read exit code and OOM flag from the engine."""
        if not watch.settled:
            # The kernel saw the exit first; the engine's die event follows within milliseconds.
            with trio.move_on_after(DIE_EVENT_GRACE):
                await self._engine_exit(container_id, watch, use_wait=True)
        if watch.died and watch.exit_code is not None and watch.exit_code != 137:
            # The die event carries the exit code. An inspect now would wait for the engine's
            # post-exit cleanup (~100 ms here), on the crash -> replacement path. 137 (SIGKILL)
            # may be an OOM kill, which only the container state tells for sure.
            return ExitStatus(exit_code=watch.exit_code, oom_killed=watch.oom, detected_at=detected_at)
        if watch.destroyed and not watch.died:
            return ExitStatus(exit_code=None, removed=True, detected_at=detected_at)
        try:
            info = await self.api.container_inspect(container_id)
        except EngineNotFound:
            return ExitStatus(exit_code=watch.exit_code, oom_killed=watch.oom, removed=True, detected_at=detected_at)
        except (EngineAPIError, EngineUnavailable):
            return ExitStatus(exit_code=watch.exit_code, oom_killed=watch.oom, detected_at=detected_at)
        if info.state.running and not watch.died:
            # Should not happen (pidfd fired but the engine still runs it): report what we know.
            return ExitStatus(exit_code=None, detected_at=detected_at)
        status = self._status_from_state(info.state, detected_at)
        exit_code = status.exit_code if status.exit_code is not None else watch.exit_code
        return ExitStatus(exit_code=exit_code, oom_killed=status.oom_killed or watch.oom, detected_at=detected_at)

    # ----------------------------------------------------------------- remove / list / adopt

    async def remove(self, handle: InstanceHandle, *, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Stop (SIGTERM, SIGKILL after `timeout` s) and delete with anonymous volumes. Idempotent.

        Named volumes are never removed. The deployment's payload directory goes
        once none of its containers remain.
        """
        try:
            await self.api.container_stop(handle.id, grace=timeout)
        except (EngineNotFound, EngineNotModified, EngineConflict):
            pass
        except EngineAPIError as exc:
            log.warning("%s: stop of %s failed (%s); forcing removal", self.name, handle.name, exc.message)
        try:
            await self.api.container_remove(handle.id, force=True, volumes=True)
        except EngineNotFound:
            pass
        except EngineConflict as exc:
            if "already in progress" not in exc.message:
                raise RuntimeFailure(FailureKind.RUNTIME_ERROR, f"cannot remove {handle.name}: {exc.message}") from exc
        except EngineAPIError as exc:
            raise RuntimeFailure(FailureKind.RUNTIME_ERROR, f"cannot remove {handle.name}: {exc.message}") from exc
        await self._cleanup_files(handle.deployment_id)

    async def list_instances(
        self, *, deployment_id: str | None = None, details: bool = True
    ) -> list[ObservedInstance]:
        """Every container labelled `ring_deployment` (or `=deployment_id`), running or not.

        With `details` (default) each running container is inspected for its PID;
        `details=False` answers from one list call (pid None).
        """
        label = f"{OWNER_LABEL}={deployment_id}" if deployment_id else OWNER_LABEL
        try:
            summaries = await self.api.containers_list(all=True, filters={"label": [label]})
        except EngineAPIError as exc:
            raise RuntimeFailure(FailureKind.RUNTIME_ERROR, f"cannot list containers: {exc.message}") from exc
        pids: dict[str, int] = {}
        if details:
            limiter = trio.CapacityLimiter(16)

            async def fetch_pid(container_id: str) -> None:
                async with limiter:
                    with contextlib.suppress(EngineAPIError):
                        info = await self.api.container_inspect(container_id)
                        if info.state.running and info.state.pid:
                            pids[container_id] = info.state.pid

            async with trio.open_nursery() as nursery:
                for summary in summaries:
                    if summary.state == "running":
                        nursery.start_soon(fetch_pid, summary.id)
        observed = []
        for summary in summaries:
            labels = summary.labels or {}
            running = summary.state == "running"
            exit_code = None
            match = _EXITED_RE.search(summary.status or "")
            if not running and match:
                exit_code = int(match.group(1))
            observed.append(
                ObservedInstance(
                    id=summary.id,
                    name=(summary.names or [""])[0].lstrip("/"),
                    deployment_id=labels.get(OWNER_LABEL, ""),
                    server_id=labels.get(SERVER_LABEL),
                    running=running,
                    exit_code=exit_code,
                    pid=pids.get(summary.id),
                    created_at=float(summary.created),
                )
            )
        return observed

    async def adopt(self, observed: ObservedInstance) -> InstanceHandle:
        """Rebuild a handle after a server restart (inspect for PID, address and image digest).

        Raises InstanceGone when the container no longer exists.
        """
        try:
            info = await self.api.container_inspect(observed.id)
        except EngineNotFound as exc:
            raise InstanceGone(observed.id) from exc
        digest = None
        with contextlib.suppress(EngineAPIError, ValueError):
            image = await self.api.image_inspect(info.image)
            digest = pick_repo_digest(image.repo_digests, parse_image_ref(info.config.image))
        return InstanceHandle(
            id=info.id,
            name=info.name.lstrip("/") or observed.name,
            deployment_id=(info.config.labels or {}).get(OWNER_LABEL, observed.deployment_id),
            pid=info.state.pid or None if info.state.running else None,
            address=self._address_of(info),
            created_at=_parse_time(info.created) or observed.created_at,
            image_digest=digest,
        )

    # ----------------------------------------------------------------- exec / logs / stats

    async def _inspect(self, handle: InstanceHandle) -> ContainerInfo:
        try:
            return await self.api.container_inspect(handle.id)
        except EngineNotFound as exc:
            raise InstanceGone(handle.id) from exc

    async def exec(self, handle: InstanceHandle, argv: list[str], timeout: float) -> ExecResult:  # noqa: ASYNC109
        """Run `argv` in the container (command probes).

        On timeout the exec'd process is killed (through a pidfd, when we can
        see it) and `timed_out` is set. A stopped container gives exit code -1
        with the engine's message. Raises InstanceGone when the container is gone.
        """
        try:
            exec_id = await self.api.exec_create(handle.id, argv)
        except EngineNotFound as exc:
            raise InstanceGone(handle.id) from exc
        except EngineConflict as exc:
            return ExecResult(exit_code=-1, output=exc.message)
        output = None
        with trio.move_on_after(timeout):
            try:
                output = await self.api.exec_start(exec_id)
            except EngineNotFound as exc:
                raise InstanceGone(handle.id) from exc
            except EngineAPIError as exc:  # e.g. 409: the container stopped or is paused
                return ExecResult(exit_code=-1, output=exc.message)
        if output is None:
            with trio.move_on_after(CLEANUP_TIMEOUT, shield=True):
                await self._kill_exec(exec_id, handle.id)
            return ExecResult(exit_code=-1, output=f"command timed out after {timeout:g}s", timed_out=True)
        exit_code = await self._exec_exit_code(exec_id)
        return ExecResult(exit_code=exit_code, output=output.combined.decode(errors="replace"))

    async def _exec_exit_code(self, exec_id: str) -> int:
        # The output stream closes when the process ends; the engine records the
        # exit code in the same instant, but allow it a few milliseconds.
        with trio.move_on_after(2.0):
            delay = 0.005
            while True:
                info = await self.api.exec_inspect(exec_id)
                if not info.running and info.exit_code is not None:
                    return info.exit_code
                await trio.sleep(delay)
                delay = min(delay * 2, 0.1)
        return -1

    async def _kill_exec(self, exec_id: str, container_id: str) -> None:
        try:
            info = await self.api.exec_inspect(exec_id)
        except (EngineAPIError, EngineUnavailable):
            return
        if not info.running or info.pid <= 0 or not self._use_pidfd:
            return
        try:
            with PidFd.open(info.pid) as pidfd:
                if belongs_to_container(info.pid, container_id):
                    pidfd.send_signal()
        except OSError:
            pass

    async def logs(self, handle: InstanceHandle, *, tail: int | None, since: float | None) -> list[LogLine]:
        """stdout+stderr lines with the engine's RFC 3339 timestamps (`since` is Unix seconds)."""
        info = await self._inspect(handle)
        try:
            entries = await self.api.logs(handle.id, tail=tail, since=since, multiplexed=not info.config.tty)
        except EngineNotFound as exc:
            raise InstanceGone(handle.id) from exc
        return [LogLine(handle.name, entry.message, entry.timestamp, entry.stream) for entry in entries]

    async def follow_logs(self, handle: InstanceHandle, *, tail: int | None) -> AsyncIterator[LogLine]:
        """Follow the container's output until it stops (or the consumer stops iterating)."""
        info = await self._inspect(handle)
        async with self.api.open_logs(handle.id, tail=tail, follow=True, multiplexed=not info.config.tty) as entries:
            async for entry in entries:
                yield LogLine(handle.name, entry.message, entry.timestamp, entry.stream)

    async def stats(self, handle: InstanceHandle) -> InstanceStats:
        """One sample as `docker stats --no-stream` computes it (takes about a second)."""
        info = await self._inspect(handle)
        try:
            sample = await self.api.stats(handle.id)
        except EngineNotFound as exc:
            raise InstanceGone(handle.id) from exc
        except EngineAPIError as exc:
            raise RuntimeFailure(
                FailureKind.STATS_FETCH_FAILED, f"cannot read stats of {handle.name}: {exc.message}"
            ) from exc
        return InstanceStats(
            instance_id=handle.id[:12],
            instance_name=handle.name,
            cpu_percent=sample.cpu_percent,
            memory_usage=sample.memory_usage,
            memory_limit=sample.memory_limit,
            rx_bytes=sample.rx_bytes,
            tx_bytes=sample.tx_bytes,
            rx_packets=sample.rx_packets,
            tx_packets=sample.tx_packets,
            read_bytes=sample.read_bytes,
            write_bytes=sample.write_bytes,
            pids=sample.pids,
            pids_limit=sample.pids_limit,
            restart_count=info.restart_count,
        )

    async def address(self, handle: InstanceHandle) -> str | None:
        """The container's IP for probes (`bridge` first); None in host mode or when it has none."""
        return self._address_of(await self._inspect(handle))
