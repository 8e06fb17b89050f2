"""A graph's snapshots in a repository: :class:`GraphSnapshots`.

Everything about a graph that needs only the repository: list, get, delete, verify, stats,
shred, restoring a snapshot into a folder, and committing a snapshot of a folder a source
prepared (see :mod:`.sources`). It tells its recorder (the manager's catalog) of every commit,
forget, restore and verify. :class:`~lightrag.backup.GraphBackup` joins it with the graph's
source; a graph known only by its snapshots (a standby's, or one no longer registered) is a
``GraphSnapshots`` alone.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from .display import SnapshotList, StatsReport
from .errors import InvalidInputError
from .storage import BackupStorageBackend, as_storage
from .twins import Prepared, engine_twins

if TYPE_CHECKING:
    from .kg_diff import GraphDiff
from .types import (
    BackupSnapshot,
    ProgressCallback,
    SnapshotRecorder,
    VerifyReport,
    check_snapshot_id,
    validate_graph_id,
    verify_report,
)

#: Tag of the snapshot a restore takes of the state it replaces.
SAFETY_TAG = "pre-restore"


def _lightrag_version() -> Optional[str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lightrag-hku")
    except PackageNotFoundError:
        return None


@dataclasses.dataclass(frozen=True)
class Capture:
    """What a source prepared for one snapshot: the ``folder`` to read, how it was read
    (``mode``: ``offline``, ``live`` or ``records``), where the graph comes from (``identity``,
    ``workspace``), the pause of a live instance (``pause_ms``; ``None`` for a folder read in
    place) and a records graph's summary (``records``)."""

    folder: Path
    mode: str
    identity: str
    workspace: str
    pause_ms: Optional[float] = None
    records: Optional[dict[str, Any]] = None


