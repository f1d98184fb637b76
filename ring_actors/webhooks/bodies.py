"""Request and response bodies of `/webhooks` (api.md §14.1), shared by the API and OpenAPI.

`namespaces` is ring-actors' optional filter (empty = every namespace); Ring
clients never send it and may ignore it in answers.
"""

from __future__ import annotations

import msgspec

__all__ = ["QueueEntryView", "WebhookCreate", "WebhookCreated", "WebhookView"]

SECRET_MESSAGE = "Copy the secret now — it will not be shown again."


class _Body(msgspec.Struct, kw_only=True):
    pass


class WebhookCreate(_Body):
    url: str
    events: list[str] = []
    secret: str | None = None
    namespaces: list[str] = []


class WebhookCreated(_Body):
    id: str
    url: str
    events: list[str]
    namespaces: list[str]
    secret: str
    created_at: str
    message: str = SECRET_MESSAGE


class WebhookView(_Body):
    id: str
    url: str
    events: list[str]
    namespaces: list[str]
    created_at: str
    revoked_at: str | None


class QueueEntryView(_Body):
    """One queue entry of the webhook; `payload` is the exact JSON text that is signed and sent."""

    id: str
    kind: str
    payload: str
    status: str
    attempts: int
    next_attempt_at: str
    last_error: str | None
    created_at: str
    updated_at: str
