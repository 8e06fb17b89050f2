"""Working with a live ``LightRAG`` instance from inside its process.

LightRAG's file storages keep data in memory and write whole files by atomic rename at the end
of each insert batch, so the files agree with each other only while the pipeline is idle and
flushed. To capture or replace a consistent state we reserve the workspace's pipeline the way
LightRAG's own document routes do (``busy``, plus ``destructive_busy`` for a restore), flush
every storage, do the file work, and release, handing the slot to a processing run when documents
were queued meanwhile (as LightRAG's own exits do), so no enqueued document is stranded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Optional

if TYPE_CHECKING:
    import asyncio

from .errors import GraphBusyError, InvalidInputError

logger = logging.getLogger("lightrag.backup")

_RESERVE_POLL_SECONDS = 0.05


def graph_dir_of(rag: Any) -> Path:
    """The folder holding this instance's graph files (``working_dir/workspace``)."""
    working_dir = getattr(rag, "working_dir", None)
    if not working_dir:
        raise InvalidInputError("this LightRAG instance has no working_dir")
    workspace = getattr(rag, "workspace", "") or ""
    return Path(working_dir, workspace) if workspace else Path(working_dir)


def _is_file_storage(storage: Any) -> bool:
    return any(
        hasattr(storage, attribute)
        for attribute in ("_file_name", "_client_file_name", "_graphml_xml_file", "_faiss_index_file")
    )


def uses_file_storages(rag: Any) -> bool:
    """Whether every storage of the instance is one of LightRAG's file storages (its graph is
    the files of its working_dir); otherwise its records are captured through the storages."""
    return all(_is_file_storage(storage) for storage in _storages(rag))


def check_file_storages(rag: Any) -> None:
    """Refuse instances whose storages are not all LightRAG's file storages (for the file
    work: hard-links, file swaps, reloads)."""
    for storage in _storages(rag):
        if not _is_file_storage(storage):
            raise InvalidInputError(
                f"{type(storage).__name__} ({getattr(storage, 'namespace', '?')}) keeps its data outside "
                "the working_dir; this needs LightRAG's file storages (JsonKVStorage, "
                "NanoVectorDBStorage, NetworkXStorage, FaissVectorDBStorage)"
            )


def _storages(rag: Any) -> list[Any]:
    index_storages = getattr(rag, "_index_storages", None)
    if callable(index_storages):
        return list(index_storages())
    names = (
        "full_docs doc_status text_chunks full_entities full_relations entity_chunks "
        "relation_chunks llm_response_cache entities_vdb relationships_vdb chunks_vdb "
        "chunk_entity_relation_graph"
    ).split()
    return [s for s in (getattr(rag, n, None) for n in names) if s is not None]


def _needs_flush(storage: Any) -> bool:
    """Whether a storage holds changes its files do not have yet.

    Flushing a clean storage would rewrite its whole file (NetworkX and NanoVectorDB write
    unconditionally), which makes the pause grow with the graph; so only dirty ones are flushed.
    """
    if hasattr(storage, "_pending_upserts"):  # NanoVectorDB: buffered upserts/deletes, unsaved rows
        return bool(
            storage._pending_upserts
            or getattr(storage, "_pending_deletes", None)
            or getattr(storage, "_client_dirty", False)
        )
    if hasattr(storage, "_graphml_xml_file"):
        # NetworkX has no dirty bit; LightRAG writes the GraphML at the end of every insert,
        # delete and edit, so an idle pipeline means the file is current.
        return False
    # JSON KV / doc status check their own dirty flag and return at once when clean; any other
    # storage is flushed to be safe.
    return True


async def flush_storages(rag: Any) -> None:
    """Write every storage's unsaved in-memory state to its files."""
    for storage in _storages(rag):
        if _needs_flush(storage):
            await storage.index_done_callback()


def _enqueue_lock_namespace() -> "str | None":
    """The namespace of LightRAG's lock around an enqueue's writes (LightRAG 1.5.7 and later:
    ``enqueue_serialize``), or ``None`` for a LightRAG without one."""
    try:
        from lightrag.constants import ENQUEUE_SERIALIZE_LOCK_NAMESPACE
    except ImportError:
        return None
    return str(ENQUEUE_SERIALIZE_LOCK_NAMESPACE)


