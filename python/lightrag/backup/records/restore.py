"""Restoring any snapshot into any backend, through records.

A database-backed snapshot holds records; a file snapshot holds LightRAG's files, which are
read into records by LightRAG's own file storages. Either is then written into the target: a
live instance (this graph's own, with a ``pre-restore`` safety snapshot of what it held, or
another one), a :class:`StorageConfig` opened here, or a folder as file storages. Every
chunk is checked and every record read before the target is touched.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional, Protocol

from .. import staging
from ..errors import InvalidInputError, RestoreIncompleteError
from . import files, layout, load
from .target import StorageConfig, file_graph_dimension, opened


class Snapshots(Protocol):
    """What a records restore needs of a graph's snapshots (a
    :class:`~lightrag.backup.snapshots.GraphSnapshots`): a snapshot's files unpacked into a
    new folder, with the engine's outcome."""

    async def aunpack(self, snapshot_id: str, folder: Path, progress: Any = None) -> dict[str, Any]: ...


def is_rag(value: Any) -> bool:
    return hasattr(value, "chunk_entity_relation_graph") and hasattr(value, "doc_status")


def is_records_snapshot(snapshot: Any) -> bool:
    """Whether a snapshot holds records (a database-backed graph) rather than LightRAG's files."""
    return any(f.path == layout.MANIFEST for f in snapshot.files)


async def unpacked(snapshots: Snapshots, snapshot: Any, scratch: Path, into: Any,
                    progress: Any) -> "tuple[load.Records, dict[str, Any]]":
    """The snapshot restored into ``scratch`` and read as records, with the outcome so far."""
    engine = await snapshots.aunpack(snapshot.snapshot_id, scratch / "snapshot", progress)
    records = await _records_of(scratch / "snapshot", scratch, into)
    return records, {"snapshot_id": snapshot.snapshot_id, "records_status": records.manifest.get("status"),
                     # The engine's restore (into the scratch folder) forgot the graph's
                     # safety snapshots past their week, as every restore does.
                     "expired_safety_snapshots": engine.get("expired_safety_snapshots") or []}


async def readable(snapshots: Snapshots, snapshot: Any, scratch: Path, into: Any,
                   progress: Any) -> "tuple[Any, dict[str, Any]]":
    """The snapshot restored into ``scratch`` and read as records for a partial restore (a
    document restore reads a few records of each store): a records snapshot as
    :func:`unpacked` reads it, a file snapshot's files parsed directly
    (:mod:`.file_graph`, off the event loop) unless their vector layout needs LightRAG's
    storages to read."""
    import asyncio

    from . import file_graph

    import time

    started = time.perf_counter()
    engine = await snapshots.aunpack(snapshot.snapshot_id, scratch / "snapshot", progress)
    unpacked_at = time.perf_counter()
    restored = scratch / "snapshot"
    if layout.is_records_folder(restored) or not file_graph.readable(restored):
        records: Any = await _records_of(restored, scratch, into)
    else:
        dim = getattr(getattr(into, "embedding_func", None), "embedding_dim", None)
        records = await asyncio.to_thread(file_graph.FileGraphRecords, restored, dim)
    timings = {"unpack": round((unpacked_at - started) * 1000, 1),
               "read": round((time.perf_counter() - unpacked_at) * 1000, 1)}
    return records, {"snapshot_id": snapshot.snapshot_id, "records_status": records.manifest.get("status"),
                     "expired_safety_snapshots": engine.get("expired_safety_snapshots") or [],
                     "timings_ms": timings}


async def elsewhere(
    snapshots: Snapshots,
    snapshot: Any,
    *,
    target_dir: Any,
    into: Any,
    replace: bool,
    progress: Any,
    scratch: Path,
    busy_timeout: float,
) -> dict[str, Any]:
    """Restore a snapshot into a target that is not the graph's own source: a folder as
    LightRAG's file storages (``target_dir``), another live instance or a
    :class:`StorageConfig` (``into``). A target holding a graph is refused unless ``replace``.
    ``scratch`` (a new staging folder) is where the snapshot is unpacked; it is removed."""
    if into is not None and not (is_rag(into) or isinstance(into, StorageConfig)):
        staging.remove(scratch)
        raise InvalidInputError("into= takes a LightRAG instance or a lightrag.backup.records.StorageConfig")
    try:
        records, outcome = await unpacked(snapshots, snapshot, scratch, into, progress)
        if target_dir is not None:
            target = Path(target_dir).expanduser().absolute()
            if not replace and has_graph_files(target):
                raise InvalidInputError(
                    f"{target} already holds a LightRAG graph; pass replace=True to overwrite it, or another folder"
                )
            outcome.update(target=str(target), restored=await files.to_file_storages(records, target, progress=progress))
            return outcome
        if is_rag(into):
            from .. import _live

            async with _live.pipeline_reservation(into, kind="restore", timeout=busy_timeout):
                await _refuse_nonempty(into, replace)
                outcome.update(target="instance", restored=await load_into(records, into, progress, None, snapshot.snapshot_id))
            return outcome
        async with opened(
            into, embedding_dim=records.dim, model_name=records.manifest["embedding"].get("model_name")
        ) as rag:
            await _refuse_nonempty(rag, replace)
            outcome.update(target=into.describe(), restored=await load_into(records, rag, progress, None, snapshot.snapshot_id))
        return outcome
    finally:
        staging.remove(scratch)


