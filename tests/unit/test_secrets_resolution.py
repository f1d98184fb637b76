"""Pre-create resolution of secretRefs, secret/config volumes and image_pull_secret (lifecycle.md §5)."""

from __future__ import annotations

import base64
import json
import uuid

import msgspec
import pytest

from ring_actors.schemas.manifest import Deployment
from ring_actors.store.configs import ConfigRepo
from ring_actors.store.db import Database, utcnow
from ring_actors.store.namespaces import NamespaceRepo
from ring_actors.store.secrets import SecretRepo, StoreSecretSource
from ring_actors.supervisors.spec_builder import ResolutionFailure, build_instance_spec

from .actor_harness import running_tree

KEY = bytes(range(32))


def _deployment(**fields) -> Deployment:
    body = {"id": str(uuid.uuid4()), "created_at": utcnow(), "name": "web", "namespace": "prod",
            "runtime": "docker", "image": "busybox", **fields}
    return msgspec.convert(body, Deployment)


async def _source(
    secrets: dict[str, str] | None = None, configs: dict[str, dict] | None = None
) -> tuple[Database, StoreSecretSource]:
    db = await Database.open(":memory:")
    await NamespaceRepo(db).create("prod")
    for name, value in (secrets or {}).items():
        await SecretRepo(db, KEY).create("prod", name, value)
    for name, data in (configs or {}).items():
        await ConfigRepo(db).create("prod", name, json.dumps(data))
    return db, StoreSecretSource(db, KEY)


def _docker_config(registry: str, user: str, password: str) -> str:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    return json.dumps({"auths": {registry: {"auth": auth}}})


async def test_everything_resolves_into_the_spec() -> None:
    """Verify env secretRef, secret volume, config volume and pull secret reach the InstanceSpec."""
    _, source = await _source(
        secrets={"db-pass": "hunter22", "tls": "-----KEY-----\nabc\n", "pull": _docker_config("reg.example:5000", "u", "p")},
        configs={"app": {"app.conf": "port = 80\n", "limits": {"n": 3}}},
    )
    deployment = _deployment(
        image="reg.example:5000/team/app:v1",
        environment={"PLAIN": "x", "DB_PASSWORD": {"secretRef": "db-pass"}},
        volumes=[
            {"type": "secret", "source": "tls", "destination": "/run/tls.key"},
            {"type": "config", "source": "app", "key": "app.conf", "destination": "/etc/app.conf"},
            {"type": "config", "source": "app", "key": "limits", "destination": "/etc/limits.json"},
        ],
        config={"image_pull_secret": "pull"},
    )
    spec = await build_instance_spec(deployment, source)
    assert spec.env == {"PLAIN": "x", "DB_PASSWORD": "hunter22"}
    assert [(m.kind, m.destination, m.read_only, m.content) for m in spec.mounts] == [
        ("file", "/run/tls.key", True, b"-----KEY-----\nabc\n"),
        ("file", "/etc/app.conf", True, b"port = 80\n"),
        ("file", "/etc/limits.json", True, b'{"n": 3}'),
    ]
    assert spec.registry_auth is not None
    assert (spec.registry_auth.server, spec.registry_auth.username, spec.registry_auth.password) == (
        "reg.example:5000", "u", "p",
    )


async def test_docker_hub_pull_secret_uses_the_index_key() -> None:
    """Verify an image without a registry host takes the `https://index.docker.io/v1/` entry."""
    _, source = await _source(secrets={"hub": _docker_config("https://index.docker.io/v1/", "me", "pw")})
    spec = await build_instance_spec(_deployment(image="team/app", config={"image_pull_secret": "hub"}), source)
    assert spec.registry_auth is not None and spec.registry_auth.username == "me"


