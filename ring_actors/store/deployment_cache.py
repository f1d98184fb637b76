"""The `deployment` rows in memory, as of every write issued so far.

`DeploymentRepo` is the only writer of its table, and `Database.call` runs calls in
the order they are made (one queue, first in first out). So the repo applies each
write to this cache when it issues it, predicting the row the SQL will leave, and
a read sees every write issued before it, as a read queued behind them in SQLite
did, without waiting for any of them. After the commit the prediction is checked
against the row read back in the same transaction; a write that failed, was
cancelled or came out differently drops the whole cache, and the next read loads
it again. Pure bookkeeping: no I/O, no trio.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

import msgspec

from ring_actors.schemas.manifest import Deployment

__all__ = ["DeploymentSnapshot", "Predict", "RowCache", "Write"]

log = logging.getLogger(__name__)

_decoder = msgspec.json.Decoder(Deployment)


class _Labels(msgspec.Struct):
    """Only the labels of a stored body: enough to filter without decoding the rest."""

    labels: dict[str, str] = {}


_labels_decoder = msgspec.json.Decoder(_Labels)


@dataclass(frozen=True, slots=True)
class DeploymentSnapshot:
    """One stored row. Immutable, so it is shared, never copied.

    `version` changes with every write of the row: readers key their caches on
    (`id`, `version`). `deployment()` gives a fresh Deployment the caller may mutate.
    """

    id: str
    version: int
    namespace: str
    kind: str
    status: str
    restart_count: int
    parent_id: str | None
    created_at: str
    updated_at: str | None
    labels: Mapping[str, str]
    body: bytes | str

    @classmethod
    def from_row(cls, row: sqlite3.Row, version: int) -> DeploymentSnapshot:
        return cls(
            id=row["id"],
            version=version,
            namespace=row["namespace"],
            kind=row["kind"],
            status=row["status"],
            restart_count=row["restart_count"],
            parent_id=row["parent_id"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            labels=MappingProxyType(_labels_decoder.decode(row["body"]).labels),
            body=row["body"],
        )

    @classmethod
    def written(cls, deployment: Deployment, body: bytes, version: int) -> DeploymentSnapshot:
        """The row an INSERT of `deployment` with `body` leaves."""
        return cls(
            id=deployment.id,
            version=version,
            namespace=deployment.namespace,
            kind=deployment.kind,
            status=deployment.status,
            restart_count=deployment.restart_count,
            parent_id=deployment.parent_id or None,
            created_at=deployment.created_at,
            updated_at=deployment.updated_at,
            labels=MappingProxyType(dict(deployment.labels)),
            body=body,
        )

    def deployment(self) -> Deployment:
        """A new Deployment (decoding the body costs about a microsecond: cheaper than a deep copy)."""
        deployment = _decoder.decode(self.body)
        # Columns are authoritative for what the server changes after insert.
        deployment.status = self.status
        deployment.restart_count = self.restart_count
        deployment.updated_at = self.updated_at
        deployment.parent_id = self.parent_id if self.parent_id else msgspec.UNSET
        deployment.instances = []
        return deployment

    def same_row(self, other: DeploymentSnapshot | None) -> bool:
        """Equal in everything but `version`."""
        return other is not None and replace(other, version=self.version) == self


Predict = Callable[[DeploymentSnapshot | None, int], tuple[Any, DeploymentSnapshot | None]]
"""What a write does to one row: (current row, new version) -> (its result, the row after; None: gone)."""


class Write:
    """One issued write: its prediction, and what was predicted once it was applied."""

    __slots__ = ("applied_in", "deployment_id", "predict", "result", "row")

    def __init__(self, deployment_id: str, predict: Predict) -> None:
        self.deployment_id = deployment_id
        self.predict = predict
        self.applied_in: int | None = None  # the cache generation it was applied to
        self.result: Any = None
        self.row: DeploymentSnapshot | None = None


class _Load:
    """A full read of the table on its way: the writes issued after it are applied on its result."""

    __slots__ = ("generation", "later")

    def __init__(self, generation: int) -> None:
        self.generation = generation
        self.later: list[Write] = []


class RowCache:
    """Rows by id, `None` until loaded; see the module docstring for the protocol."""

    def __init__(self) -> None:
        self.rows: dict[str, DeploymentSnapshot] | None = None
        self._order: list[str] | None = None  # ids by (created_at, id); None when rows came or went
        self._generation = 0  # bumped by every drop
        self._version = 0
        self._load: _Load | None = None

    def next_version(self) -> int:
        self._version += 1
        return self._version

    def ordered(self) -> list[DeploymentSnapshot]:
        """Every row, oldest first (created_at, then id), as `ORDER BY created_at, id`."""
        rows = self.rows
        if rows is None:
            return []
        if self._order is None:
            self._order = sorted(rows, key=lambda key: (rows[key].created_at, key))
        return [rows[key] for key in self._order]

    # ------------------------------------------------------------ writes

    def issue(self, write: Write) -> None:
        """Apply `write` now (call right before `Database.call`), or after the load on its way."""
        if self.rows is not None:
            self._apply(write, self.rows)
        elif self._load is not None:
            self._load.later.append(write)
        # else: nothing is cached; the next load is queued behind this write and sees it

    def settle(self, write: Write, result: Any, row: DeploymentSnapshot | None) -> None:
        """The write committed with `result`, leaving `row`: drop the cache if it was predicted otherwise."""
        if write.applied_in != self._generation:
            return  # never applied, or to a cache dropped since
        if result == write.result and (row.same_row(write.row) if row is not None else write.row is None):
            return
        log.warning(
            "deployment %s: the cached row differs from the stored one after a write; reloading the cache",
            write.deployment_id,
        )
        self.drop()

    def drop(self) -> None:
        """Forget every row (a write failed or its outcome is unknown); the next read loads them."""
        self.rows = None
        self._order = None
        self._load = None
        self._generation += 1

    def _apply(self, write: Write, rows: dict[str, DeploymentSnapshot]) -> None:
        current = rows.get(write.deployment_id)
        write.result, write.row = write.predict(current, self.next_version())
        write.applied_in = self._generation
        if write.row is None:
            if rows.pop(write.deployment_id, None) is not None:
                self._order = None
        else:
            if current is None:
                self._order = None
            rows[write.deployment_id] = write.row

    # ------------------------------------------------------------ loads

    def begin_load(self) -> _Load:
        """Call right before the `Database.call` that reads every row."""
        self._load = _Load(self._generation)
        return self._load

    def end_load(self, load: _Load, rows: dict[str, DeploymentSnapshot]) -> dict[str, DeploymentSnapshot]:
        """Install what `load` read, plus the writes issued since, unless dropped or superseded meanwhile.

        Returns the rows to answer the reader with (the loaded ones when not installed).
        """
        if load is not self._load or load.generation != self._generation or self.rows is not None:
            return rows
        self._load = None
        for write in load.later:
            self._apply(write, rows)
        self.rows = rows
        self._order = None
        return rows

    def abandon_load(self, load: _Load) -> None:
        if self._load is load:
            self._load = None
