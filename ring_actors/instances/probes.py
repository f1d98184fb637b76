"""Health-check probes (spec: lifecycle.md §6): one tcp, http or command check, run once.

The instance actor owns the cadence (one task per check, each on its own
`interval`); this module only knows how to run a single probe against one
instance and how to word its result. Every probe is wrapped in its `timeout`:
past it the result is `timeout` with `Health check timed out`.

Where ring-actors departs from Ring (lifecycle.md §13):
- http probes never follow redirects: a 3xx is a failure, as Ring documents;
- only the URL's *host* is replaced by the instance address when it is
  `localhost` or `127.0.0.1` (Ring replaces every occurrence of the text);
- host-network instances have no address of their own and are probed on
  127.0.0.1 instead of failing forever.

tcp and http probes go through a `ProbeNetwork`: the host's network for real
runtimes, or whatever a runtime provides as `probe_network` (the simulated
runtime does, so that unit tests can make instances healthy or not).
"""

from __future__ import annotations

import logging
import shlex
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

import httpx
import trio

from ring_actors.runtimes.base import InstanceHandle, Runtime
from ring_actors.schemas.manifest import CommandCheck, HealthCheck, HttpCheck, TcpCheck
from ring_actors.schemas.quantities import parse_duration
from ring_actors.store.db import utcnow

__all__ = [
    "DEFAULT_INTERVAL",
    "HOST_NETWORK_ADDRESS",
    "HostNetwork",
    "ProbeNetwork",
    "ProbeOutcome",
    "check_interval",
    "open_probe_network",
    "rewrite_url",
    "run_check",
]

log = logging.getLogger(__name__)

SUCCESS = "success"
FAILED = "failed"
TIMEOUT = "timeout"

HOST_NETWORK_ADDRESS = "127.0.0.1"
"""Where a host-network instance (no address of its own) is probed."""
DEFAULT_INTERVAL = 10.0
"""Used when a check's `interval` cannot be parsed (validation normally rejects that earlier)."""
_LOCAL_HOSTS = ("localhost", "127.0.0.1")


@dataclass(frozen=True)
class ProbeOutcome:
    """One probe's result, as stored in the history (`status`: success | failed | timeout)."""

    status: str
    message: str
    started_at: str  # RFC 3339, wall clock
    finished_at: str


class ProbeNetwork(Protocol):
    """How tcp and http probes reach an instance."""

    async def tcp_connect(self, host: str, port: int) -> None:
        """Open and close one TCP connection; raise OSError when it cannot be established."""

    async def http_get(self, url: str, timeout: float) -> int:
        """GET `url` without following redirects; return the status code. Raise on transport errors."""


class HostNetwork:
    """Probes over the host's own network stack (every real runtime).

    One HTTP client per probe task, without keep-alive: each probe opens a fresh
    connection, like a client would, so an instance that stopped accepting
    connections is noticed. Proxies from the environment are ignored.
    """

    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None

    async def tcp_connect(self, host: str, port: int) -> None:
        stream = await trio.open_tcp_stream(host, port)
        await stream.aclose()

    async def http_get(self, url: str, timeout: float) -> int:
        if self._client is None:
            self._client = httpx.AsyncClient(
                follow_redirects=False,
                trust_env=False,
                limits=httpx.Limits(max_keepalive_connections=0),
            )
        response = await self._client.get(url, timeout=timeout)
        return response.status_code

    async def aclose(self) -> None:
        if self._client is not None:
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                await self._client.aclose()
            self._client = None


@asynccontextmanager
async def open_probe_network(runtime: Runtime) -> AsyncIterator[ProbeNetwork]:
    """The network a probe task uses for `runtime`'s instances, closed on exit."""
    provided = getattr(runtime, "probe_network", None)
    if provided is not None:
        yield provided
        return
    network = HostNetwork()
    try:
        yield network
    finally:
        await network.aclose()


def check_interval(check: HealthCheck) -> float:
    """The check's own cadence in seconds (DEFAULT_INTERVAL when unparseable or zero)."""
    try:
        interval = parse_duration(check.interval)
    except ValueError:
        log.warning("health check interval %r is invalid; probing every %gs", check.interval, DEFAULT_INTERVAL)
        return DEFAULT_INTERVAL
    return interval if interval > 0 else DEFAULT_INTERVAL


