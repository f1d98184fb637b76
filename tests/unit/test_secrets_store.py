"""Secrets at rest: AES-256-GCM blobs, metadata-only reads, structural reference tracking."""

from __future__ import annotations

import base64
import json
import os
import uuid

import msgspec
import pytest

from ring_actors.http.secrets import validate_secret
from ring_actors.schemas.manifest import Deployment
from ring_actors.store.configs import ConfigInUse, ConfigRepo
from ring_actors.store.db import Database, utcnow
from ring_actors.store.deployments import DeploymentRepo
from ring_actors.store.namespaces import NamespaceNotEmpty, NamespaceRepo
from ring_actors.store.secrets import (
    NONCE_SIZE,
    NamespaceMissing,
    SecretExists,
    SecretInUse,
    SecretRepo,
    SecretUnreadable,
    StoreSecretSource,
    decrypt,
    encrypt,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


async def _db() -> Database:
    return await Database.open(":memory:")


async def _stored_blob(db: Database, secret_id: str) -> bytes:
    return await db.call(lambda c: bytes(c.execute("SELECT value FROM secret WHERE id=?", (secret_id,)).fetchone()[0]))


def test_encrypt_round_trip_with_fresh_nonce() -> None:
    """Verify the blob is nonce ‖ ciphertext ‖ 16-byte tag, decrypts back, and never repeats a nonce."""
    first = encrypt(KEY, b"s3cret!")
    second = encrypt(KEY, b"s3cret!")
    assert len(first) == NONCE_SIZE + len(b"s3cret!") + 16
    assert b"s3cret!" not in first
    assert first[:NONCE_SIZE] != second[:NONCE_SIZE] and first != second
    assert decrypt(KEY, first) == decrypt(KEY, second) == b"s3cret!"


def test_wrong_key_tampered_or_truncated_blob_is_refused() -> None:
    """Verify a different key, one flipped bit anywhere, or a short blob raise SecretUnreadable."""
    blob = encrypt(KEY, b"value")
    with pytest.raises(SecretUnreadable, match="RING_SECRET_KEY"):
        decrypt(OTHER_KEY, blob)
    for position in (0, NONCE_SIZE, len(blob) - 1):  # nonce, ciphertext, tag
        tampered = bytearray(blob)
        tampered[position] ^= 0x01
        with pytest.raises(SecretUnreadable):
            decrypt(KEY, bytes(tampered))
    with pytest.raises(SecretUnreadable, match="truncated"):
        decrypt(KEY, blob[:20])


def test_ring_compatible_blob_layout() -> None:
    """Verify a blob sealed by any AES-256-GCM implementation with Ring's layout opens here."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    blob = nonce + AESGCM(KEY).encrypt(nonce, "héllo\nworld".encode(), None)
    assert decrypt(KEY, blob).decode() == "héllo\nworld"


async def test_create_stores_only_ciphertext_and_returns_metadata() -> None:
    """Verify the row holds a decryptable blob, not the value, and no read returns the value."""
    db = await _db()
    await NamespaceRepo(db).create("prod")
    repo = SecretRepo(db, KEY)
    created = await repo.create("prod", "db-password", "hunter22")
    assert set(msgspec.to_builtins(created)) == {"id", "created_at", "namespace", "name"}
    blob = await _stored_blob(db, created.id)
    assert b"hunter22" not in blob and decrypt(KEY, blob) == b"hunter22"
    listed = await repo.list()
    fetched = await repo.get(created.id)
    for shown in (*listed, fetched):
        encoded = msgspec.json.encode(shown)
        assert b"hunter22" not in encoded
        assert set(msgspec.to_builtins(shown)) == {"id", "created_at", "updated_at", "namespace", "name"}
    assert await repo.value("prod", "db-password") == b"hunter22"
    assert await repo.value("prod", "missing") is None
    assert await repo.value("other", "db-password") is None  # namespaced


async def test_create_needs_namespace_and_unique_name() -> None:
    """Verify a missing namespace and a duplicate (namespace, name) are refused, other namespaces are not."""
    db = await _db()
    repo = SecretRepo(db, KEY)
    with pytest.raises(NamespaceMissing):
        await repo.create("nowhere", "x1", "v")
    for ns in ("a1", "b1"):
        await NamespaceRepo(db).create(ns)
    await repo.create("a1", "token", "v")
    with pytest.raises(SecretExists, match="secret 'token' already exists in namespace 'a1'"):
        await repo.create("a1", "token", "w")
    await repo.create("b1", "token", "w")
    assert [s.namespace for s in await repo.list(["b1"])] == ["b1"]
    assert await repo.list([]) == []


async def test_value_under_another_key_fails_loudly() -> None:
    """Verify a server started with another RING_SECRET_KEY gets SecretUnreadable, not garbage."""
    db = await _db()
    await NamespaceRepo(db).create("prod")
    await SecretRepo(db, KEY).create("prod", "api-key", "abc")
    with pytest.raises(SecretUnreadable):
        await StoreSecretSource(db, OTHER_KEY).secret_value("prod", "api-key")
    assert await StoreSecretSource(db, KEY).secret_value("prod", "api-key") == b"abc"


def _deployment(name: str, namespace: str = "prod", status: str = "creating", **fields) -> Deployment:
    body = {"id": str(uuid.uuid4()), "created_at": utcnow(), "name": name, "namespace": namespace,
            "runtime": "docker", "image": "busybox", "status": status, **fields}
    return msgspec.convert(body, Deployment)


async def test_references_cover_env_secret_volume_and_pull_secret() -> None:
    """Verify delete protection sees env secretRef, secret volumes and image_pull_secret, but not deleted rows."""
    db = await _db()
    await NamespaceRepo(db).create("prod")
    repo = SecretRepo(db, KEY)
    deployments = DeploymentRepo(db)
    env_user = _deployment("api", environment={"DB": {"secretRef": "shared"}, "PLAIN": "shared"})
    vol_user = _deployment("worker", volumes=[{"type": "secret", "source": "shared", "destination": "/s"}])
    pull_user = _deployment("puller", config={"image_pull_secret": "shared"})
    gone = _deployment("old", status="deleted", environment={"X": {"secretRef": "shared"}})
    elsewhere = _deployment("api", namespace="dev", environment={"X": {"secretRef": "shared"}})
    for d in (env_user, vol_user, pull_user, gone, elsewhere):
        await deployments.insert(d)
    secret = await repo.create("prod", "shared", "v")
    unused = await repo.create("prod", "unused", "v")
    refs = await repo.references("prod", "shared")
    assert sorted((r.deployment, r.use) for r in refs) == [
        ("prod/api", "environment.DB"),
        ("prod/puller", "config.image_pull_secret"),
        ("prod/worker", "volumes[0]"),
    ]
    with pytest.raises(SecretInUse) as refused:
        await repo.delete(secret.id)
    assert refused.value.deployments == ["prod/api", "prod/puller", "prod/worker"]
    assert await repo.get(secret.id) is not None  # nothing deleted
    assert (await repo.delete(unused.id)) is not None
    assert (await repo.delete(secret.id, force=True)) is not None
    assert await repo.get(secret.id) is None
    assert await repo.delete(secret.id) is None


async def test_config_delete_is_protected_too() -> None:
    """Verify a config mounted by an active deployment needs force, unlike Ring."""
    db = await _db()
    configs = ConfigRepo(db)
    mounted = await configs.create("prod", "nginx", json.dumps({"site.conf": "listen 80;"}))
    other = await configs.create("prod", "spare", "{}")
    user = _deployment(
        "web", volumes=[{"type": "config", "source": "nginx", "key": "site.conf", "destination": "/etc/site.conf"}]
    )
    await DeploymentRepo(db).insert(user)
    with pytest.raises(ConfigInUse) as refused:
        await configs.delete(mounted.id)
    assert refused.value.deployments == ["prod/web"]
    assert await configs.delete(other.id) is not None
    assert await configs.delete(mounted.id, force=True) is not None


async def test_namespace_with_secrets_or_configs_cannot_be_deleted() -> None:
    """Verify namespace deletion counts the namespace's secrets and configs."""
    db = await _db()
    namespaces = NamespaceRepo(db)
    await namespaces.create("prod")
    secret = await SecretRepo(db, KEY).create("prod", "token", "v")
    config = await ConfigRepo(db).create("prod", "conf", "{}")
    with pytest.raises(NamespaceNotEmpty) as refused:
        await namespaces.delete("prod", user_id=None, seq=db.next_seq())
    assert refused.value.remaining == 2
    await SecretRepo(db, KEY).delete(secret.id)
    with pytest.raises(NamespaceNotEmpty):
        await namespaces.delete("prod", user_id=None, seq=db.next_seq())
    await ConfigRepo(db).delete(config.id)
    assert await namespaces.delete("prod", user_id=None, seq=db.next_seq())


def test_secret_validation_codes() -> None:
    """Verify api.md §8's codes, all reported at once, and the 1 MiB bound counted in bytes."""
    codes = sorted(v.code for v in validate_secret("A", "-", ""))
    assert codes == [
        "secret.name.format", "secret.name.length", "secret.namespace.format", "secret.namespace.length",
        "secret.value.length",
    ]
    assert validate_secret("prod", "DB_pass.v2", "x") == []
    assert [v.code for v in validate_secret("prod", "ok", "é" * (512 * 1024 + 1))] == ["secret.value.length"]
    assert validate_secret("prod", "ok", "x" * (1024 * 1024)) == []


def test_key_is_checked() -> None:
    """Verify a key of the wrong size is refused before anything is sealed."""
    with pytest.raises(ValueError):
        encrypt(base64.b64decode("AAAA"), b"x")
