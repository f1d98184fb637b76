"""One async client for the Docker Engine API, shared by the Docker and Podman runtimes.

Podman serves the same Docker-compatible API (`/v1.41/...`), so nothing here
assumes the daemon is dockerd: engine-specific behaviour (which events to ask
for, how to read a PID, pull policy rules) lives in the runtimes that use this
client. No docker SDK: it is synchronous. One `httpx.AsyncClient` over the
engine's Unix socket (or TCP) carries every call; httpx runs on trio through
anyio.

Error hierarchy (everything raised by this module)::

    EngineUnavailable (runtimes.errors)   socket gone, connection refused/reset
    └── EngineTimeout                     the engine did not answer in time
    EngineAPIError                        the engine answered with an error
    ├── EngineNotFound                    404: no such container/image/network/exec
    ├── EngineConflict                    409: name in use, container not running, ...
    ├── EngineNotModified                 304: already started/stopped (callers usually ignore)
    └── ImagePullError                    a pull reported `{"error": ...}` inside a 200 stream

Streams (events, followed logs) are async context managers (`open_events`,
`open_logs`): entering returns once the engine has sent its response headers,
which for `/events` means the subscription is live; leaving closes the
connection, also on cancellation.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import struct
import urllib.parse
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import httpx
import msgspec
import trio

from ring_actors.runtimes.errors import EngineUnavailable

__all__ = [
    "DEFAULT_API_VERSION",
    "DEFAULT_TIMEOUT",
    "ContainerConfig",
    "ContainerCreate",
    "ContainerInfo",
    "ContainerState",
    "ContainerStats",
    "ContainerSummary",
    "CreateHostConfig",
    "DockerAPI",
    "EndpointSettings",
    "EngineAPIError",
    "EngineConflict",
    "EngineEvent",
    "EngineNotFound",
    "EngineNotModified",
    "EngineTimeout",
    "EventActor",
    "ExecInfo",
    "ExecOutput",
    "Healthcheck",
    "HealthState",
    "HostConfigInfo",
    "ImageInfo",
    "ImagePullError",
    "LogEntry",
    "MountSpec",
    "NetworkInfo",
    "NetworkSettings",
    "PortBinding",
    "VersionInfo",
    "VolumeInfo",
    "WaitResult",
    "compute_cpu_percent",
    "demux_frames",
    "parse_host",
    "split_log_timestamp",
]

DEFAULT_API_VERSION = "v1.41"
DEFAULT_TIMEOUT = 120.0
"""Client-wide timeout in seconds (Ring uses 120 s); streams override the read timeout."""

_STREAM_TIMEOUT = httpx.Timeout(DEFAULT_TIMEOUT, read=None)
_PULL_TIMEOUT = httpx.Timeout(DEFAULT_TIMEOUT, read=600.0)
_MAX_EXEC_OUTPUT = 1024 * 1024
"""Bytes of exec output kept per call: probes need a message, not a dump."""

_STREAM_NAMES = {0: "stdin", 1: "stdout", 2: "stderr"}


# --------------------------------------------------------------------------- errors


class EngineTimeout(EngineUnavailable):
    """The engine accepted the connection but did not answer within the timeout."""


class EngineAPIError(Exception):
    """The engine answered with an HTTP error (or an error inside a streamed reply)."""

    def __init__(self, status_code: int, message: str, *, method: str = "", path: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.method = method
        self.path = path

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status_code}, {self.message!r}, {self.method} {self.path})"


class EngineNotFound(EngineAPIError):
    """404: the object named in the request does not exist."""


class EngineConflict(EngineAPIError):
    """409: the request conflicts with the object's state (name in use, not running, ...)."""


class EngineNotModified(EngineAPIError):
    """304: nothing to do (container already started / already stopped)."""


class ImagePullError(EngineAPIError):
    """A pull failed; the engine reported it in the progress stream (HTTP status 200)."""


_ERRORS_BY_STATUS: dict[int, type[EngineAPIError]] = {
    304: EngineNotModified,
    404: EngineNotFound,
    409: EngineConflict,
}


# --------------------------------------------------------------------------- structs


class _Reply(msgspec.Struct, rename="pascal", kw_only=True):
    """Base for engine replies: PascalCase keys, unknown fields tolerated, all optional."""


class VersionInfo(_Reply):
    version: str = ""
    api_version: str = ""
    min_api_version: str = ""
    os: str = msgspec.field(default="", name="Os")
    arch: str = ""
    kernel_version: str = ""


class ImageConfig(_Reply):
    user: str | None = None
    cmd: list[str] | None = None
    entrypoint: list[str] | None = None
    env: list[str] | None = None


class ImageInfo(_Reply):
    id: str = ""
    repo_tags: list[str] | None = None
    repo_digests: list[str] | None = None
    config: ImageConfig | None = None


