"""Deleting a namespace frees its `ring_<namespace>` network on the REAL Docker engine (Ring never does)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support.engines import DOCKER_SOCK, IMAGE_V1
from tests.support.server import RingServer

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("test_namespace_network")]


def network_exists(name: str) -> bool:
    with httpx.Client(transport=httpx.HTTPTransport(uds=DOCKER_SOCK), base_url="http://d/v1.41") as docker:
        networks = docker.get("/networks", params={"filters": f'{{"name": ["{name}"]}}'}).json()
    return any(network["Name"] == name for network in networks)


def test_deleting_a_namespace_removes_its_network(server: RingServer, api: httpx.Client) -> None:
    namespace = f"net{uuid.uuid4().hex[:8]}"
    deployment = server.deploy(
        api,
        {"name": "web", "namespace": namespace, "runtime": "docker", "image": IMAGE_V1, "command": ["sleep", "600"]},
    )
    server.wait_for_status(api, deployment["id"], "running")
    assert network_exists(f"ring_{namespace}")

    # Not empty yet: refused, and the network stays.
    assert api.delete(f"/namespaces/{namespace}").status_code == 409
    assert api.delete(f"/deployments/{deployment['id']}").status_code == 204
    server.wait_for(lambda: api.get(f"/deployments/{deployment['id']}").status_code == 404, what="purge")

    assert api.delete(f"/namespaces/{namespace}").status_code == 204
    server.wait_for(lambda: not network_exists(f"ring_{namespace}"), timeout=30, what="network removed")
