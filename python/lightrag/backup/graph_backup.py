"""Snapshots of LightRAG graphs: :class:`GraphBackup` for one graph, :class:`BackupManager`
for many.

Every method has an async twin named the LightRAG way (``create_snapshot`` /
``acreate_snapshot``). The work runs in Rust with the GIL released.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Coroutine, Optional, TypeVar

from .errors import GraphNotFoundError, InvalidInputError

if TYPE_CHECKING:
    from .catalog import Catalog
    from .storage import BackupStorageBackend

ProgressCallback = Callable[[str, int, int], None]
"""``callback(phase, done, total)``: phase is "snapshot", "restore" or "verify"; units are bytes."""

T = TypeVar("T")

_GRAPH_ID = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,127}$")
_STAGING_PREFIX = ".lightrag-backup-stage-"


class BackupStatus(str, Enum):
    """Where a snapshot stands."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    VERIFIED = "verified"
    FAILED = "failed"
    CORRUPTED = "corrupted"


@dataclass(frozen=True)
class SnapshotFile:
    """One file of a snapshot."""

    path: str
    size: int
    mtime_ns: int
    digest: str
    chunks: int
    encoding: str = "raw"
    """``raw``, or ``nanovdb-matrix`` for a vector file stored with its matrix decoded."""


@dataclass(frozen=True)
class BackupSnapshot:
    """A committed snapshot of one graph.

    ``metadata`` holds the LightRAG version (when known), workspace, counts of entities,
    relations, chunks and documents, file count, and logical/stored sizes. ``data_hash`` is a
    SHA-256 over the snapshot's content: two snapshots of identical files have equal hashes.
    ``checkpoint_path`` is where the snapshot's manifest lives in the repository.
    """

    snapshot_id: str
    graph_id: str
    timestamp: datetime
    metadata: dict[str, Any]
    checkpoint_path: Path
    status: BackupStatus
    data_hash: str
    description: Optional[str] = None
    tags: tuple[str, ...] = ()
    size_bytes: int = 0
    stored_bytes: int = 0
    files: tuple[SnapshotFile, ...] = field(default=(), repr=False)
    #: True when ``create_snapshot(skip_if_unchanged=True)`` found nothing changed and
    #: returned the existing newest snapshot instead of writing a new one.
    skipped: bool = False

    @classmethod
    def _from_native(cls, data: dict[str, Any], storage: "BackupStorageBackend") -> "BackupSnapshot":
        metadata = dict(data.get("metadata") or {})
        metadata.update(
            {
                "hostname": data["hostname"],
                "file_count": data["file_count"],
                "chunk_count": data["chunk_count"],
                "logical_size": data["logical_size"],
                "stored_size": data["added_size"],
            }
        )
        files = tuple(
            SnapshotFile(f["path"], f["size"], f["mtime_ns"], f["digest"], f["chunks"], f.get("encoding", "raw"))
            for f in data.get("files", ())
        )
        if files:
            metadata["files"] = [f.path for f in files]
        return cls(
            snapshot_id=data["snapshot_id"],
            graph_id=data["graph_id"],
            timestamp=datetime.fromisoformat(data["time"].replace("Z", "+00:00")),
            metadata=metadata,
            checkpoint_path=Path(storage.location, "snapshots", data["graph_id"], data["snapshot_id"]),
            status=BackupStatus.COMPLETED,
            data_hash=data["data_hash"],
            description=data.get("description"),
            tags=tuple(data.get("tags") or ()),
            size_bytes=data["logical_size"],
            stored_bytes=data["added_size"],
            files=files,
            skipped=bool(data.get("skipped", False)),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (used by the CLI's ``--json``)."""
        return {
            "snapshot_id": self.snapshot_id,
            "graph_id": self.graph_id,
            "timestamp": self.timestamp.isoformat(),
            "status": self.status.value,
            "data_hash": self.data_hash,
            "description": self.description,
            "tags": list(self.tags),
            "size_bytes": self.size_bytes,
            "stored_bytes": self.stored_bytes,
            "checkpoint_path": str(self.checkpoint_path),
            "metadata": self.metadata,
        }


@dataclass(frozen=True)
class VerifyReport:
    """The result of verifying a snapshot. ``ok`` says plainly whether it is whole."""

    snapshot_id: str
    ok: bool
    read_data: bool
    snapshots_checked: int
    files_checked: int
    chunks_checked: int
    packs_checked: int
    packs_read: int
    bytes_read: int
    errors: tuple[str, ...]
    scope: str = ""
    """Set when several snapshots were verified together: what they were."""

    @property
    def status(self) -> BackupStatus:
        return BackupStatus.VERIFIED if self.ok else BackupStatus.CORRUPTED

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        how = "read every chunk" if self.read_data else "structure only"
        if self.ok:
            return (
                f"{self._subject} {'are' if self.scope else 'is'} whole ({how}: {self.files_checked} files, "
                f"{self.chunks_checked} chunks, {self.packs_read} packs read)"
            )
        return f"{self._subject} {'are' if self.scope else 'is'} DAMAGED: " + "; ".join(self.errors)

    @property
    def _subject(self) -> str:
        return self.scope or f"snapshot {self.snapshot_id}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "snapshot_id": self.snapshot_id,
            "ok": self.ok,
            "read_data": self.read_data,
            "scope": self.scope,
            "snapshots_checked": self.snapshots_checked,
            "files_checked": self.files_checked,
            "chunks_checked": self.chunks_checked,
            "packs_checked": self.packs_checked,
            "packs_read": self.packs_read,
            "bytes_read": self.bytes_read,
            "errors": list(self.errors),
        }


def validate_graph_id(graph_id: Any) -> str:
    """Return ``graph_id`` if it is a valid graph id, else raise :class:`InvalidInputError`."""
    if not isinstance(graph_id, str) or not _GRAPH_ID.match(graph_id):
        raise InvalidInputError(
            f"graph id {graph_id!r} is not valid: use 1-128 characters of letters, digits, "
            "'_', '-' and '.', not starting with '.'"
        )
    return graph_id


def _lightrag_version() -> Optional[str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lightrag-hku")
    except PackageNotFoundError:
        return None


def _run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from sync code, on the loop LightRAG's own sync wrappers use."""
    import asyncio  # imported here: the CLI and sync API start faster without it

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        from lightrag.utils import always_get_an_event_loop

        return always_get_an_event_loop().run_until_complete(coroutine)
    coroutine.close()
    raise InvalidInputError(
        "this sync method was called inside a running event loop; await its async twin "
        "(for example `await backup.acreate_snapshot()`)"
    )


class GraphBackup:
    """Backups of one graph: a LightRAG ``working_dir`` (plus ``workspace``), or a live
    ``LightRAG`` instance (:meth:`from_rag`).

    A live instance is snapshotted consistently without stopping it: the pipeline is reserved
    for the few milliseconds it takes to flush and hard-link the files, then the copy runs from
    the links. Restoring into it swaps the files atomically and reloads its storages, so the
    next query answers from the restored graph.
    """

    def __init__(
        self,
        graph_id: str,
        storage: "BackupStorageBackend | str | os.PathLike[str]",
        working_dir: str | os.PathLike[str] | None = None,
        workspace: str = "",
        *,
        rag: Any = None,
        busy_timeout: float = 30.0,
    ) -> None:
        self.graph_id = validate_graph_id(graph_id)
        self.storage = _as_storage(storage)
        self.rag = rag
        self.busy_timeout = float(busy_timeout)
        #: The manager's catalog, kept up to date by this object's operations when set.
        self.catalog: Optional["Catalog"] = None
        if rag is not None:
            from . import _live

            _live.check_file_storages(rag)
            self.graph_dir = _live.graph_dir_of(rag)
            self.working_dir = Path(rag.working_dir)
            self.workspace = getattr(rag, "workspace", "") or ""
        else:
            if working_dir is None:
                working_dir = os.environ.get("WORKING_DIR")
                if not working_dir:
                    raise InvalidInputError(
                        "no working_dir: pass the graph's LightRAG working_dir (or set WORKING_DIR)"
                    )
            if workspace and ("/" in workspace or "\\" in workspace or workspace in (".", "..")):
                raise InvalidInputError(f"workspace {workspace!r} is not a plain folder name")
            self.working_dir = Path(working_dir).expanduser().absolute()
            self.workspace = workspace or ""
            self.graph_dir = self.working_dir / self.workspace if self.workspace else self.working_dir

    @classmethod
    def from_rag(
        cls, graph_id: str, rag: Any, storage: "BackupStorageBackend", *, busy_timeout: float = 30.0
    ) -> "GraphBackup":
        """Back up a live, initialised ``LightRAG`` instance from inside its process."""
        return cls(graph_id, storage, rag=rag, busy_timeout=busy_timeout)

    @property
    def _repo(self) -> Any:
        return self.storage._repo

    def __repr__(self) -> str:
        mode = "live" if self.rag is not None else "offline"
        return f"GraphBackup({self.graph_id!r}, {self.storage!r}, graph_dir={str(self.graph_dir)!r}, {mode})"

    # -- snapshot -------------------------------------------------------------------------

    def create_snapshot(
        self,
        description: Optional[str] = None,
        tags: Optional[list[str]] = None,
        *,
        metadata: Optional[dict[str, Any]] = None,
        progress: Optional[ProgressCallback] = None,
        skip_if_unchanged: bool = False,
    ) -> BackupSnapshot:
        """Take a snapshot of the graph now and return it once it is committed.

        With ``skip_if_unchanged``, when the graph's newest snapshot already holds exactly
        this data nothing is written and that snapshot is returned with ``skipped=True``.

        Raises :class:`GraphDirNotFoundError` when the folder is missing,
        :class:`GraphBusyError` when the graph stays busy past ``busy_timeout``.
        """
        if self.rag is not None:
            return _run_sync(
                self.acreate_snapshot(
                    description, tags, metadata=metadata, progress=progress, skip_if_unchanged=skip_if_unchanged
                )
            )
        op = self._snapshot_op(self.graph_dir, description, tags, metadata, progress, "offline", skip_if_unchanged)
        return self._snapshot(op.run())

    async def acreate_snapshot(
        self,
        description: Optional[str] = None,
        tags: Optional[list[str]] = None,
        *,
        metadata: Optional[dict[str, Any]] = None,
        progress: Optional[ProgressCallback] = None,
        skip_if_unchanged: bool = False,
    ) -> BackupSnapshot:
        """Async twin of :meth:`create_snapshot`."""
        if self.rag is None:
            op = self._snapshot_op(self.graph_dir, description, tags, metadata, progress, "offline", skip_if_unchanged)
            return self._snapshot(await op.start())
        # Imported here: a live instance's modules are not needed by offline work (the CLI).
        import shutil
        import uuid

        from . import _live

        staging = self.graph_dir / f"{_STAGING_PREFIX}{uuid.uuid4().hex}"
        try:
            async with _live.pipeline_reservation(self.rag, kind="snapshot", timeout=self.busy_timeout):
                paused_at = time.perf_counter()
                await _live.flush_storages(self.rag)
                _native_stage_links(self.graph_dir, staging)
                pause_ms = (time.perf_counter() - paused_at) * 1000
            recorded = dict(metadata or {})
            recorded["live_pause_ms"] = round(pause_ms, 3)
            op = self._snapshot_op(staging, description, tags, recorded, progress, "live", skip_if_unchanged)
            return self._snapshot(await op.start())
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _snapshot_op(
        self,
        source: Path,
        description: Optional[str],
        tags: Optional[list[str]],
        metadata: Optional[dict[str, Any]],
        progress: Optional[ProgressCallback],
        mode: str,
        skip_if_unchanged: bool = False,
    ) -> Any:
        if tags is not None and (isinstance(tags, str) or not all(isinstance(t, str) for t in tags)):
            raise InvalidInputError("tags must be a list of strings")
        if description is not None and not isinstance(description, str):
            raise InvalidInputError("description must be a string")
        recorded: dict[str, Any] = dict(metadata or {})
        recorded.update(
            {
                "lightrag_version": _lightrag_version(),
                "workspace": self.workspace,
                "working_dir": str(self.working_dir),
                "capture": mode,
            }
        )
        try:
            metadata_json = json.dumps(recorded)
        except (TypeError, ValueError) as error:
            raise InvalidInputError(f"metadata must be JSON-serialisable: {error}") from None
        return self._repo.snapshot_op(
            self.graph_id, str(source), description, list(tags or []), metadata_json, 5, progress, bool(skip_if_unchanged)
        )

    def _snapshot(self, result: str) -> BackupSnapshot:
        snapshot = BackupSnapshot._from_native(json.loads(result), self.storage)
        if self.catalog is not None and not snapshot.skipped:
            self.catalog.record_snapshot(snapshot)
        return snapshot

    # -- list / get / delete --------------------------------------------------------------

    def list_snapshots(self) -> list[BackupSnapshot]:
        """Every snapshot of this graph, oldest first."""
        return self._snapshots(self._repo.list_op(self.graph_id).run())

    async def alist_snapshots(self) -> list[BackupSnapshot]:
        """Async twin of :meth:`list_snapshots`."""
        return self._snapshots(await self._repo.list_op(self.graph_id).start())

    def _snapshots(self, result: str) -> list[BackupSnapshot]:
        return [BackupSnapshot._from_native(entry, self.storage) for entry in json.loads(result)]

    def get_snapshot(self, snapshot_id: str) -> BackupSnapshot:
        """One snapshot (with its file list), by id or a unique prefix of at least 4 characters.

        Raises :class:`SnapshotNotFoundError`, also when the id belongs to another graph.
        """
        return self._snapshot(self._repo.get_op(self.graph_id, _check_id(snapshot_id)).run())

    async def aget_snapshot(self, snapshot_id: str) -> BackupSnapshot:
        """Async twin of :meth:`get_snapshot`."""
        return self._snapshot(await self._repo.get_op(self.graph_id, _check_id(snapshot_id)).start())

    def delete_snapshot(self, snapshot_id: str) -> bool:
        """Forget a snapshot. Returns ``True``; its data is freed by a later prune."""
        self._deleted(self._repo.delete_op(self.graph_id, _check_id(snapshot_id)).run())
        return True

    async def adelete_snapshot(self, snapshot_id: str) -> bool:
        """Async twin of :meth:`delete_snapshot`."""
        self._deleted(await self._repo.delete_op(self.graph_id, _check_id(snapshot_id)).start())
        return True

    def _deleted(self, result: str) -> None:
        if self.catalog is not None:
            self.catalog.forget_snapshots([json.loads(result)])

    # -- restore --------------------------------------------------------------------------

    def restore_snapshot(
        self,
        snapshot_id: str,
        target_dir: str | os.PathLike[str] | None = None,
        *,
        safety_snapshot: bool = True,
        progress: Optional[ProgressCallback] = None,
    ) -> bool:
        """Restore a snapshot; ``True`` when done.

        Into the graph's own folder by default (a live instance reloads and answers from the
        restored graph at once), or into ``target_dir``. Every chunk is checked before any
        file is replaced; a damaged snapshot raises :class:`IntegrityError` and leaves the
        target untouched. The state replaced is kept as a snapshot tagged ``pre-restore``
        unless ``safety_snapshot=False``.
        """
        if self.rag is not None and target_dir is None:
            return _run_sync(self.arestore_snapshot(snapshot_id, safety_snapshot=safety_snapshot, progress=progress))
        op = self._restore_op(snapshot_id, target_dir, safety_snapshot, False, progress)
        self.last_restore = json.loads(op.run())
        return True

    async def arestore_snapshot(
        self,
        snapshot_id: str,
        target_dir: str | os.PathLike[str] | None = None,
        *,
        safety_snapshot: bool = True,
        progress: Optional[ProgressCallback] = None,
    ) -> bool:
        """Async twin of :meth:`restore_snapshot`."""
        op = self._restore_op(snapshot_id, target_dir, safety_snapshot, False, progress)
        if self.rag is None or target_dir is not None:
            self.last_restore = json.loads(await op.start())
            return True
        from . import _live

        async with _live.pipeline_reservation(self.rag, kind="restore", timeout=self.busy_timeout):
            await _live.flush_storages(self.rag)
            self.last_restore = json.loads(await op.start())
            await _live.reload_storages(self.rag)
        return True

    def plan_restore(self, snapshot_id: str, target_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """What :meth:`restore_snapshot` would write and remove, without doing it."""
        return json.loads(self._restore_op(snapshot_id, target_dir, False, True, None).run())

    def _restore_op(
        self,
        snapshot_id: str,
        target_dir: str | os.PathLike[str] | None,
        safety_snapshot: bool,
        dry_run: bool,
        progress: Optional[ProgressCallback],
    ) -> Any:
        target = Path(target_dir).expanduser().absolute() if target_dir is not None else self.graph_dir
        return self._repo.restore_op(
            self.graph_id, _check_id(snapshot_id), str(target), bool(safety_snapshot), dry_run, progress
        )

    # -- verify / stats -------------------------------------------------------------------

    def verify_snapshot(
        self,
        snapshot_id: str,
        read_data: bool = True,
        *,
        read_data_subset: Optional[float] = None,
        progress: Optional[ProgressCallback] = None,
    ) -> VerifyReport:
        """Check that a snapshot is whole.

        Always checks that every chunk it references is indexed and stored; with ``read_data``
        (the default) also reads every chunk back and checks its SHA-256. ``read_data_subset``
        (0-1] reads only that fraction of the packs, picked at random.
        """
        snapshot_id = self.get_snapshot(snapshot_id).snapshot_id
        op = self._repo.verify_op(self.graph_id, [snapshot_id], bool(read_data), read_data_subset, progress)
        return self._verified(verify_report(snapshot_id, bool(read_data), op.run()))

    async def averify_snapshot(
        self,
        snapshot_id: str,
        read_data: bool = True,
        *,
        read_data_subset: Optional[float] = None,
        progress: Optional[ProgressCallback] = None,
    ) -> VerifyReport:
        """Async twin of :meth:`verify_snapshot`."""
        snapshot_id = (await self.aget_snapshot(snapshot_id)).snapshot_id
        op = self._repo.verify_op(self.graph_id, [snapshot_id], bool(read_data), read_data_subset, progress)
        return self._verified(verify_report(snapshot_id, bool(read_data), await op.start()))

    def _verified(self, report: VerifyReport) -> VerifyReport:
        if self.catalog is not None:
            self.catalog.record_verify(self.graph_id, report.snapshot_id or None, report.ok, report.read_data, list(report.errors))
        return report

    def get_backup_stats(self) -> dict[str, Any]:
        """Snapshot count, logical/unique/stored bytes, dedup and compression ratios, oldest
        and newest snapshot of this graph."""
        stats = json.loads(self._repo.stats_op(self.graph_id).run())
        stats["graph_id"] = self.graph_id
        return stats

    async def aget_backup_stats(self) -> dict[str, Any]:
        """Async twin of :meth:`get_backup_stats`."""
        stats = json.loads(await self._repo.stats_op(self.graph_id).start())
        stats["graph_id"] = self.graph_id
        return stats


def _as_storage(storage: Any) -> "BackupStorageBackend":
    """A storage backend, or a path/URL to open one at."""
    from .storage import BackupStorageBackend, storage_from_url

    if isinstance(storage, BackupStorageBackend):
        return storage
    if isinstance(storage, (str, os.PathLike)):
        return storage_from_url(os.fspath(storage))
    raise InvalidInputError(
        f"storage must be a BackupStorageBackend (e.g. LocalBackupStorage(path)) or a path or URL, not {type(storage).__name__}"
    )


def _check_id(snapshot_id: Any) -> str:
    if not isinstance(snapshot_id, str) or not snapshot_id:
        raise InvalidInputError("snapshot_id must be a non-empty string")
    return snapshot_id


def verify_report(snapshot_id: str, read_data: bool, result: str, scope: str = "") -> VerifyReport:
    data = json.loads(result)
    return VerifyReport(
        scope=scope,
        snapshot_id=snapshot_id,
        ok=data["ok"],
        read_data=read_data,
        snapshots_checked=data["snapshots_checked"],
        files_checked=data["files_checked"],
        chunks_checked=data["chunks_checked"],
        packs_checked=data["packs_checked"],
        packs_read=data["packs_read"],
        bytes_read=data["bytes_read"],
        errors=tuple(data["errors"]),
    )


def _native_stage_links(source: Path, staging: Path) -> int:
    from . import _native

    return _native.stage_links(str(source), str(staging))


__all__ = [
    "BackupSnapshot",
    "BackupStatus",
    "GraphBackup",
    "ProgressCallback",
    "SnapshotFile",
    "VerifyReport",
]