@pytest.mark.parametrize(
    ("fields", "reason", "needle"),
    [
        ({"environment": {"A": {"secretRef": "nope"}}}, "secret_resolution_error", "secret 'nope' not found"),
        ({"volumes": [{"type": "secret", "source": "nope", "destination": "/s"}]}, "volume_resolution_error",
         "Secret 'nope' not found"),
        ({"volumes": [{"type": "config", "source": "app", "key": "nokey", "destination": "/c"}]},
         "volume_resolution_error", "Config 'app' (key 'nokey') not found"),
        ({"volumes": [{"type": "config", "source": "nocfg", "key": "k", "destination": "/c"}]},
         "volume_resolution_error", "Config 'nocfg'"),
        ({"config": {"image_pull_secret": "nope"}}, "image_pull_secret_resolution_error", "'nope': secret not found"),
        ({"config": {"image_pull_secret": "plain"}}, "image_pull_secret_resolution_error", "not valid JSON"),
        ({"config": {"image_pull_secret": "other-reg"}, "image": "reg.example/app"},
         "image_pull_secret_resolution_error", "no usable entry for registry 'reg.example'"),
    ],
)
async def test_failures_carry_the_lifecycle_reason(fields: dict, reason: str, needle: str) -> None:
    """Verify each unresolvable reference raises ResolutionFailure with its §5 reason, status config_error."""
    _, source = await _source(
        secrets={"plain": "not json at all", "other-reg": _docker_config("elsewhere.io", "u", "p")},
        configs={"app": {"k": "v"}},
    )
    with pytest.raises(ResolutionFailure) as failed:
        await build_instance_spec(_deployment(**fields), source)
    disposition = failed.value.disposition
    assert (disposition.reason, disposition.status, disposition.permanent) == (reason, "config_error", True)
    assert needle in failed.value.message


async def test_all_problems_are_reported_in_one_event_without_values() -> None:
    """Verify every missing reference is named in one message, and no secret value appears in it."""
    _, source = await _source(secrets={"here": "topsecretvalue", "badpull": "topsecretvalue"})
    deployment = _deployment(
        environment={"OK": {"secretRef": "here"}, "A": {"secretRef": "gone1"}},
        volumes=[{"type": "secret", "source": "gone2", "destination": "/s"}],
        config={"image_pull_secret": "badpull"},
    )
    with pytest.raises(ResolutionFailure) as failed:
        await build_instance_spec(deployment, source)
    message = failed.value.message
    assert failed.value.reason == "volume_resolution_error"  # §5 order: secret volumes before env
    assert "gone1" in message and "gone2" in message and "badpull" in message
    assert "topsecretvalue" not in message


async def test_undecryptable_secret_is_a_resolution_error() -> None:
    """Verify a secret sealed under another key gives secret_resolution_error naming the key problem."""
    db, _ = await _source(secrets={"db-pass": "v"})
    other = StoreSecretSource(db, bytes(32))
    with pytest.raises(ResolutionFailure) as failed:
        await build_instance_spec(_deployment(environment={"P": {"secretRef": "db-pass"}}), other)
    assert failed.value.reason == "secret_resolution_error"
    assert "RING_SECRET_KEY" in failed.value.message


async def test_missing_secret_is_retried_without_crash_looping_then_recovers() -> None:
    """Verify the actor records the §5 event, shows config_error with a truthful restart_count, and
    comes up once the secret is created, without a re-apply."""
    db, source = await _source()
    async with running_tree(db=db) as tree:
        tree.ctx.secrets = source
        deployment = await tree.apply(namespace="prod", environment={"TOKEN": {"secretRef": "later"}})
        async with tree.watch(deployment.id) as until:
            await until("config_error")
            assert "secret_resolution_error" in await tree.reasons(deployment.id)
            stored = await tree.repo.get(deployment.id)
            assert stored is not None and stored.restart_count == 0
            await SecretRepo(db, KEY).create("prod", "later", "now-here")
            await until("running")
        [instance] = tree.runtime.running_for(deployment.id)
        assert instance.spec.env["TOKEN"] == "now-here"
        stored = await tree.repo.get(deployment.id)
        assert stored is not None and stored.restart_count == 0
