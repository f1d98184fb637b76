"""Live fan-out of deployment events and status changes to SSE subscribers.

Publishing never blocks the publisher: each subscriber has a bounded buffer and a
subscriber that falls behind loses the oldest messages and is told how many it missed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import trio


@dataclass
class BusMessage:
    kind: str  # "event" | "status"
    deployment_id: str
    namespace: str
    payload: dict[str, Any]


@dataclass(eq=False)
class Subscription:
    accept: Callable[[BusMessage], bool]
    capacity: int = 1000
    buffer: deque[BusMessage] = field(default_factory=deque)
    missed: int = 0
    wakeup: trio.Event = field(default_factory=trio.Event)

    def offer(self, message: BusMessage) -> None:
        if not self.accept(message):
            return
        if len(self.buffer) >= self.capacity:
            self.buffer.popleft()
            self.missed += 1
        self.buffer.append(message)
        self.wakeup.set()

    async def __aiter__(self) -> AsyncIterator[BusMessage]:
        while True:
            while self.buffer:
                yield self.buffer.popleft()
            self.wakeup = trio.Event()
            await self.wakeup.wait()


class EventBus:
    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()

    def publish(self, message: BusMessage) -> None:
        for subscriber in list(self._subscribers):
            subscriber.offer(message)

    @asynccontextmanager
    async def subscribe(self, accept: Callable[[BusMessage], bool]) -> AsyncIterator[Subscription]:
        subscription = Subscription(accept)
        self._subscribers.add(subscription)
        try:
            yield subscription
        finally:
            self._subscribers.discard(subscription)
