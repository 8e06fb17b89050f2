"""Backup storage: repositories of deduplicated, compressed, verifiable snapshots.

A repository lives on an object store: a local folder here (:class:`LocalBackupStorage`);
S3 and Azure Blob come next, with the same guarantees. Many graphs share one repository, and
identical data is stored once across all their snapshots.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from . import _native
from .errors import InvalidInputError, SnapshotNotFoundError
from .graph_backup import BackupSnapshot, ProgressCallback, VerifyReport, verify_report


class BackupStorageBackend:
    """A snapshot repository at ``url``.

    Subclasses say where the repository lives; the repository format, and so every operation,
    is the same on all of them. A repository is created on first use unless ``create=False``
    (then a missing repository raises :class:`~lightrag.backup.errors.RepositoryNotFoundError`).
    """

    def __init__(self, url: str, *, create: bool = True) -> None:
        self._url = url
        self._repo = _native.Repository(url, create)

    @property
    def url(self) -> str:
        """The location of the repository."""
        return self._url

    @property
    def location(self) -> str:
        """Where the backend actually stores objects (an absolute path for a local folder)."""
        return self._repo.location

    @property
    def config(self) -> dict[str, Any]:
        """The repository's format version, id, chunker and compression settings."""
        return json.loads(self._repo.config_json)

    def list_graphs(self) -> list[str]:
        """Ids of every graph with at least one snapshot in this repository."""
        return self._repo.list_graphs()

    def list_snapshots(self, graph_id: str) -> list[str]:
        """Snapshot ids of a graph, oldest first."""
        return [entry["snapshot_id"] for entry in json.loads(self._repo.list_op(graph_id).run())]

    def load_snapshot(self, snapshot_id: str) -> BackupSnapshot:
        """The snapshot with this id, whichever graph it belongs to.

        Raises :class:`SnapshotNotFoundError` when no graph has it.
        """
        graph_id = self._graph_of(snapshot_id)
        return BackupSnapshot._from_native(json.loads(self._repo.get_op(graph_id, snapshot_id).run()), self)

    def delete_snapshot(self, snapshot_id: str) -> bool:
        """Forget a snapshot (its manifest). Data no other snapshot uses is freed by a prune.

        Returns ``True``; raises :class:`SnapshotNotFoundError` for an unknown id.
        """
        graph_id = self._graph_of(snapshot_id)
        self._repo.delete_op(graph_id, snapshot_id).run()
        return True

    def get_storage_stats(self) -> dict[str, Any]:
        """Repository-wide numbers: snapshots, logical, unique and stored bytes, ratios."""
        stats = json.loads(self._repo.stats_op(None).run())
        stats["url"] = self.url
        stats["graphs"] = len(self.list_graphs())
        return stats

    def verify(
        self,
        graph_id: str | None = None,
        read_data: bool = True,
        *,
        read_data_subset: float | None = None,
        progress: ProgressCallback | None = None,
    ) -> VerifyReport:
        """Verify every snapshot of one graph, or of the whole repository, in one pass (each
        pack is read once however many snapshots share it)."""
        scope = f"the snapshots of graph {graph_id}" if graph_id else "the snapshots of every graph"
        op = self._repo.verify_op(graph_id, None, bool(read_data), read_data_subset, progress)
        return verify_report("", bool(read_data), op.run(), scope)

    def _graph_of(self, snapshot_id: str) -> str:
        if not isinstance(snapshot_id, str) or not snapshot_id:
            raise InvalidInputError("snapshot_id must be a non-empty string")
        graph_id = self._repo.find_snapshot_graph(snapshot_id)
        if graph_id is None:
            raise SnapshotNotFoundError(f"snapshot {snapshot_id!r} not found in {self.url}")
        return graph_id

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


class LocalBackupStorage(BackupStorageBackend):
    """A repository in a local folder (created when missing).

    ``path`` defaults to ``LIGHTRAG_BACKUP_STORAGE_PATH``.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, create: bool = True) -> None:
        if path is None:
            path = os.environ.get("LIGHTRAG_BACKUP_STORAGE_PATH")
            if not path:
                raise InvalidInputError(
                    "no repository path: pass one or set LIGHTRAG_BACKUP_STORAGE_PATH"
                )
        self.path = Path(path).expanduser().absolute()
        super().__init__(str(self.path), create=create)

    def __repr__(self) -> str:
        return f"LocalBackupStorage({str(self.path)!r})"


def storage_from_location(location: str, *, create: bool = True) -> BackupStorageBackend:
    """Open a repository from a path or URL (``file:///...`` or a plain path)."""
    if "://" not in location or location.startswith("file://"):
        path = location[len("file://"):] if location.startswith("file://") else location
        return LocalBackupStorage(path, create=create)
    return BackupStorageBackend(location, create=create)


__all__ = ["BackupStorageBackend", "LocalBackupStorage", "storage_from_location"]
