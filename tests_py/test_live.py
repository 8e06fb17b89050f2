"""A live LightRAG instance: consistent online snapshots, and restores its queries see at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from helpers import observe

from lightrag.backup import GraphBackup
from lightrag.backup.errors import GraphBusyError
from lightrag.backup.offline_graph import documents, graph_files


async def test_restore_into_a_live_instance_is_seen_without_restart(rag, storage):
    backup = GraphBackup.from_rag("live", rag, storage)
    snapshot = await backup.acreate_snapshot("before")
    files_then = graph_files(rag.working_dir)
    observed_then = await observe(rag)

    await rag.ainsert(documents(3, seed=9, start=200))
    changed = await observe(rag)
    assert changed["nodes"] != observed_then["nodes"]

    assert await backup.arestore_snapshot(snapshot.snapshot_id) is True
    assert graph_files(rag.working_dir) == files_then
    # Same instance, no restart: queries and the graph answer from the restored state.
    assert await observe(rag) == observed_then
    # And it keeps working: a new insert lands on top of the restored graph.
    await rag.ainsert(documents(1, seed=10, start=300))
    assert len((await observe(rag))["nodes"]) > len(observed_then["nodes"])


async def test_a_live_snapshot_waits_for_a_running_insert_then_fails_clearly(rag, storage):
    from lightrag.kg.shared_storage import get_namespace_data, get_namespace_lock

    status = await get_namespace_data("pipeline_status", workspace=rag.workspace)
    lock = get_namespace_lock("pipeline_status", workspace=rag.workspace)
    async with lock:
        status.update({"busy": True, "busy_owner": "someone-inserting"})
    backup = GraphBackup.from_rag("busy", rag, storage, busy_timeout=0.3)
    try:
        with pytest.raises(GraphBusyError, match="stayed busy"):
            await backup.acreate_snapshot()
        assert backup.list_snapshots() == []

        # When the insert finishes while the snapshot waits, the snapshot goes ahead.
        async def finish_insert() -> None:
            await asyncio.sleep(0.2)
            async with lock:
                status.update({"busy": False, "busy_owner": None})

        backup.busy_timeout = 5.0
        _, snapshot = await asyncio.gather(finish_insert(), backup.acreate_snapshot())
        assert snapshot.metadata["capture"] == "live"
    finally:
        async with lock:
            status.update({"busy": False, "busy_owner": None})
    # The reservation was released: LightRAG can insert again.
    assert not status.get("busy")
    await rag.ainsert(documents(1, seed=11, start=400))


async def test_live_snapshot_captures_flushed_state_and_leaves_no_staging(rag, storage, tmp_path: Path):
    backup = GraphBackup.from_rag("flush", rag, storage)
    snapshot = await backup.acreate_snapshot()
    assert not [p for p in Path(rag.working_dir).iterdir() if p.name.startswith(".lightrag-backup")]
    target = tmp_path / "copy"
    await backup.arestore_snapshot(snapshot.snapshot_id, target_dir=target)
    assert graph_files(target) == graph_files(rag.working_dir)
    report = await backup.averify_snapshot(snapshot.snapshot_id)
    assert report.ok, str(report)
