"""Turns a stored deployment into an `InstanceSpec`, resolving what the runtime needs.

Runs just before each create, so a changed secret or config is picked up by the
next instance (never by running ones), as Ring does.
"""

from __future__ import annotations

from typing import Protocol

from msgspec import UNSET

from ring_actors.runtimes.base import InstanceSpec, Mount, RegistryAuth
from ring_actors.runtimes.errors import FailureKind, RuntimeFailure
from ring_actors.schemas.manifest import CommandCheck, Deployment, SecretRef


class SecretSource(Protocol):
    async def secret_value(self, namespace: str, name: str) -> bytes | None: ...

    async def config_value(self, namespace: str, name: str, key: str) -> bytes | None: ...


class NoSecrets:
    """Used until a secret store is configured: every reference is unresolvable."""

    async def secret_value(self, namespace: str, name: str) -> bytes | None:
        return None

    async def config_value(self, namespace: str, name: str, key: str) -> bytes | None:
        return None


async def build_instance_spec(
    deployment: Deployment, secrets: SecretSource, server_id: str = ""
) -> InstanceSpec:
    env: dict[str, str] = {}
    for key, value in deployment.environment.items():
        if isinstance(value, SecretRef):
            resolved = await secrets.secret_value(deployment.namespace, value.secret_ref)
            if resolved is None:
                raise RuntimeFailure(
                    FailureKind.CONFIG_ERROR,
                    f"Failed to resolve secrets: secret '{value.secret_ref}' not found in namespace"
                    f" '{deployment.namespace}'",
                    permanent=False,
                )
            env[key] = resolved.decode()
        else:
            env[key] = value
    mounts: list[Mount] = []
    for volume in deployment.volumes:
        read_only = volume.permission == "ro"
        if volume.type == "bind":
            mounts.append(Mount("bind", volume.destination, read_only, source=volume.source))
        elif volume.type == "volume":
            mounts.append(
                Mount("volume", volume.destination, read_only, source=volume.source, driver=volume.driver)
            )
        else:
            if volume.type == "secret":
                content = await secrets.secret_value(deployment.namespace, volume.source or "")
            else:
                content = await secrets.config_value(deployment.namespace, volume.source or "", volume.key or "")
            if content is None:
                what = "Secret" if volume.type == "secret" else "Config"
                raise RuntimeFailure(
                    FailureKind.CONFIG_ERROR,
                    f"Failed to resolve volumes: {what} '{volume.source}' not found",
                    permanent=False,
                )
            mounts.append(Mount("file", volume.destination, True, content=content))
    config = deployment.config
    auth = None
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
        native_healthcheck=native,
        server_id=server_id,
    )
