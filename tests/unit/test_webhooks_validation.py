"""Webhook URL (SSRF) and event-filter validation, and filter matching (api.md §14.1)."""

from __future__ import annotations

import pytest

from ring_actors.webhooks.kinds import KINDS, filter_matches, validate_events, validate_url


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/ring",
        "http://10.0.0.5:8080/hook",
        "http://192.168.1.20/hook",
        "http://172.17.0.1:9000/",
        "http://[2001:db8::1]/x",
        "https://user:pw@example.org/path?q=1",
    ],
)
def test_accepted_urls(url: str) -> None:
    """Verify public names and private RFC 1918 addresses pass (DNS names are not resolved here)."""
    assert validate_url(url) == []


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "example.com/hook",
        "http:///nohost",
        "http://localhost:8080/",
        "http://LOCALHOST./",
        "http://api.localhost/",
        "http://127.0.0.1/",
        "http://127.9.9.9:80/",
        "http://[::1]/",
        "http://169.254.169.254/latest/meta-data",
        "http://[fe80::1]/",
        "http://0.0.0.0/",
        "http://[::]/",
        # Ring lets these through; the resolver reads them as loopback.
        "http://127.1/",
        "http://2130706433/",
        "http://0x7f.0.0.1/",
        "http://[::ffff:127.0.0.1]/",
        "http://example.com:99999/",
    ],
)
def test_rejected_urls(url: str) -> None:
    """Verify scheme, host, localhost and loopback/link-local/unspecified literals are refused."""
    violations = validate_url(url)
    assert [(v.property_path, v.code) for v in violations] == [("url", "webhook.url.format")]


def test_event_filters() -> None:
    """Verify `*`, `deployment.*` and known kinds pass; wildcards, families and kinds are told apart."""
    assert validate_events(["*", "deployment.*", *KINDS]) == []
    violations = validate_events(
        ["deployment*", "deployement.*", "deployment.nope", "*.*", "deployment.status_changed"]
    )
    assert [v.property_path for v in violations] == ["events[0]", "events[1]", "events[2]", "events[3]"]
    assert {v.code for v in violations} == {"webhook.events.unknown"}
    assert "invalid wildcard" in violations[0].message
    assert "unknown event family" in violations[1].message
    assert "unknown event kind" in violations[2].message


@pytest.mark.parametrize(
    ("filters", "kind", "expected"),
    [
        ([], "deployment.scaled", True),
        (["*"], "deployment.error", True),
        (["deployment.*"], "deployment.rolling_update", True),
        (["deployment.status_changed"], "deployment.status_changed", True),
        (["deployment.status_changed"], "deployment.scaled", False),
        (["deployment.error", "deployment.scaled"], "deployment.scaled", True),
        (["other.*"], "deployment.scaled", False),
    ],
)
def test_filter_matching(filters: list[str], kind: str, expected: bool) -> None:
    """Verify empty = all, `*`, family wildcard and exact kinds."""
    assert filter_matches(filters, kind) is expected
