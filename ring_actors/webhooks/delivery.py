"""The delivery worker (api.md §14.3): signed POSTs, retries, dead letters.

One loop claims due queue rows (at most `MAX_IN_FLIGHT` at a time, never one
already in flight) and starts one task per row in its own nursery; at most
`concurrency` requests are on the wire at once. A delivery is one (event, webhook)
row, so a failing receiver retries alone.

    pending ──2xx──► delivered
       │ any other answer, transport error, timeout, blocked address
       ├──attempts < max──► pending, next attempt after retry_delays[attempts-1]
       └──attempts = max──► dead (never retried)

Restart-safety: the queue is the only state. A delivery cancelled mid-flight by a
shutdown keeps its row `pending` with its attempt count unchanged, and is sent again
after the next start (at-least-once; `X-Ring-Delivery` lets receivers deduplicate).

Beyond Ring: DNS names are resolved before each attempt and refused when they
resolve to a loopback, link-local or unspecified address (Ring checks literal
IPs only, at creation); the response body is never read.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import httpx
import trio

from ring_actors import __version__
from ring_actors.store.webhooks import DueDelivery, WebhookRepo, rfc3339
from ring_actors.webhooks.kinds import blocked_address
from ring_actors.webhooks.signing import signature_header

__all__ = [
    "DEFAULT_RETRY_DELAYS",
    "MAX_ATTEMPTS",
    "Dispatcher",
    "Resolver",
    "retry_delay",
]

log = logging.getLogger(__name__)

DEFAULT_RETRY_DELAYS: tuple[float, ...] = (60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 3600.0)
"""Seconds before attempt 2..8: `2^(attempts-1)` minutes capped at 60 (api.md §14.3)."""
MAX_ATTEMPTS = 8
REQUEST_TIMEOUT = 10.0
CONCURRENCY = 8
MAX_IN_FLIGHT = 50
"""Rows claimed at once (api.md §14.3: up to 50 due events per pass)."""
POLL_INTERVAL = 10.0
RETENTION = timedelta(days=7)
"""Delivered and dead rows are kept this long for `GET /webhooks/{id}/events`."""
PRUNE_EVERY = 3600.0

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[Address]]]


def retry_delay(attempts: int, delays: Sequence[float] = DEFAULT_RETRY_DELAYS) -> float:
    """Seconds to wait after the `attempts`-th failed attempt (the last delay repeats)."""
    return delays[min(max(attempts, 1), len(delays)) - 1]


async def resolve(host: str, port: int) -> list[Address]:
    """Every address `host` resolves to (trio's resolver, off the loop)."""
    infos = await trio.socket.getaddrinfo(host, port, type=trio.socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


class Dispatcher:
    """Sends due deliveries until cancelled; `nudge()` makes it look at the queue now."""

    def __init__(
        self,
        webhooks: WebhookRepo,
        *,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        max_attempts: int = MAX_ATTEMPTS,
        concurrency: int = CONCURRENCY,
        poll_interval: float = POLL_INTERVAL,
        request_timeout: float = REQUEST_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver | None = resolve,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        """`transport` replaces the network (tests); `resolver=None` skips the delivery-time DNS check."""
        if not retry_delays or max_attempts < 1:
            raise ValueError("retry_delays must be non-empty and max_attempts at least 1")
        self.webhooks = webhooks
        self.retry_delays = tuple(retry_delays)
        self.max_attempts = max_attempts
        self.poll_interval = poll_interval
        self.request_timeout = request_timeout
        self._transport = transport
        self._resolver = resolver
        self._clock = clock
        self._limiter = trio.CapacityLimiter(concurrency)
        self._in_flight: set[str] = set()
        self._wake = trio.Event()
        self._last_prune = -math.inf

    def nudge(self) -> None:
        """Something was queued or finished: look at the queue again without waiting."""
        self._wake.set()

    def statistics(self) -> dict[str, int]:
        return {"in_flight": len(self._in_flight), "sending": int(self._limiter.borrowed_tokens)}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Deliver until cancelled. Cancellation abandons in-flight requests; their rows stay pending."""
        timeout = httpx.Timeout(self.request_timeout)
        async with (
            httpx.AsyncClient(transport=self._transport, timeout=timeout, follow_redirects=False) as client,
            trio.open_nursery() as nursery,
        ):
            task_status.started()
            while True:
                self._wake = trio.Event()  # a nudge from now on is not lost
                try:
                    wait = await self._pass(client, nursery)
                except Exception:
                    log.exception("webhooks: delivery pass failed; retrying in %gs", self.poll_interval)
                    wait = self.poll_interval
                with trio.move_on_after(wait):
                    await self._wake.wait()

    async def _pass(self, client: httpx.AsyncClient, nursery: trio.Nursery) -> float:
        """Start the due deliveries there is room for; return how long to sleep."""
        now = self._clock()
        if trio.current_time() - self._last_prune >= PRUNE_EVERY:
            self._last_prune = trio.current_time()
            removed = await self.webhooks.prune(rfc3339(now - RETENTION))
            if removed:
                log.info("webhooks: pruned %d old queue entries", removed)
        room = MAX_IN_FLIGHT - len(self._in_flight)
        if room <= 0:
            return self.poll_interval  # a finishing delivery nudges
        for due in await self.webhooks.due(rfc3339(now), limit=room, exclude=self._in_flight):
            self._in_flight.add(due.item.id)
            nursery.start_soon(self._deliver, client, due)
        if len(self._in_flight) >= MAX_IN_FLIGHT:
            return self.poll_interval
        earliest = await self.webhooks.next_due(exclude=self._in_flight)
        if earliest is None:
            return self.poll_interval
        until = (datetime.fromisoformat(earliest.replace("Z", "+00:00")) - self._clock()).total_seconds()
        return min(max(until, 0.0), self.poll_interval)

    async def _deliver(self, client: httpx.AsyncClient, due: DueDelivery) -> None:
        item = due.item
        try:
            async with self._limiter:
                try:
                    error = await self._send(client, due)
                except Exception as exc:  # noqa: BLE001 - any failure is a failed attempt, never a stuck row
                    error = f"request failed: {type(exc).__name__}: {exc}"
            attempts = item.attempts + 1
            if error is None:
                await self.webhooks.mark_delivered(item.id, attempts=attempts)
                return
            retry_at = None
            if attempts < self.max_attempts:
                retry_at = rfc3339(self._clock() + timedelta(seconds=retry_delay(attempts, self.retry_delays)))
            await self.webhooks.mark_failed(item.id, attempts=attempts, error=error, retry_at=retry_at)
            log.log(
                logging.WARNING if retry_at else logging.ERROR,
                "webhook %s: %s delivery %s attempt %d failed (%s); %s",
                item.webhook_id[:8], item.kind, item.id[:8], attempts, error,
                f"retrying at {retry_at}" if retry_at else "dead letter",
            )
        except Exception:
            log.exception("webhooks: cannot record delivery %s; it stays pending", item.id)
        finally:
            self._in_flight.discard(item.id)
            self.nudge()

    async def _send(self, client: httpx.AsyncClient, due: DueDelivery) -> str | None:
        """One POST; None on 2xx, else the error to record."""
        refused = await self._refused(due.url)
        if refused is not None:
            return refused
        body = due.item.payload.encode()
        headers = {
            "content-type": "application/json",
            "user-agent": f"ring/{__version__}",
            "x-ring-event": due.item.kind,
            "x-ring-signature": signature_header(due.secret, body),
            "x-ring-delivery": due.item.event_id,
            "x-ring-attempt": str(due.item.attempts + 1),
        }
        with trio.move_on_after(self.request_timeout) as scope:
            try:
                async with client.stream("POST", due.url, content=body, headers=headers) as response:
                    if response.is_success:
                        return None
                    return f"subscriber returned {response.status_code} {response.reason_phrase}".rstrip()
            except httpx.TimeoutException:
                return f"subscriber did not answer within {self.request_timeout:g}s"
            except httpx.HTTPError as exc:
                return f"request failed: {type(exc).__name__}: {exc}".rstrip(": ")
        assert scope.cancelled_caught
        return f"subscriber did not answer within {self.request_timeout:g}s"

    async def _refused(self, url: str) -> str | None:
        """Why `url` may not be called now (a name resolving to a blocked address), if so."""
        if self._resolver is None:
            return None
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
            return None  # a literal address was checked at creation
        except ValueError:
            pass
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            with trio.fail_after(self.request_timeout):
                addresses = await self._resolver(host, port)
        except (OSError, trio.TooSlowError) as exc:
            return f"cannot resolve {host}: {exc or 'timed out'}"
        for address in addresses:
            if blocked_address(address):
                return f"{host} resolves to {address}, which is not allowed (loopback, link-local or unspecified)"
        return None
