"""Namespaces (api.md §10).

Beyond Ring (api.md §16): `{ref}` is an id *or* a name on every route, and the
namespace boundary of restricted tokens applies here too (lists are filtered,
single namespaces answer 403).
"""

from __future__ import annotations

from quart import Blueprint, Response

from ring_actors.http.bodies import NamespaceCreate
from ring_actors.http.common import empty, forbid_namespace, json_response, principal, query_int, read_json, state
from ring_actors.http.errors import ApiError, encode
from ring_actors.schemas.problem import validation_problem
from ring_actors.schemas.validation import validate_namespace_name
from ring_actors.store.namespaces import Namespace, NamespaceExists, NamespaceNotEmpty

__all__ = ["blueprint"]

blueprint = Blueprint("namespaces", __name__)


async def _find(ref: str) -> Namespace:
    found = await state().namespaces.find(ref)
    if found is None:
        raise ApiError(404, f"namespace '{ref}' does not exist")
    if not principal().may_access(found.name):
        raise forbid_namespace(found.name)
    return found


@blueprint.get("/namespaces")
async def list_namespaces() -> Response:
    who = principal()
    return json_response([ns for ns in await state().namespaces.list() if who.may_access(ns.name)])


@blueprint.post("/namespaces")
async def create_namespace() -> Response:
    st = state()
    who = principal()
    body = await read_json(NamespaceCreate)
    violations = validate_namespace_name(body.name)
    if violations:
        return encode(validation_problem(violations))
    if not who.may_access(body.name):
        raise forbid_namespace(body.name)
    try:
        namespace = await st.namespaces.create(body.name)
    except NamespaceExists as exc:
        raise ApiError(409, str(exc)) from None
    await st.audit.record(who.user_id, "create", "namespace", namespace.name, namespace.name)
    return json_response(namespace, 201)


@blueprint.get("/namespaces/<id>")
async def get_namespace(id: str) -> Response:
    return json_response(await _find(id))


@blueprint.delete("/namespaces/<id>")
async def delete_namespace(id: str) -> Response:
    st = state()
    namespace = await _find(id)
    try:
        deleted = await st.namespaces.delete(
            namespace.name, user_id=principal().user_id, seq=st.services.db.next_seq()
        )
    except NamespaceNotEmpty as exc:
        hint = "delete its deployments, secrets and configs first"
        raise ApiError(
            409,
            f"namespace '{namespace.name}' is not empty: {exc.remaining} deployment(s), secret(s) or config(s)"
            f" remain; {hint}",
            extra={"error": "namespace is not empty", "remaining": exc.remaining, "hint": hint},
        ) from None
    if not deleted:
        raise ApiError(404, f"namespace '{id}' does not exist")
    st.services.supervisor.namespace_deleted(namespace.name)
    return empty(204)


@blueprint.get("/namespaces/<id>/audit")
async def namespace_audit(id: str) -> Response:
    st = state()
    found = await st.namespaces.find(id)
    name = found.name if found is not None else id  # a deleted namespace keeps its deletion entry
    if not principal().may_access(name):
        raise forbid_namespace(name)
    return json_response(await st.audit.list(name, limit=query_int("limit", 100, maximum=1000)))
