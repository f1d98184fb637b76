"""`run_webhooks(services)`: the enqueuer and the delivery worker, for the server's life."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

import httpx
import trio

from ring_actors.services import Services
from ring_actors.store.webhooks import WebhookRepo
from ring_actors.webhooks.delivery import DEFAULT_RETRY_DELAYS, Dispatcher
from ring_actors.webhooks.outbox import WebhookOutbox

__all__ = ["RETRY_DELAYS_ENV", "retry_delays_from_env", "run_webhooks"]

log = logging.getLogger(__name__)

RETRY_DELAYS_ENV = "RING_WEBHOOK_RETRY_DELAYS"
"""Comma-separated seconds replacing the 1→60 min schedule (end-to-end tests); unset = the spec's."""


def retry_delays_from_env(env: Mapping[str, str] | None = None) -> tuple[float, ...]:
    """`RING_WEBHOOK_RETRY_DELAYS`, or the default schedule when unset or malformed (logged)."""
    raw = (os.environ if env is None else env).get(RETRY_DELAYS_ENV, "").strip()
    if not raw:
        return DEFAULT_RETRY_DELAYS
    try:
        delays = tuple(float(part) for part in raw.split(","))
    except ValueError:
        delays = ()
    if not delays or any(d < 0 for d in delays):
        log.warning("%s=%r is not a list of seconds; using the default schedule", RETRY_DELAYS_ENV, raw)
        return DEFAULT_RETRY_DELAYS
    return delays


async def run_webhooks(
    services: Services,
    *,
    outbox: WebhookOutbox | None = None,
    retry_delays: Sequence[float] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Queue webhook events and deliver them until cancelled.

    Without `outbox`, events come from a subscription to `services.bus`. A recorder
    that hands events to an outbox itself (durable, never dropped) passes that outbox
    here instead, and the bus is not read. Pending deliveries left by a previous run
    are picked up at once. Returns only by cancellation; an unexpected failure is
    logged and both tasks start over after the scheduler interval (the queue is intact).

    Args:
        retry_delays: seconds before attempts 2..8 (default: `RING_WEBHOOK_RETRY_DELAYS`,
            else 1, 2, 4 ... 60 minutes).
        transport: replaces the network (tests).
    """
    repo = WebhookRepo(services.db, services.secret_key)
    delays = retry_delays if retry_delays is not None else retry_delays_from_env()
    interval = services.settings.scheduler_interval
    started = False
    while True:
        dispatcher = Dispatcher(repo, retry_delays=delays, poll_interval=interval, transport=transport)
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(dispatcher.run)
                if outbox is None:
                    bus_outbox = WebhookOutbox(repo, services.deployments, on_enqueued=dispatcher.nudge)
                    await nursery.start(bus_outbox.run, services.bus)
                else:
                    outbox.on_enqueued = dispatcher.nudge
                if not started:
                    started = True
                    task_status.started()
        except Exception:
            # A bug must not take the server down with it; the queue is intact, start over.
            log.exception("webhooks: worker failed; restarting in %gs", interval)
        await trio.sleep(interval)
