"""Users (api.md §12) with the handler rules of §2.5.

Beyond Ring: the user object includes `role`; usernames are unique (409); every
error is problem+json (Ring's `{"errors": [...]}` texts become `detail`).
"""

from __future__ import annotations

from quart import Blueprint, Response

from ring_actors.auth.passwords import hash_password
from ring_actors.auth.principal import Principal
from ring_actors.auth.scopes import ROLES
from ring_actors.http.bodies import UserCreate, UserUpdate
from ring_actors.http.common import empty, json_response, principal, read_json, run_hashing, state
from ring_actors.http.errors import ApiError, encode
from ring_actors.schemas.problem import Violation, validation_problem
from ring_actors.schemas.validation import validate_user
from ring_actors.store.users import LastAdmin, UsernameTaken, UserNotFound
from ring_actors.store.users import UserUpdate as StoreUpdate

__all__ = ["blueprint"]

blueprint = Blueprint("users", __name__)


def _can_manage_users(who: Principal) -> bool:
    """Acting on others or on roles: an admin account presenting `users:write` (or `admin`)."""
    return who.role == "admin" and who.has("users:write")


def _not_found() -> ApiError:
    return ApiError(404, "User not found", extra={"error": "User not found"})


def _taken(exc: UsernameTaken) -> ApiError:
    return ApiError(409, str(exc), extra={"errors": [str(exc)]})


@blueprint.get("/users")
async def list_users() -> Response:
    return json_response(await state().users.list())


@blueprint.get("/users/me")
async def me() -> Response:
    user = await state().users.get(principal().user_id)
    if user is None:
        raise _not_found()
    return json_response(user)


@blueprint.post("/users")
async def create_user() -> Response:
    body = await read_json(UserCreate)
    violations = validate_user(body.username, body.password)
    if violations:
        return encode(validation_problem(violations))
    encoded = await run_hashing(hash_password, body.password)
    try:
        user = await state().users.create(body.username, encoded)
    except UsernameTaken as exc:
        raise _taken(exc) from None
    return json_response(user, 201)


@blueprint.put("/users/<id>")
async def update_user(id: str) -> Response:
    st = state()
    who = principal()
    body = await read_json(UserUpdate, empty_as=b"{}")
    if id != who.user_id and not _can_manage_users(who):
        raise ApiError(403, "Forbidden: only an admin can change another user")
    target = await st.users.get(id)
    if target is None:
        raise _not_found()
    if body.role is not None:
        if body.role not in ROLES:
            message = f"Unknown role '{body.role}' (expected one of: {', '.join(ROLES)})"
            raise ApiError(
                400,
                message,
                violations=[Violation("role", message, "user.role.unknown")],
                extra={"errors": ["Unknown role"]},
            )
        if body.role != target.role and not _can_manage_users(who):
            raise ApiError(403, "Forbidden: only an admin can change a role")
    violations = validate_user(body.username, body.password)
    if violations:
        return encode(validation_problem(violations))
    encoded = await run_hashing(hash_password, body.password) if body.password is not None else None
    try:
        user, _ = await st.users.update(id, StoreUpdate(username=body.username, password_hash=encoded, role=body.role))
    except UserNotFound:
        raise _not_found() from None
    except UsernameTaken as exc:
        raise _taken(exc) from None
    except LastAdmin:
        message = "Cannot demote the last admin"
        raise ApiError(409, message, extra={"errors": [message]}) from None
    return json_response(user)


@blueprint.delete("/users/<id>")
async def delete_user(id: str) -> Response:
    who = principal()
    if not _can_manage_users(who):
        raise ApiError(403, "Forbidden: only an admin can delete users")
    if id == who.user_id:
        raise ApiError(403, "Forbidden: a user cannot delete itself")
    try:
        await state().users.delete(id)
    except UserNotFound:
        raise _not_found() from None
    except LastAdmin:
        raise ApiError(409, "Cannot delete the last admin") from None
    return empty(204)
