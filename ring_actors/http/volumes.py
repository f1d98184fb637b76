"""Volumes: the named-volume registry (api.md §11; resources.md §4).

Registry only: creating a row provisions nothing (the runtime creates the volume on
first mount) and deleting one leaves the data in place.

Beyond Ring: every error is problem+json (Ring's `error`, `deployments` and `hint`
keys are kept as extension members, as for secrets), and a refused delete also lists
each mount structurally in a `references` member.
"""

from __future__ import annotations

import re
from typing import Annotated

import msgspec
from quart import Blueprint, Response

from ring_actors.http.common import (
    empty,
    forbid_namespace,
    json_response,
    principal,
    query_bool,
    query_list,
    read_json,
    state,
)
from ring_actors.http.errors import ApiError, encode
from ring_actors.schemas.problem import Violation, validation_problem
from ring_actors.schemas.validation import validate_dns_label
from ring_actors.store.volumes import (
    BACKENDS,
    NamespaceMissing,
    Volume,
    VolumeExists,
    VolumeInUse,
    VolumeRepo,
)

__all__ = ["VolumeCreate", "blueprint", "validate_volume"]

blueprint = Blueprint("volumes", __name__)

_NAME = re.compile(r"[a-z0-9]([-a-z0-9_.]*[a-z0-9])?")
NOT_FOUND = "Volume not found"
IN_USE = "Volume is referenced by deployments"
IN_USE_HINT = "Use ?force=true to delete anyway"


class VolumeCreate(msgspec.Struct, kw_only=True):
    """Body of `POST /volumes`. `size` is an informational byte count (no quota)."""

    namespace: str
    name: str
    backend_type: str | None = None
    size: Annotated[int, msgspec.Meta(ge=0)] | None = None
    labels: dict[str, str] | None = None


def validate_volume(namespace: str, name: str) -> list[Violation]:
    """`POST /volumes` field rules (api.md §11), all reported together."""
    out = validate_dns_label(namespace, path="namespace", code_prefix="volume.namespace")
    if not 2 <= len(name) <= 253:
        out.append(Violation("name", f"must be 2 to 253 characters (got {len(name)})", "volume.name.length"))
    if not _NAME.fullmatch(name):
        out.append(Violation(
            "name",
            "must contain only lowercase letters, digits, '-', '_' and '.', and start and end with a letter or digit",
            "volume.name.format",
        ))
    return out


def _unsupported_backend(backend: str) -> ApiError:
    """Ring's own 422 for an unknown backend: titled `Unprocessable Entity`, not a validation failure."""
    message = f"backend_type '{backend}' is not supported (expected one of: {', '.join(BACKENDS)})"
    return ApiError(
        422,
        message,
        title="Unprocessable Entity",
        violations=[Violation("backend_type", message, "volume.backend_type.unsupported")],
    )


def _repo() -> VolumeRepo:
    return VolumeRepo(state().services.db)


async def _find(volume_id: str) -> Volume:
    """The volume, if it exists (404 with Ring's key) and the caller's boundary allows it (403)."""
    found = await _repo().get(volume_id)
    if found is None:
        raise ApiError(404, NOT_FOUND, extra={"error": NOT_FOUND})
    if not principal().may_access(found.namespace):
        raise forbid_namespace(found.namespace)
    return found


@blueprint.get("/volumes")
async def list_volumes() -> Response:
    who = principal()
    return json_response(await _repo().list(who.visible(query_list("namespace"))))


@blueprint.post("/volumes")
async def create_volume() -> Response:
    st = state()
    who = principal()
    body = await read_json(VolumeCreate)
    violations = validate_volume(body.namespace, body.name)
    if violations:
        return encode(validation_problem(violations))
    backend = body.backend_type if body.backend_type is not None else "local"
    if backend not in BACKENDS:
        raise _unsupported_backend(backend)
    if not who.may_access(body.namespace):
        raise forbid_namespace(body.namespace)
    try:
        created = await _repo().create(
            body.namespace, body.name, backend_type=backend, size=body.size, labels=body.labels
        )
    except NamespaceMissing as exc:
        raise ApiError(404, str(exc)) from None
    except VolumeExists as exc:
        raise ApiError(409, str(exc)) from None
    await st.audit.record(who.user_id, "create", "volume", created.name, created.namespace)
    return json_response(created, 201)


@blueprint.get("/volumes/<id>")
async def get_volume(id: str) -> Response:
    return json_response(await _find(id))


@blueprint.delete("/volumes/<id>")
async def delete_volume(id: str) -> Response:
    st = state()
    who = principal()
    await _find(id)  # 404 / 403 before anything else
    try:
        deleted = await _repo().delete(id, force=query_bool("force"))
    except VolumeInUse as exc:
        raise ApiError(
            409,
            f"volume is referenced by deployments: {', '.join(exc.deployments)}; {IN_USE_HINT}",
            extra={
                "error": IN_USE,
                "deployments": exc.deployments,
                "references": [msgspec.to_builtins(r) for r in exc.references],
                "hint": IN_USE_HINT,
            },
        ) from None
    if deleted is None:  # deleted by someone else since _find
        raise ApiError(404, NOT_FOUND, extra={"error": NOT_FOUND})
    await st.audit.record(who.user_id, "delete", "volume", deleted.name, deleted.namespace)
    return empty(204)
