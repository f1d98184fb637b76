"""Deployment events: `GET /deployments/{id}/events` (Ring) plus live streams (beyond Ring).

- `GET /deployments/{id}/events?level=&limit=`: newest first (api.md §7.7).
- `GET /deployments/{id}/events?follow=true`: SSE; first the latest `limit` events
  (default 50, oldest first), then every new event and status change of that
  deployment; ends after the deployment is purged.
- `GET /events?follow=true`: SSE of every deployment the credential may see
  (namespace boundary); `limit` (default 0) recent events first.
- `GET /events`: the latest events of all visible deployments, newest first.

Each SSE message is `data: <json>` (no `event:` field, so `EventSource.onmessage`
sees everything) with `"type"` set to `event`, `status` or `lagged`:

    {"type": "event", "deployment_id": "...", "namespace": "...", "event": {...event object...}}
    {"type": "status", "deployment_id": "...", "namespace": "...", "old_status": "creating", "new_status": "running"}
    {"type": "lagged", "missed": 12}
"""

from __future__ import annotations

import sqlite3
from typing import Any

import trio
from quart import Blueprint, Response, request

from ring_actors.auth.principal import Principal
from ring_actors.bus import BusMessage
from ring_actors.http.common import json_response, load_deployment, principal, query_bool, query_int, state
from ring_actors.http.sse import STREAM_OPEN, sse_event, sse_response
from ring_actors.store.events import Event

__all__ = ["blueprint"]

blueprint = Blueprint("events", __name__)

MAX_LIMIT = 1000


def _message(message: BusMessage) -> dict[str, Any]:
    if message.kind == "event":
        return {
            "type": "event",
            "deployment_id": message.deployment_id,
            "namespace": message.namespace,
            "event": message.payload,
        }
    return {
        "type": message.kind,
        "deployment_id": message.deployment_id,
        "namespace": message.namespace,
        "old_status": message.payload.get("from"),
        "new_status": message.payload.get("to"),
    }


def _stored(event: Event, namespace: str) -> dict[str, Any]:
    return {
        "type": "event",
        "deployment_id": event.deployment_id,
        "namespace": namespace,
        "event": {
            "id": event.id,
            "deployment_id": event.deployment_id,
            "timestamp": event.timestamp,
            "level": event.level,
            "message": event.message,
            "component": event.component,
            "reason": event.reason,
        },
    }


def _streamer(accept, backlog, *, level: str | None, end_on_purge: bool):  # noqa: ANN001
    """An SSE producer: subscribe first, then replay `backlog()`, then forward live messages."""
    bus = state().services.bus

    def wanted(message: BusMessage) -> bool:
        if not accept(message):
            return False
        return not (level and message.kind == "event" and message.payload.get("level") != level)

    async def produce(send: trio.MemorySendChannel[bytes]) -> None:
        async with bus.subscribe(wanted) as subscription:
            await send.send(STREAM_OPEN)
            seen: set[str] = set()
            for event, namespace in await backlog():
                seen.add(event.id)
                await send.send(sse_event(_stored(event, namespace), event_id=event.id))
            reported = 0
            async for message in subscription:
                if subscription.missed > reported:
                    await send.send(sse_event({"type": "lagged", "missed": subscription.missed - reported}))
                    reported = subscription.missed
                event_id = message.payload.get("id") if message.kind == "event" else None
                if event_id in seen:
                    continue
                await send.send(sse_event(_message(message), event_id=event_id))
                if end_on_purge and message.kind == "status" and message.payload.get("to") == "purged":
                    return

    return produce


@blueprint.get("/deployments/<id>/events")
async def deployment_events(id: str) -> Response:
    deployment = await load_deployment(id)
    events = state().services.events
    level = request.args.get("level") or None
    limit = query_int("limit", 50, maximum=MAX_LIMIT)
    if not query_bool("follow"):
        return json_response(await events.list(id, level=level, limit=limit))

    async def backlog() -> list[tuple[Event, str]]:
        recent = await events.list(id, level=level, limit=limit)
        return [(event, deployment.namespace) for event in reversed(recent)]

    producer = _streamer(lambda m: m.deployment_id == id, backlog, level=level, end_on_purge=True)
    return sse_response(producer)


async def _recent_events(who: Principal, *, level: str | None, limit: int) -> list[tuple[Event, str]]:
    """Newest events across the deployments `who` may see, with their namespace."""
    allowed = list(who.namespaces)

    def run(conn: sqlite3.Connection) -> list[tuple[Event, str]]:
        sql = (
            "SELECT e.*, d.namespace AS namespace FROM deployment_event e"
            " JOIN deployment d ON d.id = e.deployment_id"
        )
        clauses: list[str] = []
        args: list[Any] = []
        if allowed:
            clauses.append(f"d.namespace IN ({','.join('?' * len(allowed))})")
            args.extend(allowed)
        if level:
            clauses.append("e.level = ?")
            args.append(level)
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY e.seq DESC LIMIT ?"
        args.append(limit)
        return [
            (
                Event(
                    id=r["id"],
                    deployment_id=r["deployment_id"],
                    timestamp=r["timestamp"],
                    level=r["level"],
                    message=r["message"],
                    component=r["component"],
                    reason=r["reason"],
                ),
                r["namespace"],
            )
            for r in conn.execute(sql, args)
        ]

    return await state().services.db.call(run)


@blueprint.get("/events")
async def all_events() -> Response:
    who = principal()
    level = request.args.get("level") or None
    if not query_bool("follow"):
        limit = query_int("limit", 50, maximum=MAX_LIMIT)
        recent = await _recent_events(who, level=level, limit=limit)
        return json_response([_stored(event, namespace) for event, namespace in recent])
    limit = query_int("limit", 0, maximum=MAX_LIMIT)

    async def backlog() -> list[tuple[Event, str]]:
        if limit == 0:
            return []
        return list(reversed(await _recent_events(who, level=level, limit=limit)))

    producer = _streamer(lambda m: who.may_access(m.namespace), backlog, level=level, end_on_purge=False)
    return sse_response(producer)
