"""Disaster recovery on real LightRAG graphs, in process: recovery points taken together and
kept by retention, validation that catches what a planted inconsistency breaks, drills,
failover of folder graphs, status, and the recovery CLI."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import subprocess
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from lightrag.backup import BackupManager
from lightrag.backup.errors import GraphBusyError, InvalidInputError, RecoveryPointNotFoundError, SnapshotProtectedError
from lightrag.backup.offline_graph import build_graph, documents, entity_names, graph_files, new_rag
from lightrag.backup.storage import LocalBackupStorage
from lightrag.recovery import AlreadyPrimaryError, DisasterRecoveryManager, HealthValidator
from lightrag.recovery.health import check_folder
from lightrag.backup.instance import instance_epoch, instance_role, set_instance_role

from helpers import cli as run_cli, forget_shared_data


@pytest.fixture(scope="module")
def clean_graph(tmp_path_factory) -> Path:
    """A real LightRAG graph of 4 documents (built once; tests copy it)."""
    folder = tmp_path_factory.mktemp("clean") / "graph"

    async def build() -> None:
        forget_shared_data()  # nothing of the graphs other tests built in this process
        rag = await build_graph(folder, 4, seed=3)
        await rag.finalize_storages()
        forget_shared_data()

    asyncio.run(build())
    return folder


def copy_of(clean: Path, into: Path) -> Path:
    shutil.copytree(clean, into)
    return into


def manager_over(root: Path) -> BackupManager:
    return BackupManager(LocalBackupStorage(root / "repo"), root / "catalog.sqlite3")


# -- validation ---------------------------------------------------------------------------


def _drop_vector(folder: Path, store: str, name_field: str) -> str:
    """Remove the first row of a NanoVectorDB file and its matrix row; returns its name."""
    path = folder / store
    data = json.loads(path.read_text())
    dim = data["embedding_dim"]
    row = data["data"].pop(0)
    matrix = base64.b64decode(data["matrix"])
    data["matrix"] = base64.b64encode(matrix[dim * 4:]).decode()
    path.write_text(json.dumps(data))
    return str(row[name_field])


def _graphml(folder: Path) -> Path:
    return folder / "graph_chunk_entity_relation.graphml"


def plant_vector_row_deleted(folder: Path) -> tuple[str, str]:
    name = _drop_vector(folder, "vdb_entities.json", "entity_name")
    return "entity", name


def plant_graphml_node_removed(folder: Path) -> tuple[str, str]:
    text = _graphml(folder).read_text()
    match = re.search(r'<node id="([^"]+)">.*?</node>\n', text, flags=re.S)
    assert match is not None
    _graphml(folder).write_text(text.replace(match.group(0), "", 1))
    return "entity", match.group(1)


def plant_cited_chunk_removed(folder: Path) -> tuple[str, str]:
    path = folder / "kv_store_text_chunks.json"
    chunks = json.loads(path.read_text())
    chunk_id = sorted(chunks)[0]
    del chunks[chunk_id]
    path.write_text(json.dumps(chunks, indent=2))
    return "chunk", chunk_id


def plant_truncated_json(folder: Path) -> tuple[str, str]:
    path = folder / "kv_store_doc_status.json"
    text = path.read_bytes()
    path.write_bytes(text[: len(text) // 2])
    return "file", "kv_store_doc_status.json"


def plant_truncated_vector_store(folder: Path) -> tuple[str, str]:
    path = folder / "vdb_entities.json"
    text = path.read_bytes()
    path.write_bytes(text[: len(text) - 200])  # cut inside the matrix
    return "file", "vdb_entities.json"


def plant_wrong_dimension(folder: Path) -> tuple[str, str]:
    path = folder / "vdb_relationships.json"
    data = json.loads(path.read_text())
    data["embedding_dim"] = 8  # the stub model embeds in 16 dimensions
    path.write_text(json.dumps(data))
    return "file", "embedding_dim"


PLANTS = {
    "vector row deleted": plant_vector_row_deleted,
    "graphml node removed": plant_graphml_node_removed,
    "cited chunk removed": plant_cited_chunk_removed,
    "truncated json": plant_truncated_json,
    "truncated vector store": plant_truncated_vector_store,
    "wrong dimension": plant_wrong_dimension,
}


def test_a_clean_graph_is_healthy_with_its_counts(clean_graph):
    status = check_folder("g", clean_graph, "folder")
    assert status.healthy, status.problems
    assert status.counts["entities"] == len(entity_names(clean_graph))
    assert status.counts["embedding_dim"] == 16
    assert status.counts["documents"] == 4


@pytest.mark.parametrize("plant", sorted(PLANTS))
def test_validation_catches_each_planted_inconsistency(clean_graph, tmp_path, plant):
    folder = copy_of(clean_graph, tmp_path / "graph")
    kind, name = PLANTS[plant](folder)
    status = check_folder("g", folder, "folder")
    assert not status.healthy, plant
    named = [p for p in status.problems if name in (p.object or "") or name in p.message]
    assert named, (plant, name, [p.message for p in status.problems])
    if kind != "file":
        assert any(p.object_kind == kind for p in named), [p.to_dict() for p in named]
    # Reading a file that cannot be parsed fails the graph; disagreeing stores degrade it.
    assert status.status == ("failed" if plant.startswith("truncated") or plant == "wrong dimension" else "degraded")


def test_a_snapshot_is_validated_in_scratch_without_touching_the_graph(clean_graph, tmp_path):
    folder = copy_of(clean_graph, tmp_path / "graph")
    manager = manager_over(tmp_path)
    manager.register_graph("g", folder)
    good = manager.get_graph("g").create_snapshot()
    plant_cited_chunk_removed(folder)
    bad = manager.get_graph("g").create_snapshot()
    before = graph_files(folder)
    validator = HealthValidator(manager)
    assert validator.validate_backup(good.snapshot_id) is True
    assert validator.last_report["status"] == "healthy"
    assert validator.validate_backup(bad.snapshot_id[:8]) is False
    assert "not in kv_store_text_chunks.json" in json.dumps(validator.last_report)
    assert graph_files(folder) == before, "the live folder was not touched"
    with pytest.raises(Exception):
        validator.validate_backup("ffffffff")


def test_freshness_a_graph_whose_backups_stopped_is_degraded(clean_graph, tmp_path):
    folder = copy_of(clean_graph, tmp_path / "graph")
    manager = manager_over(tmp_path)
    manager.register_graph("g", folder)
    validator = HealthValidator(manager)
    status = validator.validate_graph("g")
    assert status.status == "degraded" and "no snapshot" in status.summary()
    manager.get_graph("g").create_snapshot()
    assert validator.validate_graph("g").healthy
    manager.schedule_backup("g", timedelta(seconds=1))  # and no scheduler running
    time.sleep(3.5)
    stale = validator.validate_graph("g")
    assert stale.status == "degraded"
    assert "scheduled backups are not happening" in stale.summary()
    # Kept in the catalog and the status.
    assert manager.catalog.last_health("g")["status"] == "degraded"


# -- recovery points ----------------------------------------------------------------------


async def test_a_recovery_point_of_live_instances_is_consistent_across_graphs(tmp_path):
    forget_shared_data()
    first = await build_graph(tmp_path / "w", 2, workspace="one", seed=1)
    second = await build_graph(tmp_path / "w", 2, workspace="two", seed=2)
    manager = manager_over(tmp_path)
    try:
        manager.register_graph("one", rag=first)
        manager.register_graph("two", rag=second)
        recovery = DisasterRecoveryManager(manager)
        # An insert into one graph is running when the point is asked for: the point waits for
        # it (holding no other graph meanwhile) and holds it whole, and every graph of the
        # point validates.
        from lightrag.kg.shared_storage import get_namespace_data, get_namespace_lock

        pipeline = await get_namespace_data("pipeline_status", workspace="one")
        insert = asyncio.create_task(first.ainsert(documents(2, seed=7, start=50)))
        while not pipeline.get("busy"):
            await asyncio.sleep(0.001)
        point = await recovery.acreate_recovery_point(description="live", created_by="test")
        assert insert.done(), "the point waited for the insert"
        await insert
        assert point.graphs == ["one", "two"]
        assert point.metadata["captured"] == {"one": "live", "two": "live"}
        assert 0 <= point.metadata["together_pause_ms"] < 2000
        result = await recovery.avalidate_recovery_point(point.checkpoint_id)
        assert result["validated"], result
        assert (await recovery.aget_recovery_point(point.checkpoint_id)).validated
        assert entity_names(tmp_path / "w" / "one") == await _entities_of(manager, "one", point)
        # Unchanged graphs reuse their newest snapshot.
        await first.ainsert(documents(1, seed=7, start=60))
        again = await recovery.acreate_recovery_point()
        assert again.metadata["captured"]["two"] == "unchanged"
        assert again.snapshots["two"] == point.snapshots["two"]
        assert again.snapshots["one"] != point.snapshots["one"]

        # A busy pipeline holds nothing else meanwhile, and fails clearly.
        status = await get_namespace_data("pipeline_status", workspace="two")
        lock = get_namespace_lock("pipeline_status", workspace="two")
        async with lock:
            status.update({"busy": True, "busy_owner": "someone-inserting"})
        recovery.busy_timeout = 0.3
        try:
            with pytest.raises(GraphBusyError, match="not all idle"):
                await recovery.acreate_recovery_point()
        finally:
            async with lock:
                status.update({"busy": False, "busy_owner": None})
        assert len(await recovery.alist_recovery_points()) == 2
        await first.ainsert(documents(1, seed=8, start=90))  # its pipeline was released
    finally:
        await first.finalize_storages()
        await second.finalize_storages()


async def _entities_of(manager: BackupManager, graph_id: str, point: Any) -> list[str]:
    """The entity names of the point's snapshot of a graph, restored aside."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        await manager.graph_view(graph_id).arestore_snapshot(point.snapshots[graph_id], target_dir=scratch,
                                                             safety_snapshot=False)
        return entity_names(scratch)


