"""Credential values: `ring_pat_` tokens (sessions and PATs) and `tk_stream_` tickets (api.md §2.1).

A token is `ring_pat_` + 64 lowercase hex characters (32 random bytes). Only its
SHA-256 hex digest is stored; the clear value is shown once. `token_prefix` (the
first 15 characters) is kept in clear so people can recognise their tokens.
"""

from __future__ import annotations

import hashlib
import secrets
import string

__all__ = [
    "PREFIX_LENGTH",
    "TICKET_PREFIX",
    "TOKEN_PREFIX",
    "generate_ticket",
    "generate_token",
    "hash_token",
    "token_prefix",
]

TOKEN_PREFIX = "ring_pat_"
PREFIX_LENGTH = 15
TICKET_PREFIX = "tk_stream_"
_TICKET_ALPHABET = string.ascii_letters + string.digits


def generate_token() -> str:
    """A fresh clear token: `ring_pat_` + 64 lowercase hex characters."""
    return TOKEN_PREFIX + secrets.token_hex(32)


def hash_token(clear: str) -> str:
    """SHA-256 hex of the full clear value: what the token table stores."""
    return hashlib.sha256(clear.encode("utf-8")).hexdigest()


def token_prefix(clear: str) -> str:
    """The displayable start of a token (`ring_pat_` + 6 hex)."""
    return clear[:PREFIX_LENGTH]


def generate_ticket() -> str:
    """A stream ticket: `tk_stream_` + 48 alphanumerics."""
    return TICKET_PREFIX + "".join(secrets.choice(_TICKET_ALPHABET) for _ in range(48))