class GraphSnapshots:
    """The snapshots of graph ``graph_id`` in ``storage`` (a
    :class:`~lightrag.backup.storage.BackupStorageBackend`, or a path or URL opened with
    ``password``). ``recorder`` is told of every commit, forget, restore and verify;
    ``key_per_graph`` asks for a key of the graph's own at its first snapshot."""

    def __init__(
        self,
        graph_id: str,
        storage: "BackupStorageBackend | str | os.PathLike[str]",
        *,
        recorder: Optional[SnapshotRecorder] = None,
        password: Any = None,
        key_per_graph: bool = False,
    ) -> None:
        self.graph_id = validate_graph_id(graph_id)
        self.storage = as_storage(storage, password)
        self.recorder = recorder
        self.key_per_graph = bool(key_per_graph)
        #: The outcome of the last restore (its safety snapshot, what it restored).
        self.last_restore: Optional[dict[str, Any]] = None
        #: The engine's own graph (``_native.GraphBackup``): every operation on this graph.
        self._engine = self.storage.engine.graph(self.graph_id)

    def __repr__(self) -> str:
        return f"GraphSnapshots({self.graph_id!r}, {self.storage!r})"

    # -- commit ---------------------------------------------------------------------------

    def snapshot_op(
        self,
        capture: Capture,
        description: Optional[str],
        tags: Optional[list[str]],
        metadata: Optional[dict[str, Any]],
        progress: Optional[ProgressCallback],
        *,
        skip_if_unchanged: bool = False,
        adopt: bool = False,
        safety: bool = False,
    ) -> Any:
        """The engine's snapshot of ``capture``'s folder (``run()`` it, or await ``start()``,
        then :meth:`committed`). A ``safety`` snapshot (the state a restore replaces, tagged
        ``pre-restore``) names no source, as the engine's own do: it is not this graph's
        source and never conflicts with it."""
        if tags is not None and (isinstance(tags, str) or not all(isinstance(t, str) for t in tags)):
            raise InvalidInputError("tags must be a list of strings")
        if description is not None and not isinstance(description, str):
            raise InvalidInputError("description must be a string")
        recorded: dict[str, Any] = dict(metadata or {})
        if capture.pause_ms is not None:
            recorded["live_pause_ms"] = round(capture.pause_ms, 3)
        if capture.records is not None:
            recorded["records"] = capture.records
            # The counts the engine reads off a file graph's files, from the records here.
            counts = capture.records.get("counts", {})
            for field, store in (("entities", "graph_nodes"), ("relations", "graph_edges"),
                                 ("chunks", "text_chunks"), ("documents", "full_docs")):
                if store in counts:
                    recorded.setdefault(field, counts[store])
        recorded.update({"lightrag_version": _lightrag_version(), "capture": capture.mode})
        if safety:
            tags = sorted({*(tags or []), SAFETY_TAG})
            recorded["replaced_state_of"] = capture.identity
        else:
            # A database-backed graph is identified by its storages and where they connect.
            recorded.update({"workspace": capture.workspace, "working_dir": capture.identity})
        try:
            metadata_json = json.dumps(recorded)
        except (TypeError, ValueError) as error:
            raise InvalidInputError(f"metadata must be JSON-serialisable: {error}") from None
        return self._engine.snapshot_op(
            str(capture.folder), description, list(tags or []), metadata_json, 5, progress, bool(skip_if_unchanged),
            bool(adopt), self.key_per_graph and not safety,
        )

    def committed(self, result: str, started: float) -> BackupSnapshot:
        """The snapshot an engine snapshot returned (``result``), told to the recorder with
        how long it took since ``started`` (``time.perf_counter()``)."""
        snapshot = self._snapshot(result)
        if self.recorder is not None and not snapshot.skipped:
            # How long the engine took (in the catalog, for the metrics; not in the manifest).
            snapshot.metadata["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
            self.recorder.record_snapshot(snapshot)
        return snapshot

    async def asnapshot(
        self,
        capture: Capture,
        description: Optional[str] = None,
        tags: Optional[list[str]] = None,
        metadata: Optional[dict[str, Any]] = None,
        progress: Optional[ProgressCallback] = None,
        *,
        skip_if_unchanged: bool = False,
        adopt: bool = False,
        safety: bool = False,
    ) -> BackupSnapshot:
        """Commit a snapshot of ``capture`` (see :meth:`snapshot_op`)."""
        started = time.perf_counter()
        op = self.snapshot_op(capture, description, tags, metadata, progress, skip_if_unchanged=skip_if_unchanged,
                              adopt=adopt, safety=safety)
        return self.committed(await op.start(), started)

    def _snapshot(self, result: str) -> BackupSnapshot:
        return BackupSnapshot._from_native(json.loads(result), self.storage.location)

    # -- list / get / delete --------------------------------------------------------------

    def _list_snapshots(self) -> Prepared[list[BackupSnapshot]]:
        """Every snapshot of this graph, oldest first."""
        return self._engine.list_op(), self._snapshots

    list_snapshots, alist_snapshots = engine_twins(_list_snapshots)

    def _snapshots(self, result: str) -> list[BackupSnapshot]:
        # A list that renders as a table in a notebook.
        return SnapshotList(BackupSnapshot._from_native(entry, self.storage.location) for entry in json.loads(result))

    def head(self) -> Optional[BackupSnapshot]:
        """The graph's head: its newest snapshot that is neither a safety snapshot
        (``pre-restore``) nor ``diverged`` (what a standby serves, what a failover takes), or
        ``None``. Unlike ``latest``, a standby's own safety snapshot never counts."""
        heads = [s for s in self.list_snapshots() if not {SAFETY_TAG, "diverged"} & set(s.tags)]
        return heads[-1] if heads else None

    def _get_snapshot(self, snapshot_id: str) -> Prepared[BackupSnapshot]:
        """One snapshot (with its file list), by id or a unique prefix of at least 4 characters.

        Raises :class:`SnapshotNotFoundError`, also when the id belongs to another graph.
        """
        return self._engine.get_op(check_snapshot_id(snapshot_id)), self._snapshot

    get_snapshot, aget_snapshot = engine_twins(_get_snapshot)

    def _delete_snapshot(self, snapshot_id: str) -> Prepared[bool]:
        """Forget a snapshot. Returns ``True``; its data is freed by a later prune."""
        return self._engine.delete_op(check_snapshot_id(snapshot_id)), self._deleted

    delete_snapshot, adelete_snapshot = engine_twins(_delete_snapshot)

    def _deleted(self, result: str) -> bool:
        if self.recorder is not None:
            self.recorder.forget_snapshots([json.loads(result)])
        return True

    # -- shred ----------------------------------------------------------------------------

    def _shred(self, *, confirm: str) -> Prepared[dict[str, Any]]:
        """Erase this graph from the repository: delete its key, so that every snapshot of it
        is unreadable at once (before any prune; a later prune frees its packs), with its
        manifests. Every other graph restores as before. ``confirm`` must repeat the graph id.

        Only a graph with a key of its own can be shredded (a repository made with ``init
        --key-per-graph``, or ``key_per_graph=True`` at the graph's first snapshot); the graph
        id takes no new snapshots afterwards. Replication carries the shred to every target.
        Returns ``graph_id``, ``shredded_at``, ``already_shredded`` and ``snapshots_deleted``
        (their ids). Raises :class:`InvalidInputError` for a wrong confirmation or a graph
        without a key of its own."""
        self._check_shred(confirm)
        return self.storage.engine.shred_graph_op(self.graph_id), self._shredded

    shred, ashred = engine_twins(_shred)

    def _check_shred(self, confirm: str) -> None:
        if confirm != self.graph_id:
            raise InvalidInputError(
                f"shredding graph {self.graph_id!r} erases every snapshot of it for good: confirm by repeating its "
                f"id (confirm={self.graph_id!r})")

    def _shredded(self, result: str) -> dict[str, Any]:
        report = dict(json.loads(result))
        if self.recorder is not None and report["snapshots_deleted"]:
            self.recorder.forget_snapshots(list(report["snapshots_deleted"]))
        logging.getLogger("lightrag.backup").warning(
            "graph %s shredded: its key is deleted, %d snapshot(s) are unreadable for good", self.graph_id,
            len(report["snapshots_deleted"]))
        return report

    # -- restore into a folder ------------------------------------------------------------

    def restore_op(
        self,
        snapshot_id: str,
        target: Path,
        safety_snapshot: bool,
        dry_run: bool,
        progress: Optional[ProgressCallback],
    ) -> Any:
        """The engine's restore of a snapshot's files into folder ``target`` (``run()`` it, or
        await ``start()``, then :meth:`restored`). With ``safety_snapshot`` the graph files
        the folder held are kept first as a ``pre-restore`` snapshot."""
        return self._engine.restore_op(check_snapshot_id(snapshot_id), str(target), bool(safety_snapshot), dry_run,
                                       progress)

    def plan_restore(self, snapshot_id: str, target: Path) -> dict[str, Any]:
        """What restoring the snapshot into ``target`` would write and remove, without doing it."""
        return dict(json.loads(self.restore_op(snapshot_id, target, False, True, None).run()))

    def restored(self, result: str) -> dict[str, Any]:
        """Keep an engine restore's outcome (:attr:`last_restore`) and tell the recorder of it."""
        self.last_restore = json.loads(result)
        self.record_restore(self.last_restore)
        return self.last_restore

    async def aunpack(self, snapshot_id: str, folder: Path, progress: Optional[ProgressCallback] = None) -> dict[str, Any]:
        """Restore a snapshot's files into a new scratch ``folder`` (no safety snapshot: it is
        not the graph's); returns the engine's outcome, whose expired safety snapshots are
        told to the recorder."""
        outcome = dict(json.loads(await self.restore_op(snapshot_id, folder, False, False, progress).start()))
        self.record_restore({"expired_safety_snapshots": outcome.get("expired_safety_snapshots") or []})
        return outcome

    def record_restore(self, outcome: dict[str, Any]) -> None:
        """Tell the recorder of the safety snapshot a restore took and of the expired ones
        it forgot (every engine restore expires them, a scratch restore too)."""
        if self.recorder is None:
            return
        safety = outcome.get("safety_snapshot")
        if safety:
            self.recorder.record_snapshot(BackupSnapshot._from_native(safety, self.storage.location))
        expired = outcome.get("expired_safety_snapshots") or []
        if expired:
            self.recorder.forget_snapshots(list(expired))

    # -- verify / stats -------------------------------------------------------------------

    def verify_op(self, snapshot: BackupSnapshot, read_data: bool, read_data_subset: Optional[float],
                  progress: Optional[ProgressCallback]) -> Any:
        return self._engine.verify_op([snapshot.snapshot_id], bool(read_data), read_data_subset, progress)

    def verified(self, snapshot: BackupSnapshot, read_data: bool, result: str) -> VerifyReport:
        """The report of a verify, recorded with the snapshot's proven status (verified or
        corrupted)."""
        report = verify_report(snapshot.snapshot_id, bool(read_data), result)
        if self.recorder is not None:
            self.recorder.record_snapshot(dataclasses.replace(snapshot, status=report.status))
            self.recorder.record_verify(self.graph_id, report.snapshot_id or None, report.ok, report.read_data,
                                        list(report.errors))
        return report

    def verify_snapshot(
        self,
        snapshot_id: str,
        read_data: bool = True,
        *,
        read_data_subset: Optional[float] = None,
        progress: Optional[ProgressCallback] = None,
    ) -> VerifyReport:
        """Check that a snapshot is whole (see :meth:`GraphBackup.verify_snapshot`)."""
        snapshot = self.get_snapshot(snapshot_id)
        return self.verified(snapshot, read_data, self.verify_op(snapshot, read_data, read_data_subset, progress).run())

    async def averify_snapshot(
        self,
        snapshot_id: str,
        read_data: bool = True,
        *,
        read_data_subset: Optional[float] = None,
        progress: Optional[ProgressCallback] = None,
    ) -> VerifyReport:
        """Async twin of :meth:`verify_snapshot`."""
        snapshot = await self.aget_snapshot(snapshot_id)
        return self.verified(snapshot, read_data,
                             await self.verify_op(snapshot, read_data, read_data_subset, progress).start())

    def _get_backup_stats(self) -> Prepared[dict[str, Any]]:
        """Snapshot count, logical/unique/stored bytes, dedup and compression ratios, oldest
        and newest snapshot of this graph."""
        return self._engine.stats_op(), self._stats

    get_backup_stats, aget_backup_stats = engine_twins(_get_backup_stats)

    def _stats(self, result: str) -> dict[str, Any]:
        stats = StatsReport(json.loads(result))
        stats["graph_id"] = self.graph_id
        return stats

    # -- diff -----------------------------------------------------------------------------

    def diff_op(self, from_snapshot: str, to_snapshot: Optional[str] = None,
                to_folder: Optional[Path] = None) -> Any:
        """The engine operation comparing snapshot ``from_snapshot`` with snapshot
        ``to_snapshot`` or with the graph files in ``to_folder`` (see :mod:`.kg_diff`)."""
        return self._engine.diff_op(check_snapshot_id(from_snapshot),
                                    check_snapshot_id(to_snapshot) if to_snapshot is not None else None,
                                    str(to_folder) if to_folder is not None else None)

    def _diff_snapshots(self, from_snapshot: str, to_snapshot: str) -> Prepared["GraphDiff"]:
        """What changed from one snapshot of this graph to another (ids, unique prefixes or
        ``latest``), read from the repository without restoring either: see
        :class:`~lightrag.backup.kg_diff.GraphDiff`."""
        return self.diff_op(from_snapshot, to_snapshot), lambda result: self.diffed(result, from_snapshot,
                                                                                    to_snapshot)

    diff_snapshots, adiff_snapshots = engine_twins(_diff_snapshots)

    def deleted_op(self, folder: Optional[Path] = None) -> Any:
        """The engine operation listing the documents this graph's snapshots hold and the graph
        in ``folder`` (else its newest snapshot) no longer does."""
        return self._engine.deleted_op(str(folder) if folder is not None else None)

    @staticmethod
    def diffed(result: str, from_version: str, to_version: str) -> "GraphDiff":
        from .kg_diff import GraphDiff

        diff = GraphDiff(json.loads(result))
        diff["from"], diff["to"] = from_version, to_version
        return diff


__all__ = ["Capture", "GraphSnapshots", "SAFETY_TAG"]
