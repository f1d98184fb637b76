"""User accounts (resources.md §5): unique usernames, one role each, Argon2id passwords.

Rules that must hold under concurrency live here, inside one transaction each:
the last admin can be neither demoted nor deleted, and a role change revokes every
credential of the account in the same transaction as the change.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from dataclasses import dataclass

import msgspec
import trio

from ring_actors.auth.passwords import hash_password
from ring_actors.store.db import Database, utcnow
from ring_actors.store.tokens import revoke_all_sync

__all__ = [
    "DEFAULT_ADMIN_ID",
    "LastAdmin",
    "User",
    "UserNotFound",
    "UserRepo",
    "UserUpdate",
    "UsernameTaken",
    "seed_default_admin",
]

log = logging.getLogger(__name__)

DEFAULT_ADMIN_ID = "1c5a5fe9-84e0-4a18-821e-8058232c2c23"
DEFAULT_ADMIN_USERNAME = "admin"
DEFAULT_ADMIN_PASSWORD = "changeme"


class User(msgspec.Struct, kw_only=True):
    """A user as the API shows it: Ring's fields plus `role` (api.md §16). Never the password."""

    id: str
    username: str
    role: str
    status: str
    created_at: str
    updated_at: str | None
    login_at: str | None


class UsernameTaken(Exception):
    def __init__(self, username: str) -> None:
        super().__init__(f"username '{username}' is already taken")
        self.username = username


class LastAdmin(Exception):
    """The change would leave no admin account."""


class UserNotFound(Exception):
    pass


@dataclass(frozen=True)
class UserUpdate:
    """What `PUT /users/{id}` changes; None = unchanged."""

    username: str | None = None
    password_hash: str | None = None
    role: str | None = None