class HealthState(_Reply):
    status: str = ""
    failing_streak: int = 0


class ContainerState(_Reply):
    status: str = ""
    running: bool = False
    paused: bool = False
    restarting: bool = False
    oom_killed: bool = msgspec.field(default=False, name="OOMKilled")
    dead: bool = False
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    started_at: str = ""
    finished_at: str = ""
    health: HealthState | None = None


class EndpointSettings(_Reply):
    ip_address: str = msgspec.field(default="", name="IPAddress")
    aliases: list[str] | None = None
    network_id: str = msgspec.field(default="", name="NetworkID")
    gateway: str = ""
    mac_address: str = ""


class NetworkSettings(_Reply):
    networks: dict[str, EndpointSettings] | None = None


class ContainerConfig(_Reply):
    image: str = ""
    labels: dict[str, str] | None = None
    env: list[str] | None = None
    cmd: list[str] | None = None
    entrypoint: list[str] | None = None
    user: str = ""
    tty: bool = False
    hostname: str = ""


class PortBinding(msgspec.Struct, rename="pascal", kw_only=True):
    host_ip: str = msgspec.field(default="", name="HostIp")
    host_port: str = ""


class HostConfigInfo(_Reply):
    network_mode: str = ""
    privileged: bool = False
    nano_cpus: int = 0
    memory: int = 0
    memory_reservation: int = 0
    port_bindings: dict[str, list[PortBinding] | None] | None = None


class ContainerInfo(_Reply):
    """`GET /containers/{id}/json`."""

    id: str = ""
    name: str = ""
    created: str = ""
    image: str = ""
    restart_count: int = 0
    state: ContainerState = msgspec.field(default_factory=ContainerState)
    config: ContainerConfig = msgspec.field(default_factory=ContainerConfig)
    host_config: HostConfigInfo = msgspec.field(default_factory=HostConfigInfo)
    network_settings: NetworkSettings = msgspec.field(default_factory=NetworkSettings)


class ContainerSummary(_Reply):
    """An entry of `GET /containers/json`."""

    id: str = ""
    names: list[str] | None = None
    image: str = ""
    image_id: str = msgspec.field(default="", name="ImageID")
    created: int = 0
    state: str = ""
    status: str = ""
    labels: dict[str, str] | None = None


class NetworkInfo(_Reply):
    id: str = ""
    name: str = ""
    driver: str = ""
    scope: str = ""
    created: str = ""
    labels: dict[str, str] | None = None


class VolumeInfo(_Reply):
    name: str = ""
    driver: str = ""
    mountpoint: str = ""
    scope: str = ""
    labels: dict[str, str] | None = None


class ExecInfo(_Reply):
    id: str = msgspec.field(default="", name="ID")
    running: bool = False
    exit_code: int | None = None
    pid: int = 0
    container_id: str = msgspec.field(default="", name="ContainerID")


class _WaitError(_Reply):
    message: str = ""


class WaitResult(_Reply):
    status_code: int = 0
    error: _WaitError | None = None


class EventActor(msgspec.Struct, kw_only=True):
    id: str = msgspec.field(default="", name="ID")
    attributes: dict[str, str] | None = msgspec.field(default=None, name="Attributes")


class EngineEvent(msgspec.Struct, kw_only=True):
    """One entry of `GET /events` (Docker and Podman compat spell the keys this way)."""

    type: str = msgspec.field(default="", name="Type")
    action: str = msgspec.field(default="", name="Action")
    actor: EventActor = msgspec.field(default_factory=EventActor, name="Actor")
    status: str = ""
    id: str = ""
    time: int = 0
    time_nano: int = msgspec.field(default=0, name="timeNano")

    @property
    def object_id(self) -> str:
        """The id of the object the event is about (container id for container events)."""
        return self.actor.id or self.id

    @property
    def attributes(self) -> dict[str, str]:
        return self.actor.attributes or {}

    @property
    def verb(self) -> str:
        """The action without its detail (`exec_start: sh -c ...` -> `exec_start`)."""
        return (self.action or self.status).split(":", 1)[0]


# Create-side structs: encoded with omit_defaults so the engine applies its own defaults.


class _Body(msgspec.Struct, rename="pascal", kw_only=True, omit_defaults=True):
    """Base for request bodies."""


class Healthcheck(_Body):
    test: list[str]
    interval: int = 0
    timeout: int = 0
    retries: int = 0
    start_period: int = 0


class _DriverConfig(_Body):
    name: str


class _VolumeOptions(_Body):
    driver_config: _DriverConfig | None = None
    labels: dict[str, str] | None = None


