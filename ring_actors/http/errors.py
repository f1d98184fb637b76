"""One place that turns failures into problem+json (api.md §3, §16).

Ring answers with five different error shapes; ring-actors answers every non-2xx
it produces with `application/problem+json`. Where Ring clients read a legacy
key (`error` on auth failures, `remaining`/`hint` on a non-empty namespace), that
key is kept as an RFC 7807 extension member of the same object.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
from quart import Quart, Response, request
from werkzeug.exceptions import HTTPException

from ring_actors.schemas.decode import BodyError
from ring_actors.schemas.problem import CONTENT_TYPE, Problem, Violation, title_for

__all__ = ["ApiError", "auth_error", "install_error_handlers", "problem_response"]

log = logging.getLogger("ring_actors.http")

_ENCODER = msgspec.json.Encoder()


class ApiError(Exception):
    """Raised by handlers (and the auth hook) to answer with a problem."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        violations: Iterable[Violation] = (),
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title
        self.violations = list(violations)
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})

    def response(self) -> Response:
        return problem_response(
            self.status,
            self.detail,
            title=self.title,
            violations=self.violations,
            extra=self.extra,
            headers=self.headers,
        )


def auth_error(status: int, message: str) -> ApiError:
    """401/403 problem that also carries Ring's `{"error": message}` key."""
    return ApiError(status, message, extra={"error": message})


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    violations: Iterable[Violation] = (),
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    problem = Problem(
        title=title or title_for(status), status=status, detail=detail, violations=list(violations)
    )
    return encode(problem, extra=extra, headers=headers)


def encode(
    problem: Problem, *, extra: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None
) -> Response:
    """A problem+json response; `extra` adds extension members (never overriding RFC 7807 fields)."""
    body: Any = problem
    if extra:
        members = {k: v for k, v in extra.items() if k not in Problem.__struct_fields__}
        body = {**msgspec.to_builtins(problem), **members}
    response = Response(_ENCODER.encode(body), status=problem.status, content_type=CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def install_error_handlers(app: Quart) -> None:
    @app.errorhandler(ApiError)
    async def _api_error(error: ApiError) -> Response:
        return error.response()

    @app.errorhandler(BodyError)
    async def _body_error(error: BodyError) -> Response:
        return encode(error.problem)

    @app.errorhandler(HTTPException)
    async def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        headers: dict[str, str] = {}
        if status == 404:
            detail = f"no route matches {request.method} {request.path}"
        elif status == 405:
            allowed = sorted(getattr(error, "valid_methods", None) or [])
            detail = f"method {request.method} is not allowed on {request.path}"
            if allowed:
                headers["Allow"] = ", ".join(allowed)
                detail += f" (allowed: {', '.join(allowed)})"
        else:
            detail = error.description or title_for(status)
        return problem_response(status, detail, headers=headers)

    @app.errorhandler(Exception)
    async def _unexpected(error: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path, exc_info=error)
        return problem_response(500, "Internal server error")
