"""Webhooks (api.md §14): event kinds and filters, the enqueuer, the delivery worker.

    recorder ──bus──► WebhookOutbox.record ──► `events` queue (SQLite) ──► Dispatcher ──► POST url
                        (draft, match,             one row per            (sign, retry,
                         render, persist)          (event, webhook)        dead letter)

The server runs `run_webhooks(services)` next to the API. Events are persisted
before any delivery is tried, so a restart resumes pending deliveries. The bus may
drop messages under overload; a recorder that awaits `WebhookOutbox.hand_off` itself
(and passes the outbox to `run_webhooks`) closes that gap.
"""

from ring_actors.webhooks.delivery import DEFAULT_RETRY_DELAYS, MAX_ATTEMPTS, Dispatcher, retry_delay
from ring_actors.webhooks.kinds import KINDS, filter_matches, validate_events, validate_url
from ring_actors.webhooks.outbox import WebhookOutbox
from ring_actors.webhooks.runner import run_webhooks
from ring_actors.webhooks.signing import generate_secret, sign, signature_header, verify

__all__ = [
    "DEFAULT_RETRY_DELAYS",
    "KINDS",
    "MAX_ATTEMPTS",
    "Dispatcher",
    "WebhookOutbox",
    "filter_matches",
    "generate_secret",
    "retry_delay",
    "run_webhooks",
    "sign",
    "signature_header",
    "validate_events",
    "validate_url",
    "verify",
]
