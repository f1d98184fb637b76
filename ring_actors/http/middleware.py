"""Request hooks: CORS, authentication + authorization (deny by default), and templates.

Auth runs only on matched routes, so an unknown path is a 404, never a 401 (api.md
§1). Resolution: `Authorization: Bearer` first; without that header, `?ticket=` is
accepted on the logs route only, for the deployment it was minted for.
"""

from __future__ import annotations

import re

from quart import Quart, Response, g, request

from ring_actors.auth.scopes import ADMIN, AUTHENTICATED, PUBLIC, ROUTE_SCOPES, required_scope
from ring_actors.http.common import state
from ring_actors.http.errors import auth_error

__all__ = ["install_middleware", "route_template"]

LOGS_ROUTE = "/deployments/{id}/logs"
CORS_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
CORS_HEADERS = "Authorization, Content-Type, Accept"

_CONVERTER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def route_template(rule: str) -> str:
    """Quart's `/deployments/<id>` -> the spec's `/deployments/{id}`."""
    return _CONVERTER.sub(r"{\1}", rule)


def _cors_headers(response: Response, origin: str) -> None:
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
    response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
    response.headers.add("Vary", "Origin")


async def _preflight() -> Response | None:
    """Answer CORS preflights for allowed origins before anything else runs."""
    if request.method != "OPTIONS":
        return None
    origins = state().services.settings.context.cors_origins
    origin = request.headers.get("Origin")
    if not origins or origin not in origins or "Access-Control-Request-Method" not in request.headers:
        return None
    response = Response(b"", status=204)
    _cors_headers(response, origin)
    response.headers["Access-Control-Max-Age"] = "600"
    return response


async def _authenticate() -> None:
    g.principal = None
    if request.routing_exception is not None or request.url_rule is None or request.method == "OPTIONS":
        return  # 404 / 405 / automatic OPTIONS: answered without looking at credentials
    template = route_template(request.url_rule.rule)
    needed = required_scope(request.method, template)
    if needed == PUBLIC:
        return
    st = state()
    who = None
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() == "bearer":
            who = await st.auth.bearer(value.strip())
    elif template == LOGS_ROUTE and request.args.get("ticket"):
        who = st.tickets.redeem(request.args["ticket"], (request.view_args or {}).get("id", ""))
    if who is None:
        raise auth_error(401, "Invalid token")
    g.principal = who
    if needed == AUTHENTICATED or who.has(needed):
        return
    method = "GET" if request.method == "HEAD" else request.method
    if needed == ADMIN and (method, template) not in ROUTE_SCOPES:
        raise auth_error(403, "this route is not reachable with a scoped token")
    raise auth_error(403, f"token lacks required scope '{needed}'")


async def _add_cors(response: Response) -> Response:
    origins = state().services.settings.context.cors_origins
    origin = request.headers.get("Origin")
    if origins and origin in origins and "Access-Control-Allow-Origin" not in response.headers:
        _cors_headers(response, origin)
    return response


def install_middleware(app: Quart) -> None:
    app.before_request(_preflight)
    app.before_request(_authenticate)
    app.after_request(_add_cors)
