"""Webhooks (api.md §14.1): create, list, delete (soft), inspect the delivery queue.

Scopes come from the route map (`webhooks:read` / `webhooks:write`). Beyond Ring:
secrets are stored encrypted; an optional `namespaces` filter; the namespace
boundary applies (api.md §16): a namespace-restricted credential only creates
webhooks filtered to its namespaces and only sees and deletes those.
"""

from __future__ import annotations

from quart import Blueprint, Response

from ring_actors.auth.principal import Principal
from ring_actors.http.common import empty, json_response, principal, read_json, state
from ring_actors.http.errors import ApiError, auth_error, encode
from ring_actors.schemas.problem import validation_problem
from ring_actors.store.webhooks import QueuedEvent, Webhook, WebhookRepo
from ring_actors.webhooks.bodies import QueueEntryView, WebhookCreate, WebhookCreated, WebhookView
from ring_actors.webhooks.kinds import validate_events, validate_url
from ring_actors.webhooks.signing import generate_secret

__all__ = ["blueprint"]

blueprint = Blueprint("webhooks", __name__)


def _repo() -> WebhookRepo:
    services = state().services
    return WebhookRepo(services.db, services.secret_key)


def _visible(who: Principal, hook: Webhook) -> bool:
    """A restricted credential sees only webhooks filtered to namespaces it may access."""
    return not who.restricted or (bool(hook.namespaces) and all(who.may_access(ns) for ns in hook.namespaces))


def _view(hook: Webhook) -> WebhookView:
    return WebhookView(
        id=hook.id,
        url=hook.url,
        events=hook.events,
        namespaces=hook.namespaces,
        created_at=hook.created_at,
        revoked_at=hook.revoked_at,
    )


def _entry(item: QueuedEvent) -> QueueEntryView:
    return QueueEntryView(
        id=item.id,
        kind=item.kind,
        payload=item.payload,
        status=item.status,
        attempts=item.attempts,
        next_attempt_at=item.next_attempt_at,
        last_error=item.last_error,
        created_at=item.created_at,
        updated_at=item.updated_at,
    )


async def _load(webhook_id: str) -> Webhook:
    hook = await _repo().get(webhook_id)
    if hook is None or not _visible(principal(), hook):
        raise ApiError(404, "webhook not found")
    return hook


@blueprint.get("/webhooks")
async def list_webhooks() -> Response:
    who = principal()
    return json_response([_view(hook) for hook in await _repo().list() if _visible(who, hook)])


@blueprint.post("/webhooks")
async def create_webhook() -> Response:
    who = principal()
    body = await read_json(WebhookCreate)
    violations = validate_url(body.url) + validate_events(body.events)
    if violations:
        return encode(validation_problem(violations))
    namespaces = list(dict.fromkeys(body.namespaces))
    if who.restricted and (not namespaces or any(not who.may_access(ns) for ns in namespaces)):
        raise auth_error(
            403, f"token is restricted to namespaces {', '.join(who.namespaces)}: the webhook must be too"
        )
    events = list(dict.fromkeys(body.events))
    secret = body.secret or generate_secret()
    hook = await _repo().create(
        body.url.strip(), events=events, secret=secret, namespaces=namespaces, created_by=who.user_id
    )
    await state().audit.record(who.user_id, "create", "webhook", hook.url)
    created = WebhookCreated(
        id=hook.id,
        url=hook.url,
        events=hook.events,
        namespaces=hook.namespaces,
        secret=secret,
        created_at=hook.created_at,
    )
    return json_response(created, 201)


@blueprint.delete("/webhooks/<id>")
async def delete_webhook(id: str) -> Response:
    who = principal()
    hook = await _load(id)
    await _repo().revoke(hook.id)
    if hook.revoked_at is None:
        await state().audit.record(who.user_id, "delete", "webhook", hook.url)
    return empty(204)


@blueprint.get("/webhooks/<id>/events")
async def webhook_events(id: str) -> Response:
    hook = await _load(id)
    return json_response([_entry(item) for item in await _repo().events(hook.id)])
