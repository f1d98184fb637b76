"""Webhook event kinds, subscription filters and the URL (SSRF) guard (api.md §14.1-§14.2).

Pure functions: the API validates with them, the enqueuer matches with them.

The URL guard is Ring's (scheme, host, no `localhost`, no loopback / link-local /
unspecified literal IP) plus what Ring misses: IPv4 spelled the legacy ways the
resolver still accepts (`127.1`, `2130706433`, `0x7f.1`), IPv4-mapped IPv6
(`::ffff:127.0.0.1`) and `*.localhost` names. DNS names are checked again, resolved,
at delivery time (`blocked_address`).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from ring_actors.schemas.problem import Violation

__all__ = [
    "CATEGORIES",
    "FAMILIES",
    "KINDS",
    "blocked_address",
    "filter_matches",
    "validate_events",
    "validate_url",
]

KINDS: tuple[str, ...] = (
    "deployment.status_changed",
    "deployment.health_check_failed",
    "deployment.rolling_update",
    "deployment.scaled",
    "deployment.error",
)
FAMILIES: tuple[str, ...] = ("deployment",)

CATEGORIES: dict[str, str] = {
    "image_pull_back_off": "user",
    "config_error": "user",
    "insufficient_resources": "host",
    "instance_creation_failed": "transient",
    "network_creation_failed": "transient",
    "file_system_error": "transient",
    "port_allocation_failed": "transient",
    "vm_start_failed": "transient",
    "firmware_not_found": "transient",
    "stats_fetch_failed": "transient",
    "runtime_error": "transient",
}
"""Event reason -> `deployment.error` category (api.md §14.2); other reasons send no error webhook."""

_URL_CODE = "webhook.url.format"
_EVENTS_CODE = "webhook.events.unknown"


def filter_matches(filters: Iterable[str], kind: str) -> bool:
    """Whether a webhook subscribed to `filters` wants `kind` (empty = every kind)."""
    found = False
    for pattern in filters:
        found = True
        if pattern == "*" or pattern == kind:
            return True
        if pattern.endswith(".*") and kind.startswith(pattern[:-1]):
            return True
    return not found


def validate_events(events: Iterable[str]) -> list[Violation]:
    """One violation per filter that is not `*`, `<family>.*` or a known kind."""
    out: list[Violation] = []
    for index, pattern in enumerate(events):
        path = f"events[{index}]"
        if pattern == "*" or pattern in KINDS:
            continue
        if pattern.endswith(".*") and pattern[:-2] in FAMILIES:
            continue
        if "*" in pattern and not (pattern.endswith(".*") and "*" not in pattern[:-2]):
            message = f"'{pattern}' is an invalid wildcard (use '*' or '<family>.*', e.g. 'deployment.*')"
        elif pattern.partition(".")[0] not in FAMILIES:
            message = f"'{pattern}' has an unknown event family (known: {', '.join(FAMILIES)})"
        else:
            message = f"'{pattern}' is an unknown event kind (known: {', '.join(KINDS)})"
        out.append(Violation(path, message, _EVENTS_CODE))
    return out


def _literal_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names literally, including legacy IPv4 forms `inet_aton` accepts."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def blocked_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Loopback, link-local or unspecified (IPv4-mapped IPv6 judged as its IPv4)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_link_local or address.is_unspecified


def validate_url(url: str) -> list[Violation]:
    """Ring's SSRF guard on the URL as written; private RFC 1918 addresses are allowed."""

    def bad(message: str) -> list[Violation]:
        return [Violation("url", message, _URL_CODE)]

    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        return bad(f"'{url}' is not a valid URL: {exc}")
    if parts.scheme not in ("http", "https"):
        return bad(f"'{url}' must use the http or https scheme")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        return bad(f"'{url}' has no host")
    if port == 0:
        return bad(f"'{url}' has an invalid port")
    if host == "localhost" or host.endswith(".localhost"):
        return bad(f"host '{host}' is not allowed (loopback)")
    address = _literal_ip(host)
    if address is not None and blocked_address(address):
        return bad(f"address {address} is not allowed (loopback, link-local or unspecified)")
    return []
