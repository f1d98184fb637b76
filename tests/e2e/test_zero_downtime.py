"""Zero-downtime rolling update, observed by a client that routes only where the API says.

A service of 2 busybox httpd replicas on `:v1` is rolled to `:v2` with
`POST /deployments` on a real server. Meanwhile a client plays a proxy that
follows the API: it re-reads `GET /deployments` (with instance addresses)
every 100 ms and keeps requesting `/index.html` from the instances of its
latest listing, and from nothing else. No request may fail, the answers must
switch from v1 to v2, and the v1 containers must be gone at the end.

The web server starts a second after its container (as real services take a
while to listen). Zero downtime then holds only because an instance is listed
once its readiness check passes, and a drained v1 instance leaves the list a
grace period before it is stopped.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx
import pytest

from tests.support.engines import IMAGE_V1, IMAGE_V2
from tests.support.manifests import HTTP_READINESS
from tests.support.server import RingServer, docker_containers

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("test_zero_downtime")]

NAMESPACE = "zero-downtime"
WEB = ["sh", "-c", "trap 'exit 143' TERM; sleep 1; httpd -f -p 8080 -h /www & wait"]
REFRESH = 0.5  # seconds between two listings of the following client (a proxy refreshing its view)


def spec(image: str) -> dict:
    return {
        "name": "web",
        "namespace": NAMESPACE,
        "runtime": "docker",
        "image": image,
        "command": WEB,
        "replicas": 2,
        "health_checks": [HTTP_READINESS],
    }


@dataclass
class Traffic:
    """What the following client saw."""

    answers: list[tuple[float, str, str]] = field(default_factory=list)  # (time, address, body)
    failures: list[str] = field(default_factory=list)
    empty_listings: int = 0
    listings: int = 0
    error: BaseException | None = None


def follow_the_api(base_url: str, token: str, stop: threading.Event, traffic: Traffic) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    addresses: list[str] = []
    listed_at = 0.0
    turn = 0
    try:
        with (
            httpx.Client(base_url=base_url, headers=headers, timeout=10) as control,
            httpx.Client(trust_env=False, timeout=5, headers={"Connection": "close"}) as data,
        ):
            while not stop.is_set():
                if time.monotonic() - listed_at >= REFRESH:
                    response = control.get("/deployments", params={"namespace": NAMESPACE, "instances": "true"})
                    response.raise_for_status()
                    listed_at = time.monotonic()
                    addresses = [
                        instance["address"]
                        for row in response.json()
                        if row["name"] == "web"
                        for instance in row.get("instances", [])
                        if instance.get("address")
                    ]
                    traffic.listings += 1
                    if not addresses:
                        traffic.empty_listings += 1
                if not addresses:
                    time.sleep(0.01)
                    continue
                turn += 1
                address = addresses[turn % len(addresses)]  # round robin over the latest listing
                try:
                    answer = data.get(f"http://{address}:8080/index.html")
                except httpx.HTTPError as exc:
                    traffic.failures.append(f"{address}: {exc!r}")
                    continue
                if answer.status_code != 200:
                    traffic.failures.append(f"{address}: HTTP {answer.status_code}")
                    continue
                traffic.answers.append((time.monotonic(), address, answer.text.strip()))
                time.sleep(0.005)
    except BaseException as exc:  # noqa: BLE001 - reported by the test thread
        traffic.error = exc


def test_rolling_update_never_drops_a_request(server: RingServer, api: httpx.Client, admin_token: str) -> None:
    """Verify a v1 -> v2 rolling update under continuous traffic routed by the API: no request fails, the
    list of instances is never empty, responses switch from v1 to v2, and the v1 containers are gone."""
    v1 = server.deploy(api, spec(IMAGE_V1))
    server.wait_for_status(api, v1["id"], "running")
    server.wait_for(lambda: len(api.get(f"/deployments/{v1['id']}").json()["instances"]) == 2, what="2 v1 ready")

    traffic = Traffic()
    stop = threading.Event()
    client = threading.Thread(target=follow_the_api, args=(server.base_url, admin_token, stop, traffic), daemon=True)
    client.start()
    try:
        server.wait_for(lambda: len(traffic.answers) >= 20, timeout=30, what="traffic before the update")
        v2 = server.deploy(api, spec(IMAGE_V2))
        assert v2["parent_id"] == v1["id"], "a rolling update, not a replacement"
        server.wait_for(lambda: api.get(f"/deployments/{v1['id']}").status_code == 404, timeout=120, what="v1 gone")
        server.wait_for_status(api, v2["id"], "running")
        settled = len(traffic.answers)
        server.wait_for(lambda: len(traffic.answers) >= settled + 20, timeout=30, what="traffic after the update")
    finally:
        stop.set()
        client.join(30)
    assert traffic.error is None, f"the client itself failed: {traffic.error!r}"
    assert traffic.failures == [], f"{len(traffic.failures)} failed requests, e.g. {traffic.failures[:5]}"
    assert traffic.empty_listings == 0, "the API listed no instance at some moment"
    bodies = [body for _, _, body in traffic.answers]
    assert set(bodies) == {"v1", "v2"}
    assert set(bodies[:20]) == {"v1"} and set(bodies[-20:]) == {"v2"}
    first_v2 = bodies.index("v2")
    assert "v2" not in bodies[:first_v2] and bodies[-1] == "v2"
    assert len(traffic.answers) > 100, f"only {len(traffic.answers)} answers: the client was too slow to prove much"
    server.wait_for(lambda: not docker_containers([v1["id"]]), timeout=30, what="v1 containers removed")
