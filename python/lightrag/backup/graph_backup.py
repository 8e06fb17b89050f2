"""Snapshots of LightRAG graphs: :class:`GraphBackup` for one graph, :class:`BackupManager`
for many.

Every method has an async twin named the LightRAG way (``create_snapshot`` /
``acreate_snapshot``). The work runs in Rust with the GIL released.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any, AsyncIterator, Coroutine, Optional, TypeVar

from . import staging as staging_folders
from .display import Progress, SnapshotList, StatsReport, progress_callback
from .errors import InvalidInputError
from .storage import BackupStorageBackend, as_storage
from .types import (
    BackupSnapshot,
    BackupStatus,
    ProgressCallback,
    SnapshotFile,
    SnapshotRecorder,
    VerifyReport,
    check_snapshot_id,
    validate_graph_id,
    verify_report,
)

T = TypeVar("T")


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

    ``storage`` is a :class:`~lightrag.backup.storage.BackupStorageBackend` or a path or URL;
    for a path or URL, ``password`` (a string, bytes or a callable returning one; default: the
    environment's, see :mod:`lightrag.backup.passwords`) opens or creates the encrypted
    repository there. ``key_per_graph=True`` gives the graph a key of its own at its first
    snapshot, so it can be shredded later (:meth:`shred`); repositories made with
    ``init --key-per-graph`` do that for every graph.
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
        recorder: Optional[SnapshotRecorder] = None,
        password: Any = None,
        key_per_graph: bool = False,
    ) -> None:
        self.graph_id = validate_graph_id(graph_id)
        #: Ask for a key of the graph's own at its first snapshot (see :meth:`shred`).
        self.key_per_graph = bool(key_per_graph)
        self.storage = as_storage(storage, password)
        #: The engine's own GraphBackup (``_native.GraphBackup``): every operation on this
        #: graph in the repository. This class adds the live instance, asyncio and the catalog.
        self._engine = self.storage._repo.graph(self.graph_id)
        self.rag = rag
        self.busy_timeout = float(busy_timeout)
        #: Told of every commit, forget and verify (the manager's catalog); reads tell nothing.
        self.recorder = recorder
        #: Whether the live instance's graph is captured as records through its storages (any
        #: storage not one of LightRAG's file storages: databases) rather than as its files.
        self.records = False
        self._source: Optional[str] = None
        if rag is not None:
            from . import _live

            self.graph_dir = _live.graph_dir_of(rag)
            self.working_dir = Path(rag.working_dir)
            self.workspace = getattr(rag, "workspace", "") or ""
            if not _live.uses_file_storages(rag):
                from .records.target import source_of

                self.records = True
                self._source = source_of(rag)
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
        cls,
        graph_id: str,
        rag: Any,
        storage: "BackupStorageBackend | str | os.PathLike[str]",
        *,
        busy_timeout: float = 30.0,
        recorder: Optional[SnapshotRecorder] = None,
        password: Any = None,
        key_per_graph: bool = False,
    ) -> "GraphBackup":
        """Back up a live, initialised ``LightRAG`` instance from inside its process.

        Any storages: with LightRAG's file storages the snapshot holds its files; with
        databases (PostgreSQL, Redis, Milvus, ...) it holds every record of the workspace,
        vectors included (``records``; format in :mod:`lightrag.backup.records.layout`)."""
        return cls(graph_id, storage, rag=rag, busy_timeout=busy_timeout, recorder=recorder, password=password,
                   key_per_graph=key_per_graph)

    def __repr__(self) -> str:
        mode = "live records" if self.records else "live" if self.rag is not None else "offline"
        return f"GraphBackup({self.graph_id!r}, {self.storage!r}, graph_dir={str(self.graph_dir)!r}, {mode})"

    # -- snapshot -------------------------------------------------------------------------

    def create_snapshot(
        self,
        description: Optional[str] = None,
        tags: Optional[list[str]] = None,
        *,
        metadata: Optional[dict[str, Any]] = None,
        progress: Progress = None,
        skip_if_unchanged: bool = False,
        adopt: bool = False,
    ) -> BackupSnapshot:
        """Take a snapshot of the graph now and return it once it is committed.

        With ``skip_if_unchanged``, when the graph's newest snapshot already holds exactly
        this data nothing is written and that snapshot is returned with ``skipped=True``.

        A graph id belongs to one folder: when its snapshots came from another working dir
        or workspace, the snapshot is refused (:class:`GraphSourceConflictError`) unless
        ``adopt=True`` says the graph really moved here.

        Raises :class:`GraphDirNotFoundError` when the folder is missing,
        :class:`GraphBusyError` when the graph stays busy past ``busy_timeout``.
        """
        with progress_callback(progress) as callback:
            if self.rag is not None:
                return _run_sync(
                    self.acreate_snapshot(
                        description, tags, metadata=metadata, progress=callback, skip_if_unchanged=skip_if_unchanged,
                        adopt=adopt,
                    )
                )
            started = time.perf_counter()
            op = self._snapshot_op(self.graph_dir, description, tags, metadata, callback, "offline", skip_if_unchanged, adopt)
            return self._committed(op.run(), started)

    async def acreate_snapshot(
        self,
        description: Optional[str] = None,
        tags: Optional[list[str]] = None,
        *,
        metadata: Optional[dict[str, Any]] = None,
        progress: Progress = None,
        skip_if_unchanged: bool = False,
        adopt: bool = False,
    ) -> BackupSnapshot:
        """Async twin of :meth:`create_snapshot`."""
        with progress_callback(progress) as callback:
            if self.rag is None:
                started = time.perf_counter()
                op = self._snapshot_op(self.graph_dir, description, tags, metadata, callback, "offline", skip_if_unchanged, adopt)
                return self._committed(await op.start(), started)
            # Imported here: a live instance's modules are not needed by offline work (the CLI).
            from . import _live

            from .records.restore import check_not_interrupted

            check_not_interrupted(self.rag)
            staging = self._new_staging()
            try:
                async with _live.pipeline_reservation(self.rag, kind="snapshot", timeout=self.busy_timeout):
                    paused_at = time.perf_counter()
                    held = await self._stage(staging, callback)
                    pause_ms = (time.perf_counter() - paused_at) * 1000
                records = await self._finish_stage(staging, held, callback)
                return await self._snapshot_staged(staging, pause_ms, description, tags, metadata, callback,
                                                   skip_if_unchanged, adopt, records=records)
            finally:
                staging_folders.remove(staging)

    @contextlib.asynccontextmanager
    async def consistent_view(self) -> AsyncIterator[Path]:
        """A folder holding the graph's files as one consistent state, to read without
        touching the graph: for a live instance, its files hard-linked while its pipeline is
        held and flushed (a pause of milliseconds; the links go when the block ends); for a
        folder, the folder itself."""
        if self.rag is None:
            yield self.graph_dir
            return
        from . import _live

        staging = self._new_staging()
        try:
            async with _live.pipeline_reservation(self.rag, kind="validate", timeout=self.busy_timeout):
                held = await self._stage(staging)
            await self._finish_stage(staging, held)
            if self.records:
                # The records as LightRAG's file storages: what the folder checks read.
                from .records import files, load

                view = self._new_staging()
                try:
                    await files.to_file_storages(load.Records(staging), view)
                    yield view
                finally:
                    staging_folders.remove(view)
                return
            yield staging
        finally:
            staging_folders.remove(staging)

    @contextlib.asynccontextmanager
    async def _current_records(self) -> AsyncIterator[Any]:
        """Every record of the graph as it is now, whatever it is stored in: a live instance
        read under its pipeline hold, a folder of files converted (``digest()``, ``vectors``)."""
        import shutil
        import tempfile

        from .records import capture

        if self.rag is not None:
            from . import _live

            async with _live.pipeline_reservation(self.rag, kind="validate", timeout=self.busy_timeout):
                await _live.flush_storages(self.rag)
                captured = await capture.read(self.rag)
            yield captured
            return
        from .records import files, load
        from .records.restore import file_graph_embedding

        scratch = Path(tempfile.mkdtemp(prefix="lightrag-backup-digest-"))
        try:
            dim, model = file_graph_embedding(self.graph_dir, None)
            await files.from_file_storages(self.graph_dir, scratch / "records", embedding_dim=dim, model_name=model)
            yield load.Records(scratch / "records")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    async def acontent_digest(self) -> str:
        """The content digest of the graph as it is now, whatever it is stored in (files,
        databases): equal to a records snapshot's ``metadata["records"]["digest"]`` when the
        graph holds the records that snapshot holds (vectors aside: see
        :meth:`aholds_snapshot` and :mod:`lightrag.backup.records.digest`)."""
        async with self._current_records() as records:
            return str(records.digest())

    def holds_snapshot(self, snapshot_id: str) -> bool:
        """Sync twin of :meth:`aholds_snapshot`."""
        return _run_sync(self.aholds_snapshot(snapshot_id))

    async def aholds_snapshot(self, snapshot_id: str) -> bool:
        """Whether the graph, wherever it is stored now, holds what records snapshot
        ``snapshot_id`` holds: every record alike but for write times (content digests,
        recomputed for the snapshot's records as they are read back, so the digest a snapshot
        of an older build recorded does not matter), and every vector within
        :data:`~lightrag.backup.records.digest.VECTOR_TOLERANCE` of the snapshot's. False
        for a snapshot of files (compare their ``data_hash``)."""
        import shutil
        import tempfile

        from .records import load
        from .records.digest import vectors_differ

        snapshot = await self.aget_snapshot(snapshot_id)
        if snapshot.metadata.get("capture") != "records":
            return False
        scratch = Path(tempfile.mkdtemp(prefix="lightrag-backup-holds-"))
        try:
            self._record_restore(json.loads(
                await self._engine.restore_op(snapshot.snapshot_id, str(scratch / "snapshot"), False, False, None).start()))
            then = load.Records(scratch / "snapshot")
            async with self._current_records() as now:
                return bool(now.digest() == then.digest() and not vectors_differ(then.vectors, now.vectors))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _new_staging(self) -> Path:
        """A staging folder beside the graph (see :mod:`.staging`: removed with
        :func:`.staging.remove`; one a killed process left behind is removed by the next)."""
        from . import staging

        # A database-backed instance's working_dir holds no graph files; it is still where
        # LightRAG keeps its local state, and a folder of the same file system is needed.
        return staging.new(self.graph_dir if not self.records else self.working_dir)

    async def _stage(self, staging: Path, progress: Optional[ProgressCallback] = None) -> Any:
        """With the pipeline held: flush the live instance and hard-link its files, or, for
        a database-backed instance, read every record; when they all live in one PostgreSQL
        database, only open a snapshot of it, read after the hold (:mod:`.records.pg_snapshot`).
        What it returns goes to :meth:`_finish_stage`."""
        from . import _live

        await _live.flush_storages(self.rag)
        if not self.records:
            _native_stage_links(self.graph_dir, staging)
            return None
        from .records import pg_snapshot

        async with self._reading_records():
            view = await pg_snapshot.open(self.rag)
        if view is not None:
            return view
        return await self._read_records(progress)

    async def _read_records(self, progress: Optional[ProgressCallback] = None, view: Any = None) -> Any:
        """Every record of the live instance (in ``view``'s snapshot when there is one).
        Steps, not bytes: ``records:<step>`` phases, then the engine's own "snapshot" bytes."""
        from .records import capture

        async with self._reading_records():
            if view is None:
                return await capture.read(self.rag, progress=progress)
            async with view.reading():
                return await capture.read(self.rag, progress=progress)

    @contextlib.asynccontextmanager
    async def _reading_records(self) -> AsyncIterator[None]:
        """A database failing mid-read becomes a retryable error: nothing is committed."""
        from .errors import GraphStorageUnavailableError
        from .records.native import storage_errors

        try:
            yield
        except storage_errors() as error:
            raise GraphStorageUnavailableError(
                f"reading the records of graph {self.graph_id!r} failed ({type(error).__name__}: {error}); "
                "nothing was committed; retry when its storages answer"
            ) from error

    async def _finish_stage(self, staging: Path, held: Any,
                            progress: Optional[ProgressCallback] = None) -> Optional[dict[str, Any]]:
        """After the pipeline is released: read the records in the snapshot :meth:`_stage`
        opened, if it did, and lay them out in ``staging`` (returns their summary for the
        snapshot's metadata; ``None`` for file graphs, already linked)."""
        from .records import pg_snapshot, summary

        if held is None:
            return None
        if isinstance(held, pg_snapshot.View):
            captured = await self._read_records(progress, held)
            read = "postgresql_snapshot"
        else:
            captured, read = held, "pipeline_held"
        recorded = summary(captured.write(staging))
        # How the records are one state: read with the pipeline held, or in one PostgreSQL
        # snapshot taken with it held (the pause then ends before the reads).
        recorded["read"] = read
        return recorded

    async def _snapshot_staged(
        self,
        staging: Path,
        pause_ms: float,
        description: Optional[str],
        tags: Optional[list[str]],
        metadata: Optional[dict[str, Any]],
        progress: Optional[ProgressCallback],
        skip_if_unchanged: bool,
        adopt: bool,
        *,
        safety: bool = False,
        records: Optional[dict[str, Any]] = None,
    ) -> BackupSnapshot:
        recorded = dict(metadata or {})
        recorded["live_pause_ms"] = round(pause_ms, 3)
        mode = "live" if self.rag is not None else "offline"
        if records is not None:
            mode = "records"
            recorded["records"] = records
            # The counts the engine reads off a file graph's files, from the records here.
            counts = records.get("counts", {})
            for field, store in (("entities", "graph_nodes"), ("relations", "graph_edges"),
                                 ("chunks", "text_chunks"), ("documents", "full_docs")):
                if store in counts:
                    recorded.setdefault(field, counts[store])
        started = time.perf_counter()
        op = self._snapshot_op(staging, description, tags, recorded, progress, mode, skip_if_unchanged, adopt,
                               safety=safety)
        return self._committed(await op.start(), started)

    def _snapshot_op(
        self,
        source: Path,
        description: Optional[str],
        tags: Optional[list[str]],
        metadata: Optional[dict[str, Any]],
        progress: Optional[ProgressCallback],
        mode: str,
        skip_if_unchanged: bool = False,
        adopt: bool = False,
        *,
        safety: bool = False,
    ) -> Any:
        """The engine's snapshot of ``source``. A ``safety`` snapshot (the state a restore
        replaces, tagged ``pre-restore``) names no source folder, as the engine's own do: it
        is not this graph's source and never conflicts with it."""
        if tags is not None and (isinstance(tags, str) or not all(isinstance(t, str) for t in tags)):
            raise InvalidInputError("tags must be a list of strings")
        if description is not None and not isinstance(description, str):
            raise InvalidInputError("description must be a string")
        recorded: dict[str, Any] = dict(metadata or {})
        recorded.update({"lightrag_version": _lightrag_version(), "capture": mode})
        if safety:
            tags = sorted({*(tags or []), "pre-restore"})
            recorded["replaced_state_of"] = self._source or str(self.graph_dir)
        else:
            # A database-backed graph is identified by its storages and where they connect.
            recorded.update({"workspace": self.workspace, "working_dir": self._source or str(self.working_dir)})
        try:
            metadata_json = json.dumps(recorded)
        except (TypeError, ValueError) as error:
            raise InvalidInputError(f"metadata must be JSON-serialisable: {error}") from None
        return self._engine.snapshot_op(
            str(source), description, list(tags or []), metadata_json, 5, progress, bool(skip_if_unchanged),
            bool(adopt), self.key_per_graph and not safety,
        )

    def _snapshot(self, result: str) -> BackupSnapshot:
        return BackupSnapshot._from_native(json.loads(result), self.storage.location)

    def _committed(self, result: str, started: float) -> BackupSnapshot:
        snapshot = self._snapshot(result)
        if self.recorder is not None and not snapshot.skipped:
            # How long the engine took (in the catalog, for the metrics; not in the manifest).
            snapshot.metadata["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
            self.recorder.record_snapshot(snapshot)
        return snapshot

    # -- list / get / delete --------------------------------------------------------------

    def list_snapshots(self) -> list[BackupSnapshot]:
        """Every snapshot of this graph, oldest first."""
        return self._snapshots(self._engine.list_op().run())

    async def alist_snapshots(self) -> list[BackupSnapshot]:
        """Async twin of :meth:`list_snapshots`."""
        return self._snapshots(await self._engine.list_op().start())

    def _snapshots(self, result: str) -> list[BackupSnapshot]:
        # A list that renders as a table in a notebook.
        return SnapshotList(BackupSnapshot._from_native(entry, self.storage.location) for entry in json.loads(result))

    def head(self) -> Optional[BackupSnapshot]:
        """The graph's head: its newest snapshot that is neither a safety snapshot
        (``pre-restore``) nor ``diverged`` (what a standby serves, what a failover takes), or
        ``None``. Unlike ``latest``, a standby's own safety snapshot never counts."""
        heads = [s for s in self.list_snapshots() if not {"pre-restore", "diverged"} & set(s.tags)]
        return heads[-1] if heads else None

    def get_snapshot(self, snapshot_id: str) -> BackupSnapshot:
        """One snapshot (with its file list), by id or a unique prefix of at least 4 characters.

        Raises :class:`SnapshotNotFoundError`, also when the id belongs to another graph.
        """
        return self._snapshot(self._engine.get_op(check_snapshot_id(snapshot_id)).run())

    async def aget_snapshot(self, snapshot_id: str) -> BackupSnapshot:
        """Async twin of :meth:`get_snapshot`."""
        return self._snapshot(await self._engine.get_op(check_snapshot_id(snapshot_id)).start())

    def delete_snapshot(self, snapshot_id: str) -> bool:
        """Forget a snapshot. Returns ``True``; its data is freed by a later prune."""
        self._deleted(self._engine.delete_op(check_snapshot_id(snapshot_id)).run())
        return True

    async def adelete_snapshot(self, snapshot_id: str) -> bool:
        """Async twin of :meth:`delete_snapshot`."""
        self._deleted(await self._engine.delete_op(check_snapshot_id(snapshot_id)).start())
        return True

    def _deleted(self, result: str) -> None:
        if self.recorder is not None:
            self.recorder.forget_snapshots([json.loads(result)])

    # -- shred ----------------------------------------------------------------------------

    def shred(self, *, confirm: str) -> dict[str, Any]:
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
        return self._shredded(self.storage._repo.shred_graph_op(self.graph_id).run())

    async def ashred(self, *, confirm: str) -> dict[str, Any]:
        """Async twin of :meth:`shred`."""
        self._check_shred(confirm)
        return self._shredded(await self.storage._repo.shred_graph_op(self.graph_id).start())

    def _check_shred(self, confirm: str) -> None:
        if confirm != self.graph_id:
            raise InvalidInputError(
                f"shredding graph {self.graph_id!r} erases every snapshot of it for good: confirm by repeating its "
                f"id (confirm={self.graph_id!r})")

    def _shredded(self, result: str) -> dict[str, Any]:
        report = dict(json.loads(result))
        if self.recorder is not None and report["snapshots_deleted"]:
            self.recorder.forget_snapshots(list(report["snapshots_deleted"]))
        import logging

        logging.getLogger("lightrag.backup").warning(
            "graph %s shredded: its key is deleted, %d snapshot(s) are unreadable for good", self.graph_id,
            len(report["snapshots_deleted"]))
        return report

    # -- restore --------------------------------------------------------------------------

    def restore_snapshot(
        self,
        snapshot_id: str,
        target_dir: str | os.PathLike[str] | None = None,
        *,
        into: Any = None,
        replace: bool = False,
        safety_snapshot: bool = True,
        progress: Progress = None,
    ) -> bool:
        """Restore a snapshot; ``True`` when done.

        Into the graph's own folder by default (a live instance reloads and answers from the
        restored graph at once), or into ``target_dir``. Every chunk is checked before any
        file is replaced; a damaged snapshot raises :class:`IntegrityError` and leaves the
        target untouched. The state replaced is kept as a snapshot tagged ``pre-restore``
        unless ``safety_snapshot=False``.

        Any snapshot restores into any backend: ``into`` names the target, a live
        ``LightRAG`` instance or a :class:`~lightrag.backup.records.StorageConfig` (say
        PostgreSQL + Redis, or file storages in another folder); a database-backed snapshot
        restored into ``target_dir`` becomes LightRAG's file storages there. The vectors come
        back as saved, never re-embedded. A target other than this graph's own instance that
        already holds a graph is refused unless ``replace=True``.
        """
        with progress_callback(progress) as callback:
            if into is not None or (self.rag is not None and target_dir is None) or self._is_records(snapshot_id):
                return _run_sync(
                    self.arestore_snapshot(
                        snapshot_id, target_dir, into=into, replace=replace, safety_snapshot=safety_snapshot,
                        progress=callback,
                    )
                )
            op = self._restore_op(snapshot_id, target_dir, safety_snapshot, False, callback)
            self._restored(op.run())
            return True

    async def arestore_snapshot(
        self,
        snapshot_id: str,
        target_dir: str | os.PathLike[str] | None = None,
        *,
        into: Any = None,
        replace: bool = False,
        safety_snapshot: bool = True,
        progress: Progress = None,
    ) -> bool:
        """Async twin of :meth:`restore_snapshot`."""
        with progress_callback(progress) as callback:
            if into is not None and target_dir is not None:
                raise InvalidInputError("pass either target_dir or into, not both")
            snapshot = await self.aget_snapshot(snapshot_id)
            from .records import restore as records_restore

            if records_restore.needs_records(self, snapshot, target_dir, into):
                outcome = await records_restore.restore(
                    self, snapshot, target_dir=target_dir, into=into, replace=replace,
                    safety_snapshot=safety_snapshot, progress=callback,
                )
                self.last_restore = outcome
                self._record_restore({"expired_safety_snapshots": outcome["expired_safety_snapshots"]})
                return True
            op = self._restore_op(snapshot.snapshot_id, target_dir, safety_snapshot, False, callback)
            if self.rag is None or target_dir is not None:
                self._restored(await op.start())
                return True
            from . import _live

            async with _live.pipeline_reservation(self.rag, kind="restore", timeout=self.busy_timeout):
                await _live.flush_storages(self.rag)
                self._restored(await op.start())
                await _live.reload_storages(self.rag)
            return True

    def _restored(self, result: str) -> None:
        """Keep the outcome (``last_restore``) and tell the recorder of it."""
        self.last_restore = json.loads(result)
        self._record_restore(self.last_restore)

    def _record_restore(self, outcome: dict[str, Any]) -> None:
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

    def _is_records(self, snapshot_id: str) -> bool:
        from .records.restore import is_records_snapshot

        return is_records_snapshot(self.get_snapshot(snapshot_id))

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
        return self._engine.restore_op(
            check_snapshot_id(snapshot_id), str(target), bool(safety_snapshot), dry_run, progress
        )

    # -- verify / stats -------------------------------------------------------------------

    def verify_snapshot(
        self,
        snapshot_id: str,
        read_data: bool = True,
        *,
        read_data_subset: Optional[float] = None,
        progress: Progress = None,
    ) -> VerifyReport:
        """Check that a snapshot is whole.

        Always checks that every chunk it references is indexed and stored; with ``read_data``
        (the default) also reads every chunk back and checks its SHA-256. ``read_data_subset``
        (0-1] reads only that fraction of the packs, picked at random.
        """
        with progress_callback(progress) as callback:
            snapshot = self.get_snapshot(snapshot_id)
            op = self._engine.verify_op([snapshot.snapshot_id], bool(read_data), read_data_subset, callback)
            return self._verified(snapshot, verify_report(snapshot.snapshot_id, bool(read_data), op.run()))

    async def averify_snapshot(
        self,
        snapshot_id: str,
        read_data: bool = True,
        *,
        read_data_subset: Optional[float] = None,
        progress: Progress = None,
    ) -> VerifyReport:
        """Async twin of :meth:`verify_snapshot`."""
        with progress_callback(progress) as callback:
            snapshot = await self.aget_snapshot(snapshot_id)
            op = self._engine.verify_op([snapshot.snapshot_id], bool(read_data), read_data_subset, callback)
            return self._verified(snapshot, verify_report(snapshot.snapshot_id, bool(read_data), await op.start()))

    def _verified(self, snapshot: BackupSnapshot, report: VerifyReport) -> VerifyReport:
        """Record the result, and the snapshot with the status it proved (verified or corrupted)."""
        if self.recorder is not None:
            self.recorder.record_snapshot(dataclasses.replace(snapshot, status=report.status))
            self.recorder.record_verify(self.graph_id, report.snapshot_id or None, report.ok, report.read_data, list(report.errors))
        return report

    def get_backup_stats(self) -> dict[str, Any]:
        """Snapshot count, logical/unique/stored bytes, dedup and compression ratios, oldest
        and newest snapshot of this graph."""
        stats = StatsReport(json.loads(self._engine.stats_op().run()))
        stats["graph_id"] = self.graph_id
        return stats

    async def aget_backup_stats(self) -> dict[str, Any]:
        """Async twin of :meth:`get_backup_stats`."""
        stats = StatsReport(json.loads(await self._engine.stats_op().start()))
        stats["graph_id"] = self.graph_id
        return stats


async def asnapshot_together(
    backups: "list[GraphBackup]",
    description: Optional[str] = None,
    tags: Optional[list[str]] = None,
    *,
    metadata: Optional[dict[str, Any]] = None,
    skip_if_unchanged: bool = True,
    busy_timeout: float = 30.0,
) -> "tuple[list[BackupSnapshot], float]":
    """Snapshot several graphs as one consistent state: the pipelines of every live instance
    are reserved and flushed before any is captured, and all are released together, so no
    insert lands in one graph's capture but not another's. Offline folders are captured with
    the usual change checks. Returns the snapshots (in ``backups`` order; with
    ``skip_if_unchanged`` an unchanged graph gives its newest snapshot, ``skipped=True``) and
    the pause of the live instances in milliseconds (0 without any).

    Raises :class:`GraphBusyError` when the instances are not all idle at once within
    ``busy_timeout`` seconds (none is held while another is waited for)."""
    from . import _live

    live = [b for b in backups if b.rag is not None]
    staged: dict[int, Path] = {}
    captured: dict[int, Any] = {}  # read under the hold, then the records summaries
    pause_ms = 0.0
    try:
        if live:
            async with _live.reserve_all([b.rag for b in live], kind="recovery_point", timeout=busy_timeout):
                paused_at = time.perf_counter()
                for backup in live:
                    staged[id(backup)] = backup._new_staging()
                    captured[id(backup)] = await backup._stage(staged[id(backup)])
                pause_ms = (time.perf_counter() - paused_at) * 1000
            for backup in live:
                captured[id(backup)] = await backup._finish_stage(staged[id(backup)], captured.pop(id(backup)))
        recorded = dict(metadata or {})
        recorded["together_pause_ms"] = round(pause_ms, 3)
        snapshots = []
        for backup in backups:
            staging = staged.get(id(backup))
            if staging is None:
                snapshots.append(await backup.acreate_snapshot(description, tags, metadata=recorded,
                                                               skip_if_unchanged=skip_if_unchanged))
            else:
                snapshots.append(await backup._snapshot_staged(staging, pause_ms, description, tags, recorded, None,
                                                               skip_if_unchanged, False,
                                                               records=captured.get(id(backup))))
        return snapshots, pause_ms
    finally:
        from .records.pg_snapshot import View

        for held in captured.values():  # snapshots opened for graphs a failure left unread
            if isinstance(held, View):
                await held.close()
        for staging in staged.values():
            staging_folders.remove(staging)


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
    "asnapshot_together",
]
