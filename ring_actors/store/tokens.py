"""The token table: login sessions (`kind = session`) and personal access tokens (`kind = pat`).

Only the SHA-256 of a token is stored (resources.md §6). `scopes` and `namespaces`
are JSON arrays. Revocation sets `revoked_at`; rows are never deleted except with
their user.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from ring_actors.auth.tokens import generate_token, hash_token, token_prefix
from ring_actors.store.db import Database, utcnow

__all__ = ["Credential", "TokenRecord", "TokenRepo", "revoke_all_sync"]


@dataclass(frozen=True)
class TokenRecord:
    id: str
    user_id: str
    kind: str
    name: str | None
    token_prefix: str
    scopes: list[str]
    namespaces: list[str]
    created_at: str
    expire_at: str | None = None
    last_used_at: str | None = None
    revoked_at: str | None = None


@dataclass(frozen=True)
class Credential:
    """A token row joined with its (existing) user: what the auth layer resolves."""

    token: TokenRecord
    username: str
    role: str


def _record(row: sqlite3.Row) -> TokenRecord:
    return TokenRecord(
        id=row["id"],
        user_id=row["user_id"],
        kind=row["kind"],
        name=row["name"],
        token_prefix=row["token_prefix"],
        scopes=json.loads(row["scopes"]),
        namespaces=json.loads(row["namespaces"]),
        created_at=row["created_at"],
        expire_at=row["expire_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )


def _insert_sync(
    conn: sqlite3.Connection,
    *,
    user_id: str,
    kind: str,
    name: str | None,
    scopes: Sequence[str],
    namespaces: Sequence[str],
    expire_at: str | None,
) -> tuple[TokenRecord, str]:
    clear = generate_token()
    record = TokenRecord(
        id=str(uuid.uuid4()),
        user_id=user_id,
        kind=kind,
        name=name,
        token_prefix=token_prefix(clear),
        scopes=list(scopes),
        namespaces=list(namespaces),
        created_at=utcnow(),
        expire_at=expire_at,
    )
    conn.execute(
        "INSERT INTO token (id, user_id, kind, name, token_hash, token_prefix, scopes, namespaces,"
        " created_at, expire_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (
            record.id,
            user_id,
            kind,
            name,
            hash_token(clear),
            record.token_prefix,
            json.dumps(record.scopes),
            json.dumps(record.namespaces),
            record.created_at,
            expire_at,
        ),
    )
    return record, clear


def revoke_all_sync(conn: sqlite3.Connection, user_id: str) -> int:
    """Revoke every live credential of a user inside the caller's transaction."""
    return conn.execute(
        "UPDATE token SET revoked_at=? WHERE user_id=? AND revoked_at IS NULL", (utcnow(), user_id)
    ).rowcount


class TokenRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        user_id: str,
        *,
        kind: str,
        scopes: Sequence[str],
        namespaces: Sequence[str] = (),
        name: str | None = None,
        expire_at: str | None = None,
    ) -> tuple[TokenRecord, str]:
        """Insert a new credential; returns the row and the clear value (shown once)."""
        return await self.db.call(
            lambda conn: _insert_sync(
                conn,
                user_id=user_id,
                kind=kind,
                name=name,
                scopes=scopes,
                namespaces=namespaces,
                expire_at=expire_at,
            )
        )

    async def lookup(self, clear: str) -> Credential | None:
        """The credential whose hash matches `clear`, if its user still exists.

        Revocation and expiry are the caller's to judge (it knows the clock).
        """
        digest = hash_token(clear)

        def run(conn: sqlite3.Connection) -> Credential | None:
            row = conn.execute(
                "SELECT token.*, user.username AS username, user.role AS role FROM token"
                " JOIN user ON user.id = token.user_id WHERE token.token_hash=?",
                (digest,),
            ).fetchone()
            if row is None:
                return None
            return Credential(_record(row), row["username"], row["role"])

        return await self.db.call(run)

    async def list_pats(self, user_id: str) -> list[TokenRecord]:
        """The user's PATs, newest first (sessions are never listed)."""

        def run(conn: sqlite3.Connection) -> list[TokenRecord]:
            rows = conn.execute(
                "SELECT * FROM token WHERE user_id=? AND kind='pat' ORDER BY created_at DESC, rowid DESC",
                (user_id,),
            )
            return [_record(row) for row in rows]

        return await self.db.call(run)

    async def get_pat(self, token_id: str, user_id: str) -> TokenRecord | None:
        def run(conn: sqlite3.Connection) -> TokenRecord | None:
            row = conn.execute(
                "SELECT * FROM token WHERE id=? AND user_id=? AND kind='pat'", (token_id, user_id)
            ).fetchone()
            return _record(row) if row else None

        return await self.db.call(run)

    async def revoke(self, token_id: str) -> bool:
        """Set `revoked_at` (kept when already revoked). False when the id is unknown."""

        def run(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "UPDATE token SET revoked_at=COALESCE(revoked_at, ?) WHERE id=?", (utcnow(), token_id)
            )
            return cursor.rowcount == 1

        return await self.db.call(run)

    async def rotate(self, token_id: str, user_id: str) -> tuple[TokenRecord, str] | None:
        """Revoke a PAT and mint its twin (same name, scopes, namespaces, expiry), atomically."""

        def run(conn: sqlite3.Connection) -> tuple[TokenRecord, str] | None:
            row = conn.execute(
                "SELECT * FROM token WHERE id=? AND user_id=? AND kind='pat'", (token_id, user_id)
            ).fetchone()
            if row is None:
                return None
            old = _record(row)
            conn.execute(
                "UPDATE token SET revoked_at=COALESCE(revoked_at, ?) WHERE id=?", (utcnow(), token_id)
            )
            return _insert_sync(
                conn,
                user_id=user_id,
                kind="pat",
                name=old.name,
                scopes=old.scopes,
                namespaces=old.namespaces,
                expire_at=old.expire_at,
            )

        return await self.db.call(run)

    async def revoke_all(self, user_id: str) -> int:
        return await self.db.call(lambda conn: revoke_all_sync(conn, user_id))

    async def touch(self, token_id: str, when: str | None = None) -> None:
        """Record a use (`last_used_at`); the auth layer throttles calls to once a minute."""
        stamp = when or utcnow()
        await self.db.call(
            lambda conn: conn.execute("UPDATE token SET last_used_at=? WHERE id=?", (stamp, token_id))
        )
