"""Where the test engines, registries and images live, and checks that they answer.

`make test` (scripts/setup-test-env.sh) starts every engine and registry named here and pushes the test images
before pytest runs. In CI they must be there: `require_engine` and `require_registry` raise `EngineNotReady` (a
`RuntimeError`) with the reason and the daemon's log file, never skip. Plain helpers only; fixtures live in
conftest.py. Standard library only, so the checks work before anything else is importable.
"""

from __future__ import annotations

import base64
import http.client
import json
import shutil
import socket
import subprocess
from typing import Final

__all__ = [
    "AUTH_PASSWORD",
    "AUTH_REGISTRY",
    "AUTH_USER",
    "CONTAINERD_SOCK",
    "DOCKER_API_VERSION",
    "DOCKER_SOCK",
    "ENGINES",
    "EngineNotReady",
    "HUB_IMAGE",
    "IMAGE_REPO",
    "IMAGE_V1",
    "IMAGE_V2",
    "PODMAN_LIBPOD_PREFIX",
    "PODMAN_SOCK",
    "PRIVATE_IMAGE",
    "REGISTRY",
    "engine_ready",
    "registry_tags",
    "require_engine",
    "require_registry",
    "unix_request",
]

DOCKER_SOCK: Final = "/var/run/docker.sock"
PODMAN_SOCK: Final = "/run/podman/podman.sock"
CONTAINERD_SOCK: Final = "/run/containerd/containerd.sock"

DOCKER_API_VERSION: Final = "1.41"
"""Docker Engine API of Debian 12's docker.io 20.10; Podman's compat API serves it too (`/v1.41/...`)."""
PODMAN_LIBPOD_PREFIX: Final = "/v4.0.0/libpod"

REGISTRY: Final = "127.0.0.1:5000"
"""Anonymous registry; also dockerd's --registry-mirror and Podman's/containerd's docker.io mirror."""
AUTH_REGISTRY: Final = "127.0.0.1:5001"
"""Registry with basic auth (bcrypt htpasswd)."""
AUTH_USER: Final = "ringuser"
AUTH_PASSWORD: Final = "ringpass"

IMAGE_REPO: Final = f"{REGISTRY}/ring-test/busybox"
IMAGE_V1: Final = f"{IMAGE_REPO}:v1"
"""Busybox image: `/VERSION` and `/www/index.html` contain "v1\\n"; CMD ["sh"]; PATH=/bin; root and nobody (65534).

Applets: sh sleep echo cat true false test nc wget httpd ls env kill ps id hostname printf date grep mkdir rm touch
seq head tail. A web server: `httpd -f -p 80 -h /www`.
"""
IMAGE_V2: Final = f"{IMAGE_REPO}:v2"
"""As IMAGE_V1 with "v2"."""
PRIVATE_IMAGE: Final = f"{AUTH_REGISTRY}/ring-test/private:v1"
"""IMAGE_V1's content on the auth registry: pulls need AUTH_USER / AUTH_PASSWORD."""
HUB_IMAGE: Final = "busybox:latest"
"""A Docker Hub name served offline: IMAGE_V1 pushed as library/busybox:latest to the mirror REGISTRY."""

_LOGS: Final = {
    "docker": "/var/log/ring-actors-dockerd.log",
    "podman": "/var/log/ring-actors-podman.log",
    "containerd": "/var/log/ring-actors-containerd.log",
    REGISTRY: "/var/log/ring-actors-registry.log",
    AUTH_REGISTRY: "/var/log/ring-actors-registry-auth.log",
}
ENGINES: Final = {"docker": DOCKER_SOCK, "podman": PODMAN_SOCK, "containerd": CONTAINERD_SOCK}
"""Engine name -> socket path."""

_HINT: Final = "`make test-env` (scripts/setup-test-env.sh, as root) starts it"


