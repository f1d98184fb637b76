"""Personal access tokens (api.md §13).

Ring reserves these routes to `admin` credentials. ring-actors also accepts a login
session of any role, so every user can mint PATs for themself, bounded by their
role's scopes (api.md §16). A namespace-restricted admin PAT can only mint tokens
restricted to a subset of its namespaces. Only the caller's own PATs are visible.
"""

from __future__ import annotations

from quart import Blueprint, Response

from ring_actors.auth.principal import Principal
from ring_actors.auth.scopes import SCOPES, role_allows
from ring_actors.http.bodies import TokenCreate, TokenCreated, TokenView
from ring_actors.http.common import empty, json_response, principal, read_json, state
from ring_actors.http.errors import ApiError, auth_error, encode
from ring_actors.schemas.problem import validation_problem
from ring_actors.schemas.validation import validate_token_request
from ring_actors.store.tokens import TokenRecord

__all__ = ["blueprint"]

blueprint = Blueprint("tokens", __name__)


def _caller() -> Principal:
    who = principal()
    if who.kind != "session" and not who.is_admin_credential:
        raise auth_error(403, "token lacks required scope 'admin'")
    return who


def _view(record: TokenRecord) -> TokenView:
    return TokenView(
        id=record.id,
        name=record.name,
        token_prefix=record.token_prefix,
        scopes=record.scopes,
        namespaces=record.namespaces,
        created_at=record.created_at,
        expire_at=record.expire_at,
        last_used_at=record.last_used_at,
        revoked_at=record.revoked_at,
    )


def _created(record: TokenRecord, clear: str) -> TokenCreated:
    return TokenCreated(
        id=record.id,
        name=record.name,
        token=clear,
        token_prefix=record.token_prefix,
        scopes=record.scopes,
        namespaces=record.namespaces,
        created_at=record.created_at,
        expire_at=record.expire_at,
    )


def _not_found() -> ApiError:
    return ApiError(404, "token not found")


@blueprint.get("/tokens")
async def list_tokens() -> Response:
    who = _caller()
    return json_response([_view(r) for r in await state().tokens.list_pats(who.user_id)])


@blueprint.post("/tokens")
async def create_token() -> Response:
    st = state()
    who = _caller()
    body = await read_json(TokenCreate)
    violations = validate_token_request(body.name, body.scopes, body.expire_at, SCOPES)
    if violations:
        return encode(validation_problem(violations))
    for scope in body.scopes:
        if not role_allows(who.role, scope) or not who.has(scope):
            raise auth_error(403, f"role '{who.role}' cannot grant scope '{scope}'")
    namespaces = list(dict.fromkeys(body.namespaces))
    if who.restricted and (not namespaces or any(not who.may_access(ns) for ns in namespaces)):
        raise auth_error(
            403, f"token is restricted to namespaces {', '.join(who.namespaces)}: the new token must be too"
        )
    record, clear = await st.tokens.create(
        who.user_id,
        kind="pat",
        name=body.name,
        scopes=list(dict.fromkeys(body.scopes)),
        namespaces=namespaces,
        expire_at=body.expire_at,
    )
    await st.audit.record(who.user_id, "create", "token", body.name)
    return json_response(_created(record, clear), 201)


@blueprint.get("/tokens/<id>")
async def get_token(id: str) -> Response:
    who = _caller()
    record = await state().tokens.get_pat(id, who.user_id)
    if record is None:
        raise _not_found()
    return json_response(_view(record))


@blueprint.delete("/tokens/<id>")
async def revoke_token(id: str) -> Response:
    st = state()
    who = _caller()
    record = await st.tokens.get_pat(id, who.user_id)
    if record is None:
        raise _not_found()
    await st.tokens.revoke(id)
    await st.audit.record(who.user_id, "revoke", "token", record.name or id)
    return empty(204)


@blueprint.post("/tokens/<id>/rotate")
async def rotate_token(id: str) -> Response:
    st = state()
    who = _caller()
    existing = await st.tokens.get_pat(id, who.user_id)
    if existing is None:
        raise _not_found()
    if existing.revoked_at is not None:
        raise ApiError(409, "token is revoked; create a new one instead")
    rotated = await st.tokens.rotate(id, who.user_id)
    if rotated is None:
        raise _not_found()
    record, clear = rotated
    await st.audit.record(who.user_id, "rotate", "token", record.name or id)
    return json_response(_created(record, clear), 201)
