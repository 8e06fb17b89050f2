"""The ways an operator could lose data without noticing, each reproduced and shown closed:
two graphs sharing one id, restores that lose owners and modes or guess a folder, safety
snapshots that distort retention, schedules only the catalog knew."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from lightrag.backup import BackupManager, GraphBackup
from lightrag.backup.errors import GraphSourceConflictError, IntegrityError
from lightrag.backup.offline_graph import build_graph, documents, graph_files, new_rag
from lightrag.backup.storage import LocalBackupStorage

from helpers import cli as run_cli

NOBODY = 65534


async def folder_graph(path: Path, docs: int = 2, seed: int = 0) -> Path:
    """A real graph with an empty workspace (files right in ``path``). Built in a workspace of
    its own and moved up: LightRAG shares a workspace's state between instances in a process."""
    workspace = f"w{uuid.uuid4().hex[:8]}"
    rag = await build_graph(path, docs, seed=seed, workspace=workspace)
    await rag.finalize_storages()
    for item in (path / workspace).iterdir():
        item.rename(path / item.name)
    (path / workspace).rmdir()
    return path


async def change(graph: Path, seed: int) -> None:
    # Each change in its own workspace name space: LightRAG shares a workspace's state in-process.
    scratch = graph.parent / f"scratch-{uuid.uuid4().hex[:6]}"
    shutil.copytree(graph, scratch / "ws")
    rag = await new_rag(scratch, workspace="ws")
    try:
        await rag.ainsert(documents(1, seed=seed, start=200 + seed))
    finally:
        await rag.finalize_storages()
    for name in os.listdir(scratch / "ws"):
        if (scratch / "ws" / name).is_file():
            shutil.copy2(scratch / "ws" / name, graph / name)
    shutil.rmtree(scratch)


def cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=cwd, env=env,
                   unset=("WORKING_DIR", "WORKSPACE", "LIGHTRAG_GRAPH_ID", "LIGHTRAG_BACKUP_STORAGE_PATH"))


async def test_two_folders_cannot_share_one_graph_id(tmp_path: Path):
    first = await folder_graph(tmp_path / "team-a" / "rag_storage", seed=1)
    second = await folder_graph(tmp_path / "team-b" / "rag_storage", seed=2)
    storage = LocalBackupStorage(tmp_path / "repo")
    kept = GraphBackup("default", storage, first).create_snapshot("team a")
    with pytest.raises(GraphSourceConflictError) as refused:
        GraphBackup("default", storage, second).create_snapshot("team b")
    message = str(refused.value)
    assert str(first) in message and str(second) in message and "-g NAME" in message and "--adopt" in message
    assert [s.snapshot_id for s in GraphBackup("default", storage, first).list_snapshots()] == [kept.snapshot_id]
    # The same folder goes on; a graph that really moved is adopted explicitly.
    GraphBackup("default", storage, first).create_snapshot("team a again")
    moved = GraphBackup("default", storage, second).create_snapshot("moved", adopt=True)
    assert moved.metadata["working_dir"] == str(second)

    # The CLI's default id comes from the working dir: two folders, two graphs.
    repo = str(tmp_path / "cli-repo")
    assert cli("--repo", repo, "init").returncode == 0
    for folder in (first, second):
        done = cli("--repo", repo, "--json", "snapshot", cwd=folder.parent)  # -w defaults to ./rag_storage
        assert done.returncode == 0, done.stderr
    graphs = sorted({s["graph_id"] for s in json.loads(cli("--repo", repo, "--json", "list").stdout)})
    assert len(graphs) == 2 and all(g.startswith("rag_storage-") for g in graphs), graphs
    mine = next(g for g in graphs if json.loads(cli("--repo", repo, "--json", "show", "latest", "-g", g).stdout)
                ["metadata"]["working_dir"] == str(first))
    conflict = cli("--repo", repo, "snapshot", "-g", mine, "-w", str(second))
    assert conflict.returncode == 1 and "holds snapshots of" in conflict.stderr and str(first) in conflict.stderr
    assert cli("--repo", repo, "snapshot", "-g", mine, "-w", str(second), "--adopt").returncode == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="ownership is restored by root only (CI runs as root)")
