"""The enqueuer: recorder messages -> durable queue rows, before any delivery is tried.

`WebhookOutbox.record(message)` is the whole hand-off: it turns one bus message
into a webhook event (`payloads.draft`), finds the active webhooks whose kind and
namespace filters match, fills in the deployment's name/kind/counters and writes
one queue row per webhook in one transaction; then it nudges the dispatcher. With
no matching webhook nothing is written (Ring appends every event to its queue,
subscribers or not, and keeps it forever).

`run(bus)` feeds `record` from an `EventBus` subscription. The bus drops the oldest
messages of a subscriber that falls behind; the outbox logs how many were missed.
A recorder that awaits `hand_off` directly instead loses nothing (see the package doc).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable

import trio

from ring_actors.bus import BusMessage, EventBus
from ring_actors.store.deployments import DeploymentRepo
from ring_actors.store.webhooks import WebhookRepo
from ring_actors.webhooks.kinds import filter_matches
from ring_actors.webhooks.payloads import DeploymentInfo, draft, render

__all__ = ["BUS_CAPACITY", "WebhookOutbox"]

log = logging.getLogger(__name__)

BUS_CAPACITY = 10_000
"""Messages the bus subscription buffers before it drops the oldest."""

_KNOWN_DEPLOYMENTS = 4096
"""Deployments whose name/kind are remembered, so an event after the purge still names them."""


class WebhookOutbox:
    """Persists webhook events for matching, non-revoked webhooks."""

    def __init__(
        self,
        webhooks: WebhookRepo,
        deployments: DeploymentRepo,
        *,
        on_enqueued: Callable[[], None] | None = None,
    ) -> None:
        self.webhooks = webhooks
        self.deployments = deployments
        self.on_enqueued = on_enqueued
        self._known: OrderedDict[str, DeploymentInfo] = OrderedDict()
        self.missed = 0

    async def record(self, message: BusMessage) -> int:
        """Queue `message` for every matching webhook; returns how many deliveries were queued."""
        event = draft(message)
        if event is None:
            return 0
        hooks = [
            hook
            for hook in await self.webhooks.list(active_only=True)
            if filter_matches(hook.events, event.kind)
            and (not hook.namespaces or event.namespace in hook.namespaces)
        ]
        if not hooks:
            return 0
        body = render(event, await self._info(event.deployment_id))
        queued = await self.webhooks.enqueue(
            kind=event.kind,
            payload=body.decode(),
            webhook_ids=[hook.id for hook in hooks],
            deployment_id=event.deployment_id,
            namespace=event.namespace,
        )
        if queued and self.on_enqueued is not None:
            self.on_enqueued()
        return len(queued)

    async def hand_off(self, message: BusMessage) -> None:
        """`record`, for a caller that must not fail because of webhooks (the recorder): errors are logged."""
        try:
            await self.record(message)
        except Exception:
            log.exception("webhooks: cannot queue %s for deployment %s", message.kind, message.deployment_id)

    async def _info(self, deployment_id: str) -> DeploymentInfo | None:
        row = await self.deployments.get(deployment_id)
        if row is None:
            return self._known.get(deployment_id)
        info = DeploymentInfo(
            name=row.name,
            kind=row.kind,
            replicas=row.replicas,
            restart_count=row.restart_count,
            parent_id=row.parent_id if isinstance(row.parent_id, str) else None,
        )
        self._known[deployment_id] = info
        self._known.move_to_end(deployment_id)
        while len(self._known) > _KNOWN_DEPLOYMENTS:
            self._known.popitem(last=False)
        return info

    async def run(self, bus: EventBus, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Record every bus message until cancelled; a failing message is logged and skipped."""
        async with bus.subscribe(lambda message: message.kind in ("event", "status")) as subscription:
            subscription.capacity = BUS_CAPACITY
            task_status.started()
            async for message in subscription:
                if subscription.missed > self.missed:
                    log.warning(
                        "webhooks: %d bus messages dropped under load; their webhook events are lost",
                        subscription.missed - self.missed,
                    )
                    self.missed = subscription.missed
                await self.hand_off(message)
