"""The whole actor core: a mailbox and a one_for_one supervise wrapper.

An actor is a trio task with private state and a `Mailbox`; others only send it
messages. `supervise()` gives OTP-style restarts: a crashing child is logged and
restarted under an intensity limit instead of cancelling its siblings (which is
what a bare trio nursery would do). Cancellation is never treated as a crash.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import trio

log = logging.getLogger(__name__)
M = TypeVar("M")


class Mailbox(Generic[M]):
    """An unbounded inbox. `send_nowait` never blocks, so senders never deadlock on a slow actor."""

    def __init__(self) -> None:
        self._send, self._receive = trio.open_memory_channel[M](math.inf)
        self.closed = False

    def send_nowait(self, message: M) -> None:
        """Deliver a message; silently dropped once the actor has stopped."""
        if self.closed:
            return
        try:
            self._send.send_nowait(message)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self.closed = True

    async def receive(self) -> M:
        return await self._receive.receive()

    def receive_nowait(self) -> M:
        return self._receive.receive_nowait()

    def drain(self) -> list[M]:
        """Everything already queued, without waiting."""
        pending: list[M] = []
        while True:
            try:
                pending.append(self._receive.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                return pending

    def close(self) -> None:
        self.closed = True
        self._send.close()


class IntensityExceeded(Exception):
    """A child crashed more than `max_restarts` times within `period` seconds."""


async def supervise(
    name: str,
    child: Callable[[], Awaitable[None]],
    *,
    max_restarts: int = 5,
    period: float = 30.0,
    on_crash: Callable[[BaseException, int], Awaitable[None]] | None = None,
) -> None:
    """Run `child` until it returns; restart it when it raises (one_for_one).

    Gives up with `IntensityExceeded` after `max_restarts` crashes within `period`
    seconds, like OTP's restart intensity. `on_crash(exc, attempt)` may record an event.
    """
    crashes: deque[float] = deque()
    while True:
        try:
            await child()
            return
        except trio.Cancelled:
            raise
        except Exception as exc:
            now = trio.current_time()
            crashes.append(now)
            while crashes and now - crashes[0] > period:
                crashes.popleft()
            log.exception("actor %s crashed (%d in %.0fs)", name, len(crashes), period)
            if on_crash is not None:
                try:
                    await on_crash(exc, len(crashes))
                except Exception:
                    log.exception("on_crash hook of %s failed", name)
            if len(crashes) > max_restarts:
                raise IntensityExceeded(f"{name}: {len(crashes)} crashes in {period}s") from exc
            await trio.sleep(min(0.05 * 2 ** len(crashes), 2.0))
