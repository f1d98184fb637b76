"""Secrets (resources.md §2): values encrypted at rest, never returned by the API.

Each value is sealed with AES-256-GCM under `RING_SECRET_KEY` with a fresh random
12-byte nonce; the stored blob is `nonce ‖ ciphertext ‖ 16-byte tag`, as Ring
stores it. Decryption checks the tag, so a wrong key or a tampered blob raises
`SecretUnreadable` instead of yielding garbage. Plaintext leaves this module only
through `SecretRepo.value()` / `StoreSecretSource`, i.e. to the spec builder.
"""

from __future__ import annotations

import os
import sqlite3
import uuid

import msgspec
import trio
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ring_actors.store.configs import ConfigRepo
from ring_actors.store.db import Database, utcnow
from ring_actors.store.named_resources import NamedResourceRepo, ResourceInUse
from ring_actors.store.references import secret_references

__all__ = [
    "NONCE_SIZE",
    "NamespaceMissing",
    "Secret",
    "SecretCreated",
    "SecretExists",
    "SecretInUse",
    "SecretRepo",
    "SecretUnreadable",
    "StoreSecretSource",
    "decrypt",
    "encrypt",
]

NONCE_SIZE = 12
TAG_SIZE = 16
KEY_SIZE = 32


class Secret(msgspec.Struct, kw_only=True):
    """Secret metadata as `GET /secrets` shows it (api.md §8). There is no value field."""

    id: str
    created_at: str
    updated_at: str | None
    namespace: str
    name: str


class SecretCreated(msgspec.Struct, kw_only=True):
    """The `201` body of `POST /secrets` (Ring returns no `updated_at` there)."""

    id: str
    created_at: str
    namespace: str
    name: str


class SecretExists(Exception):
    def __init__(self, namespace: str, name: str) -> None:
        super().__init__(f"secret '{name}' already exists in namespace '{namespace}'")


class NamespaceMissing(Exception):
    def __init__(self, namespace: str) -> None:
        super().__init__(f"namespace '{namespace}' does not exist")
        self.namespace = namespace


class SecretInUse(ResourceInUse):
    """Delete refused: active deployments reference the secret."""


class SecretUnreadable(Exception):
    """A stored blob does not decrypt: wrong `RING_SECRET_KEY`, or the blob was altered."""


def encrypt(key: bytes, plaintext: bytes) -> bytes:
    """Seal `plaintext`: `nonce ‖ ciphertext ‖ tag` with a fresh random nonce."""
    if len(key) != KEY_SIZE:
        raise ValueError("AES-256-GCM needs a 32-byte key")
    nonce = os.urandom(NONCE_SIZE)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, None)


def decrypt(key: bytes, blob: bytes) -> bytes:
    """Open a blob made by `encrypt`. Raises SecretUnreadable when the tag does not verify."""
    if len(blob) < NONCE_SIZE + TAG_SIZE:
        raise SecretUnreadable("stored secret is truncated")
    try:
        return AESGCM(key).decrypt(blob[:NONCE_SIZE], blob[NONCE_SIZE:], None)
    except InvalidTag:
        raise SecretUnreadable(
            "stored secret cannot be decrypted: RING_SECRET_KEY differs from the key it was created with,"
            " or the stored value was altered"
        ) from None


def _secret(row: sqlite3.Row) -> Secret:
    return Secret(
        id=row["id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        namespace=row["namespace"],
        name=row["name"],
    )


class SecretRepo(NamedResourceRepo[Secret]):
    """The `secret` table. Only `value()` ever decrypts; list, get and guarded delete come from NamedResourceRepo."""

    def __init__(self, db: Database, key: bytes) -> None:
        super().__init__(db, table="secret", from_row=_secret, find_references=secret_references, in_use=SecretInUse)
        self._key = key

    async def create(self, namespace: str, name: str, value: str) -> SecretCreated:
        """Encrypt and insert. Raises NamespaceMissing, SecretExists."""
        blob = encrypt(self._key, value.encode())
        created = SecretCreated(id=str(uuid.uuid4()), created_at=utcnow(), namespace=namespace, name=name)

        def run(conn: sqlite3.Connection) -> SecretCreated:
            if conn.execute("SELECT 1 FROM namespace WHERE name=?", (namespace,)).fetchone() is None:
                raise NamespaceMissing(namespace)
            if self._name_taken(conn, namespace, name):
                raise SecretExists(namespace, name)
            conn.execute(
                "INSERT INTO secret (id, namespace, name, value, created_at, updated_at) VALUES (?,?,?,?,?,NULL)",
                (created.id, namespace, name, blob, created.created_at),
            )
            return created

        return await self.db.call(run)

    async def value(self, namespace: str, name: str) -> bytes | None:
        """The decrypted value, or None when there is no such secret. Raises SecretUnreadable."""

        def run(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute(
                "SELECT value FROM secret WHERE namespace=? AND name=?", (namespace, name)
            ).fetchone()
            return bytes(row["value"]) if row else None

        blob = await self.db.call(run)
        if blob is None:
            return None
        return await trio.to_thread.run_sync(decrypt, self._key, blob)


class StoreSecretSource:
    """The spec builder's `SecretSource` over the store (built by server.py)."""

    def __init__(self, db: Database, key: bytes) -> None:
        self._secrets = SecretRepo(db, key)
        self._configs = ConfigRepo(db)

    async def secret_value(self, namespace: str, name: str) -> bytes | None:
        return await self._secrets.value(namespace, name)

    async def config_value(self, namespace: str, name: str, key: str) -> bytes | None:
        return await self._configs.value(namespace, name, key)
