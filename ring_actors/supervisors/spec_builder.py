"""Turns a stored deployment into an `InstanceSpec`, resolving what the runtime needs.

Runs just before each create, so a changed secret or config is picked up by the
next instance (never by running ones), as Ring does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from msgspec import UNSET

from ring_actors.runtimes.base import InstanceSpec, Mount, RegistryAuth
from ring_actors.runtimes.errors import Disposition, FailureKind, RuntimeFailure
from ring_actors.runtimes.registry_auth import (
    CredentialError,
    auth_from_docker_config,
    load_docker_config,
    registry_host,
)
from ring_actors.schemas.manifest import CommandCheck, Deployment, SecretRef
from ring_actors.status import Status

__all__ = ["NoSecrets", "ResolutionFailure", "SecretSource", "build_instance_spec"]


class SecretSource(Protocol):
    """Where the spec builder reads secret values and config entries (the store, or nothing).

    Both return None when the secret / config / key does not exist, and raise when it
    exists but cannot be read (database error, undecryptable secret).
    """

    async def secret_value(self, namespace: str, name: str) -> bytes | None: ...

    async def config_value(self, namespace: str, name: str, key: str) -> bytes | None: ...


class NoSecrets:
    """Used until a secret store is configured: every reference is unresolvable."""

    async def secret_value(self, namespace: str, name: str) -> bytes | None:
        return None

    async def config_value(self, namespace: str, name: str, key: str) -> bytes | None:
        return None


class ResolutionFailure(RuntimeFailure):
    """A secret, config or pull secret could not be resolved before a create (lifecycle.md §5).

    The event carries the §5 reason (`secret_resolution_error`, `volume_resolution_error`,
    `image_pull_secret_resolution_error`, `secret_load_error`, `config_load_error`).
    Ring skips the deployment and retries each tick forever, leaving it `creating`;
    here the failure is permanent for the restart policy: the status says
    `config_error`, `restart_count` stays truthful (no crash-loop verdict from a
    missing secret), and the create is retried at the maximum backoff, so creating
    the secret or config later recovers the deployment without a re-apply.
    Messages name the secret or config, never a value.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(FailureKind.CONFIG_ERROR, message, permanent=True)
        self.reason = reason

    @property
    def disposition(self) -> Disposition:
        return Disposition(Status.CONFIG_ERROR, self.reason, True)

    def __repr__(self) -> str:
        return f"ResolutionFailure({self.reason}, {self.message!r})"