def test_retention_keeps_what_a_point_names_and_a_new_machine_sees_the_points(clean_graph, tmp_path):
    folder = copy_of(clean_graph, tmp_path / "graph")
    manager = manager_over(tmp_path)
    manager.register_graph("g", folder)
    backup = manager.get_graph("g")
    recovery = DisasterRecoveryManager(manager)
    point = recovery.create_recovery_point(["g"], "before changes")
    for number in range(3):
        (folder / "kv_store_full_docs.json").write_text(json.dumps({f"doc-{number}": {"content": "x"}}))
        backup.create_snapshot()
    report = manager.apply_retention({"keep_last": 1}, graph_id="g")
    kept = [s.snapshot_id for s in backup.list_snapshots()]
    assert point.snapshots["g"] in kept and len(kept) == 2, report
    with pytest.raises(SnapshotProtectedError, match=point.checkpoint_id):
        backup.delete_snapshot(point.snapshots["g"])

    # A new machine that knows only the repository: the catalog is rebuilt with the point.
    fresh = BackupManager(LocalBackupStorage(tmp_path / "repo"), tmp_path / "other-catalog.sqlite3")
    assert fresh.catalog.recovery_points() == []
    fresh.rebuild_catalog()
    rows = fresh.catalog.recovery_points()
    assert [r["checkpoint_id"] for r in rows] == [point.checkpoint_id]
    assert rows[0]["snapshots"] == point.snapshots and rows[0]["description"] == "before changes"
    assert DisasterRecoveryManager(fresh).list_recovery_points()[0].checkpoint_id == point.checkpoint_id

    recovery.delete_recovery_point(point.checkpoint_id[:8])
    manager.apply_retention({"keep_last": 1}, graph_id="g")
    assert len(backup.list_snapshots()) == 1
    with pytest.raises(RecoveryPointNotFoundError):
        recovery.get_recovery_point(point.checkpoint_id)
    for bad in ([], ["no such graph"], "g"):
        with pytest.raises((InvalidInputError, Exception)):
            recovery.create_recovery_point(bad)  # type: ignore[arg-type]
    assert recovery.list_recovery_points() == []