def rewrite_url(url: str, address: str) -> str:
    """Point `url` at the instance: its host is replaced only when it is `localhost` or `127.0.0.1`.

    Only the host is touched (a path or query containing the text `localhost` is
    left alone); the scheme, credentials and port are kept.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.hostname is None or parts.hostname.lower() not in _LOCAL_HOSTS:
        return url
    host = f"[{address}]" if ":" in address else address
    netloc = host
    if parts.port is not None:
        netloc = f"{host}:{parts.port}"
    userinfo, at, _ = parts.netloc.rpartition("@")
    if at:
        netloc = f"{userinfo}@{netloc}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def resolve_address(runtime: Runtime, handle: InstanceHandle, host_network: bool) -> str | None:
    """The address probes target: the runtime's, or 127.0.0.1 for host-network instances."""
    if host_network:
        return HOST_NETWORK_ADDRESS
    if handle.address:
        return handle.address
    address = await runtime.address(handle)
    if address:
        handle.address = address
    return address


async def run_check(
    check: HealthCheck,
    *,
    runtime: Runtime,
    handle: InstanceHandle,
    network: ProbeNetwork,
    host_network: bool = False,
) -> ProbeOutcome:
    """Run `check` once against the instance behind `handle`, within the check's `timeout`.

    Never raises for a probe failure: every outcome (including an unreachable
    engine or an unknown address) is a `failed` result with a message.
    Cancellation from outside propagates as usual.
    """
    started = utcnow()
    try:
        timeout = parse_duration(check.timeout)
    except ValueError:
        return ProbeOutcome(FAILED, "Invalid timeout duration", started, utcnow())
    status, message = TIMEOUT, "Health check timed out"
    with trio.move_on_after(timeout):
        try:
            status, message = await _probe(check, runtime, handle, network, host_network, timeout)
        except Exception as exc:  # noqa: BLE001 - engine errors, instance gone: a failed probe, not a crash
            status, message = FAILED, f"{_kind(check)} failed: {_describe(exc)}"
    return ProbeOutcome(status, message, started, utcnow())


def _kind(check: HealthCheck) -> str:
    if isinstance(check, TcpCheck):
        return "TCP connection"
    if isinstance(check, HttpCheck):
        return "HTTP check"
    return "Command"


async def _probe(
    check: HealthCheck,
    runtime: Runtime,
    handle: InstanceHandle,
    network: ProbeNetwork,
    host_network: bool,
    timeout: float,
) -> tuple[str, str]:
    if isinstance(check, CommandCheck):
        return await _command(check, runtime, handle, timeout)
    address = await resolve_address(runtime, handle, host_network)
    if not address:
        return FAILED, f"Could not resolve instance address for {handle.id}"
    if isinstance(check, TcpCheck):
        try:
            await network.tcp_connect(address, check.port)
        except OSError as exc:
            return FAILED, f"TCP connection failed: {_describe(exc)}"
        return SUCCESS, f"TCP connection to {address}:{check.port} successful"
    url = rewrite_url(check.url, address)
    try:
        code = await network.http_get(url, timeout)
    except (OSError, httpx.HTTPError) as exc:
        return FAILED, f"HTTP check failed for {url}: {_describe(exc)}"
    if 200 <= code < 300:
        return SUCCESS, f"HTTP check successful ({code}) for {url}"
    return FAILED, f"HTTP check failed with status {code} for {url}"


async def _command(check: CommandCheck, runtime: Runtime, handle: InstanceHandle, timeout: float) -> tuple[str, str]:
    try:
        argv = shlex.split(check.command)
    except ValueError as exc:
        return FAILED, f"Invalid command: {exc}"
    if not argv:
        return FAILED, "Invalid command: empty"
    result = await runtime.exec(handle, argv, timeout)
    if result.timed_out:
        return TIMEOUT, "Health check timed out"
    return (SUCCESS if result.exit_code == 0 else FAILED), f"Command exited {result.exit_code}"
