"""Bad input raises a typed exception with a clear message and changes nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from lightrag.backup import BackupManager, GraphBackup
from lightrag.backup.errors import (
    BackupError,
    GraphDirNotFoundError,
    GraphNotFoundError,
    IntegrityError,
    InvalidInputError,
    RepositoryNotFoundError,
    SnapshotNotFoundError,
)
from lightrag.backup.offline_graph import build_graph, graph_files
from lightrag.backup.storage import LocalBackupStorage


@pytest.fixture
def graph_dir(tmp_path: Path) -> Path:
    async def build() -> None:
        rag = await build_graph(tmp_path / "wd", 2)
        await rag.finalize_storages()

    asyncio.run(build())
    return tmp_path / "wd"


def _repo_files(storage: LocalBackupStorage) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(Path(storage.location).rglob("*")) if p.is_file()}


def test_unknown_ids_and_folders(graph_dir: Path, storage, tmp_path: Path):
    backup = GraphBackup("g1", storage, working_dir=graph_dir)
    snapshot = backup.create_snapshot()
    before = _repo_files(storage)

    with pytest.raises(SnapshotNotFoundError, match="not found"):
        backup.get_snapshot("0123abcd-0000")
    with pytest.raises(SnapshotNotFoundError, match="belongs to graph \"g1\""):
        GraphBackup("g2", storage, working_dir=graph_dir).restore_snapshot(snapshot.snapshot_id)
    with pytest.raises(SnapshotNotFoundError):
        backup.delete_snapshot("../../config")
    with pytest.raises(KeyError):  # not-found errors are KeyErrors too
        backup.get_snapshot("ffffffff")
    with pytest.raises(GraphDirNotFoundError, match="does not exist"):
        GraphBackup("g1", storage, working_dir=tmp_path / "nope").create_snapshot()
    (tmp_path / "empty").mkdir()
    with pytest.raises(GraphDirNotFoundError, match="holds no LightRAG graph files"):
        GraphBackup("g1", storage, working_dir=tmp_path / "empty").create_snapshot()
    with pytest.raises(InvalidInputError):
        GraphBackup("../etc", storage, working_dir=graph_dir)
    with pytest.raises(InvalidInputError):
        GraphBackup("g1", storage, working_dir=graph_dir, workspace="../x")
    with pytest.raises(InvalidInputError):
        backup.create_snapshot(tags=["bad,tag"])
    with pytest.raises(InvalidInputError):
        backup.create_snapshot(metadata={"x": object()})
    with pytest.raises(InvalidInputError):
        backup.verify_snapshot(snapshot.snapshot_id, read_data_subset=1.5)
    with pytest.raises(RepositoryNotFoundError):
        LocalBackupStorage(tmp_path / "empty", create=False)
    assert _repo_files(storage) == before, "failed calls changed nothing"
    assert backup.list_snapshots() == [snapshot]


def test_a_flipped_byte_is_found_by_verify_and_refused_by_restore(graph_dir: Path, storage, tmp_path: Path):
    backup = GraphBackup("g1", storage, working_dir=graph_dir)
    snapshot = backup.create_snapshot()
    assert backup.verify_snapshot(snapshot.snapshot_id).ok

    packs = sorted(Path(storage.location, "data").rglob("*"), key=lambda p: p.stat().st_size)
    pack = [p for p in packs if p.is_file()][-1]
    data = bytearray(pack.read_bytes())
    data[len(data) // 3] ^= 0xFF
    pack.write_bytes(bytes(data))

    report = backup.verify_snapshot(snapshot.snapshot_id)
    assert not report.ok and "DAMAGED" in str(report)
    assert backup.verify_snapshot(snapshot.snapshot_id, read_data=False).ok, "structure alone looks fine"

    target = tmp_path / "target"
    target.mkdir()
    (target / "kv_store_full_docs.json").write_text('{"keep": "me"}')
    before = graph_files(target)
    with pytest.raises(IntegrityError, match="untouched"):
        backup.restore_snapshot(snapshot.snapshot_id, target_dir=target)
    assert graph_files(target) == before
    assert sorted(p.name for p in target.iterdir()) == ["kv_store_full_docs.json"]


def test_errors_are_one_tree_and_say_if_retrying_helps(graph_dir: Path, storage):
    with pytest.raises(BackupError) as caught:
        GraphBackup("g1", storage, working_dir=graph_dir).get_snapshot("abcdef12")
    assert caught.value.retryable is False
    assert caught.value.kind == "snapshot_not_found"


def test_manager_registers_lists_and_expires(graph_dir: Path, storage, tmp_path: Path):
    manager = BackupManager(storage)
    assert manager.register_graph("g1", graph_dir) is True
    assert manager.register_graph("g1", graph_dir) is False
    assert manager.register_graph("g2", graph_dir) is True
    with pytest.raises(GraphNotFoundError, match="not registered"):
        manager.get_graph("nope")
    g1, g2 = manager.get_graph("g1"), manager.get_graph("g2")
    for _ in range(3):
        g1.create_snapshot()
    g2.create_snapshot()
    all_snapshots = manager.get_all_snapshots()
    assert {k: len(v) for k, v in all_snapshots.items()} == {"g1": 3, "g2": 1}
    assert asyncio.run(manager.aget_all_snapshots()) == all_snapshots

    assert manager.cleanup_old_backups(retention_days=30) == 0
    # Everything is older than 0 days, but each graph keeps its newest snapshot.
    assert manager.cleanup_old_backups(retention_days=0) == 2
    remaining = manager.get_all_snapshots()
    assert remaining["g1"] == all_snapshots["g1"][-1:] and remaining["g2"] == all_snapshots["g2"]
    with pytest.raises(InvalidInputError):
        manager.cleanup_old_backups(-1)
    with pytest.raises(InvalidInputError):
        manager.cleanup_old_backups("7")  # type: ignore[arg-type]