class MountSpec(_Body):
    """One `HostConfig.Mounts` entry (`Type` bind or volume)."""

    type: str
    target: str
    source: str = ""
    read_only: bool = False
    volume_options: _VolumeOptions | None = None

    @classmethod
    def volume(cls, name: str, target: str, *, read_only: bool, driver: str | None = None) -> MountSpec:
        options = _VolumeOptions(driver_config=_DriverConfig(name=driver)) if driver else None
        return cls(type="volume", source=name, target=target, read_only=read_only, volume_options=options)


class CreateHostConfig(_Body):
    mounts: list[MountSpec] | None = None
    privileged: bool = False
    network_mode: str | None = None
    port_bindings: dict[str, list[PortBinding]] | None = None
    nano_cpus: int | None = None
    memory: int | None = None
    memory_reservation: int | None = None


class EndpointConfig(_Body):
    """One network joined at create time."""

    aliases: list[str] | None = None


class NetworkingConfig(_Body):
    """Networks joined at create time (one, with its DNS aliases, is all the API accepts)."""

    endpoints_config: dict[str, EndpointConfig] | None = None


class ContainerCreate(_Body):
    """The body of `POST /containers/create` (the fields ring-actors sets)."""

    image: str
    cmd: list[str] | None = None
    entrypoint: list[str] | None = None
    env: list[str] | None = None
    labels: dict[str, str] | None = None
    user: str | None = None
    exposed_ports: dict[str, dict[str, Any]] | None = None
    healthcheck: Healthcheck | None = None
    host_config: CreateHostConfig | None = None
    networking_config: NetworkingConfig | None = None


class _CreatedReply(_Reply):
    id: str = ""
    warnings: list[str] | None = None


class _ExecCreatedReply(_Reply):
    id: str = ""


class _NetworkCreatedReply(_Reply):
    id: str = ""


# Stats as the engine reports them (snake_case keys).


class _CpuUsage(msgspec.Struct):
    total_usage: int = 0
    percpu_usage: list[int] | None = None


class _CpuStats(msgspec.Struct):
    cpu_usage: _CpuUsage = msgspec.field(default_factory=_CpuUsage)
    system_cpu_usage: int = 0
    online_cpus: int = 0


class _MemoryStats(msgspec.Struct):
    usage: int = 0
    limit: int = 0
    stats: dict[str, int] | None = None


class _NetStats(msgspec.Struct):
    rx_bytes: int = 0
    rx_packets: int = 0
    tx_bytes: int = 0
    tx_packets: int = 0


class _BlkioEntry(msgspec.Struct):
    op: str = ""
    value: int = 0


class _BlkioStats(msgspec.Struct):
    io_service_bytes_recursive: list[_BlkioEntry] | None = None


class _PidsStats(msgspec.Struct):
    current: int = 0
    limit: int = 0


class _RawStats(msgspec.Struct):
    read: str = ""
    cpu_stats: _CpuStats = msgspec.field(default_factory=_CpuStats)
    precpu_stats: _CpuStats = msgspec.field(default_factory=_CpuStats)
    memory_stats: _MemoryStats = msgspec.field(default_factory=_MemoryStats)
    networks: dict[str, _NetStats] | None = None
    blkio_stats: _BlkioStats = msgspec.field(default_factory=_BlkioStats)
    pids_stats: _PidsStats = msgspec.field(default_factory=_PidsStats)


@dataclass(frozen=True)
class ContainerStats:
    """One stats sample, already reduced the way `docker stats` shows it."""

    read: str
    cpu_percent: float
    memory_usage: int
    memory_limit: int
    rx_bytes: int
    tx_bytes: int
    rx_packets: int
    tx_packets: int
    read_bytes: int
    write_bytes: int
    pids: int
    pids_limit: int


@dataclass(frozen=True)
class LogEntry:
    stream: str  # stdout | stderr
    message: str
    timestamp: str | None  # RFC 3339 (nanoseconds) when requested with timestamps


@dataclass(frozen=True)
class ExecOutput:
    stdout: bytes
    stderr: bytes
    combined: bytes  # both streams in the order the engine sent them
    truncated: bool = False


_T = TypeVar("_T")
_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


def _decode(kind: type[_T], raw: bytes) -> _T:
    """Decode an engine reply into `kind` (decoders are built once per type)."""
    decoder = _decoders.get(kind)
    if decoder is None:
        decoder = _decoders[kind] = msgspec.json.Decoder(kind)
    return cast(_T, decoder.decode(raw))


_encoder = msgspec.json.Encoder()
_event_decoder = msgspec.json.Decoder(EngineEvent)


# --------------------------------------------------------------------------- pure helpers


