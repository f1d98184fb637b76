"""Records deployment events: one call stores the event and publishes it live.

Storing is write-behind (`EventRepo.add`): the event is committed within
milliseconds, and any read made after `event()` returns sees it, so a subscriber
that hears an event on the bus finds it in the backlog it reads next.
"""

from __future__ import annotations

import logging

import msgspec

from ring_actors.bus import BusMessage, EventBus
from ring_actors.store.events import Event, EventRepo, Level

log = logging.getLogger("ring_actors.events")


class Recorder:
    def __init__(self, events: EventRepo, bus: EventBus) -> None:
        self.events = events
        self.bus = bus

    async def event(
        self,
        deployment_id: str,
        namespace: str,
        level: Level,
        reason: str,
        message: str,
        component: str = "scheduler",
    ) -> Event:
        event = Event.new(deployment_id, level, reason, message, component)
        await self.events.add(event)
        log.log(
            {"info": logging.INFO, "warning": logging.WARNING}.get(level, logging.ERROR),
            "%s %s: %s",
            deployment_id[:8],
            reason,
            message,
        )
        self.bus.publish(BusMessage("event", deployment_id, namespace, msgspec.to_builtins(event)))
        return event

    def status_changed(self, deployment_id: str, namespace: str, old: str, new: str) -> None:
        self.bus.publish(
            BusMessage("status", deployment_id, namespace, {"deployment_id": deployment_id, "from": old, "to": new})
        )
