"""Webhook store, enqueuer and delivery worker against a temp SQLite file and a mock receiver.

Covers: secrets sealed at rest, signature and headers, the retry schedule, the dead
letter, per-webhook retries, revocation, the delivery-time DNS check, and pending
deliveries surviving a restart (a delivery cancelled mid-flight is sent again).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
import trio

from ring_actors.bus import BusMessage, EventBus
from ring_actors.schemas.manifest import Deployment
from ring_actors.store.db import Database
from ring_actors.store.webhooks import QueuedEvent, WebhookRepo
from ring_actors.webhooks import DEFAULT_RETRY_DELAYS, Dispatcher, WebhookOutbox, retry_delay, verify
from ring_actors.webhooks.runner import retry_delays_from_env
from ring_actors.webhooks.signing import generate_secret, sign

KEY = b"k" * 32
SECRET = "whsec_" + "ab" * 32
PAYLOAD = '{"schema_version":1,"deployment_id":"d1","namespace":"ns","name":"web","kind":"worker"}'
T0 = datetime(2026, 6, 3, 10, 0, 0, tzinfo=timezone.utc)

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "ring.db")
    try:
        yield database
    finally:
        database.close()


class Receiver:
    """A mock subscriber: answers with `status` and keeps every request."""

    def __init__(self, status: int = 204) -> None:
        self.status = status
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


async def enqueue(repo: WebhookRepo, *webhook_ids: str, kind: str = "deployment.status_changed") -> list[QueuedEvent]:
    return await repo.enqueue(kind=kind, payload=PAYLOAD, webhook_ids=webhook_ids, deployment_id="d1", namespace="ns")


async def wait_status(repo: WebhookRepo, webhook_id: str, status: str, *, attempts: int | None = None) -> QueuedEvent:
    with trio.fail_after(10):
        while True:
            items = await repo.events(webhook_id)
            if items and items[0].status == status and (attempts is None or items[0].attempts == attempts):
                return items[0]
            await trio.sleep(0.01)


def test_signature_and_generated_secrets() -> None:
    """Verify the signature is the lowercase hex HMAC-SHA256 of the body keyed by the secret."""
    body = b'{"a":1}'
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert sign(SECRET, body) == expected
    assert verify(SECRET, body, f"sha256={expected}")
    assert not verify(SECRET, body + b" ", f"sha256={expected}")
    assert not verify(SECRET, body, expected)
    generated = generate_secret()
    assert generated.startswith("whsec_") and len(generated) == 6 + 64
    int(generated[6:], 16)


def test_retry_schedule() -> None:
    """Verify 1, 2, 4, 8, 16, 32 then 60 minutes, the last delay repeating, and the env override."""
    assert [retry_delay(n) for n in range(1, 9)] == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert retry_delay(3, (1.0, 2.0)) == 2.0
    assert retry_delays_from_env({"RING_WEBHOOK_RETRY_DELAYS": "0.5,1"}) == (0.5, 1.0)
    assert retry_delays_from_env({"RING_WEBHOOK_RETRY_DELAYS": "soon"}) == DEFAULT_RETRY_DELAYS
    assert retry_delays_from_env({}) == DEFAULT_RETRY_DELAYS


async def test_secret_is_sealed_at_rest(db: Database) -> None:
    """Verify the clear secret is not in the database and reads back through the repository."""
    repo = WebhookRepo(db, KEY)
    hook = await repo.create("http://10.0.0.1/h", events=[], secret=SECRET)
    raw = await db.call(lambda conn: conn.execute("SELECT secret FROM webhook WHERE id=?", (hook.id,)).fetchone()[0])
    assert SECRET.encode() not in raw
    assert await repo.secret(hook.id) == SECRET
    with pytest.raises(Exception):  # noqa: B017 - another key cannot open it
        await WebhookRepo(db, b"x" * 32).secret(hook.id)


async def test_delivery_is_signed_with_ring_headers(db: Database) -> None:
    """Verify one POST with the payload bytes, X-Ring-Event, a valid X-Ring-Signature and no retry."""
    repo = WebhookRepo(db, KEY)
    hook = await repo.create("http://10.0.0.1/hook", events=[], secret=SECRET)
    receiver = Receiver(200)
    dispatcher = Dispatcher(repo, transport=receiver.transport, resolver=None, poll_interval=0.05)
    async with trio.open_nursery() as nursery:
        await nursery.start(dispatcher.run)
        [queued] = await enqueue(repo, hook.id)
        dispatcher.nudge()
        done = await wait_status(repo, hook.id, "delivered")
        nursery.cancel_scope.cancel()
    assert done.attempts == 1 and done.last_error is None
    [request] = receiver.requests
    assert request.method == "POST" and str(request.url) == "http://10.0.0.1/hook"
    assert request.content == PAYLOAD.encode()
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-ring-event"] == "deployment.status_changed"
    assert request.headers["user-agent"].startswith("ring/")
    assert request.headers["x-ring-delivery"] == queued.event_id
    assert verify(SECRET, request.content, request.headers["x-ring-signature"])


async def test_failures_follow_the_schedule(db: Database) -> None:
    """Verify a failed attempt is retried after 1 min, then 2 min, with attempts and last_error recorded."""
    repo = WebhookRepo(db, KEY)
    hook = await repo.create("http://10.0.0.1/hook", events=[], secret=SECRET)
    receiver = Receiver(500)
    now = [T0]
    dispatcher = Dispatcher(repo, transport=receiver.transport, resolver=None, poll_interval=0.05, clock=lambda: now[0])
    async with trio.open_nursery() as nursery:
        await nursery.start(dispatcher.run)
        [queued] = await enqueue(repo, hook.id)
        await db.call(lambda c: c.execute("UPDATE events SET next_attempt_at=? WHERE id=?",
                                          ("2026-06-03T09:59:00.000000Z", queued.id)))
        dispatcher.nudge()
        first = await wait_status(repo, hook.id, "pending", attempts=1)
        assert first.next_attempt_at == "2026-06-03T10:01:00.000000Z"
        assert first.last_error == "subscriber returned 500 Internal Server Error"
        await trio.sleep(0.2)
        assert len(receiver.requests) == 1  # not due yet
        now[0] = T0 + timedelta(minutes=1)
        dispatcher.nudge()
        second = await wait_status(repo, hook.id, "pending", attempts=2)
        assert second.next_attempt_at == "2026-06-03T10:03:00.000000Z"
        nursery.cancel_scope.cancel()
    assert len(receiver.requests) == 2


async def test_dead_letter_after_eight_attempts(db: Database) -> None:
    """Verify the eighth failure makes the entry `dead` and nothing is sent after it."""
    repo = WebhookRepo(db, KEY)
    hook = await repo.create("http://10.0.0.1/hook", events=[], secret=SECRET)
    receiver = Receiver(503)
    dispatcher = Dispatcher(repo, transport=receiver.transport, resolver=None, retry_delays=(0.0,), poll_interval=0.05)
    async with trio.open_nursery() as nursery:
        await nursery.start(dispatcher.run)
        await enqueue(repo, hook.id)
        dispatcher.nudge()
        dead = await wait_status(repo, hook.id, "dead")
        await trio.sleep(0.2)
        nursery.cancel_scope.cancel()
    assert dead.attempts == 8
    assert dead.last_error == "subscriber returned 503 Service Unavailable"
    assert len(receiver.requests) == 8


async def test_a_failing_receiver_retries_alone(db: Database) -> None:
    """Verify per-webhook state: the healthy subscriber gets the event once while the other retries."""
    repo = WebhookRepo(db, KEY)
    good = await repo.create("http://10.0.0.1/good", events=[], secret=SECRET)
    bad = await repo.create("http://10.0.0.2/bad", events=[], secret=SECRET)
    calls: dict[str, int] = {"/good": 0, "/bad": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls[request.url.path] += 1
        return httpx.Response(200 if request.url.path == "/good" else 500)

    dispatcher = Dispatcher(repo, transport=httpx.MockTransport(handler), resolver=None, retry_delays=(0.0,),
                            max_attempts=3, poll_interval=0.05)
    async with trio.open_nursery() as nursery:
        await nursery.start(dispatcher.run)
        await enqueue(repo, good.id, bad.id)
        dispatcher.nudge()
        await wait_status(repo, bad.id, "dead")
        nursery.cancel_scope.cancel()
    assert calls == {"/good": 1, "/bad": 3}
    assert (await repo.events(good.id))[0].status == "delivered"


async def test_transport_errors_and_redirects_are_failures(db: Database) -> None:
    """Verify a connection error and a 3xx (redirects are not followed) count as failed attempts."""
    repo = WebhookRepo(db, KEY)
    down = await repo.create("http://10.0.0.1/down", events=[], secret=SECRET)
    moved = await repo.create("http://10.0.0.1/moved", events=[], secret=SECRET)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/down":
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(302, headers={"location": "http://10.0.0.1/elsewhere"})

    dispatcher = Dispatcher(repo, transport=httpx.MockTransport(handler), resolver=None, poll_interval=0.05)
    async with trio.open_nursery() as nursery:
        await nursery.start(dispatcher.run)
        await enqueue(repo, down.id, moved.id)
        dispatcher.nudge()
        refused = await wait_status(repo, down.id, "pending", attempts=1)
        redirected = await wait_status(repo, moved.id, "pending", attempts=1)
        nursery.cancel_scope.cancel()
    assert refused.last_error == "request failed: ConnectError: connection refused"
    assert redirected.last_error == "subscriber returned 302 Found"


async def test_names_resolving_to_loopback_are_refused_at_delivery(db: Database) -> None:
    """Verify a DNS name that resolves to 127.0.0.1 is never called (Ring checks literals only)."""
    repo = WebhookRepo(db, KEY)
    hook = await repo.create("http://rebind.example.com/h", events=[], secret=SECRET)
    receiver = Receiver(200)

    async def resolver(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        assert (host, port) == ("rebind.example.com", 80)
        return [ipaddress.ip_address("10.1.1.1"), ipaddress.ip_address("127.0.0.1")]

    dispatcher = Dispatcher(repo, transport=receiver.transport, resolver=resolver, poll_interval=0.05)
    async with trio.open_nursery() as nursery:
        await nursery.start(dispatcher.run)
        await enqueue(repo, hook.id)
        dispatcher.nudge()
        item = await wait_status(repo, hook.id, "pending", attempts=1)
        nursery.cancel_scope.cancel()
    assert receiver.requests == []
    assert "resolves to 127.0.0.1" in (item.last_error or "")


async def test_revoked_webhooks_get_nothing_more(db: Database) -> None:
    """Verify revoking marks pending entries dead and new events are not queued for it."""
    repo = WebhookRepo(db, KEY)
    hook = await repo.create("http://10.0.0.1/h", events=[], secret=SECRET)
    await enqueue(repo, hook.id)
    assert await repo.revoke(hook.id)
    [item] = await repo.events(hook.id)
    assert (item.status, item.last_error) == ("dead", "webhook deleted")
    assert await enqueue(repo, hook.id) == []
    assert await repo.due("9999-01-01T00:00:00.000000Z", limit=50) == []
    assert not await repo.revoke("00000000-0000-4000-8000-000000000000")


async def test_pending_deliveries_resume_after_a_restart(tmp_path: Path) -> None:
    """Verify an entry queued (and cut off mid-request) by one server is delivered by the next."""
    path = tmp_path / "ring.db"
    first = await Database.open(path)
    repo = WebhookRepo(first, KEY)
    hook = await repo.create("http://10.0.0.1/h", events=[], secret=SECRET)
    started = trio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        started.set()
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    dispatcher = Dispatcher(repo, transport=httpx.MockTransport(hang), resolver=None, poll_interval=0.05)
    async with trio.open_nursery() as nursery:
        await nursery.start(dispatcher.run)
        await enqueue(repo, hook.id)
        dispatcher.nudge()
        with trio.fail_after(5):
            await started.wait()
        nursery.cancel_scope.cancel()  # the server stops mid-request
    [left] = await repo.events(hook.id)
    assert (left.status, left.attempts) == ("pending", 0)
    first.close()

    second = await Database.open(path)
    try:
        repo = WebhookRepo(second, KEY)
        receiver = Receiver(200)
        dispatcher = Dispatcher(repo, transport=receiver.transport, resolver=None, poll_interval=0.05)
        async with trio.open_nursery() as nursery:
            await nursery.start(dispatcher.run)
            done = await wait_status(repo, hook.id, "delivered")
            nursery.cancel_scope.cancel()
        assert done.attempts == 1
        assert verify(SECRET, receiver.requests[0].content, receiver.requests[0].headers["x-ring-signature"])
    finally:
        second.close()


class FakeDeployments:
    def __init__(self, *rows: Deployment) -> None:
        self.rows = {row.id: row for row in rows}

    async def get(self, deployment_id: str) -> Deployment | None:
        return self.rows.get(deployment_id)


async def test_outbox_queues_only_for_matching_webhooks(db: Database) -> None:
    """Verify kind and namespace filters, revoked webhooks skipped, payload rendered once per event."""
    repo = WebhookRepo(db, KEY)
    everything = await repo.create("http://10.0.0.1/a", events=[], secret=SECRET)
    statuses = await repo.create("http://10.0.0.1/b", events=["deployment.status_changed"], secret=SECRET)
    errors = await repo.create("http://10.0.0.1/c", events=["deployment.error"], secret=SECRET)
    other_ns = await repo.create("http://10.0.0.1/d", events=["*"], namespaces=["staging"], secret=SECRET)
    revoked = await repo.create("http://10.0.0.1/e", events=["deployment.*"], secret=SECRET)
    await repo.revoke(revoked.id)
    row = Deployment(id="d1", created_at="2026-06-03T10:00:00Z", name="web", namespace="production",
                     runtime="docker", image="busybox", replicas=2, restart_count=1)
    nudged: list[int] = []
    outbox = WebhookOutbox(repo, FakeDeployments(row), on_enqueued=lambda: nudged.append(1))  # type: ignore[arg-type]
    status = BusMessage("status", "d1", "production", {"deployment_id": "d1", "from": "creating", "to": "running"})
    assert await outbox.record(status) == 2
    assert nudged == [1]
    assert [len(await repo.events(h.id)) for h in (everything, statuses, errors, other_ns, revoked)] == [1, 1, 0, 0, 0]
    [item] = await repo.events(statuses.id)
    assert json.loads(item.payload) == {
        "schema_version": 1, "deployment_id": "d1", "namespace": "production", "name": "web", "kind": "worker",
        "old_status": "creating", "new_status": "running", "restart_count": 1,
    }
    plain = BusMessage("event", "d1", "production", {"reason": "deployment_created", "message": "created"})
    assert await outbox.record(plain) == 0


async def test_outbox_reads_the_bus_and_remembers_purged_deployments(db: Database) -> None:
    """Verify bus messages are queued, and a deployment purged meanwhile is still named."""
    repo = WebhookRepo(db, KEY)
    hook = await repo.create("http://10.0.0.1/a", events=[], secret=SECRET)
    row = Deployment(id="d1", created_at="2026-06-03T10:00:00Z", name="web", namespace="ns", runtime="docker",
                     image="busybox")
    deployments = FakeDeployments(row)
    bus = EventBus()
    send, queued = trio.open_memory_channel[None](10)
    outbox = WebhookOutbox(repo, deployments, on_enqueued=lambda: send.send_nowait(None))  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(outbox.run, bus)
        bus.publish(BusMessage("status", "d1", "ns", {"from": "creating", "to": "running"}))
        with trio.fail_after(5):
            await queued.receive()
        deployments.rows.clear()
        bus.publish(BusMessage("status", "d1", "ns", {"from": "running", "to": "deleted"}))
        with trio.fail_after(5):
            await queued.receive()
        nursery.cancel_scope.cancel()
    assert len(await repo.events(hook.id)) == 2
    latest = json.loads((await repo.events(hook.id))[0].payload)
    assert (latest["name"], latest["new_status"]) == ("web", "deleted")