@contextlib.asynccontextmanager
async def pipeline_reservation(rag: Any, *, kind: str, timeout: float,
                               job_name: Optional[str] = None) -> AsyncIterator[None]:
    """Hold the workspace's pipeline for the block.

    A restore replaces the graph: it holds ``busy`` + ``destructive_busy``, as LightRAG's own
    destructive routes do, and LightRAG refuses writers (409) meanwhile. Anything that only
    reads (a snapshot, a validation, a recovery point) never refuses a writer: it holds ``busy``
    alone, so no processing run starts and LightRAG accepts new documents and queues them,
    and it holds LightRAG's enqueue lock (the lock each enqueue writes its documents under)
    for the block, so an enqueue arriving meanwhile waits until the block ends: the state read
    holds every document wholly enqueued, or not at all. (A LightRAG without that lock gets
    the destructive hold.)

    Waits up to ``timeout`` seconds while an insert, scan or enqueue is running, then raises
    :class:`GraphBusyError`. When the instance has no pipeline status (storages used without
    ``initialize_pipeline_status``), there is nothing to coordinate with and the block runs
    directly.
    """
    from lightrag.exceptions import PipelineNotInitializedError
    from lightrag.kg.shared_storage import (
        acquire_reservation,
        get_namespace_data,
        get_namespace_lock,
    )

    workspace = getattr(rag, "workspace", None)
    try:
        status = await get_namespace_data("pipeline_status", workspace=workspace)
    except PipelineNotInitializedError:
        yield
        return
    lock = get_namespace_lock("pipeline_status", workspace=workspace)
    token = f"lightrag-backup-{kind}-{uuid.uuid4().hex}"
    enqueue_namespace = None if kind.startswith("restore") else _enqueue_lock_namespace()
    flags: dict[str, Any] = {"busy": True, "operation_record": {"kind": f"backup_{kind}"}}
    if job_name is not None:
        flags["job_name"] = job_name  # LightRAG's own deletions join a hold named "Deleting ... documents"
    if enqueue_namespace is None:
        flags["destructive_busy"] = True
    deadline = time.monotonic() + max(timeout, 0.0)
    acquired = False
    try:
        while True:
            result = await acquire_reservation(
                status,
                lock,
                owner_key="busy_owner",
                owner=token,
                owner_kind=f"backup_{kind}",
                flags=flags,
                reject_when=(
                    ("busy", "an insert or another operation is running"),
                    ("scanning", "a document scan is running"),
                    ("pending_enqueues", "an upload/insert is being enqueued"),
                ),
            )
            if result.acquired:
                acquired = True
                break
            if time.monotonic() >= deadline:
                raise GraphBusyError(
                    f"LightRAG workspace {workspace or '(default)'!r} stayed busy for "
                    f"{timeout:g} s ({result.message}); retry when the insert has finished "
                    "or raise busy_timeout"
                )
            import asyncio

            await asyncio.sleep(_RESERVE_POLL_SECONDS)
        if enqueue_namespace is None:
            yield
        else:
            # Taken after the reservation and released before it: never nested inside the
            # pipeline_status lock (LightRAG's order is enqueue lock, then pipeline_status).
            async with get_namespace_lock(enqueue_namespace, workspace=workspace):
                yield
    finally:
        if acquired:
            await _release(rag, workspace, status, lock, token)


@contextlib.asynccontextmanager
async def reserve_all(rags: list[Any], *, kind: str, timeout: float) -> AsyncIterator[None]:
    """Hold the pipelines of several instances together for the block: all or none.

    Each attempt reserves every instance once, in order; when one is busy, those already held
    are released at once and the attempt repeats shortly after, until ``timeout``, so no
    instance stays paused while another finishes its insert. Raises :class:`GraphBusyError`
    naming the instance that stayed busy."""
    import asyncio

    unique = list({id(rag): rag for rag in rags}.values())
    deadline = time.monotonic() + max(timeout, 0.0)
    while True:
        stack = contextlib.AsyncExitStack()
        try:
            for rag in unique:
                await stack.enter_async_context(pipeline_reservation(rag, kind=kind, timeout=0.0))
        except GraphBusyError as error:
            await stack.aclose()
            if time.monotonic() >= deadline:
                raise GraphBusyError(
                    f"the graphs were not all idle at once within {timeout:g} s: {error}"
                ) from None
            await asyncio.sleep(_RESERVE_POLL_SECONDS)
            continue
        async with stack:
            yield
        return


