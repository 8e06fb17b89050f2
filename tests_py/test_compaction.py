"""Index compaction from the operator's side: the ``compact`` command, a SIGKILL at every step
of a compaction (the crash matrix), and the Python API.

Every snapshot writes one index object; compaction merges the small ones (see ``src/compact.rs``).
The crash points are the ones ``src/compact.rs`` names: a process whose
``LIGHTRAG_BACKUP_TEST_CRASH_AT`` names one kills itself there with SIGKILL, holding the
maintenance lock, with some objects written and others not."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from helpers import cli

from lightrag.backup import BackupManager
from lightrag.backup.offline_graph import graph_files
from lightrag.backup.storage import LocalBackupStorage

#: Every step of a compaction, in order.
CRASH_POINTS = ("compact.locked", "compact.merged-written", "compact.all-merged-written", "compact.source-deleted")


def write_graph(folder: Path, seed: int) -> None:
    """A small graph folder whose files differ with ``seed`` (each snapshot writes a pack)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kv_store_full_docs.json").write_text(json.dumps({f"doc-{seed}": {"content": f"round {seed} " * 40}}))
    (folder / "vdb_entities.json").write_bytes(bytes((seed * 7 + i) % 251 for i in range(8192)))


def index_objects(repo: Path) -> list[Path]:
    return sorted(p for p in (repo / "index").rglob("*") if p.is_file())


def test_a_compaction_killed_at_any_step_leaves_every_snapshot_restorable_and_the_next_one_finishes(tmp_path: Path):
    repo, catalog, graph = tmp_path / "repo", tmp_path / "catalog.sqlite3", tmp_path / "graph"
    base = ("--repo", str(repo), "--catalog", str(catalog), "--no-progress")
    expected: dict[str, dict[str, bytes]] = {}
    seed = 0
    for point in CRASH_POINTS:
        for _ in range(3):
            seed += 1
            write_graph(graph, seed)
            made = cli(*base, "--json", "snapshot", "--init", "-g", "g", "-w", str(graph))
            assert made.returncode == 0, made.stderr
            expected[json.loads(made.stdout)["snapshot_id"]] = graph_files(graph)
        before = index_objects(repo)
        assert len(before) >= 3

        killed = cli(*base, "compact", env={"LIGHTRAG_BACKUP_TEST_CRASH_AT": point})
        assert killed.returncode == -signal.SIGKILL, (point, killed.returncode, killed.stderr)
        assert (repo / "locks" / "prune").exists(), "killed while holding the maintenance lock"

        # Whatever step it died at: every snapshot verifies with all its data read ...
        verify = cli(*base, "--json", "verify", "--all-graphs")
        assert verify.returncode == 0, (point, verify.stdout, verify.stderr)
        # ... and restores what was backed up (the oldest and the newest, by a new process).
        for snapshot_id in (min(expected), max(expected)):
            target = tmp_path / f"restored-{point}-{snapshot_id}"
            restored = cli(*base, "restore", "-g", "g", snapshot_id, "--target", str(target))
            assert restored.returncode == 0, (point, restored.stderr)
            assert graph_files(target) == expected[snapshot_id], point

        # The next compaction takes over the dead holder's lock and finishes the work.
        again = cli(*base, "--json", "compact")
        assert again.returncode == 0, (point, again.stderr)
        report = json.loads(again.stdout)
        assert report["index_objects_after"] == len(index_objects(repo)) == 1, (point, report)
        assert not (repo / "locks" / "prune").exists()

    listed = json.loads(cli(*base, "--json", "list", "-g", "g").stdout)
    assert sorted(s["snapshot_id"] for s in listed) == sorted(expected)
    assert cli(*base, "verify", "--all-graphs").returncode == 0


def test_compact_from_the_api_and_the_cli_report_and_prune_compacts_at_its_end(tmp_path: Path):
    repo, graph = tmp_path / "repo", tmp_path / "graph"
    manager = BackupManager(LocalBackupStorage(repo), tmp_path / "catalog.sqlite3")
    manager.register_graph("g", graph)
    backup = manager.get_graph("g")
    for seed in range(5):
        write_graph(graph, seed)
        backup.create_snapshot()
    assert len(index_objects(repo)) == 5
    assert manager.storage.engine.index_object_counts() == (5, 5)

    report = manager.compact_index()
    assert (report["index_objects_before"], report["merged"], report["written"], report["index_objects_after"]) == (5, 5, 1, 1)
    assert len(index_objects(repo)) == 1
    assert manager.compact_index()["merged"] == 0

    for seed in range(5, 8):
        write_graph(graph, seed)
        backup.create_snapshot()
    pruned = manager.prune(0)
    assert pruned["index_objects_merged"] == 4, pruned
    assert len(index_objects(repo)) == 1

    text = cli("--repo", str(repo), "--catalog", str(tmp_path / "catalog.sqlite3"), "compact")
    assert text.returncode == 0 and "nothing to merge (1 index object(s))" in text.stdout, text.stdout + text.stderr
