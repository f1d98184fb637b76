"""The named-volume registry (resources.md §4, api.md §11): rows only, nothing on a runtime.

A volume is identified by (`namespace`, `name`). Rows come from `POST /volumes` or,
the first time a deployment mounts a `type: volume`, from `register_mounted_volumes`
(Ring registers on first mount; here the `POST /deployments` handler does it, so the
row exists as soon as the deployment does). The runtime provisions the volume itself
on first mount; deleting a row never touches the data.

Delete protection reads the stored manifests structurally, inside the delete's own
transaction: every active (status != `deleted`) deployment of the volume's namespace
whose `volumes` mount it as `type: volume` (the same idea as `store/references.py`
for secrets and configs, kept separate while that module is being reworked).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable

import msgspec

from ring_actors.schemas.manifest import Deployment
from ring_actors.store.db import Database, utcnow

__all__ = [
    "BACKENDS",
    "NamespaceMissing",
    "Volume",
    "VolumeCreated",
    "VolumeExists",
    "VolumeInUse",
    "VolumeReference",
    "VolumeRepo",
    "mounted_volume_names",
    "register_mounted_volumes",
]

BACKENDS = ("local", "directory")
"""`backend_type` values (api.md §11): engine named volume, or host directory (Cloud Hypervisor)."""

_DIRECTORY_RUNTIMES = frozenset({"cloud-hypervisor"})
"""Runtimes whose named volumes are host directories (manifest.md §5.1)."""


class Volume(msgspec.Struct, kw_only=True):
    """A registry row as `GET /volumes` shows it (api.md §11)."""

    id: str
    created_at: str
    updated_at: str | None
    namespace: str
    name: str
    size: int | None
    backend_type: str
    host_path: str | None
    labels: dict[str, str]


class VolumeCreated(msgspec.Struct, kw_only=True):
    """The `201` body of `POST /volumes` (Ring returns only these five fields)."""

    id: str
    created_at: str
    namespace: str
    name: str
    backend_type: str


class VolumeReference(msgspec.Struct, kw_only=True, frozen=True):
    """One mount of a volume by an active deployment (`use`: where in the manifest)."""

    deployment_id: str
    deployment: str
    """`<namespace>/<name>`, as Ring lists referencing deployments."""
    use: str


class VolumeExists(Exception):
    def __init__(self, namespace: str, name: str) -> None:
        super().__init__(f"volume '{name}' already exists in namespace '{namespace}'")


class NamespaceMissing(Exception):
    def __init__(self, namespace: str) -> None:
        super().__init__(f"namespace '{namespace}' does not exist")
        self.namespace = namespace


class VolumeInUse(Exception):
    """Delete refused: active deployments mount the volume."""

    def __init__(self, references: list[VolumeReference]) -> None:
        self.references = references
        super().__init__("mounted by " + ", ".join(self.deployments))

    @property
    def deployments(self) -> list[str]:
        """`<ns>/<name>` of each mounting deployment, once each, sorted."""
        return sorted({r.deployment for r in self.references})


class _Mount(msgspec.Struct):
    type: str = ""
    source: str | None = None


class _Mounts(msgspec.Struct):
    """The part of a stored deployment body that can name a volume."""

    volumes: list[_Mount] = []


_MOUNTS = msgspec.json.Decoder(_Mounts)
_LABELS = msgspec.json.Decoder(dict[str, str])
_ENCODER = msgspec.json.Encoder()


def _volume(row: sqlite3.Row) -> Volume:
    return Volume(
        id=row["id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        namespace=row["namespace"],
        name=row["name"],
        size=row["size"],
        backend_type=row["backend"],
        host_path=row["host_path"],
        labels=_LABELS.decode(row["labels"] or "{}"),
    )


def _references(conn: sqlite3.Connection, namespace: str, name: str) -> list[VolumeReference]:
    """Every `type: volume` mount of `name` by an active deployment of `namespace`."""
    rows = conn.execute(
        "SELECT id, name, body FROM deployment WHERE namespace=? AND status != 'deleted' ORDER BY name, id",
        (namespace,),
    )
    found: list[VolumeReference] = []
    for row in rows:
        for idx, mount in enumerate(_MOUNTS.decode(row["body"]).volumes):
            if mount.type == "volume" and mount.source == name:
                found.append(VolumeReference(
                    deployment_id=row["id"], deployment=f"{namespace}/{row['name']}", use=f"volumes[{idx}]"
                ))
    return found


def mounted_volume_names(deployment: Deployment) -> list[str]:
    """Names of the named volumes (`type: volume`) `deployment` mounts, once each, in order."""
    names = [v.source for v in deployment.volumes if v.type == "volume" and v.source]
    return list(dict.fromkeys(names))


class VolumeRepo:
    """The `volume` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        namespace: str,
        name: str,
        *,
        backend_type: str = "local",
        size: int | None = None,
        labels: dict[str, str] | None = None,
    ) -> VolumeCreated:
        """Insert a row in an existing namespace. Raises NamespaceMissing, VolumeExists.

        `host_path` is the volume name, as Ring stores it for API-created volumes.
        """
        created = VolumeCreated(
            id=str(uuid.uuid4()), created_at=utcnow(), namespace=namespace, name=name, backend_type=backend_type
        )
        encoded_labels = _ENCODER.encode(labels or {}).decode()

        def run(conn: sqlite3.Connection) -> VolumeCreated:
            if conn.execute("SELECT 1 FROM namespace WHERE name=?", (namespace,)).fetchone() is None:
                raise NamespaceMissing(namespace)
            if conn.execute("SELECT 1 FROM volume WHERE namespace=? AND name=?", (namespace, name)).fetchone():
                raise VolumeExists(namespace, name)
            conn.execute(
                "INSERT INTO volume (id, namespace, name, backend, created_at, size, host_path, labels, updated_at)"
                " VALUES (?,?,?,?,?,?,?,?,NULL)",
                (created.id, namespace, name, backend_type, created.created_at, size, name, encoded_labels),
            )
            return created

        return await self.db.call(run)

    async def register(self, namespace: str, names: Iterable[str], *, backend_type: str = "local") -> list[str]:
        """Add a row for each of `names` not yet registered in `namespace`; returns the added names.

        Idempotent, and never fails on an existing row: deployments sharing a volume
        all "register" it, and only the first one adds it.
        """
        wanted = list(names)

        def run(conn: sqlite3.Connection) -> list[str]:
            added: list[str] = []
            for name in wanted:
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO volume (id, namespace, name, backend, created_at, size, host_path, labels)"
                    " VALUES (?,?,?,?,?,NULL,?,'{}')",
                    (str(uuid.uuid4()), namespace, name, backend_type, utcnow(), name),
                )
                if cursor.rowcount:
                    added.append(name)
            return added

        if not wanted:
            return []
        return await self.db.call(run)

    async def references(self, namespace: str, name: str) -> list[VolumeReference]:
        """Active deployments of `namespace` mounting volume `name`."""
        return await self.db.call(lambda conn: _references(conn, namespace, name))

    async def list(self, namespaces: list[str] | None = None) -> list[Volume]:
        """Every volume (of `namespaces` when given), by namespace then name."""

        def run(conn: sqlite3.Connection) -> list[Volume]:
            if namespaces is None:
                rows = conn.execute("SELECT * FROM volume ORDER BY namespace, name")
            else:
                marks = ",".join("?" * len(namespaces))
                rows = conn.execute(
                    f"SELECT * FROM volume WHERE namespace IN ({marks}) ORDER BY namespace, name", namespaces
                )
            return [_volume(r) for r in rows]

        if namespaces is not None and not namespaces:
            return []
        return await self.db.call(run)

    async def get(self, volume_id: str) -> Volume | None:
        def run(conn: sqlite3.Connection) -> Volume | None:
            row = conn.execute("SELECT * FROM volume WHERE id=?", (volume_id,)).fetchone()
            return _volume(row) if row else None

        return await self.db.call(run)

    async def delete(self, volume_id: str, *, force: bool = False) -> Volume | None:
        """Delete the row unless mounted (checked in the same transaction). None when absent.

        Raises VolumeInUse (not forced and some active deployment mounts it).
        """

        def run(conn: sqlite3.Connection) -> Volume | None:
            row = conn.execute("SELECT * FROM volume WHERE id=?", (volume_id,)).fetchone()
            if row is None:
                return None
            if not force:
                found = _references(conn, row["namespace"], row["name"])
                if found:
                    raise VolumeInUse(found)
            conn.execute("DELETE FROM volume WHERE id=?", (volume_id,))
            return _volume(row)

        return await self.db.call(run)


async def register_mounted_volumes(db: Database, deployment: Deployment) -> list[str]:
    """Register the named volumes `deployment` mounts that its namespace does not have yet.

    Backend `directory` on Cloud Hypervisor, `local` elsewhere (manifest.md §5). No
    database hop when the deployment mounts no named volume.

    Returns:
        The names added to the registry (empty when all were already there).
    """
    names = mounted_volume_names(deployment)
    if not names:
        return []
    backend = "directory" if deployment.runtime in _DIRECTORY_RUNTIMES else "local"
    return await VolumeRepo(db).register(deployment.namespace, names, backend_type=backend)
