"""Where a graph lives: :class:`GraphSource`, one class per kind of source.

- :class:`FolderSource`: a LightRAG ``working_dir`` (plus ``workspace``) read offline, in place;
- :class:`LiveFilesSource`: a live ``LightRAG`` instance on LightRAG's file storages, captured by
  hard-linking its files while its pipeline is held for a few milliseconds;
- :class:`LiveRecordsSource`: a live instance on databases (PostgreSQL, Redis, Milvus, ...),
  captured as every record of its workspace (format in :mod:`.records.layout`).

Each knows what it alone knows: how to capture the graph for a snapshot (:meth:`GraphSource.capture`),
restore a snapshot into itself (:meth:`GraphSource.restore`), give a consistent read-only view
of its files (:meth:`GraphSource.consistent_view`), read its records
(:meth:`GraphSource.current_records`), and say who it is (:attr:`GraphSource.identity`). The
snapshots themselves are :class:`~lightrag.backup.snapshots.GraphSnapshots`'.

A new kind of source (say a Qdrant-backed LightRAG that needs a capture of its own) is one more
subclass here, chosen in :func:`source_for`.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import os
import time
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Optional, Protocol

import lightrag.backup._live as _live  # by module: tests hold a live instance by patching it
from ._native import stage_links
from .staging import new as new_staging_folder
from .staging import remove as remove_staging_folder
from .errors import GraphDirNotFoundError, InvalidInputError
from .snapshots import Capture, GraphSnapshots
from .types import BackupSnapshot, ProgressCallback



#: Plans a restore of documents or entities from a snapshot's records into a LightRAG instance
#: (:func:`.documents.plan`, :func:`.documents.plan_entities`).
Planner = Callable[[Any, Any], Awaitable[Any]]


class GraphRecords(Protocol):
    """Every record of a graph, however it was read (from a live instance's storages, or its
    files read by LightRAG's file storages): what is compared with a records snapshot."""

    vectors: dict[str, tuple[dict[str, Any], Any]]

    def digest(self) -> str: ...


class GraphSource(abc.ABC):
    """A graph as it lives now (see the module documentation)."""

    #: How a snapshot captures it (the snapshot's ``capture`` metadata).
    mode: str = ""
    #: The live ``LightRAG`` instance, if the graph is one.
    rag: Any = None
    #: Whether the graph is captured as records through its storages (databases).
    records: bool = False

    def __init__(self, working_dir: Path, workspace: str, graph_dir: Path, busy_timeout: float) -> None:
        self.working_dir = working_dir
        self.workspace = workspace
        #: The folder of the graph's files (for a database-backed instance, where its files would be).
        self.graph_dir = graph_dir
        #: How long a live instance's pipeline is waited for.
        self.busy_timeout = float(busy_timeout)

    @property
    def live(self) -> bool:
        """Whether the graph is a running instance (captured under its pipeline hold)."""
        return self.rag is not None

    @property
    def identity(self) -> str:
        """Where the graph comes from, as its snapshots record it (``working_dir``): a graph id
        belongs to one source."""
        return str(self.working_dir)

    def describe(self) -> str:
        return f"graph_dir={str(self.graph_dir)!r}, {self.mode}"

    def new_staging(self) -> Path:
        """A staging folder beside the graph (see :mod:`.staging`: removed with
        :func:`.staging.remove`; one a killed process left behind is removed by the next)."""
        return new_staging_folder(self.graph_dir)

    def captured(self, folder: Path, pause_ms: Optional[float], records: Optional[dict[str, Any]]) -> Capture:
        """What a snapshot of ``folder`` (this graph's files or records) records about it."""
        mode = "records" if records is not None else self.mode
        return Capture(folder=folder, mode=mode, identity=self.identity, workspace=self.workspace,
                       pause_ms=pause_ms, records=records)

    @abc.abstractmethod
    def capture(self, progress: Optional[ProgressCallback] = None) -> "contextlib.AbstractAsyncContextManager[Capture]":
        """The graph as one consistent state for a snapshot, while the block runs."""

    @abc.abstractmethod
    async def restore(self, snapshots: GraphSnapshots, snapshot: BackupSnapshot, *, safety_snapshot: bool,
                      progress: Optional[ProgressCallback]) -> None:
        """Replace the graph with ``snapshot`` (keeping what it held as a ``pre-restore``
        safety snapshot unless ``safety_snapshot`` is false); ``snapshots.last_restore`` says
        what was done."""

    async def restore_documents(self, snapshots: GraphSnapshots, snapshot: BackupSnapshot, planner: "Planner", *,
                                dry_run: bool, safety_snapshot: bool,
                                progress: Optional[ProgressCallback]) -> dict[str, Any]:
        """Put documents (or entities) of ``snapshot`` back into the graph as it is now
        (:mod:`.documents`), as ``planner`` plans from the snapshot's records and the graph;
        returns the plan (a dry run) or what was done."""
        raise InvalidInputError(f"documents are restored into a live LightRAG instance, not into {self.describe()}")

    @abc.abstractmethod
    def consistent_view(self) -> "contextlib.AbstractAsyncContextManager[Path]":
        """A folder holding the graph's files as one consistent state, to read without
        touching the graph."""

    @abc.abstractmethod
    def current_records(self) -> "contextlib.AbstractAsyncContextManager[GraphRecords]":
        """Every record of the graph as it is now, whatever it is stored in."""


class FolderSource(GraphSource):
    """A LightRAG ``working_dir`` (plus ``workspace``) no process is writing: read in place."""

    mode = "offline"

    def __init__(self, working_dir: "str | os.PathLike[str] | None", workspace: str = "", *,
                 busy_timeout: float = 30.0) -> None:
        if working_dir is None:
            working_dir = os.environ.get("WORKING_DIR")
            if not working_dir:
                raise InvalidInputError("no working_dir: pass the graph's LightRAG working_dir (or set WORKING_DIR)")
        if workspace and ("/" in workspace or "\\" in workspace or workspace in (".", "..")):
            raise InvalidInputError(f"workspace {workspace!r} is not a plain folder name")
        folder = Path(working_dir).expanduser().absolute()
        workspace = workspace or ""
        super().__init__(folder, workspace, folder / workspace if workspace else folder, busy_timeout)

    def in_place(self) -> Capture:
        """The folder itself, read where it is (no process writes it)."""
        return self.captured(self.graph_dir, None, None)

    @contextlib.asynccontextmanager
    async def capture(self, progress: Optional[ProgressCallback] = None) -> AsyncIterator[Capture]:
        yield self.in_place()

    async def restore(self, snapshots: GraphSnapshots, snapshot: BackupSnapshot, *, safety_snapshot: bool,
                      progress: Optional[ProgressCallback]) -> None:
        from .records import restore as records_restore

        if records_restore.is_records_snapshot(snapshot):
            await self._restore_records(snapshots, snapshot, safety_snapshot=safety_snapshot, progress=progress)
            return
        snapshots.restored(await snapshots.restore_op(snapshot.snapshot_id, self.graph_dir, safety_snapshot, False,
                                                      progress).start())

    async def _restore_records(self, snapshots: GraphSnapshots, snapshot: BackupSnapshot, *, safety_snapshot: bool,
                               progress: Optional[ProgressCallback]) -> None:
        """A records snapshot as LightRAG's file storages in the folder; what the folder held
        is kept first as a safety snapshot, as a file restore keeps it."""
        from .records import files
        from .records import restore as records_restore

        target = self.graph_dir
        scratch = new_staging_folder(target)
        try:
            records, outcome = await records_restore.unpacked(snapshots, snapshot, scratch, None, progress)
            if safety_snapshot and records_restore.has_graph_files(target):
                safety = await snapshots.asnapshot(
                    self.captured(target, 0.0, None), f"state replaced by restoring {snapshot.snapshot_id}", None,
                    {"replaced_by": snapshot.snapshot_id}, safety=True,
                )
                outcome["safety_snapshot"] = safety.to_dict()
            outcome.update(target=str(target), restored=await files.to_file_storages(records, target, progress=progress))
        finally:
            remove_staging_folder(scratch)
        # Its safety snapshot was recorded as it was committed, the expired ones as it was unpacked.
        snapshots.last_restore = outcome

    async def restore_documents(self, snapshots: GraphSnapshots, snapshot: BackupSnapshot, planner: "Planner", *,
                                dry_run: bool, safety_snapshot: bool,
                                progress: Optional[ProgressCallback]) -> dict[str, Any]:
        """Documents of ``snapshot`` put back into the folder (:mod:`.documents`): written by
        LightRAG's file storages into a private copy of the graph, then moved into place file
        by file, so a failure before the move leaves the folder as it was. Without a model
        here, a restore that needs one (an entity rebuilt from sources the snapshot never had
        together needs its new description embedded) is refused: restore it through the live
        instance. What the folder held is kept first as a safety snapshot."""
        import shutil
        import uuid

        from . import documents
        from .errors import InvalidInputError as Refused
        from .errors import RolledBackError
        from .records import restore as records_restore
        from .records.target import StorageConfig, opened

        if not records_restore.has_graph_files(self.graph_dir):
            raise GraphDirNotFoundError(f"{self.graph_dir} holds no LightRAG graph to restore documents into")
        scratch = self.new_staging()
        private_name = f"lrb-private-{uuid.uuid4().hex}"
        private = self.graph_dir / private_name
        try:
            records, outcome = await records_restore.readable(snapshots, snapshot, scratch, None, progress)
            private.mkdir()
            # Copied off the event loop: a server serving this folder keeps answering meanwhile.
            await asyncio.to_thread(_copy_graph_files, self.graph_dir, private)
            config = StorageConfig(working_dir=str(self.graph_dir), workspace=private_name)
            model = records.manifest["embedding"].get("model_name")
            started = time.perf_counter()
            async with opened(config, embedding_dim=records.dim, model_name=model) as rag:
                plan = await planner(records, rag)
                if dry_run:
                    return {**outcome, **plan.summary(), "dry_run": True}
                if plan.replaced:
                    raise Refused(
                        f"replacing documents deletes them through LightRAG, whose rebuild needs the models: restore "
                        f"{', '.join(plan.replaced)} through the live instance (GraphBackup.from_rag)"
                    )
                try:
                    done = await documents.apply(plan, records, rag)
                except Refused as error:
                    raise Refused(
                        f"restoring these documents into {self.graph_dir} needs a model ({error}): the graph changed "
                        "since the snapshot, so some entities get descriptions the snapshot never embedded; restore "
                        "them through the live instance (GraphBackup.from_rag), whose models can; the folder is unchanged"
                    ) from None
            safety = None
            if safety_snapshot:
                safety = await snapshots.asnapshot(
                    self.in_place(), f"state before restoring {plan.subject} of {snapshot.snapshot_id}",
                    None, {"documents_restored_from": snapshot.snapshot_id}, safety=True)
            written = await asyncio.to_thread(_graph_file_names, private)
            try:
                for name in written:
                    os.replace(private / name, self.graph_dir / name)
            except OSError as error:
                if safety is None:
                    raise
                await snapshots.restore_op(safety.snapshot_id, self.graph_dir, False, False, None).start()
                raise RolledBackError(
                    f"moving the restored files into {self.graph_dir} failed ({error}); the folder was rolled back to "
                    f"safety snapshot {safety.snapshot_id}"
                ) from error
            outcome.update({**plan.summary(), **done, "dry_run": False, "target": str(self.graph_dir),
                            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                            "safety_snapshot": safety.to_dict() if safety is not None else None})
        finally:
            shutil.rmtree(private, ignore_errors=True)
            remove_staging_folder(scratch)
        snapshots.last_restore = outcome
        return outcome

    @contextlib.asynccontextmanager
    async def consistent_view(self) -> AsyncIterator[Path]:
        yield self.graph_dir

    @contextlib.asynccontextmanager
    async def current_records(self) -> AsyncIterator[GraphRecords]:
        """The folder's files read by LightRAG's file storages into records (``digest()``,
        ``vectors``), in a scratch folder removed afterwards."""
        import shutil
        import tempfile

        from .records import files, load
        from .records.restore import file_graph_embedding

        scratch = Path(tempfile.mkdtemp(prefix="lightrag-backup-digest-"))
        try:
            dim, model = file_graph_embedding(self.graph_dir, None)
            await files.from_file_storages(self.graph_dir, scratch / "records", embedding_dim=dim, model_name=model)
            yield load.Records(scratch / "records")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


class LiveSource(GraphSource):
    """A running ``LightRAG`` instance: captured while its pipeline is held (no insert or
    delete runs meanwhile), its storages flushed first."""

    mode = "live"

    def __init__(self, rag: Any, *, busy_timeout: float = 30.0) -> None:
        super().__init__(Path(rag.working_dir), getattr(rag, "workspace", "") or "", _live.graph_dir_of(rag),
                         busy_timeout)
        self.rag = rag

    def hold(self, kind: str, job_name: Optional[str] = None) -> "contextlib.AbstractAsyncContextManager[None]":
        """The instance's pipeline reserved (``kind`` says for what), released when the block ends."""
        return _live.pipeline_reservation(self.rag, kind=kind, timeout=self.busy_timeout, job_name=job_name)

    @abc.abstractmethod
    async def stage(self, staging: Path, progress: Optional[ProgressCallback] = None) -> Any:
        """With the pipeline held: what must happen under the hold to capture the graph into
        ``staging``. What it returns goes to :meth:`finish_stage`, after the hold."""

    async def finish_stage(self, staging: Path, held: Any,
                           progress: Optional[ProgressCallback] = None) -> Optional[dict[str, Any]]:
        """After the pipeline is released: the rest of the capture :meth:`stage` began;
        returns a records graph's summary for the snapshot's metadata (``None`` for files)."""
        return None

    async def release_unfinished(self, held: Any) -> None:
        """Give back what :meth:`stage` held open when :meth:`finish_stage` never ran."""

    def check_capturable(self) -> None:
        """Refuse to capture a graph a restore left half-written: that snapshot would become
        its head (and replicate) while it holds part of another one."""
        from .records.restore import check_not_interrupted

        check_not_interrupted(self.rag)

    @contextlib.asynccontextmanager
    async def capture(self, progress: Optional[ProgressCallback] = None) -> AsyncIterator[Capture]:
        self.check_capturable()
        staging = self.new_staging()
        try:
            async with self.hold("snapshot"):
                paused_at = time.perf_counter()
                held = await self.stage(staging, progress)
                pause_ms = (time.perf_counter() - paused_at) * 1000
            records = await self.finish_stage(staging, held, progress)
            yield self.captured(staging, pause_ms, records)
        finally:
            remove_staging_folder(staging)

    @contextlib.asynccontextmanager
    async def staged(self, kind: str) -> AsyncIterator[tuple[Path, Optional[dict[str, Any]]]]:
        """The graph captured into a staging folder under a hold of ``kind`` (the folder and
        a records graph's summary), removed when the block ends."""
        staging = self.new_staging()
        try:
            async with self.hold(kind):
                held = await self.stage(staging)
            yield staging, await self.finish_stage(staging, held)
        finally:
            remove_staging_folder(staging)

    async def restore_records(self, snapshots: GraphSnapshots, snapshot: BackupSnapshot, *, safety_snapshot: bool,
                              progress: Optional[ProgressCallback]) -> None:
        """Any snapshot restored into the instance through its storages (every LightRAG
        backend), under its pipeline hold; what it held is kept first as a safety snapshot,
        captured under the same hold."""
        from .records import restore as records_restore

        scratch = self.new_staging()
        try:
            records, outcome = await records_restore.unpacked(snapshots, snapshot, scratch, self.rag, progress)
            async with self.hold("restore"):
                safety = None
                if safety_snapshot:
                    safety = await self.safety_snapshot_held(snapshots, f"state replaced by restoring {snapshot.snapshot_id}",
                                                             {"replaced_by": snapshot.snapshot_id})
                restored = await records_restore.load_into(records, self.rag, progress,
                                                           safety.snapshot_id if safety else None,
                                                           snapshot.snapshot_id)
            outcome.update({
                "target": "live instance",
                "restored": restored,
                "safety_snapshot": safety.to_dict() if safety is not None else None,
            })
        finally:
            remove_staging_folder(scratch)
        snapshots.last_restore = outcome

    async def safety_snapshot_held(self, snapshots: GraphSnapshots, description: str,
                                   metadata: dict[str, Any]) -> Optional[BackupSnapshot]:
        """With the pipeline held (it stays held: the write follows under the same hold): the
        graph as it is now, committed as a safety snapshot; ``None`` for an empty graph (a new
        machine's LightRAG holds nothing to keep)."""
        from .records import restore as records_restore

        folder = self.new_staging()
        try:
            paused_at = time.perf_counter()
            held = await self.stage(folder)
            records_read = await self.finish_stage(folder, held)
            if not records_restore.has_graph_files(folder):
                return None
            return await snapshots.asnapshot(self.captured(folder, (time.perf_counter() - paused_at) * 1000, records_read),
                                             description, None, metadata, safety=True)
        finally:
            remove_staging_folder(folder)

    @abc.abstractmethod
    async def restore_held(self, snapshots: GraphSnapshots, snapshot: BackupSnapshot) -> None:
        """With the pipeline held: the graph replaced by ``snapshot`` (a rollback to a safety
        snapshot), no safety snapshot of its own."""

    async def restore_documents(self, snapshots: GraphSnapshots, snapshot: BackupSnapshot, planner: "Planner", *,
                                dry_run: bool, safety_snapshot: bool,
                                progress: Optional[ProgressCallback]) -> dict[str, Any]:
        """Documents of ``snapshot`` put back into the instance through its storages
        (:mod:`.documents`), under its pipeline hold: the plan is made under the hold, the graph
        kept first as a safety snapshot, the current versions of ``replace``d documents deleted
        through LightRAG (which joins the hold), and a failure part-way rolls the graph back to
        the safety snapshot (:class:`RolledBackError`)."""
        from . import documents
        from .errors import RestoreIncompleteError, RolledBackError
        from .records import restore as records_restore

        scratch = self.new_staging()
        try:
            records, outcome = await records_restore.readable(snapshots, snapshot, scratch, self.rag, progress)
            if dry_run:
                plan = await planner(records, self.rag)
                return {**outcome, **plan.summary(), "dry_run": True}
            started = time.perf_counter()
            timings = outcome["timings_ms"]
            async with self.hold("restore_documents", job_name="Deleting documents to restore them from a snapshot"):
                held_at = time.perf_counter()
                timings["wait_for_pipeline"] = round((held_at - started) * 1000, 1)
                plan = await planner(records, self.rag)
                planned_at = time.perf_counter()
                timings["plan"] = round((planned_at - held_at) * 1000, 1)
                safety = None
                if safety_snapshot:
                    safety = await self.safety_snapshot_held(
                        snapshots, f"state before restoring {plan.subject} of {snapshot.snapshot_id}",
                        {"documents_restored_from": snapshot.snapshot_id})
                written_at = time.perf_counter()
                timings["safety_snapshot"] = round((written_at - planned_at) * 1000, 1)
                try:
                    for doc_id in plan.replaced:
                        deleted = await self.rag.adelete_by_doc_id(doc_id)
                        if getattr(deleted, "status", None) != "success":
                            raise RuntimeError(f"LightRAG did not delete document {doc_id}: {getattr(deleted, 'message', deleted)}")
                    if plan.replaced:  # planned again against the graph without them
                        replaced = plan.replaced
                        plan = await documents.plan(records, self.rag, [d["id"] for d in plan.documents],
                                                    snapshot_id=snapshot.snapshot_id, replace=False)
                        plan.replaced = replaced
                    done = await documents.apply(plan, records, self.rag)
                    timings["write"] = round((time.perf_counter() - written_at) * 1000, 1)
                except Exception as error:
                    if safety is None:
                        raise RestoreIncompleteError(
                            f"restoring documents of {snapshot.snapshot_id} failed part-way ({type(error).__name__}: "
                            f"{error}) and no safety snapshot was taken: the graph holds part of them"
                        ) from error
                    await self.restore_held(snapshots, safety)
                    raise RolledBackError(
                        f"restoring documents of {snapshot.snapshot_id} failed ({type(error).__name__}: {error}); "
                        f"the graph was rolled back to safety snapshot {safety.snapshot_id}, as it was before"
                    ) from error
            outcome.update({**plan.summary(), **done, "dry_run": False, "target": "live instance",
                            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                            "safety_snapshot": safety.to_dict() if safety is not None else None})
        finally:
            remove_staging_folder(scratch)
        snapshots.last_restore = outcome
        return outcome

    @contextlib.asynccontextmanager
    async def current_records(self) -> AsyncIterator[GraphRecords]:
        """Every record, read through the instance's storages under its pipeline hold."""
        from .records import capture

        async with self.hold("validate"):
            await _live.flush_storages(self.rag)
            captured = await capture.read(self.rag)
        yield captured


class LiveFilesSource(LiveSource):
    """A live instance on LightRAG's file storages: its files are hard-linked under the hold."""

    async def stage(self, staging: Path, progress: Optional[ProgressCallback] = None) -> Any:
        await _live.flush_storages(self.rag)
        stage_links(str(self.graph_dir), str(staging))
        return None

    async def restore(self, snapshots: GraphSnapshots, snapshot: BackupSnapshot, *, safety_snapshot: bool,
                      progress: Optional[ProgressCallback]) -> None:
        from .records import restore as records_restore

        if records_restore.is_records_snapshot(snapshot):
            await self.restore_records(snapshots, snapshot, safety_snapshot=safety_snapshot, progress=progress)
            return
        op = snapshots.restore_op(snapshot.snapshot_id, self.graph_dir, safety_snapshot, False, progress)
        async with self.hold("restore"):
            await _live.flush_storages(self.rag)
            snapshots.restored(await op.start())
            await _live.reload_storages(self.rag)

    async def restore_held(self, snapshots: GraphSnapshots, snapshot: BackupSnapshot) -> None:
        # What was written since is discarded, not flushed: the files are replaced, then reloaded.
        _live.discard_unsaved(self.rag)
        await snapshots.restore_op(snapshot.snapshot_id, self.graph_dir, False, False, None).start()
        await _live.reload_storages(self.rag)

    @contextlib.asynccontextmanager
    async def consistent_view(self) -> AsyncIterator[Path]:
        async with self.staged("validate") as (staging, _):
            yield staging


class LiveRecordsSource(LiveSource):
    """A live instance on databases: every record of its workspace is read through its
    storages, under the hold or (all in one PostgreSQL database) in one database snapshot
    opened under it and read after (:mod:`.records.pg_snapshot`)."""

    records = True

    def __init__(self, rag: Any, *, busy_timeout: float = 30.0) -> None:
        super().__init__(rag, busy_timeout=busy_timeout)
        from .records.target import source_of

        self._identity = source_of(rag)

    @property
    def identity(self) -> str:
        """Its storages and where they connect."""
        return self._identity

    def describe(self) -> str:
        return f"graph_dir={str(self.graph_dir)!r}, live records"

    def new_staging(self) -> Path:
        # Its working_dir holds no graph files; it is still where LightRAG keeps its local
        # state, and a folder of the same file system is needed.
        return new_staging_folder(self.working_dir)

    async def stage(self, staging: Path, progress: Optional[ProgressCallback] = None) -> Any:
        from .records import pg_snapshot

        await _live.flush_storages(self.rag)
        async with self._reading_records():
            view = await pg_snapshot.open(self.rag)
        if view is not None:
            return view
        return await self._read_records(progress)

    async def finish_stage(self, staging: Path, held: Any,
                           progress: Optional[ProgressCallback] = None) -> Optional[dict[str, Any]]:
        from .records import pg_snapshot, summary

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

    async def release_unfinished(self, held: Any) -> None:
        from .records.pg_snapshot import View

        if isinstance(held, View):
            await held.close()

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
                f"reading the records of the graph in {self.identity} failed ({type(error).__name__}: {error}); "
                "nothing was committed; retry when its storages answer"
            ) from error

    async def restore(self, snapshots: GraphSnapshots, snapshot: BackupSnapshot, *, safety_snapshot: bool,
                      progress: Optional[ProgressCallback]) -> None:
        await self.restore_records(snapshots, snapshot, safety_snapshot=safety_snapshot, progress=progress)

    async def restore_held(self, snapshots: GraphSnapshots, snapshot: BackupSnapshot) -> None:
        from .records import restore as records_restore

        scratch = self.new_staging()
        try:
            records, _ = await records_restore.unpacked(snapshots, snapshot, scratch, self.rag, None)
            await records_restore.load_into(records, self.rag, None, snapshot.snapshot_id, snapshot.snapshot_id)
        finally:
            remove_staging_folder(scratch)

    @contextlib.asynccontextmanager
    async def consistent_view(self) -> AsyncIterator[Path]:
        """The records laid out as LightRAG's file storages: what the folder checks read."""
        from .records import files, load

        async with self.staged("validate") as (staging, _):
            view = self.new_staging()
            try:
                await files.to_file_storages(load.Records(staging), view)
                yield view
            finally:
                remove_staging_folder(view)


def _graph_file_names(folder: Path) -> list[str]:
    from ._native import is_graph_file

    return sorted(p.name for p in folder.iterdir() if p.is_file() and is_graph_file(p.name))


def _copy_graph_files(source: Path, target: Path) -> None:
    import shutil

    for name in _graph_file_names(source):
        shutil.copy2(source / name, target / name)


def source_for(working_dir: "str | os.PathLike[str] | None", workspace: str = "", *, rag: Any = None,
               busy_timeout: float = 30.0) -> GraphSource:
    """The source of a graph: a live instance ``rag`` (on file storages or databases), else
    the folder ``working_dir`` (plus ``workspace``)."""
    if rag is None:
        return FolderSource(working_dir, workspace, busy_timeout=busy_timeout)
    if _live.uses_file_storages(rag):
        return LiveFilesSource(rag, busy_timeout=busy_timeout)
    return LiveRecordsSource(rag, busy_timeout=busy_timeout)


__all__ = ["FolderSource", "GraphRecords", "GraphSource", "LiveFilesSource", "LiveRecordsSource", "LiveSource", "source_for"]