def test_a_drill_measures_rto_and_touches_nothing_live(clean_graph, tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("LIGHTRAG_RECOVERY_SCRATCH_DIR", str(scratch))
    folders = {name: copy_of(clean_graph, tmp_path / name) for name in ("a", "b")}
    manager = manager_over(tmp_path)
    for name, folder in folders.items():
        manager.register_graph(name, folder)
    recovery = DisasterRecoveryManager(manager)
    point = recovery.create_recovery_point()
    before = {name: graph_files(folder) for name, folder in folders.items()}
    report = recovery.run_drill()
    assert report["ok"], report
    assert report["checkpoint_id"] == point.checkpoint_id and report["rto_seconds"] > 0
    assert set(report["graphs"]) == {"a", "b"}
    assert all(g["smoke_query"]["ok"] for g in report["graphs"].values())
    assert list(scratch.iterdir()) == [], "the scratch restore was cleaned up"
    assert {name: graph_files(folder) for name, folder in folders.items()} == before
    json_report, markdown = (Path(p) for p in report["files"])
    assert json.loads(json_report.read_text())["rto_seconds"] == report["rto_seconds"]
    assert "Measured RTO" in markdown.read_text()
    status = recovery.get_recovery_status()
    assert status["rto_seconds"] == report["rto_seconds"]
    assert status["last_drill"]["checkpoint_id"] == point.checkpoint_id
    assert status["graphs"]["a"]["rpo_seconds"] is not None

    # A drill of a point whose snapshot no longer restores says so.
    for pack in (tmp_path / "repo" / "data").rglob("*"):
        if pack.is_file():
            pack.write_bytes(b"damaged")
    broken = recovery.run_drill(point.checkpoint_id)
    assert not broken["ok"]
    assert "cannot be restored" in json.dumps(broken["graphs"])


async def test_failover_of_folder_graphs_restores_the_point_and_promotes(clean_graph, tmp_path):
    folders = {name: copy_of(clean_graph, tmp_path / "graphs" / name) for name in ("a", "b")}
    manager = manager_over(tmp_path)
    for name, folder in folders.items():
        manager.register_graph(name, folder)
    recovery = DisasterRecoveryManager(manager, graphs_dir=tmp_path / "graphs")
    point = await recovery.acreate_recovery_point()
    with pytest.raises(AlreadyPrimaryError):
        await recovery.ainitiate_failover(point.checkpoint_id)
    expected = {name: graph_files(folder) for name, folder in folders.items()}
    # Later state the point does not have.
    plant_cited_chunk_removed(folders["a"])
    shutil.rmtree(folders["b"])

    set_instance_role(manager.catalog, "standby")
    plan = await recovery.aplan_failover(point.checkpoint_id)
    assert plan["ready"] and plan["new_epoch"] == 1
    assert {g["graph_id"] for g in plan["graphs"]} == {"a", "b"}
    assert instance_role(manager.catalog) == "standby", "a plan changes nothing"

    assert await recovery.ainitiate_failover(point.checkpoint_id) is True
    report = recovery.last_report
    assert report["ok"] and report["epoch"] == {"before": 0, "after": 1}
    assert [a["action"] for a in report["actions"]] == ["restore", "adopt", "restore", "adopt", "promote"]
    assert {name: graph_files(folder) for name, folder in folders.items()} == expected
    assert instance_role(manager.catalog) == "primary" and instance_epoch(manager.catalog) == 1
    # What the failover replaced is kept: a safety snapshot of graph a's later state.
    safety = next(a["safety_snapshot"] for a in report["actions"] if a.get("graph_id") == "a")
    assert safety and "pre-restore" in manager.get_graph("a").get_snapshot(safety).tags
    assert await recovery.avalidate_recovery() is True
    assert "| a | healthy |" in Path(report["files"][1]).read_text()
    status = await recovery.aget_recovery_status()
    assert status["last_failover"]["ok"] and status["acting_as"] == "primary"

    # Unknown points are refused clearly.
    with pytest.raises(RecoveryPointNotFoundError):
        await recovery.ainitiate_failover("0000aaaa")


# -- the CLI ------------------------------------------------------------------------------


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("--repo", str(root / "repo"), "--catalog", str(root / "catalog.sqlite3"), *args)


def test_the_recovery_commands(clean_graph, tmp_path):
    folder = copy_of(clean_graph, tmp_path / "graph")
    assert cli(tmp_path, "init").returncode == 0
    taken = cli(tmp_path, "recovery", "checkpoint", "--graph", f"g={folder}", "-m", "nightly", "--json")
    assert taken.returncode == 0, taken.stderr
    point = json.loads(taken.stdout)
    assert point["graphs"] == ["g"] and point["description"] == "nightly"
    listed = cli(tmp_path, "recovery", "list")
    assert point["checkpoint_id"][:8] in listed.stdout and "nightly" in listed.stdout
    shown = cli(tmp_path, "recovery", "show", point["checkpoint_id"][:8])
    assert point["snapshots"]["g"] in shown.stdout
    validated = cli(tmp_path, "recovery", "validate")
    assert validated.returncode == 0 and "validated" in validated.stdout, validated.stdout + validated.stderr
    drill = cli(tmp_path, "recovery", "drill", "--json")
    assert drill.returncode == 0, drill.stderr
    assert json.loads(drill.stdout)["ok"]
    status = cli(tmp_path, "recovery", "status", "--json")
    assert json.loads(status.stdout)["rto_seconds"] == json.loads(drill.stdout)["rto_seconds"]
    assert cli(tmp_path, "recovery", "health").returncode == 0
    refused = cli(tmp_path, "delete", "-g", "g", point["snapshots"]["g"])
    assert refused.returncode != 0 and "recovery point" in refused.stderr
    dry = cli(tmp_path, "recovery", "failover", point["checkpoint_id"], "--dry-run")
    assert dry.returncode != 0 and "cannot run now" in dry.stdout, "the primary does not fail over"
    unknown = cli(tmp_path, "recovery", "show", "0000aaaa")
    assert unknown.returncode != 0 and "not found" in unknown.stderr
    plant_truncated_json(folder)
    unhealthy = cli(tmp_path, "recovery", "health")
    assert unhealthy.returncode != 0 and "kv_store_doc_status.json" in unhealthy.stdout
    assert cli(tmp_path, "recovery", "delete", point["checkpoint_id"]).returncode == 0
    assert "no recovery points" in cli(tmp_path, "recovery", "list").stdout


async def test_a_standby_that_applied_the_point_fails_over_warm(clean_graph, tmp_path):
    folder = copy_of(clean_graph, tmp_path / "graphs" / "g")
    manager = manager_over(tmp_path)
    manager.register_graph("g", folder)
    recovery = DisasterRecoveryManager(manager)
    point = await recovery.acreate_recovery_point()
    # As a standby that applied the point's snapshot leaves it.
    manager.catalog.set_state("applied:g", json.dumps({"snapshot_id": point.snapshots["g"], "error": None}))
    set_instance_role(manager.catalog, "standby")
    mtimes = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert await recovery.ainitiate_failover(point.checkpoint_id)
    actions = recovery.last_report["actions"]
    assert [a["action"] for a in actions] == ["adopt", "promote"] and actions[0]["warm"] is True
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == mtimes, "nothing rewritten"

    # A folder that changed after it was applied is restored after all.
    set_instance_role(manager.catalog, "standby")
    plant_cited_chunk_removed(folder)
    assert await recovery.ainitiate_failover(point.checkpoint_id)
    assert [a["action"] for a in recovery.last_report["actions"]] == ["restore", "adopt", "promote"]
    assert recovery.last_report["epoch"] == {"before": 1, "after": 2}
    assert check_folder("g", folder, "folder").healthy


async def test_the_recovery_scheduler_takes_points_and_runs_health_checks(clean_graph, tmp_path):
    from lightrag.recovery import RecoveryScheduler

    folder = copy_of(clean_graph, tmp_path / "graph")
    manager = manager_over(tmp_path)
    manager.register_graph("g", folder)
    recovery = DisasterRecoveryManager(manager)
    scheduler = RecoveryScheduler(recovery, checkpoint_interval=0.5, health_interval=0.3)
    await scheduler.start()
    await asyncio.sleep(2.0)
    await scheduler.stop()
    points = await recovery.alist_recovery_points()
    assert 1 <= len(points) <= 4 and all(p.created_by == "scheduler" for p in points)
    assert manager.catalog.last_health("g")["status"] == "healthy"
    assert scheduler.last["health"]["graphs"] == {"g": "healthy"}

    # A standby takes none: its points come with the replicated snapshots.
    set_instance_role(manager.catalog, "standby")
    scheduler = RecoveryScheduler(recovery, checkpoint_interval=0.3, health_interval=0)
    await scheduler.start()
    await asyncio.sleep(1.0)
    await scheduler.stop()
    assert len(await recovery.alist_recovery_points()) == len(points)


async def test_a_graph_built_from_a_custom_kg_is_healthy(tmp_path):
    """``insert_custom_kg`` writes no documents and no document status: nothing is missing."""
    forget_shared_data()
    rag = await new_rag(tmp_path / "kg")
    try:
        await rag.ainsert_custom_kg({
            "chunks": [{"content": "Ada Lovelace wrote the first program.", "source_id": "chunk-ada"}],
            "entities": [{"entity_name": name, "entity_type": "person", "description": f"{name}.",
                          "source_id": "chunk-ada"} for name in ("Ada Lovelace", "Charles Babbage")],
            "relationships": [{"src_id": "Ada Lovelace", "tgt_id": "Charles Babbage", "description": "worked with",
                               "keywords": "collaboration", "weight": 1.0, "source_id": "chunk-ada"}],
        })
    finally:
        await rag.finalize_storages()
        forget_shared_data()
    assert not (tmp_path / "kg" / "kv_store_doc_status.json").exists()
    status = check_folder("kg", tmp_path / "kg", "folder")
    assert status.healthy, [p.message for p in status.problems]
    assert status.counts["entities"] == 2 and status.counts["relations"] == 1