def parse_host(host: str) -> tuple[str | None, str]:
    """Split an engine URL into (unix socket path or None, HTTP base URL without version).

    Accepts `unix:///path`, a bare absolute path, and `tcp://host:port` (also
    `http://host:port`). Anything else raises ValueError, as Ring does.
    """
    if host.startswith("unix://"):
        path = host[len("unix://") :]
        if not path.startswith("/"):
            raise ValueError(f"invalid engine host {host!r}: unix socket path must be absolute")
        return path, "http://docker"
    if host.startswith("/"):
        return host, "http://docker"
    for scheme in ("tcp://", "http://"):
        if host.startswith(scheme):
            rest = host[len(scheme) :].rstrip("/")
            if not rest:
                raise ValueError(f"invalid engine host {host!r}: missing address")
            return None, f"http://{rest}"
    raise ValueError(f"invalid engine host {host!r}: expected unix:///path or tcp://host:port")


def demux_frames(buffer: bytearray) -> Iterator[tuple[int, bytes]]:
    """Pop complete frames of the engine's multiplexed stream from `buffer`.

    Each frame is an 8-byte header (stream id, three zero bytes, big-endian
    payload size) followed by the payload. Incomplete frames stay in the buffer.
    """
    while len(buffer) >= 8:
        stream_id = buffer[0]
        (size,) = struct.unpack_from(">I", buffer, 4)
        if len(buffer) < 8 + size:
            return
        payload = bytes(buffer[8 : 8 + size])
        del buffer[: 8 + size]
        yield stream_id, payload


_TIMESTAMP_RE = re.compile(rb"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})) ")


def split_log_timestamp(line: bytes) -> tuple[str | None, bytes]:
    """`b"2024-01-01T00:00:00.123Z hello"` -> ("2024-01-01T00:00:00.123Z", b"hello")."""
    match = _TIMESTAMP_RE.match(line)
    if not match:
        return None, line
    return match.group(1).decode(), line[match.end() :]


def compute_cpu_percent(cpu: _CpuStats, precpu: _CpuStats) -> float:
    """CPU % as `docker stats` computes it: one fully used core = 100."""
    cpu_delta = cpu.cpu_usage.total_usage - precpu.cpu_usage.total_usage
    system_delta = cpu.system_cpu_usage - precpu.system_cpu_usage
    online = cpu.online_cpus or len(cpu.cpu_usage.percpu_usage or ()) or 1
    if cpu_delta <= 0 or system_delta <= 0 or precpu.system_cpu_usage == 0:
        return 0.0
    return cpu_delta / system_delta * online * 100.0


def _memory_usage(memory: _MemoryStats) -> int:
    """Usage minus inactive page cache, as the docker CLI shows it (cgroup v1 and v2 keys)."""
    detail = memory.stats or {}
    for key in ("total_inactive_file", "inactive_file"):
        value = detail.get(key)
        if value is not None and value < memory.usage:
            return memory.usage - value
    return memory.usage


def _reduce_stats(raw: _RawStats) -> ContainerStats:
    rx = tx = rxp = txp = 0
    for net in (raw.networks or {}).values():
        rx += net.rx_bytes
        tx += net.tx_bytes
        rxp += net.rx_packets
        txp += net.tx_packets
    read = write = 0
    for entry in raw.blkio_stats.io_service_bytes_recursive or ():
        op = entry.op.lower()
        if op == "read":
            read += entry.value
        elif op == "write":
            write += entry.value
    return ContainerStats(
        read=raw.read,
        cpu_percent=compute_cpu_percent(raw.cpu_stats, raw.precpu_stats),
        memory_usage=_memory_usage(raw.memory_stats),
        memory_limit=raw.memory_stats.limit,
        rx_bytes=rx,
        tx_bytes=tx,
        rx_packets=rxp,
        tx_packets=txp,
        read_bytes=read,
        write_bytes=write,
        pids=raw.pids_stats.current,
        pids_limit=raw.pids_stats.limit,
    )


def _filters(filters: Mapping[str, Sequence[str] | str] | None) -> dict[str, str]:
    if not filters:
        return {}
    normalised = {key: [value] if isinstance(value, str) else list(value) for key, value in filters.items()}
    return {"filters": json.dumps(normalised)}


def _error_message(body: bytes) -> str:
    try:
        decoded = json.loads(body)
    except ValueError:
        return body.decode(errors="replace").strip()
    if isinstance(decoded, dict):
        for key in ("message", "error", "cause"):
            if isinstance(decoded.get(key), str):
                return str(decoded[key])
    return body.decode(errors="replace").strip()


def _quote(part: str) -> str:
    return urllib.parse.quote(part, safe="")


# --------------------------------------------------------------------------- client