def _user(row: sqlite3.Row) -> User:
    return User(
        id=row["id"],
        username=row["username"],
        role=row["role"],
        status=row["status"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        login_at=row["login_at"],
    )


def _admin_count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM user WHERE role='admin'").fetchone()[0]


def _username_taken(conn: sqlite3.Connection, username: str, except_id: str | None = None) -> bool:
    row = conn.execute("SELECT id FROM user WHERE username=?", (username,)).fetchone()
    return row is not None and row["id"] != except_id


class UserRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, username: str, password_hash: str, *, role: str = "viewer") -> User:
        """Insert a user. Raises UsernameTaken."""
        now = utcnow()
        user_id = str(uuid.uuid4())

        def run(conn: sqlite3.Connection) -> User:
            if _username_taken(conn, username):
                raise UsernameTaken(username)
            conn.execute(
                "INSERT INTO user (id, username, password_hash, role, status, created_at)"
                " VALUES (?,?,?,?, 'active', ?)",
                (user_id, username, password_hash, role, now),
            )
            return _user(conn.execute("SELECT * FROM user WHERE id=?", (user_id,)).fetchone())

        return await self.db.call(run)

    async def get(self, user_id: str) -> User | None:
        def run(conn: sqlite3.Connection) -> User | None:
            row = conn.execute("SELECT * FROM user WHERE id=?", (user_id,)).fetchone()
            return _user(row) if row else None

        return await self.db.call(run)

    async def credentials(self, username: str) -> tuple[User, str] | None:
        """The user and its password hash, for login."""

        def run(conn: sqlite3.Connection) -> tuple[User, str] | None:
            row = conn.execute("SELECT * FROM user WHERE username=?", (username,)).fetchone()
            return (_user(row), row["password_hash"]) if row else None

        return await self.db.call(run)

    async def list(self) -> list[User]:
        def run(conn: sqlite3.Connection) -> list[User]:
            return [_user(r) for r in conn.execute("SELECT * FROM user ORDER BY created_at, username")]

        return await self.db.call(run)

    async def update(self, user_id: str, change: UserUpdate) -> tuple[User, bool]:
        """Apply `change` atomically; returns the user and whether its credentials were revoked.

        Raises:
            UserNotFound, UsernameTaken, LastAdmin (demoting the only admin).
        """
        now = utcnow()

        def run(conn: sqlite3.Connection) -> tuple[User, bool]:
            row = conn.execute("SELECT * FROM user WHERE id=?", (user_id,)).fetchone()
            if row is None:
                raise UserNotFound(user_id)
            sets: list[str] = []
            args: list[str] = []
            if change.username is not None and change.username != row["username"]:
                if _username_taken(conn, change.username, except_id=user_id):
                    raise UsernameTaken(change.username)
                sets.append("username=?")
                args.append(change.username)
            if change.password_hash is not None:
                sets.append("password_hash=?")
                args.append(change.password_hash)
            role_changed = change.role is not None and change.role != row["role"]
            if role_changed:
                if row["role"] == "admin" and _admin_count(conn) <= 1:
                    raise LastAdmin()
                sets.append("role=?")
                args.append(change.role)  # type: ignore[arg-type]
            if sets:
                sets.append("updated_at=?")
                args.append(now)
                conn.execute(f"UPDATE user SET {', '.join(sets)} WHERE id=?", (*args, user_id))
            if role_changed:
                revoke_all_sync(conn, user_id)
            return _user(conn.execute("SELECT * FROM user WHERE id=?", (user_id,)).fetchone()), role_changed

        return await self.db.call(run)

    async def delete(self, user_id: str) -> None:
        """Delete a user and its credentials. Raises UserNotFound, LastAdmin."""

        def run(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT role FROM user WHERE id=?", (user_id,)).fetchone()
            if row is None:
                raise UserNotFound(user_id)
            if row["role"] == "admin" and _admin_count(conn) <= 1:
                raise LastAdmin()
            conn.execute("DELETE FROM token WHERE user_id=?", (user_id,))
            conn.execute("DELETE FROM user WHERE id=?", (user_id,))

        await self.db.call(run)

    async def stamp_login(self, user_id: str) -> None:
        now = utcnow()
        await self.db.call(lambda conn: conn.execute("UPDATE user SET login_at=? WHERE id=?", (now, user_id)))


async def seed_default_admin(db: Database) -> None:
    """Create `admin` / `changeme` (role admin, fixed id) on a fresh database (config.md §9).

    Idempotent. When no admin exists any more (e.g. an upgrade), the account with the
    fixed id is promoted; if the fixed id is gone too, nothing is created over it.
    """

    def state(conn: sqlite3.Connection) -> tuple[int, bool]:
        users = conn.execute("SELECT COUNT(*) FROM user").fetchone()[0]
        seeded = conn.execute("SELECT 1 FROM user WHERE id=?", (DEFAULT_ADMIN_ID,)).fetchone() is not None
        return users, seeded

    users, seeded = await db.call(state)
    if users == 0:
        encoded = await trio.to_thread.run_sync(hash_password, DEFAULT_ADMIN_PASSWORD)
        now = utcnow()

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR IGNORE INTO user (id, username, password_hash, role, status, created_at)"
                " VALUES (?,?,?, 'admin', 'active', ?)",
                (DEFAULT_ADMIN_ID, DEFAULT_ADMIN_USERNAME, encoded, now),
            )

        await db.call(insert)
        log.warning(
            "created the default admin account '%s' with password '%s': change it (ring user update)",
            DEFAULT_ADMIN_USERNAME,
            DEFAULT_ADMIN_PASSWORD,
        )
        return

    def promote(conn: sqlite3.Connection) -> bool:
        if _admin_count(conn) > 0:
            return False
        return conn.execute(
            "UPDATE user SET role='admin', updated_at=? WHERE id=?", (utcnow(), DEFAULT_ADMIN_ID)
        ).rowcount == 1

    if seeded and await db.call(promote):
        log.warning("no admin account was left: promoted the default admin account (%s)", DEFAULT_ADMIN_ID)
