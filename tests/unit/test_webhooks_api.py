"""`/webhooks` in-process (no engine): shapes, validation, scopes, namespace boundary, audit,
and a status change travelling bus -> queue -> signed POST -> `GET /webhooks/{id}/events`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from ring_actors.http.app import create_app
from ring_actors.services import Services
from ring_actors.webhooks import run_webhooks, verify
from tests.support.inprocess import admin_client, simulated_services

PROBLEM = "application/problem+json"


class Api:
    def __init__(self, client: Any, token: str) -> None:
        self.client = client
        self.token = token

    def as_(self, token: str) -> Api:
        return Api(self.client, token)

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any, str]:
        headers = {"Authorization": f"Bearer {self.token}"}
        response = await self.client.open(path, method=method, json=body, headers=headers)
        data = await response.get_data()
        return response.status_code, (json.loads(data) if data else None), response.headers.get("content-type", "")


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[Services, Api]]:
    services = await simulated_services(tmp_path, database=tmp_path / "ring.db")
    try:
        async with admin_client(create_app(services)) as (client, token):
            yield services, Api(client, token)
    finally:
        services.db.close()


async def pat(api: Api, scopes: list[str], namespaces: list[str] = ()) -> str:  # type: ignore[assignment]
    status, body, _ = await api.call("POST", "/tokens", {"name": f"t{len(scopes)}{len(namespaces)}",
                                                       "scopes": scopes, "namespaces": list(namespaces)})
    assert status == 201, body
    return body["token"]


async def test_create_list_delete(env: tuple[Services, Api]) -> None:
    """Verify the §14.1 shapes: secret shown once, list without secrets, soft delete, 404s, audit."""
    services, api = env
    status, created, _ = await api.call("POST", "/webhooks", {"url": "https://hooks.example.com/ring",
                                                              "events": ["deployment.status_changed", "deployment.*"]})
    assert status == 201, created
    assert created["secret"].startswith("whsec_") and len(created["secret"]) == 70
    assert created["events"] == ["deployment.status_changed", "deployment.*"]
    assert created["message"] == "Copy the secret now — it will not be shown again."
    assert {"id", "url", "events", "secret", "created_at", "message"} <= set(created)
    status, own, _ = await api.call("POST", "/webhooks", {"url": "http://10.0.0.9/h", "secret": "s3cret"})
    assert status == 201 and own["secret"] == "s3cret" and own["events"] == []

    status, listed, _ = await api.call("GET", "/webhooks")
    assert status == 200
    assert [w["id"] for w in listed] == [own["id"], created["id"]]
    assert all("secret" not in w and w["revoked_at"] is None for w in listed)

    assert (await api.call("DELETE", f"/webhooks/{created['id']}"))[0] == 204
    listed = (await api.call("GET", "/webhooks"))[1]
    assert next(w for w in listed if w["id"] == created["id"])["revoked_at"]
    status, missing, content_type = await api.call("DELETE", "/webhooks/00000000-0000-4000-8000-000000000000")
    assert (status, missing["detail"], content_type) == (404, "webhook not found", PROBLEM)
    assert (await api.call("GET", "/webhooks/nope/events"))[0] == 404
    assert (await api.call("GET", f"/webhooks/{created['id']}/events")) [:2] == (200, [])

    audit = await services.db.call(lambda c: [tuple(r) for r in c.execute(
        "SELECT action, target_type, target_name, namespace FROM audit_log ORDER BY seq")])
    assert audit == [("create", "webhook", "https://hooks.example.com/ring", None),
                     ("create", "webhook", "http://10.0.0.9/h", None),
                     ("delete", "webhook", "https://hooks.example.com/ring", None)]


async def test_validation_lists_every_violation(env: tuple[Services, Api]) -> None:
    """Verify one 422 problem with the URL and every bad filter, codes as in the spec."""
    _, api = env
    status, body, content_type = await api.call(
        "POST", "/webhooks", {"url": "http://127.0.0.1:9/x", "events": ["deployment*", "deployement.*"]})
    assert (status, content_type) == (422, PROBLEM)
    assert [(v["property_path"], v["code"]) for v in body["violations"]] == [
        ("url", "webhook.url.format"), ("events[0]", "webhook.events.unknown"), ("events[1]", "webhook.events.unknown")]
    assert (await api.call("POST", "/webhooks", {"url": "http://localhost/"}))[0] == 422
    assert (await api.call("POST", "/webhooks", {"events": []}))[0] == 422  # url missing: shape error


async def test_scopes_and_namespace_boundary(env: tuple[Services, Api]) -> None:
    """Verify webhooks:read cannot write, and a namespace-restricted token only handles its namespaces."""
    _, api = env
    reader = api.as_(await pat(api, ["webhooks:read"]))
    assert (await reader.call("GET", "/webhooks"))[0] == 200
    status, body, _ = await reader.call("POST", "/webhooks", {"url": "http://10.0.0.1/h"})
    assert (status, body["error"]) == (403, "token lacks required scope 'webhooks:write'")
    deployments_only = api.as_(await pat(api, ["deployments:read"]))
    assert (await deployments_only.call("GET", "/webhooks"))[0] == 403

    global_hook = (await api.call("POST", "/webhooks", {"url": "http://10.0.0.1/all"}))[1]
    team = api.as_(await pat(api, ["webhooks:read", "webhooks:write"], ["team-a"]))
    assert (await team.call("POST", "/webhooks", {"url": "http://10.0.0.1/t"}))[0] == 403
    assert (await team.call("POST", "/webhooks", {"url": "http://10.0.0.1/t", "namespaces": ["team-b"]}))[0] == 403
    status, mine, _ = await team.call("POST", "/webhooks", {"url": "http://10.0.0.1/t", "namespaces": ["team-a"]})
    assert status == 201 and mine["namespaces"] == ["team-a"]
    assert [w["id"] for w in (await team.call("GET", "/webhooks"))[1]] == [mine["id"]]
    assert (await team.call("DELETE", f"/webhooks/{global_hook['id']}"))[0] == 404
    assert (await team.call("GET", f"/webhooks/{global_hook['id']}/events"))[0] == 404


async def test_status_change_is_delivered_signed(env: tuple[Services, Api]) -> None:
    """Verify a recorder status change reaches the subscriber, signed, and shows as delivered."""
    services, api = env
    created = (await api.call("POST", "/webhooks", {"url": "http://10.0.0.1/h",
                                                    "events": ["deployment.status_changed"]}))[1]
    received: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(200)

    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: run_webhooks(services, transport=httpx.MockTransport(receiver), task_status=task_status)
        )
        services.recorder.status_changed("d1", "default", "creating", "running")
        with trio.fail_after(10):
            while True:
                items = (await api.call("GET", f"/webhooks/{created['id']}/events"))[1]
                if items and items[0]["status"] == "delivered":
                    break
                await trio.sleep(0.02)
        nursery.cancel_scope.cancel()
    [request] = received
    assert verify(created["secret"], request.content, request.headers["x-ring-signature"])
    assert request.headers["x-ring-event"] == "deployment.status_changed"
    [item] = items
    assert item["kind"] == "deployment.status_changed" and item["attempts"] == 1
    assert json.loads(item["payload"])["new_status"] == "running"
    assert item["payload"].encode() == request.content
