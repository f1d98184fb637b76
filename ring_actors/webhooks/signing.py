"""Request signing (api.md §14.3): `X-Ring-Signature: sha256=<hex HMAC-SHA256 of the raw body>`."""

from __future__ import annotations

import hashlib
import hmac
import secrets as _secrets

__all__ = ["PREFIX", "generate_secret", "sign", "signature_header", "verify"]

PREFIX = "sha256="
SECRET_PREFIX = "whsec_"


def generate_secret() -> str:
    """`whsec_` + 64 lowercase hex (32 random bytes), as Ring generates them."""
    return SECRET_PREFIX + _secrets.token_hex(32)


def sign(secret: str, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of `body` keyed by the secret's UTF-8 bytes."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes) -> str:
    return PREFIX + sign(secret, body)


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does: recompute and compare in constant time."""
    if not header.startswith(PREFIX):
        return False
    return hmac.compare_digest(header[len(PREFIX):], sign(secret, body))
