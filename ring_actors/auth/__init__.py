"""Authentication and authorization: passwords, tokens, scopes, roles, principals."""

from ring_actors.auth.passwords import hash_password, verify_nothing, verify_password
from ring_actors.auth.principal import Authenticator, Principal, TicketStore
from ring_actors.auth.scopes import (
    ADMIN,
    AUTHENTICATED,
    PUBLIC,
    ROLE_SCOPES,
    ROLES,
    SCOPES,
    has_scope,
    required_scope,
    role_allows,
)
from ring_actors.auth.tokens import generate_token, hash_token, token_prefix

__all__ = [
    "ADMIN",
    "AUTHENTICATED",
    "Authenticator",
    "PUBLIC",
    "Principal",
    "ROLES",
    "ROLE_SCOPES",
    "SCOPES",
    "TicketStore",
    "generate_token",
    "has_scope",
    "hash_password",
    "hash_token",
    "required_scope",
    "role_allows",
    "token_prefix",
    "verify_nothing",
    "verify_password",
]
