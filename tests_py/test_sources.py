"""Every kind of graph source through the same checks (``lightrag.backup.sources``): a folder
read offline, a live instance on LightRAG's file storages and a live instance on a database
(Redis) each capture a snapshot, say who they are, read their records, give a consistent view
of their files, and restore a snapshot into themselves keeping what they held. A new kind of
source is added to ``KINDS`` and passes the same test.
"""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from helpers import forget_shared_data, server_env

from lightrag.backup import GraphBackup, _native
from lightrag.backup.errors import InvalidInputError
from lightrag.backup.offline_graph import build_graph, documents, new_rag
from lightrag.backup.snapshots import GraphSnapshots
from lightrag.backup.sources import FolderSource, GraphSource, LiveFilesSource, LiveRecordsSource, source_for

REDIS = {"kv_storage": "RedisKVStorage", "doc_status_storage": "RedisDocStatusStorage"}


@contextlib.contextmanager
def _redis_env() -> Any:
    from lightrag.backup.records.target import _environment

    with _environment({"REDIS_URI": server_env("LRB_TEST_REDIS_URI")}):
        yield


@contextlib.asynccontextmanager
async def source_of_kind(kind: str, folder: Path) -> AsyncIterator[GraphSource]:
    """A graph of three documents, as a source of ``kind``."""
    forget_shared_data()
    if kind == "folder":
        rag = await build_graph(folder, 3)
        await rag.finalize_storages()
        forget_shared_data()
        yield source_for(folder)
        return
    if kind == "live files":
        rag = await build_graph(folder, 3)
    else:
        with _redis_env():
            rag = await build_graph(folder, 3, workspace="s" + uuid.uuid4().hex[:10], storages=REDIS)
    try:
        yield source_for(None, rag=rag)
    finally:
        await rag.finalize_storages()
        forget_shared_data()


async def change(source: GraphSource) -> None:
    """One more document, inserted by LightRAG into the graph the source reads."""
    if source.rag is not None:
        await source.rag.ainsert(documents(1, seed=9, start=50))
        return
    forget_shared_data()
    rag = await new_rag(source.working_dir)
    await rag.ainsert(documents(1, seed=9, start=50))
    await rag.finalize_storages()
    forget_shared_data()


async def digest(source: GraphSource) -> str:
    async with source.current_records() as records:
        return records.digest()


KINDS = [
    pytest.param("folder", FolderSource, "offline", id="folder"),
    pytest.param("live files", LiveFilesSource, "live", id="live-files"),
    pytest.param("live records", LiveRecordsSource, "records", id="live-records", marks=pytest.mark.databases),
]


@pytest.mark.parametrize("kind, cls, mode", KINDS)
async def test_every_kind_of_source_captures_reads_and_restores_itself_the_same_way(kind, cls, mode, tmp_path, storage):
    async with source_of_kind(kind, tmp_path / "graph") as source:
        assert type(source) is cls
        snapshots = GraphSnapshots("g", storage)
        async with source.capture() as capture:
            first = await snapshots.asnapshot(capture, "first")
        assert first.metadata["capture"] == mode
        assert first.metadata["working_dir"] == source.identity
        assert ("live_pause_ms" in first.metadata) == source.live
        then = await digest(source)

        async with source.consistent_view() as view:
            held = sorted(p.name for p in view.iterdir() if _native.is_graph_file(p.name))
        assert any(name.startswith("vdb_") for name in held), held

        await change(source)
        changed = await digest(source)
        assert changed != then, "the change must show in the source's records"

        await source.restore(snapshots, first, safety_snapshot=True, progress=None)
        assert await digest(source) == then
        safety = snapshots.last_restore["safety_snapshot"]
        assert safety, snapshots.last_restore
        kept = await snapshots.aget_snapshot(safety["snapshot_id"])
        assert "pre-restore" in kept.tags

        # What the restore replaced comes back from its safety snapshot.
        await source.restore(snapshots, kept, safety_snapshot=False, progress=None)
        assert await digest(source) == changed


async def test_a_graph_known_only_by_its_snapshots_lists_and_restores_elsewhere_but_takes_no_snapshot(tmp_path, storage):
    async with source_of_kind("folder", tmp_path / "graph") as source:
        made = GraphBackup.of(GraphSnapshots("g", storage), source).create_snapshot()
    only = GraphBackup.of(GraphSnapshots("g", storage))
    assert [s.snapshot_id for s in only.list_snapshots()] == [made.snapshot_id]
    with pytest.raises(InvalidInputError, match="known here only by its snapshots"):
        only.create_snapshot()
    with pytest.raises(InvalidInputError, match="known here only by its snapshots"):
        only.restore_snapshot(made.snapshot_id)
    assert only.restore_snapshot(made.snapshot_id, tmp_path / "elsewhere")
    assert sorted(p.name for p in (tmp_path / "elsewhere").iterdir()) == sorted(
        p.name for p in source.graph_dir.iterdir() if _native.is_graph_file(p.name))