class _Problems:
    """Every resolution failure of one build, reported together (Ring stops at the first)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, reason: str, message: str) -> None:
        self.items.append((reason, message))

    def raise_if_any(self) -> None:
        if self.items:
            reason = self.items[0][0]
            raise ResolutionFailure(reason, "; ".join(message for _, message in self.items))


async def _read(call: Callable[..., Awaitable[bytes | None]], *args: str) -> tuple[bytes | None, str | None]:
    """(value, None), or (None, why) when the source raised (database, decryption)."""
    try:
        return await call(*args), None
    except Exception as exc:  # noqa: BLE001 - any store failure becomes a resolution event
        return None, str(exc) or type(exc).__name__


async def build_instance_spec(
    deployment: Deployment, secrets: SecretSource, server_id: str = ""
) -> InstanceSpec:
    """The runtime's view of `deployment`, with secrets, configs and pull credentials resolved.

    Resolution follows lifecycle.md §5's order (configs, secret volumes, environment
    secretRefs, `image_pull_secret`); every reference is tried, so one event lists all
    that are missing.

    Raises:
        ResolutionFailure: something referenced is missing or unreadable (reason per §5).
    """
    ns = deployment.namespace
    problems = _Problems()
    payloads: dict[int, bytes] = {}
    for idx, volume in enumerate(deployment.volumes):
        if volume.type != "config":
            continue
        content, error = await _read(secrets.config_value, ns, volume.source or "", volume.key or "")
        if error is not None:
            problems.add("config_load_error", f"Failed to load configs: {error}")
        elif content is None:
            problems.add(
                "volume_resolution_error",
                f"Failed to resolve volumes: Config '{volume.source}' (key '{volume.key}') not found"
                f" in namespace '{ns}'",
            )
        else:
            payloads[idx] = content
    for idx, volume in enumerate(deployment.volumes):
        if volume.type != "secret":
            continue
        content, error = await _read(secrets.secret_value, ns, volume.source or "")
        if error is not None:
            problems.add("secret_load_error", f"Failed to load secret '{volume.source}' for a volume: {error}")
        elif content is None:
            problems.add(
                "volume_resolution_error",
                f"Failed to resolve volumes: Secret '{volume.source}' not found in namespace '{ns}'",
            )
        else:
            payloads[idx] = content
    env: dict[str, str] = {}
    for key, value in deployment.environment.items():
        if not isinstance(value, SecretRef):
            env[key] = value
            continue
        resolved, error = await _read(secrets.secret_value, ns, value.secret_ref)
        if error is not None or resolved is None:
            why = error or f"secret '{value.secret_ref}' not found in namespace '{ns}'"
            problems.add("secret_resolution_error", f"Failed to resolve secrets: {key}: {why}")
            continue
        try:
            env[key] = resolved.decode()
        except UnicodeDecodeError:
            problems.add(
                "secret_resolution_error", f"Failed to resolve secrets: {key}: secret '{value.secret_ref}' is not UTF-8"
            )
    pull_auth = await _pull_secret_auth(deployment, secrets, problems)
    problems.raise_if_any()
    mounts: list[Mount] = []
    for idx, volume in enumerate(deployment.volumes):
        read_only = volume.permission == "ro"
        if volume.type == "bind":
            mounts.append(Mount("bind", volume.destination, read_only, source=volume.source))
        elif volume.type == "volume":
            mounts.append(
                Mount("volume", volume.destination, read_only, source=volume.source, driver=volume.driver)
            )
        else:
            mounts.append(Mount("file", volume.destination, True, content=payloads[idx]))
    config = deployment.config
    auth = pull_auth
    if config.server is not UNSET and config.username is not UNSET and config.password is not UNSET:
        auth = RegistryAuth(config.server, config.username, config.password)
    native = next(
        (c for c in deployment.health_checks if isinstance(c, CommandCheck) and c.readiness), None
    )
    return InstanceSpec(
        deployment_id=deployment.id,
        deployment_name=deployment.name,
        namespace=deployment.namespace,
        image=deployment.image,
        kind=deployment.kind,
        command=tuple(deployment.command),
        env=env,
        labels=dict(deployment.labels),
        ports=tuple(deployment.ports),
        mounts=tuple(mounts),
        resources=None if deployment.resources is UNSET else deployment.resources,
        user=None if config.user is UNSET else config.user,
        network_mode=deployment.network_mode,
        pull_policy=config.pull_policy,
        registry_auth=auth,
        use_host_auth=config.use_host_auth is True,
        native_healthcheck=native,
        server_id=server_id,
    )


async def _pull_secret_auth(
    deployment: Deployment, secrets: SecretSource, problems: _Problems
) -> RegistryAuth | None:
    """Credentials for the image's registry from `config.image_pull_secret` (manifest.md §11).

    The secret holds a Docker `config.json`; only its static `auths` entries are used:
    `credHelpers`/`credsStore` would run a host program named by tenant data.
    """
    name = deployment.config.image_pull_secret
    if name is UNSET or not name:
        return None
    registry = registry_host(deployment.image)
    reason = "image_pull_secret_resolution_error"
    value, error = await _read(secrets.secret_value, deployment.namespace, name)
    if error is not None:
        problems.add(reason, f"Failed to resolve image_pull_secret '{name}': {error}")
        return None
    if value is None:
        problems.add(
            reason, f"Failed to resolve image_pull_secret '{name}': secret not found in namespace '{deployment.namespace}'"
        )
        return None
    try:
        auth = auth_from_docker_config(load_docker_config(value), registry)
    except CredentialError as exc:
        problems.add(reason, f"Failed to resolve image_pull_secret '{name}': {exc}")
        return None
    if auth is None:
        problems.add(
            reason,
            f"Failed to resolve image_pull_secret '{name}': its `auths` map has no usable entry for registry"
            f" '{registry}'",
        )
    return auth
