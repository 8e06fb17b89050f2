"""The catalog (a rebuildable cache), schedules and the scheduler, retention, prune and stats,
on real LightRAG graphs."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from lightrag.backup import BackupManager, RetentionPolicy
from lightrag.backup.catalog import MIGRATIONS
from lightrag.backup.errors import CatalogError, GraphNotFoundError, InvalidInputError
from lightrag.backup.offline_graph import build_graph, documents, graph_files, new_rag
from lightrag.backup.schedule import CronExpression, parse_interval
from lightrag.backup.storage import LocalBackupStorage


async def make_graph(path: Path, docs: int = 3, seed: int = 0) -> Path:
    """A real graph in its own workspace (LightRAG shares a workspace's in-memory state between
    instances in one process); returns the graph's folder, ``path/<workspace>``."""
    workspace = f"w{uuid.uuid4().hex[:8]}"
    rag = await build_graph(path, docs, seed=seed, workspace=workspace)
    await rag.finalize_storages()
    return path / workspace


async def add_documents(graph: Path, seed: int) -> None:
    rag = await new_rag(graph.parent, workspace=graph.name)
    try:
        await rag.ainsert(documents(1, seed=seed, start=100 + seed))
    finally:
        await rag.finalize_storages()


@pytest.fixture
def manager(tmp_path: Path) -> BackupManager:
    return BackupManager(LocalBackupStorage(tmp_path / "repo"), tmp_path / "catalog.sqlite3")


async def test_the_catalog_is_a_cache_the_repository_rebuilds(manager, tmp_path: Path):
    graph = await make_graph(tmp_path / "g1")
    manager.register_graph("g1", graph)
    backup = manager.get_graph("g1")
    first = backup.create_snapshot("one")
    await add_documents(graph, 1)
    second = backup.create_snapshot("two")
    files_second = graph_files(graph)
    rows = manager.catalog.snapshots("g1")
    assert [r["backup_id"] for r in rows] == [first.snapshot_id, second.snapshot_id]
    assert rows[0]["data_hash"] == first.data_hash and rows[0]["status"] == "completed"
    assert rows[1]["metadata"]["description"] == "two"

    # Lose the catalog entirely.
    manager.catalog.close()
    for suffix in ("", "-wal", "-shm"):
        Path(str(manager.catalog.path) + suffix).unlink(missing_ok=True)
    fresh = BackupManager(manager.storage, manager.catalog.path)
    assert fresh.catalog.snapshots() == []
    assert fresh.rebuild_catalog() == 2
    assert [r["backup_id"] for r in fresh.catalog.snapshots("g1")] == [first.snapshot_id, second.snapshot_id]
    assert [s.snapshot_id for s in fresh.get_all_snapshots()["g1"]] == [first.snapshot_id, second.snapshot_id]
    assert fresh.storage.verify("g1").ok
    restored = fresh.graph_view("g1")
    assert restored.restore_snapshot(second.snapshot_id, target_dir=tmp_path / "restored")
    assert graph_files(tmp_path / "restored") == files_second


def test_catalog_schema_is_versioned(tmp_path: Path, manager):
    assert manager.catalog.schema_version == len(MIGRATIONS)
    path = tmp_path / "future.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(CatalogError, match="newer"):
        BackupManager(manager.storage, path)


def test_intervals_and_cron_expressions():
    assert parse_interval(timedelta(hours=2)) == 7200
    assert parse_interval(6) == 6 * 3600
    assert parse_interval("30m") == 1800
    cron = parse_interval("0 3 * * *")
    assert isinstance(cron, CronExpression)
    start = datetime(2026, 11, 25, 2, 59, 30, tzinfo=timezone.utc)
    assert cron.next_after(start) == datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)
    assert cron.next_after(datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)) == datetime(2026, 11, 26, 3, 0, tzinfo=timezone.utc)
    # Either day field matches when both are set (cron's rule): the 1st, or any Monday.
    both = CronExpression("30 4 1 * mon")
    assert both.next_after(datetime(2026, 11, 25, tzinfo=timezone.utc)) == datetime(2026, 11, 30, 4, 30, tzinfo=timezone.utc)
    assert both.next_after(datetime(2026, 11, 30, 5, tzinfo=timezone.utc)) == datetime(2026, 12, 1, 4, 30, tzinfo=timezone.utc)
    assert CronExpression("*/15 * * * *").next_after(datetime(2026, 1, 1, 0, 7, tzinfo=timezone.utc)).minute == 15
    assert CronExpression("@weekly").next_after(datetime(2026, 11, 25, tzinfo=timezone.utc)).isoweekday() == 7
    for bad in ("61 * * * *", "* * *", "*/0 * * * *", "5-1 * * * *", "0 0 30 2 *", "", True, "0.1s", -1, [1]):
        with pytest.raises(InvalidInputError):
            value = parse_interval(bad)  # type: ignore[arg-type]
            if isinstance(value, CronExpression):
                value.next_after(datetime(2026, 1, 1, tzinfo=timezone.utc))