async def test_restore_as_root_puts_back_owner_group_and_mode(tmp_path: Path):
    graph = await folder_graph(tmp_path / "service" / "rag_storage")
    secret = graph / "kv_store_full_docs.json"
    for path in [graph, *graph.iterdir()]:
        os.chown(path, NOBODY, NOBODY)
    secret.chmod(0o640)
    storage = LocalBackupStorage(tmp_path / "repo")
    backup = GraphBackup("svc", storage, graph)
    snapshot = backup.create_snapshot("owned by the service user")
    assert {(f.uid, f.gid) for f in snapshot.files} == {(NOBODY, NOBODY)}
    assert next(f for f in snapshot.files if f.path == secret.name).mode == 0o640

    # Into a new folder, and in place over a graph someone damaged as root.
    backup.restore_snapshot(snapshot.snapshot_id, target_dir=tmp_path / "fresh")
    secret.write_text("{}")
    os.chown(secret, 0, 0)
    secret.chmod(0o644)
    backup.restore_snapshot(snapshot.snapshot_id)
    for folder in (tmp_path / "fresh", graph):
        assert (folder.stat().st_uid, folder.stat().st_gid) == (NOBODY, NOBODY), folder
        for path in folder.iterdir():
            if path.is_file():
                assert (path.stat().st_uid, path.stat().st_gid) == (NOBODY, NOBODY), path
        assert (folder / secret.name).stat().st_mode & 0o777 == 0o640
    assert graph_files(tmp_path / "fresh") == graph_files(graph)
    # An existing folder keeps its own owner.
    existing = tmp_path / "existing"
    existing.mkdir()
    backup.restore_snapshot(snapshot.snapshot_id, target_dir=existing)
    assert existing.stat().st_uid == 0


async def test_cli_restore_without_a_place_names_the_snapshots_folder(tmp_path: Path):
    graph = await folder_graph(tmp_path / "wd")
    repo = str(tmp_path / "repo")
    assert cli("--repo", repo, "snapshot", "--init", "-g", "g1", "-w", str(graph)).returncode == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    refused = cli("--repo", repo, "restore", "latest", "-g", "g1", cwd=elsewhere)
    assert refused.returncode == 1 and str(graph) in refused.stderr and "--target" in refused.stderr
    assert list(elsewhere.iterdir()) == [], "a restore without a place wrote somewhere"
    done = cli("--repo", repo, "restore", "latest", "-g", "g1", "--target", str(tmp_path / "out"))
    assert done.returncode == 0 and graph_files(tmp_path / "out") == graph_files(graph)


