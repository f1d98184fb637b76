"""Server-Sent Events responses whose producer runs in a nursery owned by the body.

Quart sends a body with `async with body: async for chunk in body`, in the request
task; the body's `__aenter__` opens a nursery there and starts the producer, which
feeds a bounded channel. A client that goes away cancels the request task, which
cancels the producer. No yield ever happens inside a cancel scope of a generator.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

import msgspec
import trio
from quart import Response
from quart.wrappers.response import ResponseBody

__all__ = ["KEEPALIVE_INTERVAL", "STREAM_OPEN", "Producer", "sse_event", "sse_response"]

log = logging.getLogger("ring_actors.http.sse")

KEEPALIVE_INTERVAL = 15.0
BUFFER = 256
STREAM_OPEN = b": stream open\n\n"
"""A comment a producer sends once it is ready (e.g. subscribed): from then on, nothing is missed."""

Producer = Callable[[trio.MemorySendChannel[bytes]], Awaitable[None]]

_ENCODER = msgspec.json.Encoder()


def sse_event(data: Any, *, event_id: str | None = None, event: str | None = None) -> bytes:
    """One SSE event; `data` is JSON-encoded unless already bytes."""
    payload = data if isinstance(data, bytes) else _ENCODER.encode(data)
    head = b""
    if event:
        head += b"event: " + event.encode() + b"\n"
    if event_id:
        head += b"id: " + event_id.encode() + b"\n"
    return head + b"data: " + payload.replace(b"\n", b"\ndata: ") + b"\n\n"


class _SseBody(ResponseBody):
    def __init__(self, producer: Producer, *, keepalive: float) -> None:
        self._producer = producer
        self._keepalive = keepalive
        self._stack = AsyncExitStack()
        self._receive: trio.MemoryReceiveChannel[bytes] | None = None
        self._nursery: trio.Nursery | None = None

    async def __aenter__(self) -> _SseBody:
        send, receive = trio.open_memory_channel[bytes](BUFFER)
        self._receive = receive
        self._nursery = await self._stack.enter_async_context(trio.open_nursery())
        self._nursery.start_soon(self._produce, send)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel(reason="event stream closed")
        await self._stack.__aexit__(exc_type, exc, tb)

    async def _produce(self, send: trio.MemorySendChannel[bytes]) -> None:
        async with send:
            try:
                await self._producer(send)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            except Exception as exc:
                log.exception("event stream producer failed")
                with trio.move_on_after(1):
                    await send.send(sse_event({"type": "error", "message": str(exc)}, event="error"))

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        assert self._receive is not None
        while True:
            chunk = None
            ended = False
            with trio.move_on_after(self._keepalive):
                try:
                    chunk = await self._receive.receive()
                except trio.EndOfChannel:
                    ended = True
            if ended:
                return
            yield chunk if chunk is not None else b": keep-alive\n\n"


def sse_response(
    producer: Producer, *, keepalive: float = KEEPALIVE_INTERVAL, headers: dict[str, str] | None = None
) -> Response:
    """A `text/event-stream` response driven by `producer(send_channel)`.

    The stream ends when the producer returns; it has no overall timeout.
    """
    response = Response(_SseBody(producer, keepalive=keepalive), status=200, content_type="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    response.timeout = None  # Quart's RESPONSE_TIMEOUT would cut the stream
    return response