async def test_scheduler_backs_up_skips_unchanged_runs_and_applies_retention(manager, tmp_path: Path):
    graph = await make_graph(tmp_path / "g1")
    manager.register_graph("g1", graph)
    with pytest.raises(GraphNotFoundError):
        manager.schedule_backup("nope", 1)
    assert manager.schedule_backup("g1", timedelta(seconds=1), retention={"keep_last": 2})
    schedule = manager.get_schedule("g1")
    assert schedule["interval_seconds"] == 1 and schedule["retention"] == {"keep_last": 2}
    manager.scheduler.poll_seconds = 0.1

    async def wait_for_runs(count: int) -> None:
        while len(manager.scheduler.history) < count:
            await asyncio.sleep(0.05)

    # The background scheduler: a first run stores a snapshot, the next finds nothing changed.
    async with manager:
        await asyncio.wait_for(wait_for_runs(2), timeout=120)
    assert not manager.scheduler.running
    results = [r.result for r in manager.scheduler.history]
    assert results[:2] == ["created", "skipped"], results
    first, second = manager.scheduler.history[:2]
    assert second.snapshot_id == first.snapshot_id

    # Runs after changes store snapshots, and keep_last=2 is applied after each.
    for seed in (2, 3):
        await add_documents(graph, seed)
        run = await asyncio.wait_for(manager.run_scheduled_backup("g1"), timeout=120)
        assert run.result == "created", run
    snapshots = manager.get_graph("g1").list_snapshots()
    assert len(snapshots) == 2, "keep_last=2 applied after each run"
    assert snapshots[-1].data_hash != snapshots[0].data_hash
    view = manager.get_schedule("g1")
    assert view["last_result"] == "created" and view["last_run"]
    assert datetime.fromisoformat(view["next_run"]) > datetime.now(timezone.utc) - timedelta(seconds=5)