def marker_path(rag: Any) -> Path:
    """Where a records restore into ``rag``'s graph marks itself as under way: beside the
    graph in its working_dir, so every process of that graph on this host sees it."""
    workspace = getattr(rag, "workspace", "") or "_"
    return Path(rag.working_dir) / f".lightrag-backup-restoring-{workspace}.json"


def interrupted_restore(rag: Any) -> Optional[dict[str, Any]]:
    """The marker of a records restore into ``rag`` that did not finish (killed, failed), or
    ``None``: until a restore completes, the graph holds part of a snapshot."""
    path = marker_path(rag)
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError:
        marker = {}
    return marker if isinstance(marker, dict) else {}


def check_not_interrupted(rag: Any) -> None:
    """Refuse to back up a graph a restore left half-written: that snapshot would become its
    head (and replicate) while it holds part of another one."""
    marker = interrupted_restore(rag)
    if marker is not None:
        raise RestoreIncompleteError(
            f"a restore of snapshot {marker.get('snapshot_id', '?')} into this graph (started "
            f"{marker.get('started_at', '?')}) did not finish, so it holds part of that snapshot; run the same "
            f"restore again to complete it (marker {marker_path(rag)})"
        )


async def load_into(
    records: "load.Records", rag: Any, progress: Any, safety_id: Optional[str], snapshot_id: str
) -> dict[str, int]:
    from datetime import datetime, timezone

    from .target import storage_config_of

    marker = marker_path(rag)
    marker.parent.mkdir(parents=True, exist_ok=True)
    note = {
        "snapshot_id": snapshot_id,
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "target": storage_config_of(rag).describe(),
        "safety_snapshot": safety_id,
    }
    # Written (and synced) before the first record is dropped; removed when the last is written.
    with open(marker, "w", encoding="utf-8") as out:
        json.dump(note, out)
        out.flush()
        os.fsync(out.fileno())
    try:
        counts = await load.load(records, rag, progress=progress)
    except InvalidInputError:
        marker.unlink(missing_ok=True)  # refused before anything was dropped
        raise
    except load.RestoreInterrupted as interrupted:
        back = (
            f"the state it replaced is safety snapshot {safety_id}: restore that, or retry this restore"
            if safety_id
            else "retry this restore (no safety snapshot was taken)"
        )
        raise RestoreIncompleteError(
            f"the restore failed while writing the records ({interrupted}); the target "
            f"({storage_config_of(rag).describe()}) had its old records dropped and holds part of the snapshot: {back}"
        ) from interrupted.error
    marker.unlink(missing_ok=True)
    from . import mapping, native

    lost = mapping.not_stored({name: native.backend_of(getattr(rag, name)) for name in records.kv}, records.kv)
    if lost:
        import logging

        logging.getLogger("lightrag.backup").warning(
            "restore of %s: the target cannot store %s", snapshot_id,
            ", ".join(f"{field} ({count} records)" for field, count in lost.items()),
        )
        counts = {**counts, "not_stored": lost}  # type: ignore[dict-item]
    return counts



async def _records_of(restored: Path, scratch: Path, into: Any) -> "load.Records":
    """The restored snapshot as records: itself for a database-backed snapshot, else its
    files read by LightRAG's file storages."""
    if layout.is_records_folder(restored):
        return load.Records(restored)
    dim, model = file_graph_embedding(restored, into)
    folder = scratch / "records"
    await files.from_file_storages(restored, folder, embedding_dim=dim, model_name=model)
    return load.Records(folder)


def file_graph_embedding(folder: Path, into: Any) -> tuple[int, Optional[str]]:
    """The embedding dimension of a file graph (NanoVectorDB records it in each file) and
    the model name the target names its tables after."""
    model: Optional[str] = None
    dim: Optional[int] = None
    if is_rag(into):
        model = getattr(into.embedding_func, "model_name", None)
        dim = getattr(into.embedding_func, "embedding_dim", None)
    elif isinstance(into, StorageConfig):
        model, dim = into.embedding_model, into.embedding_dim
    recorded = file_graph_dimension(folder)
    if recorded is not None:
        if dim is not None and dim != recorded:
            raise InvalidInputError(f"the snapshot's vectors have {recorded} dimensions; the target embeds with {dim}")
        return recorded, model
    if dim is None:
        raise InvalidInputError("the snapshot's file graph records no embedding dimension; set StorageConfig.embedding_dim")
    return int(dim), model


def has_graph_files(folder: Path) -> bool:
    from .. import _native

    return folder.is_dir() and any(p.is_file() and _native.is_graph_file(p.name) for p in folder.iterdir())


async def _refuse_nonempty(rag: Any, replace: bool) -> None:
    if replace or interrupted_restore(rag) is not None:
        return  # asked to, or what it holds is part of an interrupted restore
    for name in layout.KV_STORES + (layout.DOC_STATUS,):
        if not await getattr(rag, name).is_empty():
            break
    else:
        if not await rag.chunk_entity_relation_graph.get_all_labels():
            return
    from .target import storage_config_of

    raise InvalidInputError(
        f"the target ({storage_config_of(rag).describe()}) already holds a graph; pass replace=True to replace it"
    )
