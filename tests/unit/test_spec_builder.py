"""What the spec builder hands to a runtime from a deployment's `config` (manifest.md §11)."""

from __future__ import annotations

import uuid

from ring_actors.schemas.manifest import Deployment, RuntimeConfig
from ring_actors.store.db import utcnow
from ring_actors.supervisors.spec_builder import NoSecrets, build_instance_spec


def deployment(config: RuntimeConfig) -> Deployment:
    return Deployment(
        id=str(uuid.uuid4()), created_at=utcnow(), name="web", namespace="default", runtime="docker",
        image="registry.example:5000/app:v1", config=config,
    )


async def test_use_host_auth_is_carried_to_the_runtime() -> None:
    spec = await build_instance_spec(deployment(RuntimeConfig(use_host_auth=True)), NoSecrets())
    assert spec.use_host_auth is True
    assert spec.registry_auth is None  # the runtime resolves it from the host's files


async def test_without_use_host_auth_nothing_is_read_from_the_host() -> None:
    spec = await build_instance_spec(deployment(RuntimeConfig()), NoSecrets())
    assert spec.use_host_auth is False
