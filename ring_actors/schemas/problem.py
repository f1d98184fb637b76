"""RFC 7807 problem+json bodies (spec: api.md §3.1).

Every non-2xx answer of ring-actors is a `Problem`; validation failures carry one
`Violation` per broken rule so a client can fix everything in one round trip and
branch on the stable `code` rather than on the human `message`.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus

import msgspec

__all__ = [
    "CONTENT_TYPE",
    "Problem",
    "Violation",
    "encode_problem",
    "problem",
    "title_for",
    "validation_problem",
]

CONTENT_TYPE = "application/problem+json"
VALIDATION_TITLE = "Validation failed"

# Titles Ring uses for the statuses it answers with problem+json; others fall back
# to the HTTP reason phrase so the title is never empty.
_TITLES: dict[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    500: "Internal Server Error",
}


class Violation(msgspec.Struct, frozen=True):
    """One broken rule: where (`property_path`), why (`message`), which rule (`code`).

    Positional order matches Ring's `Violation::new(path, message, code)`.
    """

    property_path: str
    message: str
    code: str


class Problem(msgspec.Struct, kw_only=True):
    """An RFC 7807 body. `violations` is empty for non-validation problems."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    violations: list[Violation] = []


_ENCODER = msgspec.json.Encoder()


def title_for(status: int) -> str:
    """The title Ring uses for `status` (HTTP reason phrase as a fallback)."""
    if status in _TITLES:
        return _TITLES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem(status: int, title: str, detail: str) -> Problem:
    """A problem without violations (conflict, not found, …)."""
    return Problem(title=title, status=status, detail=detail)


def validation_problem(violations: Iterable[Violation], *, status: int = 422) -> Problem:
    """The 422 answer listing every violation; `detail` has one `<path>: <message>` line each."""
    items = list(violations)
    detail = "\n".join(f"{v.property_path}: {v.message}" for v in items)
    return Problem(title=VALIDATION_TITLE, status=status, detail=detail, violations=items)


def encode_problem(p: Problem) -> bytes:
    """JSON bytes of `p`, to be sent with `Content-Type: application/problem+json`."""
    return _ENCODER.encode(p)