async def _release(rag: Any, workspace: Any, status: Any, lock: Any, token: str) -> None:
    from lightrag.kg.shared_storage import with_reservation_lock

    try:
        from lightrag.kg.shared_storage import get_pipeline_ingress

        ingress = await get_pipeline_ingress(workspace)
    except Exception:  # noqa: BLE001 - fail toward handing off, as LightRAG does
        ingress = None

    def release_or_handoff(current: Any) -> str:
        has_work = True
        if ingress is not None:
            try:
                has_work = bool(ingress.has_work())
            except Exception:  # noqa: BLE001
                has_work = True
        current.update({"destructive_busy": False, "operation_record": None})
        if has_work:
            return "handoff"  # keep busy; the processing run releases it
        current.update({"busy": False, "busy_owner": None})
        return "released"

    def terminal_release(current: Any) -> None:
        current.update(
            {"busy": False, "destructive_busy": False, "busy_owner": None, "operation_record": None}
        )

    decision = await with_reservation_lock(
        status, lock, owner_key="busy_owner", token=token, action=release_or_handoff
    )
    if decision != "handoff":
        return

    async def drain() -> None:
        try:
            await rag.apipeline_process_enqueue_documents(_holding_busy=True, token=token)
        except Exception as error:  # noqa: BLE001
            logger.warning("processing documents queued during a backup failed: %s", error)
        finally:
            await with_reservation_lock(
                status, lock, owner_key="busy_owner", token=token, action=terminal_release
            )

    # Queued documents are processed in the background: the backup call returns now.
    import asyncio

    task = asyncio.get_running_loop().create_task(drain())
    _background.add(task)
    task.add_done_callback(_background.discard)


_background: "set[asyncio.Task[None]]" = set()


def discard_unsaved(rag: Any) -> None:
    """Drop what the storages hold in memory and have not written (a rollback replaces their
    files next): NanoVectorDB's buffered upserts and deletes and its redo logs, which a reload
    keeps to replay on top of the file. JSON KV and NetworkX storages hold none beside their
    data, which :func:`reload_storages` replaces."""
    for storage in _storages(rag):
        for buffer in ("_pending_upserts", "_pending_deletes", "_unsaved_upserts", "_unsaved_deletes"):
            held = getattr(storage, buffer, None)
            if held is not None and hasattr(held, "clear"):
                held.clear()
        if hasattr(storage, "_client_dirty"):
            storage._client_dirty = False


async def reload_storages(rag: Any) -> None:
    """Make a live instance see the files that were just restored under it.

    NanoVectorDB, NetworkX and Faiss storages reload from disk when their update flag is set;
    JSON KV and doc-status storages have no reload path, so their shared in-memory dict is
    replaced under the storage lock.
    """
    from lightrag.kg.shared_storage import set_all_update_flags
    from lightrag.utils import load_json

    for storage in _storages(rag):
        data = getattr(storage, "_data", None)
        file_name = getattr(storage, "_file_name", None)
        lock = getattr(storage, "_storage_lock", None)
        if data is not None and file_name and lock is not None:
            # Parse off the event loop: a restored KV file can be hundreds of MB.
            import asyncio

            restored = await asyncio.to_thread(load_json, file_name) if os.path.exists(file_name) else {}
            async with lock:
                data.clear()
                data.update(restored or {})
                flag = getattr(storage, "storage_updated", None)
                if flag is not None:
                    flag.value = False  # in memory == on disk now
        elif getattr(storage, "storage_updated", None) is not None:
            await set_all_update_flags(storage.namespace, workspace=storage.workspace)
            # Reloaded now, as a reader: left to the next write, the reload is logged as a
            # warning that "another process" updated the storage.
            reload = getattr(storage, "_get_client", None) or getattr(storage, "_get_graph", None)
            if callable(reload):
                await reload()
        else:
            raise InvalidInputError(
                f"storage {type(storage).__name__} ({getattr(storage, 'namespace', '?')}) is not "
                "file-based; restoring a live instance needs LightRAG's file storages"
            )