async def test_stopping_the_scheduler_while_a_run_is_in_flight_returns(manager, tmp_path: Path):
    """Regression: stop() used to cancel the loop task, and on Python < 3.12 asyncio.wait_for
    swallows a cancel that lands as its inner wait completes (a run finishing wakes the loop),
    so stop() waited forever (CPython gh-86296). Each round stops just as a run is going."""
    graph = await make_graph(tmp_path / "g1")
    manager.register_graph("g1", graph)
    manager.schedule_backup("g1", timedelta(seconds=1))
    manager.scheduler.poll_seconds = 0.01
    for round_ in range(30):
        due = (datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat()
        manager.catalog.record_run("g1", result="created", next_run=due)
        await manager.start_scheduler()
        while not manager.scheduler._running:
            await asyncio.sleep(0.001)
        await asyncio.sleep((round_ % 10) * 0.002)
        stopping = asyncio.ensure_future(manager.stop_scheduler())
        done, _ = await asyncio.wait({stopping}, timeout=60)
        assert stopping in done, f"stop_scheduler() hung in round {round_}"
        assert not manager.scheduler.running and not manager.scheduler._running
    assert len(manager.scheduler.history) == 30
    assert all(run.result in ("created", "skipped") for run in manager.scheduler.history)


async def test_a_missed_run_is_taken_once_after_a_restart(tmp_path: Path):
    graph = await make_graph(tmp_path / "g1")
    storage = LocalBackupStorage(tmp_path / "repo")
    first = BackupManager(storage, tmp_path / "catalog.sqlite3")
    first.register_graph("g1", graph)
    first.schedule_backup("g1", "1h")
    # The process was down for five intervals.
    past = (datetime.now(timezone.utc) - timedelta(hours=5)).isoformat()
    first.catalog.record_run("g1", result="created", next_run=past)
    first.catalog.close()

    restarted = BackupManager(storage, tmp_path / "catalog.sqlite3", scheduler_poll_seconds=0.05)
    assert restarted.get_graph("g1").graph_dir == graph, "registration survives the restart"
    async with restarted:
        await asyncio.sleep(1.0)
    assert [r.result for r in restarted.scheduler.history] == ["created"]
    next_run = datetime.fromisoformat(restarted.get_schedule("g1")["next_run"])
    assert timedelta(minutes=59) < next_run - datetime.now(timezone.utc) <= timedelta(hours=1)


async def test_two_backups_of_one_graph_never_run_at_once(manager, tmp_path: Path):
    graph = await make_graph(tmp_path / "g1")
    manager.register_graph("g1", graph)
    manager.schedule_backup("g1", 24)
    results = await asyncio.gather(*(manager.run_scheduled_backup("g1") for _ in range(3)))
    assert sorted(r.result for r in results) == ["created", "skipped", "skipped"]
    assert sum("already running" in (r.error or "") for r in results) == 2
    assert len(manager.get_graph("g1").list_snapshots()) == 1


async def test_env_defaults_schedule_registered_graphs(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("LIGHTRAG_BACKUP_ENABLED", "true")
    monkeypatch.setenv("LIGHTRAG_BACKUP_INTERVAL_HOURS", "6")
    monkeypatch.setenv("LIGHTRAG_BACKUP_RETENTION_DAYS", "7")
    graph = await make_graph(tmp_path / "g1")
    manager = BackupManager(LocalBackupStorage(tmp_path / "repo"), tmp_path / "catalog.sqlite3")
    assert manager.register_graph("g1", graph) is True
    assert manager.register_graph("g1", graph) is False
    schedule = manager.get_schedule("g1")
    assert schedule["interval_seconds"] == 6 * 3600
    assert schedule["retention"] == {"keep_within": f"{7 * 86400}s"}
    monkeypatch.setenv("LIGHTRAG_BACKUP_INTERVAL_HOURS", "soon")
    with pytest.raises(InvalidInputError):
        manager.register_graph("g2", graph)


async def test_retention_policies_and_the_newest_snapshot(manager, tmp_path: Path):
    graph = await make_graph(tmp_path / "g1")
    manager.register_graph("g1", graph)
    backup = manager.get_graph("g1")
    ids = []
    for seed in range(4):
        await add_documents(graph, 10 + seed)
        ids.append(backup.create_snapshot(f"s{seed}", ["release"] if seed == 0 else []).snapshot_id)

    plan = manager.apply_retention(keep_last=1, dry_run=True)
    assert [d["keep"] for d in plan["graphs"]["g1"]] == [True, False, False, False]
    assert len(backup.list_snapshots()) == 4, "a dry run removes nothing"

    report = manager.apply_retention(RetentionPolicy(keep_last=1, keep_tags=("release",)))
    assert sorted(r["snapshot_id"] for r in report["removed"]) == sorted(ids[1:3])
    assert [s.snapshot_id for s in backup.list_snapshots()] == [ids[0], ids[3]]
    assert {r["backup_id"] for r in manager.catalog.snapshots("g1")} == {ids[0], ids[3]}

    # Age alone never removes a graph's newest snapshot.
    assert manager.cleanup_old_backups(0) == 1
    assert [s.snapshot_id for s in backup.list_snapshots()] == [ids[3]]
    with pytest.raises(InvalidInputError):
        manager.apply_retention()
    with pytest.raises(InvalidInputError):
        manager.cleanup_old_backups(-1)


async def test_prune_frees_space_and_everything_kept_restores(manager, tmp_path: Path):
    graph = await make_graph(tmp_path / "g1", docs=4)
    manager.register_graph("g1", graph)
    backup = manager.get_graph("g1")
    for seed in range(3):
        await add_documents(graph, 20 + seed)
        backup.create_snapshot()
    kept = backup.list_snapshots()[-1]
    files = graph_files(graph)
    manager.apply_retention(keep_last=1)
    before = manager.storage.get_storage_stats()["repository_bytes"]
    dry = manager.prune(0, dry_run=True)
    assert dry["dry_run"] and dry["bytes_marked"] > 0
    assert manager.storage.get_storage_stats()["repository_bytes"] == before
    marked = manager.prune()  # default grace: marks only
    assert marked["packs_marked"] > 0 and marked["packs_deleted"] == 0
    report = manager.prune(0)
    assert report["packs_deleted"] > 0
    assert manager.storage.get_storage_stats()["repository_bytes"] < before
    assert manager.storage.verify().ok
    backup.restore_snapshot(kept.snapshot_id, target_dir=tmp_path / "restored")
    assert graph_files(tmp_path / "restored") == files
    with pytest.raises(InvalidInputError):
        manager.prune(-1)


def _cli(tmp_path: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "lightrag.backup.cli", "--repo", str(tmp_path / "repo"),
               "--catalog", str(tmp_path / "catalog.sqlite3"), "--no-progress", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if check:
        assert done.returncode == 0, done.stderr
    return done


async def test_a_prune_killed_halfway_is_finished_by_the_next(tmp_path: Path):
    graph = tmp_path / "graph"
    graph.mkdir()
    rng = random.Random(7)
    # Several snapshots of big, mostly distinct files: plenty of packs to delete and repack.
    for round_number in range(5):
        for name in ("vdb_entities.json", "vdb_chunks.json", "kv_store_full_docs.json"):
            (graph / name).write_bytes(rng.randbytes(6 * 1024 * 1024))
        _cli(tmp_path, "snapshot", "--init", "-g", "big", "-w", str(graph))
    expected = graph_files(graph)
    _cli(tmp_path, "forget", "--keep-last", "1")

    killed = 0
    for delay in (0.05, 0.15, 0.3, 0.5, 0.8):
        process = subprocess.Popen(
            [sys.executable, "-m", "lightrag.backup.cli", "--repo", str(tmp_path / "repo"), "--catalog",
             str(tmp_path / "catalog.sqlite3"), "--no-progress", "prune", "--grace", "0", "--repack-threshold", "0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            killed += 1
        process.wait()
        # Whatever state it died in, the repository is valid and the kept snapshot whole.
        verify = _cli(tmp_path, "--json", "verify", "-g", "big", check=False)
        assert verify.returncode == 0, verify.stdout + verify.stderr
    final = json.loads(_cli(tmp_path, "--json", "prune", "--grace", "0").stdout)
    assert final["packs_marked"] == 0 or final["packs_deleted"] >= 0
    again = json.loads(_cli(tmp_path, "--json", "prune", "--grace", "0").stdout)
    assert again["packs_marked"] == 0 and again["packs_deleted"] == 0, again
    _cli(tmp_path, "restore", "-g", "big", json.loads(_cli(tmp_path, "--json", "list").stdout)[0]["snapshot_id"],
         "--target", str(tmp_path / "restored"))
    assert graph_files(tmp_path / "restored") == expected
    assert killed >= 1, "at least one prune was killed mid-way"


async def test_stats_per_graph_and_overall(manager, tmp_path: Path):
    graph_a = await make_graph(tmp_path / "a", seed=3)
    shutil.copytree(graph_a, tmp_path / "b")  # a second deployment of the same data
    for name, folder in (("a", graph_a), ("b", tmp_path / "b")):
        manager.register_graph(name, folder)
        manager.get_graph(name).create_snapshot()
    snapshot = manager.get_graph("a").list_snapshots()[0]
    assert manager.get_graph("a").verify_snapshot(snapshot.snapshot_id).ok
    stats = manager.get_backup_stats()
    assert set(stats["graphs"]) == {"a", "b"}
    a = stats["graphs"]["a"]
    assert a["snapshot_count"] == 1 and a["logical_bytes"] > 0 and a["stored_bytes"] > 0
    assert a["last_verify"]["ok"] and a["last_verify"]["snapshot_id"] == snapshot.snapshot_id
    assert stats["graphs"]["b"]["last_verify"] is None
    overall = stats["overall"]
    # The two graphs hold the same data: it is stored once.
    assert overall["snapshot_count"] == 2 and overall["dedup_ratio"] > 1.9
    assert 0 < overall["storage_efficiency"] < 1


def test_stats_of_many_graphs_come_from_one_pass_and_match_each_graphs_own(tmp_path: Path):
    """``get_backup_stats`` over many graphs lists the index and the snapshots once, not once
    per graph (a server's first /backup/stats over 100 graphs of an S3 repository made 400
    listings), and says for each graph what the graph's own stats say."""
    manager = BackupManager(LocalBackupStorage(tmp_path / "repo"), tmp_path / "catalog.sqlite3")
    for n in range(6):
        folder = tmp_path / f"g{n}"
        folder.mkdir()
        for step in range(n % 3 + 1):
            (folder / "kv_store_full_docs.json").write_text(json.dumps({f"d{n}": "x" * (100 * step + n)}))
            manager.register_graph(f"g{n}", folder)
            manager.get_graph(f"g{n}").create_snapshot()
    empty = tmp_path / "empty"
    empty.mkdir()
    manager.register_graph("empty", empty)
    before = manager.storage.request_counts()["lists"]
    stats = manager.get_backup_stats()
    lists = manager.storage.request_counts()["lists"]
    assert lists.get("index", 0) - before.get("index", 0) == 1, (before, lists)
    assert lists.get("snapshots", 0) - before.get("snapshots", 0) <= 3, (before, lists)
    assert sorted(stats["graphs"]) == ["empty", *(f"g{n}" for n in range(6))]
    for graph_id, kept in stats["graphs"].items():
        own = manager.snapshots_of(graph_id).get_backup_stats()
        assert {k: kept[k] for k in own} == own, graph_id
    assert stats["graphs"]["empty"]["snapshot_count"] == 0
    assert stats["overall"]["snapshot_count"] == sum(g["snapshot_count"] for g in stats["graphs"].values()) == 12
    assert stats["overall"] == {**manager.storage.get_storage_stats(), "storage_efficiency": stats["overall"]["space_saving"]}


async def test_cli_schedule_forget_prune_catalog_and_stats(tmp_path: Path):
    graph = await make_graph(tmp_path / "g1")
    _cli(tmp_path, "init")
    done = _cli(tmp_path, "schedule", "set", "-g", "g1", "-w", str(graph), "--every", "1s", "--keep-last", "3")
    assert "scheduled g1" in done.stdout
    time.sleep(1.1)
    ran = _cli(tmp_path, "--json", "schedule", "run", "--once")
    assert [r["result"] for r in json.loads(ran.stdout)] == ["created"]
    shown = json.loads(_cli(tmp_path, "--json", "schedule", "show", "-g", "g1").stdout)
    assert shown[0]["last_result"] == "created"
    _cli(tmp_path, "snapshot", "-g", "g1", "-w", str(graph))
    plan = _cli(tmp_path, "forget", "--keep-last", "1", "--dry-run")
    assert "would remove" in plan.stdout
    assert len(json.loads(_cli(tmp_path, "--json", "list").stdout)) == 2
    forgot = json.loads(_cli(tmp_path, "--json", "forget", "--keep-last", "1", "--prune").stdout)
    assert len(forgot["removed"]) == 1 and "prune" in forgot
    assert "prune (did)" in _cli(tmp_path, "prune", "--grace", "0").stdout
    (tmp_path / "catalog.sqlite3").unlink()
    rebuilt = json.loads(_cli(tmp_path, "--json", "catalog", "rebuild").stdout)
    assert rebuilt["snapshots"] == 1
    stats = json.loads(_cli(tmp_path, "--json", "stats", "--per-graph").stdout)
    assert stats["graphs"]["g1"]["snapshot_count"] == 1
    bad = _cli(tmp_path, "forget", check=False)
    assert bad.returncode == 1 and "say what to keep" in bad.stderr
    bad = _cli(tmp_path, "schedule", "set", "-g", "g1", "-w", str(graph), "--cron", "99 * * * *", check=False)
    assert bad.returncode == 1 and "minute" in bad.stderr