class EngineNotReady(RuntimeError):
    """An engine or registry the tests need does not answer. Not a skip: in CI every engine must be up."""


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, sock_path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._sock_path = sock_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._sock_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def unix_request(
    sock_path: str,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
) -> tuple[int, bytes]:
    """Send one HTTP request over a Unix socket (blocking; for set-up code, not inside trio tasks).

    Args:
        sock_path: the socket, e.g. DOCKER_SOCK.
        method: HTTP method.
        path: request path with query, e.g. "/v1.41/containers/json?all=1".
        body: request body, sent as is.
        headers: extra request headers.
        timeout: seconds for connect and for each read.

    Returns:
        The status code and the whole response body.

    Raises:
        OSError: the socket is missing, refuses, or times out.
        http.client.HTTPException: the peer does not speak HTTP.
    """
    conn = _UnixHTTPConnection(sock_path, timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _ping_api(name: str, sock_path: str, timeout: float) -> None:
    try:
        status, body = unix_request(sock_path, "GET", "/_ping", timeout=timeout)
    except (OSError, http.client.HTTPException) as exc:
        raise EngineNotReady(
            f"{name} does not answer GET /_ping on unix://{sock_path}: {exc!r}. {_HINT}; log: {_LOGS[name]}"
        ) from exc
    if status != 200 or body.strip() != b"OK":
        raise EngineNotReady(
            f"{name} answered GET /_ping on unix://{sock_path} with {status} {body[:200]!r}; log: {_LOGS[name]}"
        )


def _ping_containerd(timeout: float) -> None:
    # containerd speaks gRPC only: the socket must accept a connection, and `ctr version` must succeed when the
    # ctr client (package containerd) is installed, as it is wherever the set-up ran.
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(CONTAINERD_SOCK)
    except OSError as exc:
        raise EngineNotReady(
            f"containerd socket unix://{CONTAINERD_SOCK} refuses: {exc!r}. {_HINT}; log: {_LOGS['containerd']}"
        ) from exc
    finally:
        sock.close()
    ctr = shutil.which("ctr")
    if ctr is None:
        return
    try:
        proc = subprocess.run(
            [ctr, "--address", CONTAINERD_SOCK, "--connect-timeout", f"{max(timeout, 1.0):.0f}s", "version"],
            capture_output=True,
            timeout=timeout + 5,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise EngineNotReady(f"`ctr version` on {CONTAINERD_SOCK} timed out; log: {_LOGS['containerd']}") from exc
    if proc.returncode != 0:
        raise EngineNotReady(
            f"`ctr version` on {CONTAINERD_SOCK} failed: {proc.stderr.decode(errors='replace').strip()}; "
            f"log: {_LOGS['containerd']}"
        )


def require_engine(name: str, *, timeout: float = 5.0) -> None:
    """Raise unless the engine answers: GET /_ping for docker and podman, `ctr version` for containerd.

    Args:
        name: "docker", "podman" or "containerd".
        timeout: seconds for the check.

    Raises:
        EngineNotReady: the engine does not answer; the message names the socket, the reason and the log file.
        ValueError: unknown engine name.
    """
    if name in ("docker", "podman"):
        _ping_api(name, ENGINES[name], timeout)
    elif name == "containerd":
        _ping_containerd(timeout)
    else:
        raise ValueError(f"unknown engine {name!r}; known: {', '.join(ENGINES)}")


def engine_ready(name: str, *, timeout: float = 5.0) -> bool:
    """True when `require_engine(name)` would not raise."""
    try:
        require_engine(name, timeout=timeout)
    except EngineNotReady:
        return False
    return True


def _registry_get(registry: str, path: str, auth: tuple[str, str] | None, timeout: float) -> tuple[int, bytes]:
    host, _, port = registry.partition(":")
    conn = http.client.HTTPConnection(host, int(port or 80), timeout=timeout)
    headers = {}
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def require_registry(registry: str = REGISTRY, *, timeout: float = 5.0) -> None:
    """Raise unless the registry answers GET /v2/ (200 for REGISTRY; 401 without and 200 with credentials
    for AUTH_REGISTRY).

    Raises:
        EngineNotReady: it does not answer as expected.
        ValueError: not one of the test registries.
    """
    if registry not in (REGISTRY, AUTH_REGISTRY):
        raise ValueError(f"unknown test registry {registry!r}; known: {REGISTRY}, {AUTH_REGISTRY}")
    checks: list[tuple[tuple[str, str] | None, int]] = [(None, 200)]
    if registry == AUTH_REGISTRY:
        checks = [(None, 401), ((AUTH_USER, AUTH_PASSWORD), 200)]
    for auth, want in checks:
        try:
            status, _ = _registry_get(registry, "/v2/", auth, timeout)
        except (OSError, http.client.HTTPException) as exc:
            raise EngineNotReady(
                f"registry http://{registry}/v2/ does not answer: {exc!r}. {_HINT}; log: {_LOGS[registry]}"
            ) from exc
        if status != want:
            who = "with" if auth else "without"
            raise EngineNotReady(
                f"registry http://{registry}/v2/ answered {status} {who} credentials, expected {want}; "
                f"log: {_LOGS[registry]}"
            )


def registry_tags(repository: str, *, registry: str = REGISTRY, timeout: float = 5.0) -> list[str]:
    """The tags of `repository` (e.g. "ring-test/busybox") in a test registry; [] when it has none.

    Uses AUTH_USER / AUTH_PASSWORD for AUTH_REGISTRY.

    Raises:
        EngineNotReady: the registry does not answer or refuses.
    """
    auth = (AUTH_USER, AUTH_PASSWORD) if registry == AUTH_REGISTRY else None
    try:
        status, body = _registry_get(registry, f"/v2/{repository}/tags/list", auth, timeout)
    except (OSError, http.client.HTTPException) as exc:
        raise EngineNotReady(f"registry http://{registry} does not answer: {exc!r}. {_HINT}") from exc
    if status == 404:
        return []
    if status != 200:
        raise EngineNotReady(f"registry http://{registry}: tags of {repository} answered {status}: {body[:200]!r}")
    return list(json.loads(body).get("tags") or [])
