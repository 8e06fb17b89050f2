"""Snapshot a real graph, change it, snapshot again, restore each: files and answers match."""

from __future__ import annotations

from pathlib import Path

from helpers import observe, observe_folder

from lightrag.backup import BackupStatus, GraphBackup
from lightrag.backup.offline_graph import documents, entity_names, graph_files


async def test_each_snapshot_restores_byte_identical_with_the_same_answers(rag, storage, tmp_path: Path):
    backup = GraphBackup.from_rag("docs", rag, storage)
    graph_dir = Path(rag.working_dir)
    states = []

    async def take(description: str) -> None:
        snapshot = await backup.acreate_snapshot(description, ["test"])
        states.append((snapshot, graph_files(graph_dir), await observe(rag)))

    await take("initial")
    await rag.ainsert(documents(2, seed=5, start=50))
    await take("after insert")
    names = entity_names(graph_dir)
    await rag.adelete_by_entity(names[len(names) // 2])
    await take("after entity delete")
    edge = (await rag.get_knowledge_graph("*", max_depth=2)).edges[0]
    await rag.aedit_relation(edge.source, edge.target, {"description": "edited relation"})
    await take("after relation edit")

    hashes = [snapshot.data_hash for snapshot, _, _ in states]
    assert len(set(hashes)) == 4, "every change gives a new data hash"
    assert [s.snapshot_id for s in backup.list_snapshots()] == [s.snapshot_id for s, _, _ in states]

    restore_root = tmp_path / "checks"
    for number, (snapshot, files, observed) in enumerate(states):
        workspace = f"check{number}"
        assert await backup.arestore_snapshot(snapshot.snapshot_id, target_dir=restore_root / workspace)
        assert graph_files(restore_root / workspace) == files, snapshot.description
        restored = await observe_folder(restore_root, workspace)
        # The graph is the live one's ...
        assert (restored["nodes"], restored["edges"]) == (observed["nodes"], observed["edges"]), snapshot.description
        # ... and it answers as the original files do when LightRAG opens them. (Not as the live
        # instance: its in-memory graph lists a node's edges in the order they were added, a
        # reloaded one in file order, and local-mode context follows that order among ties.)
        original = tmp_path / "originals" / f"orig{number}"
        original.mkdir(parents=True)
        for name, data in files.items():
            (original / name).write_bytes(data)
        assert restored == await observe_folder(tmp_path / "originals", f"orig{number}"), snapshot.description


def test_snapshot_metadata_describes_the_graph(tmp_path: Path, storage):
    import asyncio

    from lightrag.backup.offline_graph import build_graph

    async def build() -> None:
        rag = await build_graph(tmp_path / "wd", 3, workspace="tenant_a")
        await rag.finalize_storages()

    asyncio.run(build())
    backup = GraphBackup("tenant-a", storage, working_dir=tmp_path / "wd", workspace="tenant_a")
    snapshot = backup.create_snapshot("nightly", ["daily"])
    assert snapshot.status is BackupStatus.COMPLETED
    assert snapshot.timestamp.tzinfo is not None and snapshot.timestamp.utcoffset().total_seconds() == 0
    assert len(snapshot.data_hash) == 64 and int(snapshot.data_hash, 16) >= 0
    meta = snapshot.metadata
    assert meta["workspace"] == "tenant_a"
    assert meta["lightrag_version"]
    assert meta["documents"] == 3
    assert meta["entities"] == len(entity_names(tmp_path / "wd" / "tenant_a")) > 0
    assert meta["relations"] > 0 and meta["chunks"] >= 3
    assert meta["file_count"] == 12 and "vdb_entities.json" in meta["files"]
    encodings = {f.path: f.encoding for f in snapshot.files}
    assert {name for name, encoding in encodings.items() if encoding == "nanovdb-matrix"} == {
        "vdb_entities.json", "vdb_relationships.json", "vdb_chunks.json"
    }, "vector files are stored with their matrix decoded"
    assert snapshot.size_bytes == sum(len(b) for b in graph_files(tmp_path / "wd" / "tenant_a").values())
    assert snapshot.checkpoint_path.exists()
    assert backup.get_snapshot(snapshot.snapshot_id[:8]) == snapshot

    again = backup.create_snapshot()
    assert again.data_hash == snapshot.data_hash and again.stored_bytes == 0, "unchanged data is not stored twice"
    stats = backup.get_backup_stats()
    assert stats["snapshot_count"] == 2
    assert stats["dedup_ratio"] >= 2.0
    assert stats["space_saving"] > 0.7


def test_restore_into_the_graph_folder_keeps_a_safety_snapshot(tmp_path: Path, storage):
    import asyncio

    from lightrag.backup.offline_graph import build_graph

    async def build(count: int) -> None:
        rag = await build_graph(tmp_path / "wd", count)
        await rag.finalize_storages()

    asyncio.run(build(2))
    backup = GraphBackup("g", storage, working_dir=tmp_path / "wd")
    first = backup.create_snapshot()
    first_files = graph_files(tmp_path / "wd")
    asyncio.run(build(4))  # the same docs plus two more: a changed graph
    changed_files = graph_files(tmp_path / "wd")
    assert changed_files != first_files

    assert backup.restore_snapshot(first.snapshot_id) is True
    assert graph_files(tmp_path / "wd") == first_files
    safety = [s for s in backup.list_snapshots() if "pre-restore" in s.tags]
    assert len(safety) == 1
    backup.restore_snapshot(safety[0].snapshot_id)
    assert graph_files(tmp_path / "wd") == changed_files
