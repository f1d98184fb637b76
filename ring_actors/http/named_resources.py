"""What `/secrets` and `/configs` handlers share: 404 before 403 on a lookup by id, and a
delete refused with `409` while active deployments use the resource (api.md §8-§9, §16).

The 409 keeps Ring's `error`, `deployments` and `hint` keys as problem+json extension
members and adds every use, structurally, in `references`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

import msgspec
from quart import Response

from ring_actors.http.common import (
    empty,
    forbid_namespace,
    principal,
    query_bool,
    state,
)
from ring_actors.http.errors import ApiError
from ring_actors.store.named_resources import NamedResourceRepo, ResourceInUse

__all__ = ["IN_USE_HINT", "delete_unless_used", "find_visible"]

IN_USE_HINT = "Use ?force=true to delete anyway"


class _Named(Protocol):
    @property
    def namespace(self) -> str: ...

    @property
    def name(self) -> str: ...


N = TypeVar("N", bound=_Named)


async def find_visible(repo: NamedResourceRepo[N], resource_id: str, not_found: Callable[[str], ApiError]) -> N:
    """The resource, if it exists (else 404) and the caller may see its namespace (else 403)."""
    found = await repo.get(resource_id)
    if found is None:
        raise not_found(resource_id)
    if not principal().may_access(found.namespace):
        raise forbid_namespace(found.namespace)
    return found


async def delete_unless_used(
    repo: NamedResourceRepo[N],
    resource_id: str,
    *,
    kind: str,
    used_as: str,
    not_found: Callable[[str], ApiError],
) -> Response:
    """`DELETE /{kind}s/{id}`: 404, then 403, then 409 while used unless `?force=true`; audited.

    Args:
        kind: `secret` or `config`, as the audit log and the 409 name it.
        used_as: how deployments use it, for the 409 detail (`referenced`, `mounted`).
        not_found: the resource's 404, given the id.
    """
    st = state()
    who = principal()
    await find_visible(repo, resource_id, not_found)
    try:
        deleted = await repo.delete(resource_id, force=query_bool("force"))
    except ResourceInUse as exc:
        raise ApiError(
            409,
            f"{kind} is {used_as} by deployments: {', '.join(exc.deployments)}; {IN_USE_HINT}",
            extra={
                "error": f"{kind.capitalize()} is referenced by deployments",
                "deployments": exc.deployments,
                "references": [msgspec.to_builtins(r) for r in exc.references],
                "hint": IN_USE_HINT,
            },
        ) from None
    if deleted is None:
        raise not_found(resource_id)
    await st.audit.record(who.user_id, "delete", kind, deleted.name, deleted.namespace)
    return empty(204)
