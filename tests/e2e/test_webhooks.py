"""Webhooks end to end: a real server, the real Docker engine, and a receiver in this test.

The receiver listens on every interface and is addressed by a non-loopback address
of this host (the SSRF guard refuses loopback). The server runs with
`RING_WEBHOOK_RETRY_DELAYS` so retries take seconds, not minutes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from ring_actors.webhooks.signing import verify
from tests.support.engines import IMAGE_V1, require_engine
from tests.support.server import IDLE_COMMAND, RingServer

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("test_webhooks")]

REPO = Path(__file__).resolve().parents[2]
NS = "webhooks-e2e"
RETRY_DELAYS = "0.5,1"


def host_address() -> str:
    """A non-loopback IPv4 address of this host: the default route's source, else docker0's."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("10.255.255.255", 1))  # UDP connect sends nothing
            address = probe.getsockname()[0]
            if not address.startswith("127."):
                return address
    except OSError:
        pass
    output = subprocess.run(["ip", "-4", "-o", "addr", "show", "docker0"], capture_output=True, text=True).stdout
    return output.split("inet ", 1)[1].split("/", 1)[0]


class Received:
    def __init__(self, path: str, headers: dict[str, str], body: bytes) -> None:
        self.path = path
        self.headers = headers
        self.body = body

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)


class Receiver:
    """An HTTP server in a thread: `/ok...` answers 200, `/fail...` 500; every POST is kept."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                with outer.lock:
                    outer.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200 if self.path.startswith("/ok") else 500)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("0.0.0.0", 0), Handler)
        self.url = f"http://{host_address()}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="webhook-receiver", daemon=True)
        self.thread.start()

    def matching(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def server() -> Iterator[RingServer]:
    require_engine("docker")
    ring = RingServer(runtimes=("docker",), env={"RING_WEBHOOK_RETRY_DELAYS": RETRY_DELAYS})
    ring.start()
    try:
        yield ring
    finally:
        ring.close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    try:
        yield found
    finally:
        found.close()


def create_webhook(api: httpx.Client, url: str, events: list[str]) -> dict[str, Any]:
    response = api.post("/webhooks", json={"url": url, "events": events})
    assert response.status_code == 201, response.text
    return response.json()


def test_status_change_is_delivered_signed(server: RingServer, api: httpx.Client, receiver: Receiver) -> None:
    """Verify applying a deployment sends a signed `deployment.status_changed` (creating -> running)."""
    hook = create_webhook(api, f"{receiver.url}/ok-status", ["deployment.status_changed"])
    created = server.deploy(api, {"name": "hooked", "namespace": NS, "runtime": "docker", "image": IMAGE_V1,
                                  "command": IDLE_COMMAND})

    def running_delivery() -> Received | None:
        return next((r for r in receiver.matching("/ok-status")
                     if r.payload.get("deployment_id") == created["id"] and r.payload.get("new_status") == "running"),
                    None)

    delivery = server.wait_for(running_delivery, timeout=60, what="a status_changed delivery to running")
    assert verify(hook["secret"], delivery.body, delivery.headers["x-ring-signature"])
    assert delivery.headers["x-ring-event"] == "deployment.status_changed"
    assert delivery.headers["content-type"] == "application/json"
    assert delivery.headers["user-agent"].startswith("ring/")
    assert delivery.payload == {
        "schema_version": 1, "deployment_id": created["id"], "namespace": NS, "name": "hooked", "kind": "worker",
        "old_status": "creating", "new_status": "running", "restart_count": 0,
    }
    # Only the subscribed kind was sent, and the queue shows the delivery.
    assert {r.headers["x-ring-event"] for r in receiver.matching("/ok-status")} == {"deployment.status_changed"}

    def delivered() -> list[dict[str, Any]] | None:
        items = api.get(f"/webhooks/{hook['id']}/events").json()
        done = [i for i in items if json.loads(i["payload"]).get("new_status") == "running"]
        return done if done and done[0]["status"] == "delivered" else None

    [item] = server.wait_for(delivered, timeout=30, what="the queue entry to be delivered")
    assert item["attempts"] == 1 and item["kind"] == "deployment.status_changed"
    assert item["payload"].encode() == delivery.body


def test_failing_receiver_is_retried_then_dead_lettered(
    server: RingServer, api: httpx.Client, receiver: Receiver
) -> None:
    """Verify a 500 receiver gets the same delivery again (attempts, last_error), then it is dead."""
    hook = create_webhook(api, f"{receiver.url}/fail", ["deployment.scaled"])
    created = server.deploy(api, {"name": "retried", "namespace": NS, "runtime": "docker", "image": IMAGE_V1,
                                  "command": IDLE_COMMAND})

    def entry(predicate: Any) -> dict[str, Any] | None:
        items = [i for i in api.get(f"/webhooks/{hook['id']}/events").json()
                 if json.loads(i["payload"])["deployment_id"] == created["id"]]
        return items[0] if items and predicate(items[0]) else None

    retrying = server.wait_for(lambda: entry(lambda i: i["attempts"] >= 2 and i["status"] == "pending"),
                               timeout=60, what="a retried delivery")
    assert retrying["last_error"] == "subscriber returned 500 Internal Server Error"
    assert retrying["kind"] == "deployment.scaled"
    dead = server.wait_for(lambda: entry(lambda i: i["status"] == "dead"), timeout=60, what="a dead letter")
    assert dead["attempts"] == 8
    attempts = [r for r in receiver.matching("/fail") if r.payload["deployment_id"] == created["id"]]
    assert len(attempts) == 8
    assert len({r.headers["x-ring-delivery"] for r in attempts}) == 1
    assert all(verify(hook["secret"], r.body, r.headers["x-ring-signature"]) for r in attempts)


def ring_cli(server: RingServer, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RING_") and k != "NO_COLOR"}
    env.update(RING_CONFIG_DIR=str(server.dir), RING_TOKEN=token,
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "ring_actors.cli.main", *args], capture_output=True, text=True,
                          env=env, cwd=server.dir, timeout=60, stdin=subprocess.DEVNULL)


def test_cli_webhook_commands(server: RingServer, admin_token: str, receiver: Receiver) -> None:
    """Verify `webhook create` (id on stdout, secret on stderr), list, inspect, delete and the error exits."""
    created = ring_cli(server, admin_token, "webhook", "create", f"{receiver.url}/ok-cli",
                       "-e", "deployment.*", "-n", NS)
    assert created.returncode == 0, created.stderr
    hook_id = created.stdout.strip()
    assert "whsec_" in created.stderr and "whsec_" not in created.stdout
    listed = ring_cli(server, admin_token, "webhook", "list")
    assert listed.returncode == 0 and hook_id in listed.stdout and "deployment.*" in listed.stdout
    inspected = ring_cli(server, admin_token, "webhook", "inspect", hook_id)
    assert inspected.returncode == 0 and "Attempts" in inspected.stdout
    bad = ring_cli(server, admin_token, "webhook", "create", "http://127.0.0.1:1/x")
    assert bad.returncode == 1 and "webhook.url.format" not in bad.stdout and "url" in bad.stderr
    assert ring_cli(server, admin_token, "webhook", "delete", hook_id).returncode == 0
    listed = ring_cli(server, admin_token, "webhook", "list")
    assert "revoked" in listed.stdout
    missing = ring_cli(server, admin_token, "webhook", "inspect", "00000000-0000-4000-8000-000000000000")
    assert missing.returncode == 4 and "not found" in missing.stderr