class DockerAPI:
    """Async client of the Docker Engine API (also Podman's Docker-compatible API).

    Construct with the engine URL; no connection is made until the first call.
    Close with `aclose()` or use as `async with DockerAPI(host) as api:`.
    `transport` replaces the socket transport (unit tests: `httpx.MockTransport`).

    Every method raises `EngineUnavailable` (or `EngineTimeout`) when the engine
    cannot be reached and an `EngineAPIError` subclass when it answers with an
    error. Cancellation closes any connection in use.
    """

    def __init__(
        self,
        host: str = "unix:///var/run/docker.sock",
        *,
        api_version: str = DEFAULT_API_VERSION,
        timeout: float = DEFAULT_TIMEOUT,
        max_connections: int = 256,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.host = host
        self.api_version = api_version
        uds, base = parse_host(host)
        self._socket_path = uds
        if transport is None:
            transport = httpx.AsyncHTTPTransport(
                uds=uds,
                limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=32),
                retries=0,
            )
        self._client = httpx.AsyncClient(
            transport=transport,
            base_url=f"{base}/{api_version}" if api_version else base,
            timeout=httpx.Timeout(timeout, connect=10.0),
        )
        self._network_locks: dict[str, trio.Lock] = {}

    @property
    def is_local(self) -> bool:
        """True when talking over a Unix socket (the engine shares our PID namespace, normally)."""
        return self._socket_path is not None

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> DockerAPI:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # ----------------------------------------------------------------- plumbing

    @contextlib.contextmanager
    def _translate(self, method: str, path: str) -> Iterator[None]:
        """Map transport failures onto `EngineUnavailable` / `EngineTimeout` (httpx's idea)."""
        try:
            yield
        except httpx.TimeoutException as exc:
            raise EngineTimeout(f"engine at {self.host} did not answer {method} {path} in time: {exc}") from exc
        except (httpx.TransportError, OSError) as exc:
            raise EngineUnavailable(f"cannot reach the engine at {self.host}: {exc or type(exc).__name__}") from exc

    def _raise_for_status(self, response: httpx.Response, body: bytes, expect: Sequence[int]) -> None:
        if response.status_code in expect:
            return
        method, path = response.request.method, response.request.url.path
        kind = _ERRORS_BY_STATUS.get(response.status_code, EngineAPIError)
        message = _error_message(body) or response.reason_phrase
        raise kind(response.status_code, message, method=method, path=path)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        http_timeout: httpx.Timeout | float | None = None,
        expect: Sequence[int] = (200, 201, 204),
    ) -> bytes:
        content = _encoder.encode(body) if body is not None else None
        all_headers = {"Content-Type": "application/json"} if content is not None else {}
        all_headers.update(headers or {})
        extra: dict[str, Any] = {} if http_timeout is None else {"timeout": http_timeout}
        with self._translate(method, path):
            response = await self._client.request(
                method, path, params=params, content=content, headers=all_headers, **extra
            )
        self._raise_for_status(response, response.content, expect)
        return response.content

    async def _get(self, path: str, kind: type[_T], **kwargs: Any) -> _T:
        return _decode(kind, await self._request("GET", path, **kwargs))

    async def get(self, path: str, kind: type[_T], *, params: Mapping[str, Any] | None = None) -> _T:
        """`GET path` decoded into `kind`, for endpoints this client has no method for.

        Engine-specific calls (Podman's libpod API, used by the podman runtime)
        go through here, so they live with the runtime that needs them.
        """
        return await self._get(path, kind, params=params)

    @contextlib.asynccontextmanager
    async def _stream(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        http_timeout: httpx.Timeout = _STREAM_TIMEOUT,
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """Open a streamed request; yields the body chunks once headers arrived (status checked)."""
        content = _encoder.encode(body) if body is not None else None
        all_headers = {"Content-Type": "application/json"} if content is not None else {}
        all_headers.update(headers or {})
        async with contextlib.AsyncExitStack() as stack:
            # Translate transport errors of the engine only, never the caller's own errors
            # raised inside the `async with` body.
            with self._translate(method, path):
                response = await stack.enter_async_context(
                    self._client.stream(
                        method, path, params=params, content=content, headers=all_headers, timeout=http_timeout
                    )
                )
                error_body = await response.aread() if response.status_code >= 300 else b""
            if response.status_code >= 300:
                self._raise_for_status(response, error_body, ())
            chunks = await stack.enter_async_context(contextlib.aclosing(self._chunks(response, method, path)))
            yield chunks

    async def _chunks(self, response: httpx.Response, method: str, path: str) -> AsyncGenerator[bytes, None]:
        with self._translate(method, path):
            async for chunk in response.aiter_bytes():
                yield chunk

    # ----------------------------------------------------------------- system

    async def ping(self) -> str:
        """`GET /_ping`: returns "OK" when the engine is ready."""
        return (await self._request("GET", "/_ping")).decode(errors="replace")

    async def version(self) -> VersionInfo:
        return await self._get("/version", VersionInfo)

    # ----------------------------------------------------------------- images

    async def image_inspect(self, name: str) -> ImageInfo:
        """Raises EngineNotFound when the image is not present locally."""
        return await self._get(f"/images/{_quote(name)}/json", ImageInfo)

    async def image_pull(
        self,
        from_image: str,
        tag: str,
        *,
        registry_auth: str | None = None,
        platform: str | None = None,
    ) -> None:
        """`POST /images/create`; returns once the pull completed.

        `tag` must be set (a tag or a `sha256:` digest): an empty tag pulls every
        tag of the repository. `registry_auth` is the X-Registry-Auth header value.
        Raises ImagePullError for errors reported in the progress stream and
        EngineAPIError/EngineNotFound for errors reported as HTTP statuses.
        """
        if not tag:
            raise ValueError("image_pull needs a tag or digest")
        params = {"fromImage": from_image, "tag": tag}
        if platform:
            params["platform"] = platform
        headers = {"X-Registry-Auth": registry_auth} if registry_auth else None
        path = "/images/create"
        buffer = b""
        async with self._stream("POST", path, params=params, headers=headers, http_timeout=_PULL_TIMEOUT) as chunks:
            async for chunk in chunks:
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    self._check_pull_line(line, path)
        self._check_pull_line(buffer, path)

    @staticmethod
    def _check_pull_line(line: bytes, path: str) -> None:
        line = line.strip()
        if not line:
            return
        try:
            message = json.loads(line)
        except ValueError:
            return
        if isinstance(message, dict) and (message.get("error") or message.get("errorDetail")):
            detail = message.get("errorDetail") or {}
            text = message.get("error") or detail.get("message") or "image pull failed"
            raise ImagePullError(200, str(text), method="POST", path=path)

    # ----------------------------------------------------------------- containers

    async def container_create(self, body: ContainerCreate, *, name: str | None = None) -> str:
        """Create a container; returns its id."""
        params = {"name": name} if name else None
        raw = await self._request("POST", "/containers/create", params=params, body=body)
        return _decode(_CreatedReply, raw).id

    async def container_start(self, container: str) -> None:
        """Start; a container that is already running is not an error."""
        await self._request("POST", f"/containers/{_quote(container)}/start", expect=(204, 304))

    async def container_stop(self, container: str, *, grace: float | None = None) -> None:
        """Stop: SIGTERM, then SIGKILL after `grace` seconds (engine default 10 s). Stopped already is fine."""
        params = {"t": str(max(0, math.ceil(grace)))} if grace is not None else None
        http_timeout = httpx.Timeout(DEFAULT_TIMEOUT + (grace or 10.0), connect=10.0)
        await self._request(
            "POST",
            f"/containers/{_quote(container)}/stop",
            params=params,
            http_timeout=http_timeout,
            expect=(204, 304),
        )

    async def container_kill(self, container: str, *, signal: str = "SIGKILL") -> None:
        await self._request("POST", f"/containers/{_quote(container)}/kill", params={"signal": signal})

    async def container_remove(self, container: str, *, force: bool = False, volumes: bool = True) -> None:
        """Delete a container (and its anonymous volumes with `volumes`)."""
        params = {"force": str(force).lower(), "v": str(volumes).lower()}
        await self._request("DELETE", f"/containers/{_quote(container)}", params=params)

    async def container_inspect(self, container: str) -> ContainerInfo:
        return await self._get(f"/containers/{_quote(container)}/json", ContainerInfo)

    async def containers_list(
        self, *, all: bool = True, filters: Mapping[str, Sequence[str] | str] | None = None
    ) -> list[ContainerSummary]:
        params = {"all": str(all).lower(), **_filters(filters)}
        return await self._get("/containers/json", list[ContainerSummary], params=params)

    async def container_wait(self, container: str, *, condition: str = "not-running") -> WaitResult:
        """Block until the container reaches `condition`; returns its exit code (no timeout)."""
        raw = await self._request(
            "POST",
            f"/containers/{_quote(container)}/wait",
            params={"condition": condition},
            http_timeout=_STREAM_TIMEOUT,
        )
        return _decode(WaitResult, raw)

    # ----------------------------------------------------------------- networks

    async def network_inspect(self, network: str) -> NetworkInfo:
        return await self._get(f"/networks/{_quote(network)}", NetworkInfo)

    async def networks_list(self, *, filters: Mapping[str, Sequence[str] | str] | None = None) -> list[NetworkInfo]:
        return await self._get("/networks", list[NetworkInfo], params=_filters(filters))

    async def network_create(
        self, name: str, *, driver: str = "bridge", labels: Mapping[str, str] | None = None
    ) -> str:
        """Create a network; returns its id. Prefer `ensure_network`."""
        body = {"Name": name, "Driver": driver, "CheckDuplicate": True, "Labels": dict(labels or {})}
        raw = await self._request("POST", "/networks/create", body=body)
        return _decode(_NetworkCreatedReply, raw).id

    async def network_connect(self, network: str, container: str, *, aliases: Sequence[str] | None = None) -> None:
        body: dict[str, Any] = {"Container": container}
        if aliases:
            body["EndpointConfig"] = {"Aliases": list(aliases)}
        await self._request("POST", f"/networks/{_quote(network)}/connect", body=body)

    async def network_remove(self, network: str) -> None:
        await self._request("DELETE", f"/networks/{_quote(network)}")

    async def find_network(self, name: str) -> NetworkInfo | None:
        """The network called exactly `name` (the oldest one if the engine holds duplicates)."""
        # The engine's `name` filter matches substrings; keep exact matches only.
        found = [net for net in await self.networks_list(filters={"name": [name]}) if net.name == name]
        if not found:
            return None
        return min(found, key=lambda net: (net.created, net.id))

    async def ensure_network(
        self, name: str, *, driver: str = "bridge", labels: Mapping[str, str] | None = None
    ) -> NetworkInfo:
        """Return the network called exactly `name`, creating it if absent.

        Docker's API 1.41 lets several networks share one name, so concurrent
        creations would make duplicates that later break container creation:
        callers in this process are serialised per name, and an existing network
        (looked up by exact name) is always reused.
        """
        lock = self._network_locks.setdefault(name, trio.Lock())
        async with lock:
            existing = await self.find_network(name)
            if existing is not None:
                return existing
            try:
                network_id = await self.network_create(name, driver=driver, labels=labels)
            except EngineConflict:
                # Created by someone else between our lookup and our create.
                existing = await self.find_network(name)
                if existing is None:
                    raise
                return existing
            return NetworkInfo(id=network_id, name=name, driver=driver, labels=dict(labels or {}))

    # ----------------------------------------------------------------- volumes

    async def volume_create(
        self,
        name: str,
        *,
        driver: str = "local",
        labels: Mapping[str, str] | None = None,
        driver_opts: Mapping[str, str] | None = None,
    ) -> VolumeInfo:
        """Create a named volume; an existing one with that name is returned as is."""
        body = {"Name": name, "Driver": driver, "Labels": dict(labels or {}), "DriverOpts": dict(driver_opts or {})}
        return _decode(VolumeInfo, await self._request("POST", "/volumes/create", body=body))

    async def volume_inspect(self, name: str) -> VolumeInfo:
        return await self._get(f"/volumes/{_quote(name)}", VolumeInfo)

    async def volume_remove(self, name: str, *, force: bool = False) -> None:
        await self._request("DELETE", f"/volumes/{_quote(name)}", params={"force": str(force).lower()})

    # ----------------------------------------------------------------- exec

    async def exec_create(
        self,
        container: str,
        cmd: Sequence[str],
        *,
        env: Sequence[str] | None = None,
        user: str | None = None,
        workdir: str | None = None,
    ) -> str:
        """Prepare a command in a running container; returns the exec id."""
        body: dict[str, Any] = {"Cmd": list(cmd), "AttachStdout": True, "AttachStderr": True, "Tty": False}
        if env:
            body["Env"] = list(env)
        if user:
            body["User"] = user
        if workdir:
            body["WorkingDir"] = workdir
        raw = await self._request("POST", f"/containers/{_quote(container)}/exec", body=body)
        return _decode(_ExecCreatedReply, raw).id

    async def exec_start(self, exec_id: str, *, max_output: int = _MAX_EXEC_OUTPUT) -> ExecOutput:
        """Run a prepared exec and collect its demultiplexed output until it ends.

        There is no timeout: run it under the caller's `move_on_after`. Cancelling
        closes the connection; the process keeps running in the container.
        """
        stdout, stderr, combined = bytearray(), bytearray(), bytearray()
        truncated = False
        buffer = bytearray()
        body = {"Detach": False, "Tty": False}
        async with self._stream("POST", f"/exec/{_quote(exec_id)}/start", body=body) as chunks:
            async for chunk in chunks:
                buffer += chunk
                for stream_id, payload in demux_frames(buffer):
                    if len(combined) >= max_output:
                        truncated = True
                        continue
                    payload = payload[: max_output - len(combined)]
                    (stderr if stream_id == 2 else stdout).extend(payload)
                    combined.extend(payload)
        return ExecOutput(bytes(stdout), bytes(stderr), bytes(combined), truncated)

    async def exec_inspect(self, exec_id: str) -> ExecInfo:
        return await self._get(f"/exec/{_quote(exec_id)}/json", ExecInfo)

    # ----------------------------------------------------------------- logs

    def _log_params(self, *, tail: int | None, since: float | None, follow: bool, timestamps: bool) -> dict[str, str]:
        params = {
            "stdout": "true",
            "stderr": "true",
            "timestamps": "true" if timestamps else "false",
            "follow": "true" if follow else "false",
            "tail": "all" if tail is None else str(max(0, tail)),
        }
        if since is not None:
            params["since"] = f"{since:.9f}"
        return params

    @contextlib.asynccontextmanager
    async def open_logs(
        self,
        container: str,
        *,
        tail: int | None = None,
        since: float | None = None,
        follow: bool = False,
        timestamps: bool = True,
        multiplexed: bool = True,
    ) -> AsyncIterator[AsyncIterator[LogEntry]]:
        """Stream a container's stdout/stderr as `LogEntry` lines.

        `since` is a Unix timestamp (float). With `follow` the iterator ends when
        the container stops (or the engine closes the stream). `multiplexed`
        must be False for containers created with a TTY (their stream is raw).
        """
        params = self._log_params(tail=tail, since=since, follow=follow, timestamps=timestamps)
        async with (
            self._stream("GET", f"/containers/{_quote(container)}/logs", params=params) as chunks,
            contextlib.aclosing(self._log_entries(chunks, multiplexed=multiplexed, timestamps=timestamps)) as entries,
        ):
            yield entries

    async def _log_entries(
        self, chunks: AsyncIterator[bytes], *, multiplexed: bool, timestamps: bool
    ) -> AsyncGenerator[LogEntry, None]:
        buffer = bytearray()
        pending: dict[int, bytearray] = {}
        async for chunk in chunks:
            buffer += chunk
            frames = demux_frames(buffer) if multiplexed else iter([(1, self._take_all(buffer))])
            for stream_id, payload in frames:
                partial = pending.setdefault(stream_id, bytearray())
                partial += payload
                *lines, rest = bytes(partial).split(b"\n")
                pending[stream_id] = bytearray(rest)
                for line in lines:
                    yield self._log_entry(stream_id, line, timestamps)
        for stream_id, unterminated in pending.items():
            if unterminated:
                yield self._log_entry(stream_id, bytes(unterminated), timestamps)

    @staticmethod
    def _take_all(buffer: bytearray) -> bytes:
        data = bytes(buffer)
        buffer.clear()
        return data

    @staticmethod
    def _log_entry(stream_id: int, line: bytes, timestamps: bool) -> LogEntry:
        stamp, text = split_log_timestamp(line) if timestamps else (None, line)
        return LogEntry(
            stream=_STREAM_NAMES.get(stream_id, "stdout"),
            message=text.rstrip(b"\r").decode(errors="replace"),
            timestamp=stamp,
        )

    async def logs(
        self,
        container: str,
        *,
        tail: int | None = None,
        since: float | None = None,
        timestamps: bool = True,
        multiplexed: bool = True,
    ) -> list[LogEntry]:
        """The container's log lines so far (not followed)."""
        async with self.open_logs(
            container, tail=tail, since=since, timestamps=timestamps, multiplexed=multiplexed
        ) as entries:
            return [entry async for entry in entries]

    # ----------------------------------------------------------------- stats

    async def stats(self, container: str, *, one_shot: bool = False) -> ContainerStats:
        """One stats sample (`stream=false`).

        By default the engine takes two samples about a second apart so CPU % is
        meaningful (as `docker stats --no-stream`); `one_shot=True` answers at
        once, with CPU % 0 because there is no previous sample.
        """
        params = {"stream": "false"}
        if one_shot:
            params["one-shot"] = "true"
        raw = await self._get(f"/containers/{_quote(container)}/stats", _RawStats, params=params)
        return _reduce_stats(raw)

    # ----------------------------------------------------------------- events

    @contextlib.asynccontextmanager
    async def open_events(
        self,
        *,
        filters: Mapping[str, Sequence[str] | str] | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> AsyncIterator[AsyncIterator[EngineEvent]]:
        """Subscribe to `GET /events`; yields decoded events as they arrive.

        Entering returns once the engine accepted the subscription (headers
        received), so events after that point are not missed. `since` replays
        past events (`<unix seconds>.<nanoseconds>`), which is how a reconnecting
        watcher catches up.
        """
        params: dict[str, str] = dict(_filters(filters))
        if since:
            params["since"] = since
        if until:
            params["until"] = until
        async with (
            self._stream("GET", "/events", params=params) as chunks,
            contextlib.aclosing(self._events(chunks)) as events,
        ):
            yield events

    @staticmethod
    async def _events(chunks: AsyncIterator[bytes]) -> AsyncGenerator[EngineEvent, None]:
        buffer = b""
        async for chunk in chunks:
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if line.strip():
                    try:
                        yield _event_decoder.decode(line)
                    except msgspec.DecodeError:
                        continue
