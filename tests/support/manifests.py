"""Pieces of deployment manifests (API bodies) shared by the end-to-end tests. Plain data only."""

from __future__ import annotations

from typing import Any, Final

__all__ = ["HTTP_READINESS"]

HTTP_READINESS: Final[dict[str, Any]] = {
    "type": "http",
    "url": "http://localhost:8080/index.html",
    "interval": "200ms",
    "timeout": "1s",
    "threshold": 3,
    "on_failure": "restart",
    "readiness": True,
    "min_healthy_time": "1s",
}
"""A readiness check on busybox httpd's `/index.html` at :8080: ready after 1 s of passes, restarted after 3
failures (the rolling-update tests' gate)."""
