"""Token helpers: `--expires` parsing and the Status column."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ring_actors.cli.output import CliError
from ring_actors.cli.token import parse_expiry, token_status

NOW = datetime(2026, 6, 3, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("spec", "expire_at"),
    [("30d", "2026-07-03T10:00:00Z"), ("12h", "2026-06-03T22:00:00Z"), ("90m", "2026-06-03T11:30:00Z")],
)
def test_parse_expiry(spec: str, expire_at: str) -> None:
    """Verify N{d,h,m} becomes an absolute RFC 3339 UTC time."""
    assert parse_expiry(spec, NOW) == expire_at


@pytest.mark.parametrize("spec", ["30", "d", "10y", "abc", "-1d", "1.5h"])
def test_parse_expiry_rejects(spec: str) -> None:
    """Verify anything but an integer and d/h/m is refused with a hint."""
    with pytest.raises(CliError, match="expected a number and a unit"):
        parse_expiry(spec, NOW)


@pytest.mark.parametrize(
    ("token", "status"),
    [
        ({}, "active"),
        ({"expire_at": "2026-06-04T00:00:00Z"}, "active"),
        ({"expire_at": "2026-06-03T09:59:59+00:00"}, "expired"),
        ({"revoked_at": "2026-01-01T00:00:00Z", "expire_at": "2030-01-01T00:00:00Z"}, "revoked"),
    ],
)
def test_token_status(token: dict, status: str) -> None:
    """Verify revoked wins over expired, and expiry compares in UTC."""
    assert token_status(token, NOW) == status
