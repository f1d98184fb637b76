"""Rolling updates through the real server and the Docker engine (lifecycle.md §8).

`POST /deployments` of a new version of a deployment that has health checks
creates a child (`parent_id`); the child's actor brings v2 up, then drains v1
one container at a time once v2 is ready; the parent is deleted and purged.
"""

from __future__ import annotations

import httpx
import pytest

from tests.support.engines import IMAGE_V1, IMAGE_V2
from tests.support.manifests import HTTP_READINESS
from tests.support.server import RingServer, docker_containers

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("test_rolling_update")]

NAMESPACE = "rollout-e2e"
# httpd under a shell that exits at once on SIGTERM (PID 1 ignores it otherwise: every stop would wait 10 s).
WEB = ["sh", "-c", "trap 'exit 143' TERM; httpd -f -p 8080 -h /www & wait"]
READY = HTTP_READINESS


def spec(name: str, image: str, **overrides: object) -> dict:
    body = {
        "name": name,
        "namespace": NAMESPACE,
        "runtime": "docker",
        "image": image,
        "command": WEB,
        "replicas": 2,
        "health_checks": [READY],
    }
    body.update(overrides)
    return body


def reasons(api: httpx.Client, deployment_id: str) -> list[dict]:
    """Events oldest first."""
    response = api.get(f"/deployments/{deployment_id}/events", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return list(reversed(response.json()))


def served(address: str) -> str:
    with httpx.Client(trust_env=False, timeout=5) as client:
        return client.get(f"http://{address}:8080/index.html").text.strip()


def test_apply_of_v2_rolls_v1_out(server: RingServer, api: httpx.Client) -> None:
    """Verify v2 becomes a child of v1, v1 is drained one container at a time after v2 is ready, then v1 is
    purged, v2 stands alone (no parent_id) and serves v2, and its health-check history names its instances."""
    v1 = server.deploy(api, spec("web", IMAGE_V1))
    v1 = server.wait_for_status(api, v1["id"], "running")
    old = {i["id"] for i in v1["instances"]}
    assert len(old) == 2

    v2 = server.deploy(api, spec("web", IMAGE_V2))
    assert v2["parent_id"] == v1["id"]
    assert v2["status"] == "creating"

    server.wait_for(lambda: api.get(f"/deployments/{v1['id']}").status_code == 404, timeout=90, what="v1 purged")
    child = server.wait_for_status(api, v2["id"], "running")
    assert "parent_id" not in child
    events = reasons(api, v2["id"])
    steps = [e["message"] for e in events if e["reason"] == "rolling_update_step"]
    assert {s.split()[4] for s in steps} == old
    assert [s.rsplit("(", 1)[1] for s in steps] == ["1 remaining)", "0 remaining)"]
    ordered = [e["reason"] for e in events if e["reason"].startswith(("rolling_update", "state_transition"))]
    assert ordered == ["state_transition", "rolling_update_step", "rolling_update_step", "rolling_update_complete"]
    assert server.wait_for(lambda: not docker_containers([v1["id"]]), timeout=30, what="v1 containers removed")

    live = child["instances"]
    assert len(live) == 2
    assert [served(i["address"]) for i in live] == ["v2", "v2"]
    history = api.get(f"/deployments/{v2['id']}/health-checks", params={"limit": 1000}).json()
    assert history and {row["check_index"] for row in history} == {0}
    assert {row["instance_id"] for row in history if row["status"] == "success"} >= {i["id"] for i in live}


def test_failed_child_leaves_the_parent_serving(server: RingServer, api: httpx.Client) -> None:
    """Verify a v2 that crash-loops fails the rollout (rolling_update_failed) and v1 keeps its container and serves."""
    v1 = server.deploy(api, spec("api", IMAGE_V1, replicas=1))
    v1 = server.wait_for_status(api, v1["id"], "running")
    [before] = v1["instances"]

    bad = server.deploy(api, spec("api", IMAGE_V2, replicas=1, command=["sh", "-c", "sleep 0.2; exit 1"]))
    assert bad["parent_id"] == v1["id"]
    server.wait_for_status(api, bad["id"], "crash_loop_back_off", timeout=90)
    failed = server.wait_for(
        lambda: [e for e in reasons(api, bad["id"]) if e["reason"] == "rolling_update_failed"],
        timeout=10,
        what="rolling_update_failed",
    )
    assert failed[0]["level"] == "error"
    assert failed[0]["message"].endswith(f"Parent deployment {v1['id']} is still running.")

    parent = api.get(f"/deployments/{v1['id']}").json()
    assert parent["status"] == "running"
    assert [i["id"] for i in parent["instances"]] == [before["id"]]
    assert served(before["address"]) == "v1"
