"""Scopes, roles and the route -> scope map (api.md §2.3-§2.5, §4).

Deny by default: a matched route missing from `ROUTE_SCOPES` is reachable only with
`admin`. Route templates use `{name}` placeholders, as in the spec's endpoint index.

| Marker          | Meaning                                                         |
|-----------------|-----------------------------------------------------------------|
| `PUBLIC`        | no credential needed (`/login`, `/healthz`, `/metrics`, ...)     |
| `AUTHENTICATED` | any valid credential; the handler applies its own rules          |
| a scope         | the credential must hold it, or `admin`                          |
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

__all__ = [
    "ADMIN",
    "AUTHENTICATED",
    "PUBLIC",
    "ROLES",
    "ROLE_SCOPES",
    "ROUTE_SCOPES",
    "SCOPES",
    "has_scope",
    "required_scope",
    "role_allows",
]

ADMIN: Final = "admin"
PUBLIC: Final = "<public>"
AUTHENTICATED: Final = "<authenticated>"

SCOPES: Final[tuple[str, ...]] = (
    "deployments:read",
    "deployments:write",
    "secrets:read",
    "secrets:write",
    "configs:read",
    "configs:write",
    "namespaces:read",
    "namespaces:write",
    "volumes:read",
    "volumes:write",
    "users:read",
    "users:write",
    "webhooks:read",
    "webhooks:write",
    ADMIN,
)

ROLES: Final[tuple[str, ...]] = ("admin", "operator", "viewer")

_READ: Final = tuple(s for s in SCOPES if s.endswith(":read"))
_OPERATOR_WRITE: Final = tuple(s for s in SCOPES if s.endswith(":write") and s != "users:write")

ROLE_SCOPES: Final[dict[str, tuple[str, ...]]] = {
    "viewer": _READ,
    "operator": _READ + _OPERATOR_WRITE,
    "admin": (ADMIN,),
}
"""Scopes frozen into a login session for each role (api.md §2.5)."""

ROUTE_SCOPES: Final[dict[tuple[str, str], str]] = {
    # public
    ("POST", "/login"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    # auth
    ("POST", "/logout"): AUTHENTICATED,
    ("POST", "/auth/stream-ticket"): "deployments:read",
    # deployments
    ("GET", "/deployments"): "deployments:read",
    ("POST", "/deployments"): "deployments:write",
    ("GET", "/deployments/{id}"): "deployments:read",
    ("DELETE", "/deployments/{id}"): "deployments:write",
    ("GET", "/deployments/{id}/logs"): "deployments:read",
    ("GET", "/deployments/{id}/events"): "deployments:read",
    ("GET", "/deployments/{id}/health-checks"): "deployments:read",
    ("GET", "/deployments/{id}/metrics"): "deployments:read",
    ("GET", "/events"): "deployments:read",
    ("GET", "/node/get"): "deployments:read",
    # namespaces
    ("GET", "/namespaces"): "namespaces:read",
    ("POST", "/namespaces"): "namespaces:write",
    ("GET", "/namespaces/{id}"): "namespaces:read",
    ("DELETE", "/namespaces/{id}"): "namespaces:write",
    ("GET", "/namespaces/{id}/audit"): "namespaces:read",
    # configs, secrets, volumes, webhooks (served by their own modules)
    ("GET", "/configs"): "configs:read",
    ("POST", "/configs"): "configs:write",
    ("GET", "/configs/{id}"): "configs:read",
    ("PUT", "/configs/{id}"): "configs:write",
    ("DELETE", "/configs/{id}"): "configs:write",
    ("GET", "/secrets"): "secrets:read",
    ("POST", "/secrets"): "secrets:write",
    ("GET", "/secrets/{id}"): "secrets:read",
    ("DELETE", "/secrets/{id}"): "secrets:write",
    ("GET", "/volumes"): "volumes:read",
    ("POST", "/volumes"): "volumes:write",
    ("GET", "/volumes/{id}"): "volumes:read",
    ("DELETE", "/volumes/{id}"): "volumes:write",
    ("GET", "/webhooks"): "webhooks:read",
    ("POST", "/webhooks"): "webhooks:write",
    ("DELETE", "/webhooks/{id}"): "webhooks:write",
    ("GET", "/webhooks/{id}/events"): "webhooks:read",
    # users (handler rules on top, api.md §2.5)
    ("GET", "/users"): "users:read",
    ("POST", "/users"): "users:write",
    ("GET", "/users/me"): "users:read",
    ("PUT", "/users/{id}"): "users:read",
    ("DELETE", "/users/{id}"): "users:read",
    # tokens: Ring needs `admin`; ring-actors also lets a login session manage its
    # owner's PATs, with scopes bounded by the owner's role (api.md §16).
    ("GET", "/tokens"): AUTHENTICATED,
    ("POST", "/tokens"): AUTHENTICATED,
    ("GET", "/tokens/{id}"): AUTHENTICATED,
    ("DELETE", "/tokens/{id}"): AUTHENTICATED,
    ("POST", "/tokens/{id}/rotate"): AUTHENTICATED,
}


def required_scope(method: str, template: str) -> str:
    """The scope (or marker) a route needs; `admin` for unmapped routes (deny by default)."""
    if method == "HEAD":
        method = "GET"
    return ROUTE_SCOPES.get((method, template), ADMIN)


def has_scope(held: Iterable[str], scope: str) -> bool:
    """A credential passes if it holds `scope` or `admin`."""
    held = tuple(held)
    return scope in held or ADMIN in held


def role_allows(role: str, scope: str) -> bool:
    """Whether `role`'s session scopes include `scope` (the bound for minted PATs)."""
    return has_scope(ROLE_SCOPES.get(role, ()), scope)
