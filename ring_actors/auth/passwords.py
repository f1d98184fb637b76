"""Password hashing: Argon2id v1.3, m = 65536 KiB, t = 2, p = 4, 16-byte salt, 32-byte hash (api.md §12).

Verification accepts every Argon2 variant (Ring's seeded admin hash is Argon2i), so
databases carried over from Ring keep working. Hashing costs ~60 ms of CPU and 64 MiB
of memory: callers in the event loop run these functions in a worker thread with a
small capacity limiter (`ring_actors.http` does), never on the loop itself.
"""

from __future__ import annotations

import functools

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["hash_password", "verify_password", "verify_nothing"]

_HASHER = PasswordHasher(
    time_cost=2,
    memory_cost=65536,
    parallelism=4,
    hash_len=32,
    salt_len=16,
    type=Type.ID,
)


def hash_password(password: str) -> str:
    """A PHC-encoded Argon2id hash of `password`, with a fresh random salt."""
    return _HASHER.hash(password)


def verify_password(encoded: str, password: str) -> bool:
    """True when `password` matches the PHC string `encoded` (any Argon2 variant).

    A malformed or non-Argon2 `encoded` is a mismatch, never an exception.
    """
    try:
        return _HASHER.verify(encoded, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@functools.cache
def _dummy_hash() -> str:
    return _HASHER.hash("ring-actors: no such user")


def verify_nothing(password: str) -> bool:
    """Spend the time a real verification takes, so an unknown user and a wrong
    password cannot be told apart by timing. Always False."""
    verify_password(_dummy_hash(), password)
    return False
