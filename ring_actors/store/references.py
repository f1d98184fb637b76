"""Which active deployments use a secret or a config (resources.md §2-§3, api.md §16).

Ring's delete protection scans environment `secretRef`s only, by text matching, and
in practice misses references. Here every active (status != `deleted`) deployment
body of the namespace is decoded and its structure inspected, so all three uses of
a secret are seen (env `secretRef`, `type: secret` volume, `config.image_pull_secret`)
and both uses of a config (`type: config` volume, named by `source`). The scan runs
inside the caller's transaction, so a delete and its check see the same rows.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import msgspec

__all__ = ["Reference", "config_references", "secret_references"]


class Reference(msgspec.Struct, kw_only=True, frozen=True):
    """One use of a secret or config by a deployment (`use`: where in the manifest)."""

    deployment_id: str
    deployment: str
    """`<namespace>/<name>`, as Ring lists referencing deployments."""
    use: str


class _Volume(msgspec.Struct):
    type: str = ""
    source: str | None = None
    key: str | None = None


class _RuntimeConfig(msgspec.Struct):
    image_pull_secret: str | None = None


class _Refs(msgspec.Struct):
    """The parts of a stored deployment body that can name a secret or a config."""

    environment: dict[str, Any] = {}
    volumes: list[_Volume] = []
    config: _RuntimeConfig = msgspec.field(default_factory=_RuntimeConfig)


_DECODER = msgspec.json.Decoder(_Refs)


def _active(conn: sqlite3.Connection, namespace: str) -> list[tuple[str, str, _Refs]]:
    rows = conn.execute(
        "SELECT id, name, body FROM deployment WHERE namespace=? AND status != 'deleted' ORDER BY name, id",
        (namespace,),
    )
    return [(row["id"], row["name"], _DECODER.decode(row["body"])) for row in rows]


def secret_references(conn: sqlite3.Connection, namespace: str, name: str) -> list[Reference]:
    """Every use of secret `name` by an active deployment of `namespace`."""
    found: list[Reference] = []
    for deployment_id, deployment, refs in _active(conn, namespace):
        label = f"{namespace}/{deployment}"
        for key, value in refs.environment.items():
            if isinstance(value, dict) and value.get("secretRef") == name:
                found.append(Reference(deployment_id=deployment_id, deployment=label, use=f"environment.{key}"))
        for idx, volume in enumerate(refs.volumes):
            if volume.type == "secret" and volume.source == name:
                found.append(Reference(deployment_id=deployment_id, deployment=label, use=f"volumes[{idx}]"))
        if refs.config.image_pull_secret == name:
            found.append(Reference(deployment_id=deployment_id, deployment=label, use="config.image_pull_secret"))
    return found


def config_references(conn: sqlite3.Connection, namespace: str, name: str) -> list[Reference]:
    """Every `type: config` volume of an active deployment of `namespace` mounting config `name`."""
    found: list[Reference] = []
    for deployment_id, deployment, refs in _active(conn, namespace):
        for idx, volume in enumerate(refs.volumes):
            if volume.type == "config" and volume.source == name:
                found.append(
                    Reference(deployment_id=deployment_id, deployment=f"{namespace}/{deployment}", use=f"volumes[{idx}]")
                )
    return found