async def test_safety_snapshots_only_when_swapping_and_never_counted_by_retention(tmp_path: Path):
    graph = await folder_graph(tmp_path / "wd")
    manager = BackupManager(LocalBackupStorage(tmp_path / "repo"), tmp_path / "catalog.sqlite3")
    manager.register_graph("g1", graph)
    backup = manager.get_graph("g1")
    first = backup.create_snapshot("first")
    await change(graph, 1)
    second = backup.create_snapshot("second")

    # A restore that fails before the swap leaves no safety snapshot (and the graph as it was).
    packs = {p: p.read_bytes() for p in (tmp_path / "repo" / "data").rglob("*") if p.is_file()}
    for pack, original in packs.items():
        broken = bytearray(original)
        broken[len(broken) // 2] ^= 0xFF
        pack.write_bytes(bytes(broken))
    before = graph_files(graph)
    with pytest.raises(IntegrityError):
        backup.restore_snapshot(first.snapshot_id)
    assert graph_files(graph) == before
    assert [s.snapshot_id for s in backup.list_snapshots()] == [first.snapshot_id, second.snapshot_id]
    for pack, original in packs.items():
        pack.write_bytes(original)

    # A bad change, then back to the newest snapshot: the discarded state is kept as a safety
    # snapshot, and keep-last 1 keeps the snapshot just restored, not the discarded state.
    await change(graph, 2)
    backup.restore_snapshot(second.snapshot_id)
    safety = backup.last_restore["safety_snapshot"]
    assert safety is not None
    assert {r["backup_id"] for r in manager.catalog.snapshots("g1")} >= {safety["snapshot_id"]}
    report = manager.apply_retention(keep_last=1, graph_id="g1")
    assert {r["snapshot_id"] for r in report["removed"]} == {first.snapshot_id}
    assert [s.snapshot_id for s in backup.list_snapshots()] == [second.snapshot_id, safety["snapshot_id"]]


async def test_schedules_come_back_with_a_rebuilt_catalog(tmp_path: Path):
    graph = await folder_graph(tmp_path / "wd")
    catalog = tmp_path / "catalog.sqlite3"
    manager = BackupManager(LocalBackupStorage(tmp_path / "repo"), catalog)
    manager.register_graph("g1", graph)
    manager.schedule_backup("g1", "6h", retention={"keep_daily": 7})
    manager.register_graph("g2", graph.parent)
    manager.schedule_backup("g2", "0 3 * * *")
    manager.unschedule_backup("g2")
    manager.get_graph("g1").create_snapshot("one")
    manager.catalog.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{catalog}{suffix}").unlink(missing_ok=True)

    # A new machine that knows only the repository.
    fresh = BackupManager(LocalBackupStorage(tmp_path / "repo"), tmp_path / "new-catalog.sqlite3")
    assert fresh.list_schedules() == []
    assert fresh.rebuild_catalog() == 1 and fresh.last_rebuild == {"snapshots": 1, "schedules": 1, "recovery_points": 0}
    schedule = fresh.get_schedule("g1")
    assert schedule["interval_seconds"] == 6 * 3600 and schedule["retention"] == {"keep_daily": 7}
    assert fresh.get_schedule("g2") is None
    assert fresh.get_graph("g1").graph_dir == graph
    result = await fresh.run_scheduled_backup("g1")
    assert result.result in ("created", "skipped"), result


def flip_a_byte_in_every_pack(repo: Path, where: float = 0.5) -> None:
    for pack in (repo / "data").rglob("*"):
        if pack.is_file():
            data = bytearray(pack.read_bytes())
            data[int(len(data) * where)] ^= 0x5A
            pack.write_bytes(bytes(data))


async def test_a_damaged_chunk_no_longer_poisons_later_snapshots_and_repair_heals(tmp_path: Path):
    graph = await folder_graph(tmp_path / "wd")
    other = await folder_graph(tmp_path / "other", seed=3)
    repo = tmp_path / "repo"
    base = ("--repo", str(repo), "--catalog", str(tmp_path / "catalog.sqlite3"))
    first = json.loads(cli(*base, "--json", "snapshot", "--init", "-g", "g1", "-w", str(graph)).stdout)
    lost = json.loads(cli(*base, "--json", "snapshot", "-g", "g2", "-w", str(other)).stdout)
    shutil.rmtree(other)  # g2's files exist nowhere else now
    flip_a_byte_in_every_pack(repo)

    found = cli(*base, "verify", "-g", "g1")
    assert found.returncode == 3 and "DAMAGED" in found.stdout and "recorded" in found.stdout, found.stdout
    # The next snapshot of the same healthy data stores the damaged chunks again ...
    again = json.loads(cli(*base, "--json", "snapshot", "-g", "g1", "-w", str(graph)).stdout)
    assert again["stored_bytes"] > 0 and again["data_hash"] == first["data_hash"]
    # ... so it restores, and so does the first snapshot, whose chunks it healed.
    for snapshot in (again, first):
        target = tmp_path / f"restored-{snapshot['snapshot_id'][:8]}"
        done = cli(*base, "restore", snapshot["snapshot_id"], "-g", "g1", "--target", str(target))
        assert done.returncode == 0, done.stderr
        assert graph_files(target) == graph_files(graph)

    # Repair: the damaged packs leave the index; g1 is whole, g2 is named as lost.
    flip_a_byte_in_every_pack(repo, 0.3)
    plan = cli(*base, "--json", "repair", "--dry-run")
    assert plan.returncode == 3 and json.loads(plan.stdout)["dry_run"] is True
    repaired = cli(*base, "repair", "-g", "g1", "-w", str(graph))
    assert repaired.returncode == 3, repaired.stdout + repaired.stderr
    assert f"g2/{lost['snapshot_id']}" in repaired.stdout and "CANNOT BE RESTORED" in repaired.stdout
    assert f"g1/{first['snapshot_id']}" in repaired.stdout and "healed" in repaired.stdout
    assert cli(*base, "verify", "-g", "g1").returncode == 0
    assert cli(*base, "verify", "-g", "g2").returncode == 3
    # A later repair finds no damaged pack left, and still names the snapshot it cannot restore.
    later = cli(*base, "--json", "repair")
    assert later.returncode == 3
    assert json.loads(later.stdout)["damaged_packs"] == [] and json.loads(later.stdout)["unhealed"] == [
        f"g2/{lost['snapshot_id']}"]
