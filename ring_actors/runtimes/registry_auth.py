"""Image references and registry credentials (spec: manifest.md §11, runtimes.md §2.1 steps 2–3).

- `parse_image_ref`: `name[:tag]` (bare means `:latest`) or `name@sha256:…`.
- `registry_host`: which registry an image lives in, for picking credentials.
- `encode_registry_auth`: the `X-Registry-Auth` header value the engine API wants.
- `auth_from_docker_config` / `resolve_host_auth`: credentials from a Docker
  `config.json` (`auths`, `credHelpers`, `credsStore`), for `use_host_auth` and
  for `image_pull_secret` (whose value is such a file).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from ring_actors.runtimes.base import RegistryAuth

__all__ = [
    "DOCKER_HUB",
    "DOCKER_HUB_AUTH_KEYS",
    "CredentialError",
    "ImageRef",
    "auth_from_docker_config",
    "default_docker_config_path",
    "encode_registry_auth",
    "load_docker_config",
    "parse_image_ref",
    "registry_host",
    "resolve_host_auth",
]

DOCKER_HUB = "docker.io"
DOCKER_HUB_AUTH_KEYS = (
    "https://index.docker.io/v1/",
    "docker.io",
    "index.docker.io",
    "https://index.docker.io/v1",
    "registry-1.docker.io",
    "https://registry-1.docker.io",
)
"""Keys under which Docker's config.json stores Docker Hub credentials, in lookup order."""

_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}


class CredentialError(Exception):
    """Credentials exist but could not be read (bad file, failing credential helper)."""


