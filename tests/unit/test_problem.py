"""Tests for ring_actors.schemas.problem (api.md §3.1)."""

from __future__ import annotations

import json

import msgspec

from ring_actors.schemas.problem import (
    CONTENT_TYPE,
    Problem,
    Violation,
    encode_problem,
    problem,
    title_for,
    validation_problem,
)

PORT = Violation("ports[0].published", "must be between 1 and 65535", "deployment.ports.published.out_of_range")
ENV = Violation(
    property_path="environment.bad-key",
    message="'bad-key' is not a valid env var name (must match [A-Za-z_][A-Za-z0-9_]*)",
    code="deployment.environment.key.invalid",
)


def test_validation_problem_matches_the_api_example() -> None:
    """Verify the 422 body is byte-for-byte the shape of api.md §3.1's example."""
    body = json.loads(encode_problem(validation_problem([PORT, ENV])))
    assert body == {
        "type": "about:blank",
        "title": "Validation failed",
        "status": 422,
        "detail": "ports[0].published: must be between 1 and 65535\n"
        "environment.bad-key: 'bad-key' is not a valid env var name (must match [A-Za-z_][A-Za-z0-9_]*)",
        "violations": [
            {"property_path": "ports[0].published", "message": "must be between 1 and 65535",
             "code": "deployment.ports.published.out_of_range"},
            {"property_path": "environment.bad-key",
             "message": "'bad-key' is not a valid env var name (must match [A-Za-z_][A-Za-z0-9_]*)",
             "code": "deployment.environment.key.invalid"},
        ],
    }


def test_field_order_is_stable() -> None:
    """Verify keys are emitted in the documented order (type, title, status, detail, violations)."""
    raw = encode_problem(validation_problem([PORT]))
    assert list(json.loads(raw)) == ["type", "title", "status", "detail", "violations"]
    assert raw.index(b'"property_path"') < raw.index(b'"message"') < raw.index(b'"code"')


def test_plain_problem_has_empty_violations() -> None:
    """Verify non-validation problems carry `violations: []`."""
    body = json.loads(encode_problem(problem(409, "Conflict", "namespace 'x' already exists")))
    assert body == {"type": "about:blank", "title": "Conflict", "status": 409,
                    "detail": "namespace 'x' already exists", "violations": []}


def test_validation_problem_accepts_any_iterable() -> None:
    """Verify a generator of violations is materialised once."""
    p = validation_problem(v for v in [PORT])
    assert p.violations == [PORT] and p.detail.count("\n") == 0


def test_problem_round_trips_through_msgspec() -> None:
    """Verify clients can decode a problem back into the Struct."""
    p = validation_problem([PORT, ENV])
    assert msgspec.json.decode(encode_problem(p), type=Problem) == p


def test_titles_and_content_type() -> None:
    """Verify Ring's titles and the problem+json media type."""
    assert CONTENT_TYPE == "application/problem+json"
    assert title_for(404) == "Not Found"
    assert title_for(401) == "Unauthorized"
    assert title_for(500) == "Internal Server Error"
    assert title_for(418) == "I'm a Teapot"
    assert title_for(799) == "Error"


def test_violation_is_immutable_and_hashable() -> None:
    """Verify violations can be collected in sets and are not mutated by accident."""
    assert len({PORT, Violation(*msgspec.structs.astuple(PORT))}) == 1
