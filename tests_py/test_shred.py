"""Per-graph keys and shred through the product's surfaces: the CLI, the Python API, REST, and
replication carrying the shred to a standby instance and a repository target, with real
LightRAG graphs and real server processes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from helpers import build, cli as run_cli, eventually, start_serve, stop_serve

from lightrag.backup import GraphBackup
from lightrag.backup.errors import GraphShreddedError, InvalidInputError
from lightrag.backup.storage import LocalBackupStorage


def cli(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return run_cli("--repo", str(repo), "--catalog", str(repo) + ".sqlite3", "--no-progress", *args)


def graph_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def repository_bytes(repo: Path) -> int:
    return sum(p.stat().st_size for p in repo.rglob("*") if p.is_file())


def test_shred_from_the_cli_erases_one_graph_and_keeps_the_others(tmp_path: Path):
    build(tmp_path / "a", 3, seed=11)
    build(tmp_path / "b", 3, seed=11)  # the same documents: no dedup across graph keys
    repo = tmp_path / "repo"
    made = cli(repo, "init", "--key-per-graph")
    assert made.returncode == 0, made.stderr
    for graph in ("a", "b"):
        done = cli(repo, "snapshot", "-g", graph, "-w", str(tmp_path / graph))
        assert done.returncode == 0, done.stderr
    before = repository_bytes(repo)

    # Not confirmed, or confirmed with another id: refused, nothing changed.
    assert cli(repo, "shred", "-g", "a").returncode == 2
    wrong = cli(repo, "shred", "-g", "a", "--confirm", "b")
    assert wrong.returncode == 1 and "confirm" in wrong.stderr, wrong.stderr
    assert (repo / "graphs" / "a" / "key").exists()

    shredded = cli(repo, "--json", "shred", "-g", "a", "--confirm", "a")
    assert shredded.returncode == 0, shredded.stderr
    report = json.loads(shredded.stdout)
    assert len(report["snapshots_deleted"]) == 1 and report["already_shredded"] is False, report

    listed = cli(repo, "list")
    assert "graph a  SHREDDED at" in listed.stdout, listed.stdout
    for refused in (cli(repo, "restore", "-g", "a", "latest", "--target", str(tmp_path / "out-a")),
                    cli(repo, "snapshot", "-g", "a", "-w", str(tmp_path / "a")),
                    cli(repo, "verify", "-g", "a")):
        assert refused.returncode == 1 and "was shredded" in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
    assert not (tmp_path / "out-a").exists()

    assert cli(repo, "verify", "--all-graphs").returncode == 0
    restored = cli(repo, "restore", "-g", "b", "latest", "--target", str(tmp_path / "out-b"))
    assert restored.returncode == 0, restored.stderr
    assert graph_files(tmp_path / "out-b") == graph_files(tmp_path / "b")

    pruned = cli(repo, "prune", "--grace", "0", "--repack-threshold", "0")
    assert pruned.returncode == 0, pruned.stderr
    assert repository_bytes(repo) < before * 0.7, (before, repository_bytes(repo))
    assert cli(repo, "verify", "--all-graphs").returncode == 0


def test_the_python_api_shreds_on_explicit_confirmation_only(tmp_path: Path):
    build(tmp_path / "graph", 2, seed=12)
    storage = LocalBackupStorage(tmp_path / "repo")  # without --key-per-graph: opt in per graph
    shared = GraphBackup("shared", storage, tmp_path / "graph")
    own = GraphBackup("own", storage, tmp_path / "graph", key_per_graph=True)
    shared.create_snapshot()
    kept = own.create_snapshot()
    assert own.storage.has_own_key("own") and not storage.has_own_key("shared")

    with pytest.raises(InvalidInputError, match="no key of its own"):
        shared.shred(confirm="shared")
    with pytest.raises(InvalidInputError, match="confirm"):
        own.shred(confirm="yes")
    assert own.list_snapshots()[0].snapshot_id == kept.snapshot_id

    point = json.loads(storage._repo.recovery().create_point_op({"shared": "latest", "own": "latest"}).run())
    assert point["graphs"] == ["own", "shared"]

    report = own.shred(confirm="own")
    assert report["snapshots_deleted"] == [kept.snapshot_id]
    with pytest.raises(GraphShreddedError):
        own.restore_snapshot(kept.snapshot_id, tmp_path / "out")
    with pytest.raises(GraphShreddedError):
        own.create_snapshot()
    assert [g["graph_id"] for g in storage.shredded_graphs()] == ["own"]
    assert len(shared.list_snapshots()) == 1
    # A recovery point that named the graph covers the others only, and says so.
    from lightrag.recovery.points import RecoveryPoint

    after = RecoveryPoint._from_native(json.loads(storage._repo.recovery().get_point_op(point["checkpoint_id"]).run()))
    assert (after.graphs, list(after.snapshots), after.shredded) == (["shared"], ["shared"], ["own"])


def _target_graph_files(server: dict[str, Any], graph: str) -> dict[str, bytes]:
    out = server["graphs"].parent / f"restored-{graph}"
    done = cli(server["repo"], "restore", "-g", graph, "latest", "--target", str(out))
    assert done.returncode == 0, done.stderr
    return graph_files(out)


@pytest.mark.processes
def test_replication_carries_the_graph_key_and_the_shred_to_a_standby_and_a_repository_target(tmp_path: Path):
    for graph, seed in (("tenant-a", 21), ("tenant-b", 22)):
        build(tmp_path / "primary-graphs" / graph, 2, seed=seed)
    repo = tmp_path / "primary-repo"
    assert cli(repo, "init", "--key-per-graph").returncode == 0
    primary = start_serve(repo, tmp_path / "primary.sqlite3", tmp_path / "primary-graphs", "primary-key",
                          init=False, env={"LIGHTRAG_REPLICATION_ENABLED": "true",
                                           "LIGHTRAG_REPLICATION_ALLOWED_DIRS": str(tmp_path)})
    (tmp_path / "standby-graphs").mkdir()
    standby = start_serve(tmp_path / "standby-repo", tmp_path / "standby.sqlite3", tmp_path / "standby-graphs",
                          "standby-key", "--role", "standby")
    copy = tmp_path / "copy-repo"
    try:
        client = primary["client"]
        client.post("/replication/targets", json={"name": "standby", "base_url": standby["base"],
                                                  "api_key": "standby-key"}).raise_for_status()
        client.post("/replication/targets", json={"name": "copy", "base_url": str(copy)}).raise_for_status()
        for graph in ("tenant-a", "tenant-b"):
            made = client.post(f"/backup/graphs/{graph}/snapshots?wait=true").json()
            assert made["state"] == "succeeded", made
            pushed = client.post(f"/replication/graphs/{graph}/replicate?wait=true", json={}).json()["result"]
            assert all(r["status"] == "completed" for r in pushed.values()), pushed
        # Both targets hold the graphs' own keys, as the source wrote them.
        key = (repo / "graphs" / "tenant-a" / "key").read_bytes()
        assert (copy / "graphs" / "tenant-a" / "key").read_bytes() == key
        assert (tmp_path / "standby-repo" / "graphs" / "tenant-a" / "key").read_bytes() == key
        expected_a = graph_files(tmp_path / "primary-graphs" / "tenant-a")
        assert _target_graph_files(standby, "tenant-a") == expected_a

        # REST: confirmed explicitly, or refused with nothing changed.
        refused = client.post("/backup/graphs/tenant-a/shred", json={})
        assert refused.status_code == 422
        refused = client.post("/backup/graphs/tenant-a/shred", json={"confirm": "tenant-b"})
        assert refused.status_code == 422 and refused.json()["error"]["kind"] == "invalid_input"
        shredded = client.post("/backup/graphs/tenant-a/shred", json={"confirm": "tenant-a"})
        assert shredded.status_code == 200, shredded.text
        gone = client.get("/backup/graphs/tenant-a/snapshots/latest")
        assert gone.status_code == 410 and gone.json()["error"]["kind"] == "graph_shredded", gone.text
        assert [g["graph_id"] for g in client.get("/backup/shredded").json()] == ["tenant-a"]

        # The automatic replicator carries the shred to both targets; status says where it arrived.
        def arrived() -> Any:
            status = client.get("/replication/graphs/tenant-a/status").json()
            targets = status["targets"]
            return all(t["shred_arrived_at"] for t in targets.values()) and status

        status = eventually(arrived, "the shred reaching both targets")
        assert status["shredded_at"] == shredded.json()["shredded_at"]
        assert not (copy / "graphs" / "tenant-a" / "key").exists()
        assert not (tmp_path / "standby-repo" / "graphs" / "tenant-a" / "key").exists()
        assert (copy / "graphs" / "tenant-a" / "shredded").exists()
        refused = standby["client"].get("/backup/graphs/tenant-a/snapshots/latest")
        assert refused.status_code == 410, refused.text
        copied = LocalBackupStorage(copy, create=False)
        with pytest.raises(GraphShreddedError):
            GraphBackup("tenant-a", copied, tmp_path / "x").get_snapshot("latest")
        # Every other graph restores as before, everywhere.
        expected_b = graph_files(tmp_path / "primary-graphs" / "tenant-b")
        assert _target_graph_files(standby, "tenant-b") == expected_b
        out = tmp_path / "copy-b"
        GraphBackup("tenant-b", copied, out).restore_snapshot("latest")
        assert graph_files(out) == expected_b
    finally:
        stop_serve(primary)
        stop_serve(standby)


def test_an_unencrypted_repository_is_reencrypted_by_replicating_into_an_encrypted_one(tmp_path: Path):
    """The documented way to encrypt a repository of an earlier version (or one made with
    --encryption none): init an encrypted repository, add it as a target, replicate."""
    build(tmp_path / "graph", 3, seed=31)
    old = tmp_path / "old"
    assert cli(old, "init", "--encryption", "none").returncode == 0
    first = cli(old, "--json", "snapshot", "-g", "docs", "-w", str(tmp_path / "graph"), "-m", "before")
    assert first.returncode == 0, first.stderr
    build(tmp_path / "graph", 4, seed=31)
    second = cli(old, "--json", "snapshot", "-g", "docs", "-w", str(tmp_path / "graph"), "--adopt")
    assert second.returncode == 0, second.stderr
    new = tmp_path / "new"
    assert cli(new, "init").returncode == 0  # encrypted, under the environment's password
    assert cli(old, "target", "add", "encrypted", str(new)).returncode == 0
    health = cli(old, "--json", "target", "health", "encrypted")
    assert health.returncode == 0 and json.loads(health.stdout)["healthy"], health.stdout + health.stderr
    done = cli(old, "--json", "replicate", "-g", "docs")
    assert done.returncode == 0, done.stderr

    ids = [json.loads(r.stdout)["snapshot_id"] for r in (first, second)]
    listed = json.loads(cli(new, "--json", "list").stdout)
    assert [s["snapshot_id"] for s in listed] == ids
    assert listed[0]["description"] == "before"
    assert LocalBackupStorage(new).encrypted
    out = tmp_path / "restored"
    restored = cli(new, "restore", "-g", "docs", ids[1], "--target", str(out))
    assert restored.returncode == 0, restored.stderr
    assert graph_files(out) == graph_files(tmp_path / "graph")
    # Again: nothing left to copy.
    again = cli(old, "--json", "replicate", "-g", "docs")
    assert again.returncode == 0 and "copied" not in again.stdout, again.stdout
