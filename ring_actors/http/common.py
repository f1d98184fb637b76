"""Small helpers shared by the resource modules: state, principal, bodies, queries, responses."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
import trio
from quart import Response, current_app, g, request

from ring_actors.auth.principal import Principal
from ring_actors.http.errors import ApiError, auth_error
from ring_actors.http.state import ApiState
from ring_actors.schemas.decode import decode_body
from ring_actors.schemas.manifest import Deployment

__all__ = [
    "forbid_namespace",
    "json_response",
    "load_deployment",
    "principal",
    "query_bool",
    "query_int",
    "query_list",
    "read_json",
    "run_hashing",
    "state",
]

T = TypeVar("T")

_ENCODER = msgspec.json.Encoder()
JSON = "application/json"


def state() -> ApiState:
    return current_app.ring  # type: ignore[attr-defined]


def principal() -> Principal:
    found = g.get("principal")
    if found is None:  # a protected handler always runs after the auth hook
        raise auth_error(401, "Invalid token")
    return found


def json_response(body: Any, status: int = 200, *, headers: dict[str, str] | None = None) -> Response:
    response = Response(_ENCODER.encode(body), status=status, content_type=JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def empty(status: int = 204) -> Response:
    return Response(b"", status=status)


async def read_json(type_: type[T], *, empty_as: bytes | None = None) -> T:
    """Decode the request body into `type_`.

    415 without a JSON content type (unless the body is empty and `empty_as` gives a
    default document), 400 for malformed JSON, 422 for a wrong shape.
    """
    data = await request.get_data(as_text=False)
    raw = data.encode() if isinstance(data, str) else data
    if not raw.strip() and empty_as is not None:
        return decode_body(empty_as, type_)
    mimetype = (request.mimetype or "").lower()
    if mimetype != JSON and not mimetype.endswith("+json"):
        raise ApiError(415, "Expected request with `Content-Type: application/json`")
    return decode_body(raw, type_)


def query_list(name: str) -> list[str] | None:
    """A repeated query filter (`x=a&x=b` or `x[]=a&x[]=b`); None when absent."""
    values = request.args.getlist(name) + request.args.getlist(f"{name}[]")
    return values or None


def query_int(name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"query parameter '{name}' must be an integer, got '{raw}'") from None
    value = max(minimum, value)
    return min(value, maximum) if maximum is not None else value


def query_bool(name: str) -> bool:
    return (request.args.get(name) or "").lower() in ("true", "1", "yes")


def forbid_namespace(namespace: str) -> ApiError:
    return auth_error(403, f"token is not scoped to namespace '{namespace}'")


async def load_deployment(deployment_id: str, *, not_found: str = "Deployment not found") -> Deployment:
    """The deployment, if it exists and the caller's namespace boundary allows it (404 / 403)."""
    deployment = await state().services.deployments.get(deployment_id)
    if deployment is None:
        raise ApiError(404, not_found, extra={"error": not_found})
    who = principal()
    if not who.may_access(deployment.namespace):
        raise forbid_namespace(deployment.namespace)
    return deployment


async def run_hashing(fn: Any, *args: Any) -> Any:
    """Run a password hash/verify off the loop, a few at a time."""
    return await trio.to_thread.run_sync(fn, *args, limiter=state().hashing)