def _is_registry_component(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"


def registry_host(image: str) -> str:
    """The registry of `image`: the first path segment if it contains `.` or `:` or is `localhost`.

    `nginx`, `library/nginx:1.25` -> `docker.io`; `127.0.0.1:5000/x/y:v1` -> `127.0.0.1:5000`.
    """
    first, sep, _ = image.partition("/")
    if sep and _is_registry_component(first):
        return first
    return DOCKER_HUB


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference. `repository` is kept as the user wrote it."""

    repository: str
    tag: str | None
    digest: str | None

    @property
    def reference(self) -> str:
        """What to ask the engine for: `repo@digest` when pinned, else `repo:tag`."""
        if self.digest:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag or 'latest'}"

    @property
    def pull_tag(self) -> str:
        """The `tag` parameter of a pull: the digest when pinned, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def registry(self) -> str:
        return registry_host(self.repository)

    @property
    def normalized_repository(self) -> str:
        """`nginx` -> `docker.io/library/nginx`; other registries unchanged."""
        return normalize_repository(self.repository)


def normalize_repository(repository: str) -> str:
    first, sep, rest = repository.partition("/")
    if sep and _is_registry_component(first):
        domain, path = first, rest
    else:
        domain, path = DOCKER_HUB, repository
    if domain in _HUB_ALIASES:
        domain = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"
    return f"{domain}/{path}"


def parse_image_ref(image: str) -> ImageRef:
    """Parse `name[:tag][@digest]`; a bare name gets tag `latest`.

    Raises ValueError for an empty name or an empty tag/digest.
    """
    text = image.strip()
    name, at, digest = text.partition("@")
    if at and (not digest or ":" not in digest):
        raise ValueError(f"invalid image reference {image!r}: bad digest")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag: str | None = None
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not tag:
            raise ValueError(f"invalid image reference {image!r}: empty tag")
    if not name or name.endswith("/"):
        raise ValueError(f"invalid image reference {image!r}")
    if tag is None and not at:
        tag = "latest"
    return ImageRef(repository=name, tag=tag, digest=digest or None)


def encode_registry_auth(auth: RegistryAuth | None) -> str | None:
    """The `X-Registry-Auth` header value (URL-safe base64 of the auth JSON), or None (anonymous)."""
    if auth is None:
        return None
    payload = {"username": auth.username, "password": auth.password, "serveraddress": auth.server}
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


# --------------------------------------------------------------------------- Docker config.json


def default_docker_config_path() -> Path:
    """`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`."""
    directory = os.environ.get("DOCKER_CONFIG")
    if directory:
        return Path(directory) / "config.json"
    return Path.home() / ".docker" / "config.json"


def load_docker_config(text: str | bytes) -> dict[str, Any]:
    """Parse a Docker config.json (the file, or an `image_pull_secret` value).

    Raises CredentialError when it is not a JSON object.
    """
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise CredentialError(f"registry config is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise CredentialError("registry config must be a JSON object")
    return config


def _host_of_key(key: str) -> str:
    """`https://host:5000/v1/` -> `host:5000`."""
    for scheme in ("https://", "http://"):
        if key.startswith(scheme):
            key = key[len(scheme) :]
    return key.split("/", 1)[0]


def _candidate_keys(registry: str, keys: list[str]) -> list[str]:
    if registry in _HUB_ALIASES:
        ordered = [key for key in DOCKER_HUB_AUTH_KEYS if key in keys]
        return ordered + [key for key in keys if _host_of_key(key) in _HUB_ALIASES and key not in ordered]
    exact = [key for key in keys if key == registry]
    return exact + [key for key in keys if key != registry and _host_of_key(key) == registry]


def _entry_to_auth(registry: str, entry: Mapping[str, Any]) -> RegistryAuth | None:
    username = entry.get("username") or ""
    password = entry.get("password") or ""
    encoded = entry.get("auth")
    if encoded and not (username and password):
        try:
            decoded = base64.b64decode(encoded).decode()
        except (ValueError, UnicodeDecodeError) as exc:
            raise CredentialError(f"invalid `auth` value for registry '{registry}'") from exc
        username, sep, password = decoded.partition(":")
        if not sep:
            raise CredentialError(f"invalid `auth` value for registry '{registry}'")
    if not username or not password:
        return None
    return RegistryAuth(server=registry, username=username, password=password)


def auth_from_docker_config(config: Mapping[str, Any], registry: str) -> RegistryAuth | None:
    """Static credentials for `registry` from a config's `auths` map (no helpers), or None."""
    auths = config.get("auths")
    if not isinstance(auths, dict):
        return None
    for key in _candidate_keys(registry, list(auths)):
        entry = auths[key]
        if isinstance(entry, dict):
            auth = _entry_to_auth(registry, entry)
            if auth is not None:
                return auth
    return None


async def _credential_helper(helper: str, registry: str) -> RegistryAuth | None:
    server = "https://index.docker.io/v1/" if registry in _HUB_ALIASES else registry
    try:
        result = await trio.run_process(
            [f"docker-credential-{helper}", "get"],
            stdin=server.encode(),
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    except OSError as exc:
        raise CredentialError(f"credential helper 'docker-credential-{helper}' cannot run: {exc}") from exc
    if result.returncode != 0:
        message = (result.stdout or result.stderr).decode(errors="replace").strip()
        if "credentials not found" in message.lower():
            return None
        raise CredentialError(f"credential helper 'docker-credential-{helper}' failed: {message}")
    try:
        reply = json.loads(result.stdout)
    except ValueError as exc:
        raise CredentialError(f"credential helper 'docker-credential-{helper}' returned invalid JSON") from exc
    username, secret = reply.get("Username") or "", reply.get("Secret") or ""
    if not username or not secret:
        return None
    return RegistryAuth(server=registry, username=username, password=secret)


async def resolve_host_auth(
    registry: str, *, config_path: Path | None = None, config: Mapping[str, Any] | None = None
) -> RegistryAuth | None:
    """Credentials for `registry` from a Docker config, honouring `credHelpers` and `credsStore`.

    Args:
        registry: registry host (see `registry_host`).
        config_path: file to read (default `default_docker_config_path()`); ignored with `config`.
        config: an already parsed config (e.g. an `image_pull_secret` value).

    Returns None when there is no entry for the registry. Raises CredentialError
    when the file is unreadable or a helper fails.
    """
    if config is None:
        path = config_path or default_docker_config_path()
        try:
            text = await trio.Path(path).read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CredentialError(f"cannot read registry config {path}: {exc}") from exc
        config = load_docker_config(text)
    helpers = config.get("credHelpers")
    if isinstance(helpers, dict):
        hub = registry in _HUB_ALIASES
        for key, helper in helpers.items():
            if isinstance(helper, str) and (key == registry or (hub and _host_of_key(key) in _HUB_ALIASES)):
                return await _credential_helper(helper, registry)
    static = auth_from_docker_config(config, registry)
    if static is not None:
        return static
    store = config.get("credsStore")
    if isinstance(store, str) and store:
        return await _credential_helper(store, registry)
    return None
