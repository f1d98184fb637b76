"""The named-volume registry at rest: rows, validation rules, mount references, auto-registration."""

from __future__ import annotations

import uuid

import msgspec
import pytest

from ring_actors.http.volumes import validate_volume
from ring_actors.schemas.manifest import Deployment
from ring_actors.store.db import Database, utcnow
from ring_actors.store.deployments import DeploymentRepo
from ring_actors.store.namespaces import NamespaceRepo
from ring_actors.store.volumes import (
    NamespaceMissing,
    VolumeExists,
    VolumeInUse,
    VolumeRepo,
    mounted_volume_names,
    register_mounted_volumes,
)


async def _db() -> Database:
    db = await Database.open(":memory:")
    await NamespaceRepo(db).create("prod")
    return db


def _deployment(name: str, namespace: str = "prod", status: str = "creating", **fields) -> Deployment:
    body = {"id": str(uuid.uuid4()), "created_at": utcnow(), "name": name, "namespace": namespace,
            "runtime": "docker", "image": "busybox", "status": status, **fields}
    return msgspec.convert(body, Deployment)


def _mount(type_: str, source: str, destination: str = "/data") -> dict:
    return {"type": type_, "source": source, "destination": destination}


async def test_create_list_get_with_ring_shapes() -> None:
    """Verify create returns Ring's five fields, and list/get the full row with host_path = name and labels."""
    db = await _db()
    repo = VolumeRepo(db)
    created = await repo.create("prod", "db-data", size=1024, labels={"tier": "db"})
    assert set(msgspec.to_builtins(created)) == {"id", "created_at", "namespace", "name", "backend_type"}
    assert created.backend_type == "local"
    fetched = await repo.get(created.id)
    assert fetched is not None
    assert msgspec.to_builtins(fetched) == {
        "id": created.id, "created_at": created.created_at, "updated_at": None, "namespace": "prod",
        "name": "db-data", "size": 1024, "backend_type": "local", "host_path": "db-data", "labels": {"tier": "db"},
    }
    await NamespaceRepo(db).create("dev")
    await repo.create("dev", "cache", backend_type="directory")
    assert [v.name for v in await repo.list()] == ["cache", "db-data"]
    assert [v.name for v in await repo.list(["prod"])] == ["db-data"]
    assert await repo.list([]) == []
    assert await repo.get("nope") is None


async def test_create_refuses_missing_namespace_and_duplicates() -> None:
    """Verify NamespaceMissing and VolumeExists carry Ring's messages."""
    repo = VolumeRepo(await _db())
    with pytest.raises(NamespaceMissing, match="namespace 'ghost' does not exist"):
        await repo.create("ghost", "db-data")
    await repo.create("prod", "db-data")
    with pytest.raises(VolumeExists, match="volume 'db-data' already exists in namespace 'prod'"):
        await repo.create("prod", "db-data")


async def test_delete_protection_counts_active_named_mounts_only() -> None:
    """Verify only `type: volume` mounts by active deployments of the same namespace block a delete, unless forced."""
    db = await _db()
    repo = VolumeRepo(db)
    deployments = DeploymentRepo(db)
    user = _deployment("api", volumes=[_mount("bind", "/srv"), _mount("volume", "db-data")])
    for other in (
        user,
        _deployment("old", status="deleted", volumes=[_mount("volume", "db-data")]),
        _deployment("api", namespace="dev", volumes=[_mount("volume", "db-data")]),
        _deployment("cfg", volumes=[{**_mount("config", "db-data"), "key": "k"}]),
    ):
        await deployments.insert(other)
    volume = await repo.create("prod", "db-data")
    unused = await repo.create("prod", "spare")
    with pytest.raises(VolumeInUse) as refused:
        await repo.delete(volume.id)
    assert refused.value.deployments == ["prod/api"]
    assert [(r.deployment_id, r.use) for r in refused.value.references] == [(user.id, "volumes[1]")]
    assert await repo.get(volume.id) is not None
    assert (await repo.delete(unused.id)) is not None
    deleted = await repo.delete(volume.id, force=True)
    assert deleted is not None and deleted.name == "db-data"
    assert await repo.get(volume.id) is None
    assert await repo.delete(volume.id) is None


async def test_register_mounted_volumes_is_idempotent() -> None:
    """Verify auto-registration adds each named volume once (local backend, or directory on Cloud Hypervisor),
    ignores other mount types, and leaves an existing row alone."""
    db = await _db()
    repo = VolumeRepo(db)
    explicit = await repo.create("prod", "shared", backend_type="directory", labels={"a": "b"})
    web = _deployment("web", volumes=[
        _mount("volume", "shared", "/a"), _mount("volume", "logs", "/b"), _mount("volume", "logs", "/c"),
        _mount("bind", "/srv", "/d"),
    ])
    assert mounted_volume_names(web) == ["shared", "logs"]
    assert await register_mounted_volumes(db, web) == ["logs"]
    assert await register_mounted_volumes(db, web) == []
    rows = {v.name: v for v in await repo.list(["prod"])}
    assert set(rows) == {"shared", "logs"}
    assert msgspec.to_builtins(rows["shared"]) == msgspec.to_builtins(await repo.get(explicit.id))
    logs = rows["logs"]
    assert (logs.backend_type, logs.host_path, logs.size, logs.labels) == ("local", "logs", None, {})
    vm = _deployment("vm", runtime="cloud-hypervisor", volumes=[_mount("volume", "disk")])
    assert await register_mounted_volumes(db, vm) == ["disk"]
    assert {v.name: v.backend_type for v in await repo.list()}["disk"] == "directory"
    assert await register_mounted_volumes(db, _deployment("plain")) == []


def test_validation_codes() -> None:
    """Verify api.md §11's rules: namespace DNS label, name 2-253 chars of [a-z0-9-_.], every violation at once."""
    assert validate_volume("prod", "db_data.v1") == []
    codes = sorted(v.code for v in validate_volume("P", "-"))
    assert codes == ["volume.name.format", "volume.name.length", "volume.namespace.format",
                     "volume.namespace.length"]
    assert [v.code for v in validate_volume("prod", "Data")] == ["volume.name.format"]
    assert [v.code for v in validate_volume("prod", "a" * 254)] == ["volume.name.length"]
