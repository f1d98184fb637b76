"""Read-only views of the real Docker engine, for assertions (never used to drive ring-actors)."""

from __future__ import annotations

import json

import httpx

from tests.support.engines import DOCKER_SOCK


def docker() -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(uds=DOCKER_SOCK), base_url="http://docker/v1.41", timeout=30)


def containers_of(deployment_id: str, *, all_states: bool = True) -> list[dict]:
    filters = json.dumps({"label": [f"ring_deployment={deployment_id}"]})
    with docker() as client:
        response = client.get("/containers/json", params={"all": str(all_states).lower(), "filters": filters})
        response.raise_for_status()
        return response.json()


def inspect(container_id: str) -> dict:
    with docker() as client:
        response = client.get(f"/containers/{container_id}/json")
        response.raise_for_status()
        return response.json()


def kill(container_id: str, signal: str = "KILL") -> None:
    with docker() as client:
        client.post(f"/containers/{container_id}/kill", params={"signal": signal}).raise_for_status()


def force_remove_all(deployment_id: str) -> None:
    with docker() as client:
        for container in containers_of(deployment_id):
            client.delete(f"/containers/{container['Id']}", params={"force": "true", "v": "true"})
