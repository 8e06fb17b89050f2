"""Snapshots of LightRAG graphs: :class:`GraphBackup` for one graph, :class:`BackupManager`
for many.

``GraphBackup`` joins a graph's snapshots in the repository
(:class:`~lightrag.backup.snapshots.GraphSnapshots`) with the graph's source
(:class:`~lightrag.backup.sources.GraphSource`: a folder, a live instance on files, a live
instance on databases). Every method has an async twin named the LightRAG way
(``create_snapshot`` / ``acreate_snapshot``). The work runs in Rust with the GIL released.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Optional, TypeVar

import lightrag.backup._live as _live  # by module: tests hold a live instance by patching it
from .staging import new as new_staging_folder
from .staging import remove as remove_staging_folder
from .display import Progress, progress_callback
from .errors import InvalidInputError
from .kg_diff import GraphDiff
from .snapshots import GraphSnapshots
from .sources import FolderSource, GraphSource, LiveSource, source_for
from .storage import BackupStorageBackend
from .twins import on_loop
from .twins import run_sync as _run_sync
from .types import (
    BackupSnapshot,
    BackupStatus,
    ProgressCallback,
    SnapshotFile,
    SnapshotRecorder,
    VerifyReport,
)

F = TypeVar("F", bound=Callable[..., Any])


def _documented_as(original: Callable[..., Any]) -> Callable[[F], F]:
    """A method of the facade that hands the work to ``original`` carries its docstring."""

    def mark(method: F) -> F:
        method.__doc__ = original.__doc__
        return method

    return mark


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

    It is built from the graph's snapshots (:attr:`snapshots`, a
    :class:`~lightrag.backup.snapshots.GraphSnapshots`) and its source (:attr:`source`, a
    :class:`~lightrag.backup.sources.GraphSource`); :meth:`of` joins ones made elsewhere.
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
        snapshots = GraphSnapshots(graph_id, storage, recorder=recorder, password=password,
                                   key_per_graph=key_per_graph)
        self._join(snapshots, source_for(working_dir, workspace, rag=rag, busy_timeout=busy_timeout))

    def _join(self, snapshots: GraphSnapshots, source: Optional[GraphSource]) -> None:
        #: The graph's snapshots in the repository.
        self.snapshots = snapshots
        #: Where the graph lives (``None``: a graph known only by its snapshots).
        self.source = source
        self.graph_id = snapshots.graph_id
        self.storage = snapshots.storage

    @classmethod
    def of(cls, snapshots: GraphSnapshots, source: Optional[GraphSource] = None) -> "GraphBackup":
        """A graph made of ``snapshots`` and ``source``; without a source, a graph known only
        by its snapshots (listed, verified, deleted, restored into a ``target_dir``)."""
        backup = cls.__new__(cls)
        backup._join(snapshots, source)
        return backup

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
        where = self.source.describe() if self.source is not None else "snapshots only"
        return f"GraphBackup({self.graph_id!r}, {self.storage!r}, {where})"

    # -- what the graph is (the source's) and how it is recorded (the snapshots') ---------

    def _own_source(self) -> GraphSource:
        if self.source is None:
            raise InvalidInputError(
                f"graph {self.graph_id!r} is known here only by its snapshots: register its working_dir or live "
                "instance to snapshot it or restore into it (or restore into a target_dir)")
        return self.source

    @property
    def rag(self) -> Any:
        """The live ``LightRAG`` instance, or ``None`` for a folder."""
        return self.source.rag if self.source is not None else None

    @property
    def records(self) -> bool:
        """Whether the live instance's graph is captured as records through its storages (any
        storage not one of LightRAG's file storages: databases) rather than as its files."""
        return self.source is not None and self.source.records

    @property
    def graph_dir(self) -> Path:
        return self._own_source().graph_dir

    @property
    def working_dir(self) -> Path:
        return self._own_source().working_dir

    @property
    def workspace(self) -> str:
        return self._own_source().workspace

    @property
    def busy_timeout(self) -> float:
        """How long a live instance's pipeline is waited for, in seconds."""
        return self.source.busy_timeout if self.source is not None else 30.0

    @busy_timeout.setter
    def busy_timeout(self, seconds: float) -> None:
        self._own_source().busy_timeout = float(seconds)

    @property
    def recorder(self) -> Optional[SnapshotRecorder]:
        """Told of every commit, forget and verify (the manager's catalog); reads tell nothing."""
        return self.snapshots.recorder

    @property
    def key_per_graph(self) -> bool:
        """Ask for a key of the graph's own at its first snapshot (see :meth:`shred`)."""
        return self.snapshots.key_per_graph

    @property
    def last_restore(self) -> Optional[dict[str, Any]]:
        """What the last restore did: its safety snapshot, what it restored."""
        return self.snapshots.last_restore

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
        source = self._own_source()
        with progress_callback(progress) as callback:
            if not isinstance(source, FolderSource):
                return _run_sync(
                    self.acreate_snapshot(
                        description, tags, metadata=metadata, progress=callback, skip_if_unchanged=skip_if_unchanged,
                        adopt=adopt,
                    )
                )
            # A folder is read in place, on this thread: no event loop needed.
            started = time.perf_counter()
            op = self.snapshots.snapshot_op(source.in_place(), description, tags, metadata, callback,
                                            skip_if_unchanged=skip_if_unchanged, adopt=adopt)
            return self.snapshots.committed(op.run(), started)

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
        source = self._own_source()
        with progress_callback(progress) as callback:
            async with source.capture(callback) as capture:
                return await self.snapshots.asnapshot(capture, description, tags, metadata, callback,
                                                      skip_if_unchanged=skip_if_unchanged, adopt=adopt)

    def consistent_view(self) -> "contextlib.AbstractAsyncContextManager[Path]":
        """A folder holding the graph's files as one consistent state, to read without
        touching the graph: for a live instance, its files hard-linked while its pipeline is
        held and flushed (a pause of milliseconds; the links go when the block ends); for a
        folder, the folder itself."""
        return self._own_source().consistent_view()

    async def acontent_digest(self) -> str:
        """The content digest of the graph as it is now, whatever it is stored in (files,
        databases): equal to a records snapshot's ``metadata["records"]["digest"]`` when the
        graph holds the records that snapshot holds (vectors aside: see
        :meth:`aholds_snapshot` and :mod:`lightrag.backup.records.digest`)."""
        async with self._own_source().current_records() as records:
            return str(records.digest())

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

        source = self._own_source()
        snapshot = await self.aget_snapshot(snapshot_id)
        if snapshot.metadata.get("capture") != "records":
            return False
        scratch = Path(tempfile.mkdtemp(prefix="lightrag-backup-holds-"))
        try:
            await self.snapshots.aunpack(snapshot.snapshot_id, scratch / "snapshot")
            then = load.Records(scratch / "snapshot")
            async with source.current_records() as now:
                return bool(now.digest() == then.digest() and not vectors_differ(then.vectors, now.vectors))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    holds_snapshot = on_loop(aholds_snapshot)

    # -- list / get / delete / shred: the snapshots' ----------------------------------------

    @_documented_as(GraphSnapshots.list_snapshots)
    def list_snapshots(self) -> list[BackupSnapshot]:
        return self.snapshots.list_snapshots()

    @_documented_as(GraphSnapshots.alist_snapshots)
    async def alist_snapshots(self) -> list[BackupSnapshot]:
        return await self.snapshots.alist_snapshots()

    @_documented_as(GraphSnapshots.head)
    def head(self) -> Optional[BackupSnapshot]:
        return self.snapshots.head()

    @_documented_as(GraphSnapshots.get_snapshot)
    def get_snapshot(self, snapshot_id: str) -> BackupSnapshot:
        return self.snapshots.get_snapshot(snapshot_id)

    @_documented_as(GraphSnapshots.aget_snapshot)
    async def aget_snapshot(self, snapshot_id: str) -> BackupSnapshot:
        return await self.snapshots.aget_snapshot(snapshot_id)

    @_documented_as(GraphSnapshots.delete_snapshot)
    def delete_snapshot(self, snapshot_id: str) -> bool:
        return self.snapshots.delete_snapshot(snapshot_id)

    @_documented_as(GraphSnapshots.adelete_snapshot)
    async def adelete_snapshot(self, snapshot_id: str) -> bool:
        return await self.snapshots.adelete_snapshot(snapshot_id)

    @_documented_as(GraphSnapshots.shred)
    def shred(self, *, confirm: str) -> dict[str, Any]:
        return self.snapshots.shred(confirm=confirm)

    @_documented_as(GraphSnapshots.ashred)
    async def ashred(self, *, confirm: str) -> dict[str, Any]:
        return await self.snapshots.ashred(confirm=confirm)

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
            folder = self._file_restore_folder(snapshot_id, target_dir, into)
            if folder is None:
                return _run_sync(
                    self.arestore_snapshot(
                        snapshot_id, target_dir, into=into, replace=replace, safety_snapshot=safety_snapshot,
                        progress=callback,
                    )
                )
            # Files into a folder: the engine alone, on this thread.
            self.snapshots.restored(self.snapshots.restore_op(snapshot_id, folder, safety_snapshot, False, callback).run())
            return True

    async def arestore_documents(
        self,
        snapshot_id: str,
        documents: "list[str] | str",
        *,
        replace: bool = False,
        dry_run: bool = False,
        safety_snapshot: bool = True,
        progress: Progress = None,
    ) -> dict[str, Any]:
        """Put documents of a snapshot back into the live graph without rolling the rest back:
        each document (by id, or by the file path LightRAG recorded) with its text, chunks,
        chunk vectors, LLM cache entries and the entities and relations its chunks contributed
        (see :mod:`lightrag.backup.documents`). Documents inserted since stay, with their
        entities. Any LightRAG storages: it writes through the instance's own.

        No LLM or embedding call is made where the snapshot holds the answer; the report's
        ``calls`` counts those made (``llm``, ``embedding``, ``embedded_texts``). A document
        the graph still holds is refused (:class:`DocumentExistsError`) unless ``replace``:
        its current version is deleted through LightRAG first. ``dry_run`` returns the plan
        (what would be added and rebuilt) and writes nothing. The pipeline is held while it
        writes, the graph is kept first as a safety snapshot (so the undelete can itself be
        undone), and a failure part-way rolls the graph back to it
        (:class:`RolledBackError`). Raises :class:`DocumentNotFoundError` for a document the
        snapshot does not hold."""
        from . import documents as planning

        return await self._restore_part(snapshot_id, documents, "document", planning.plan, replace=replace,
                                        dry_run=dry_run, safety_snapshot=safety_snapshot, progress=progress)

    restore_documents = on_loop(arestore_documents)

    async def _restore_part(self, snapshot_id: str, names: "list[str] | str", what: str, plan: Callable[..., Any], *,
                            replace: bool, dry_run: bool, safety_snapshot: bool, progress: Progress) -> dict[str, Any]:
        """Documents or entities (``what``) of a snapshot put back as ``plan`` plans them."""
        wanted = [names] if isinstance(names, str) else list(names)
        if not wanted:
            raise InvalidInputError(f"name at least one {what} to restore")
        snapshot = await self.aget_snapshot(snapshot_id)

        def planner(records: Any, rag: Any) -> Any:
            return plan(records, rag, wanted, snapshot_id=snapshot.snapshot_id, replace=replace)

        with progress_callback(progress) as callback:
            return await self._own_source().restore_documents(self.snapshots, snapshot, planner, dry_run=dry_run,
                                                              safety_snapshot=safety_snapshot, progress=callback)

    async def arestore_entities(
        self,
        snapshot_id: str,
        entities: "list[str] | str",
        *,
        replace: bool = False,
        dry_run: bool = False,
        safety_snapshot: bool = True,
        progress: Progress = None,
    ) -> dict[str, Any]:
        """Put entities deleted or edited by hand (``adelete_by_entity``, ``aedit_entity``)
        back as a snapshot held them, with their relations to entities the graph holds, vector
        rows and chunk tracking; nothing else changes. An entity the graph still holds (edited)
        is refused (:class:`DocumentExistsError`) unless ``replace``. Sources the graph no
        longer holds are left out (the entity is then rebuilt by LightRAG from the rest); an
        entity none of whose chunks is left is refused: restore its documents
        (:meth:`arestore_documents`). Safe as :meth:`arestore_documents` is: dry run, pipeline
        held, safety snapshot, rollback. Raises :class:`EntityNotFoundError` for a name the
        snapshot lacks."""
        from . import documents as planning

        return await self._restore_part(snapshot_id, entities, "entity", planning.plan_entities, replace=replace,
                                        dry_run=dry_run, safety_snapshot=safety_snapshot, progress=progress)

    restore_entities = on_loop(arestore_entities)

    def _file_restore_folder(self, snapshot_id: str, target_dir: Any, into: Any) -> Optional[Path]:
        """The folder a restore writes with the engine alone (a file snapshot into a folder
        no process serves), or ``None`` when it needs more (a live instance, records)."""
        from .records.restore import is_records_snapshot

        if into is not None:
            return None
        if target_dir is None:
            source = self._own_source()
            if not isinstance(source, FolderSource):
                return None
            folder = source.graph_dir
        else:
            folder = Path(target_dir).expanduser().absolute()
        return None if is_records_snapshot(self.get_snapshot(snapshot_id)) else folder

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
            if target_dir is None and (into is None or (self.rag is not None and into is self.rag)):
                await self._own_source().restore(self.snapshots, snapshot, safety_snapshot=safety_snapshot,
                                                  progress=callback)
                return True
            from .records import restore as records_restore

            if target_dir is not None and not records_restore.is_records_snapshot(snapshot):
                # A file snapshot into another folder: the engine alone.
                op = self.snapshots.restore_op(snapshot.snapshot_id, Path(target_dir).expanduser().absolute(),
                                               safety_snapshot, False, callback)
                self.snapshots.restored(await op.start())
                return True
            self.snapshots.last_restore = await records_restore.elsewhere(
                self.snapshots, snapshot, target_dir=target_dir, into=into, replace=replace, progress=callback,
                scratch=self._scratch(target_dir), busy_timeout=self.busy_timeout,
            )
            return True

    def _scratch(self, target_dir: Any) -> Path:
        """Where a restore elsewhere unpacks the snapshot: beside the target folder, beside a
        live instance's graph, or (a folder or a graph known by its snapshots) a temp folder."""
        import tempfile

        if target_dir is not None:
            return new_staging_folder(Path(target_dir).expanduser().absolute())
        if isinstance(self.source, LiveSource):
            return self.source.new_staging()
        return Path(tempfile.mkdtemp(prefix="lightrag-backup-restore-"))

    def plan_restore(self, snapshot_id: str, target_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """What :meth:`restore_snapshot` would write and remove, without doing it."""
        target = Path(target_dir).expanduser().absolute() if target_dir is not None else self.graph_dir
        return self.snapshots.plan_restore(snapshot_id, target)

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
            return self.snapshots.verify_snapshot(snapshot_id, read_data, read_data_subset=read_data_subset,
                                                  progress=callback)

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
            return await self.snapshots.averify_snapshot(snapshot_id, read_data, read_data_subset=read_data_subset,
                                                         progress=callback)

    def diff(self, from_snapshot: str, to: str = "live") -> "GraphDiff":
        """What changed in the graph from snapshot ``from_snapshot`` to ``to``: another snapshot
        (an id, a unique prefix, ``latest``, or a recovery point's id: its snapshot of this
        graph) or ``"live"``, the graph as it is now (a live
        instance's files are read from a consistent view taken under a pause of milliseconds).
        Nothing is restored: both versions are read as streams, the vector matrices not at all.

        Returns a :class:`~lightrag.backup.kg_diff.GraphDiff`: documents (id, file path, status,
        chunk count), entities and relations (which fields changed: description, type, sources,
        weight, keywords, ...) added, removed and changed; text chunks, vector rows and LLM
        cache entries counted. Records snapshots of database-backed graphs diff alike (and
        with file snapshots); a live database-backed graph is read as a snapshot captures it."""
        if to != "live":
            return self.snapshots.diff_snapshots(from_snapshot, to)
        source = self._own_source()
        if not isinstance(source, FolderSource):
            return _run_sync(self.adiff(from_snapshot, to))
        return self.snapshots.diffed(self.snapshots.diff_op(from_snapshot, to_folder=source.graph_dir).run(),
                                     from_snapshot, to)

    async def adiff(self, from_snapshot: str, to: str = "live") -> "GraphDiff":
        """Async twin of :meth:`diff`."""
        if to != "live":
            return await self.snapshots.adiff_snapshots(from_snapshot, to)
        source = self._own_source()
        async with self._current_version(source) as folder:
            result = await self.snapshots.diff_op(from_snapshot, to_folder=folder).start()
        return self.snapshots.diffed(result, from_snapshot, to)

    @contextlib.asynccontextmanager
    async def _current_version(self, source: GraphSource) -> AsyncIterator[Path]:
        """The graph as it is now, as a folder the engine reads: a live instance's files from a
        consistent view, a database-backed graph's records captured as a snapshot captures them
        (into a staging folder, removed after)."""
        if source.records:
            async with source.capture(None) as capture:
                yield capture.folder
        else:
            async with source.consistent_view() as folder:
                yield folder

    def deleted_documents(self) -> list[dict[str, Any]]:
        """Documents earlier snapshots hold and the graph no longer does, each with the newest
        snapshot that holds it (what an undelete restores from), newest first: ``id``,
        ``file_path``, ``status``, ``chunks``, ``snapshot_id``, ``snapshot_time``. "No longer"
        is the graph as it is now when its folder or live instance is known here, else its
        newest snapshot. Only each snapshot's small doc status store is read (once per distinct
        content)."""
        source = self.source
        if source is not None and not isinstance(source, FolderSource):
            return _run_sync(self.adeleted_documents())
        folder = source.graph_dir if source is not None else None
        return list(json.loads(self.snapshots.deleted_op(folder).run()))

    async def adeleted_documents(self) -> list[dict[str, Any]]:
        """Async twin of :meth:`deleted_documents`."""
        source = self.source
        if source is None:
            return list(json.loads(await self.snapshots.deleted_op().start()))
        async with self._current_version(source) as folder:
            return list(json.loads(await self.snapshots.deleted_op(folder).start()))

    @_documented_as(GraphSnapshots.get_backup_stats)
    def get_backup_stats(self) -> dict[str, Any]:
        return self.snapshots.get_backup_stats()

    @_documented_as(GraphSnapshots.aget_backup_stats)
    async def aget_backup_stats(self) -> dict[str, Any]:
        return await self.snapshots.aget_backup_stats()


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
    live: list[tuple[GraphBackup, LiveSource]] = [(b, b.source) for b in backups if isinstance(b.source, LiveSource)]
    staged: dict[int, Path] = {}
    held: dict[int, Any] = {}  # what each capture holds open until it is finished
    captured: dict[int, Optional[dict[str, Any]]] = {}  # the records summaries
    pause_ms = 0.0
    for _, source in live:
        source.check_capturable()
    try:
        if live:
            async with _live.reserve_all([source.rag for _, source in live], kind="recovery_point",
                                         timeout=busy_timeout):
                paused_at = time.perf_counter()
                for backup, source in live:
                    staged[id(backup)] = source.new_staging()
                    held[id(backup)] = await source.stage(staged[id(backup)])
                pause_ms = (time.perf_counter() - paused_at) * 1000
            for backup, source in live:
                captured[id(backup)] = await source.finish_stage(staged[id(backup)], held.pop(id(backup)))
        recorded = dict(metadata or {})
        recorded["together_pause_ms"] = round(pause_ms, 3)
        sources = {id(backup): source for backup, source in live}
        snapshots = []
        for backup in backups:
            staging = staged.get(id(backup))
            if staging is None:
                snapshots.append(await backup.acreate_snapshot(description, tags, metadata=recorded,
                                                               skip_if_unchanged=skip_if_unchanged))
            else:
                capture = sources[id(backup)].captured(staging, pause_ms, captured.get(id(backup)))
                snapshots.append(await backup.snapshots.asnapshot(capture, description, tags, recorded,
                                                                  skip_if_unchanged=skip_if_unchanged))
        return snapshots, pause_ms
    finally:
        for backup, source in live:  # captures a failure left unfinished (an open database snapshot)
            if id(backup) in held:
                await source.release_unfinished(held.pop(id(backup)))
        for staging in staged.values():
            remove_staging_folder(staging)


__all__ = [
    "BackupSnapshot",
    "BackupStatus",
    "GraphBackup",
    "ProgressCallback",
    "SnapshotFile",
    "VerifyReport",
    "asnapshot_together",
]
