"""`POST /login`, `POST /logout`, `POST /auth/stream-ticket` (api.md §6)."""

from __future__ import annotations

import logging

from quart import Blueprint, Response

from ring_actors.auth.passwords import verify_nothing, verify_password
from ring_actors.auth.principal import TICKET_TTL
from ring_actors.auth.scopes import ROLE_SCOPES
from ring_actors.http.bodies import LoginRequest, LoginResponse, StreamTicketRequest, StreamTicketResponse
from ring_actors.http.common import empty, json_response, load_deployment, principal, read_json, run_hashing, state
from ring_actors.http.errors import ApiError

__all__ = ["blueprint"]

log = logging.getLogger(__name__)

blueprint = Blueprint("auth", __name__)

LOGS_SCOPE_PREFIX = "deployment:logs:"


@blueprint.post("/login")
async def login() -> Response:
    st = state()
    body = await read_json(LoginRequest)
    found = await st.users.credentials(body.username)
    if found is None:
        await run_hashing(verify_nothing, body.password)  # same cost as a wrong password
        raise ApiError(401, "invalid credentials")
    user, encoded = found
    if not await run_hashing(verify_password, encoded, body.password):
        raise ApiError(401, "invalid credentials")
    scopes = ROLE_SCOPES.get(user.role)
    if scopes is None:
        log.error("user %s has an invalid role %r", user.id, user.role)
        raise ApiError(500, "account role is invalid")
    await st.users.stamp_login(user.id)
    _, clear = await st.tokens.create(user.id, kind="session", scopes=scopes)
    return json_response(LoginResponse(token=clear))


@blueprint.post("/logout")
async def logout() -> Response:
    who = principal()
    if who.token_id is not None:
        await state().tokens.revoke(who.token_id)
    return empty(204)


@blueprint.post("/auth/stream-ticket")
async def stream_ticket() -> Response:
    """Mint a 30 s, single-use ticket for `GET /deployments/{id}/logs?ticket=`.

    Ring needs `admin`; ring-actors needs `deployments:read` on the deployment's
    namespace (api.md §16), checked here because the id is in the body.
    """
    body = await read_json(StreamTicketRequest)
    scope = body.scope.strip()
    if not scope:
        raise ApiError(400, "scope is required", extra={"error": "scope is required"})
    if not scope.startswith(LOGS_SCOPE_PREFIX) or not scope[len(LOGS_SCOPE_PREFIX):]:
        message = f"unsupported scope '{scope}' (expected '{LOGS_SCOPE_PREFIX}<deployment-id>')"
        raise ApiError(400, message, extra={"error": message})
    deployment = await load_deployment(scope[len(LOGS_SCOPE_PREFIX):])
    ticket = state().tickets.mint(principal(), deployment.id)
    return json_response(StreamTicketResponse(ticket=ticket, expires_in=int(TICKET_TTL)))
