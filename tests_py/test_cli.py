"""The lightrag-backup command: results, JSON output, clear errors and exit codes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

from lightrag.backup.offline_graph import build_graph, graph_files


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(["lightrag-backup", *args], capture_output=True, text=True, env=full_env, timeout=300)


def test_help_starts_fast_without_loading_lightrag():
    started = time.monotonic()
    result = cli("--help")
    assert result.returncode == 0 and "snapshot" in result.stdout
    assert time.monotonic() - started < 5  # generous on a loaded machine; well under 1 s idle
    probe = subprocess.run(
        ["python", "-c", "import sys, lightrag.backup.cli; print('lightrag.lightrag' in sys.modules)"],
        capture_output=True, text=True,
    )
    assert probe.stdout.strip() == "False"


def test_snapshot_list_show_verify_restore_delete_stats(tmp_path: Path):
    async def build() -> None:
        rag = await build_graph(tmp_path / "wd", 2, workspace="team")
        await rag.finalize_storages()

    asyncio.run(build())
    env = {"LIGHTRAG_BACKUP_STORAGE_PATH": str(tmp_path / "repo"), "WORKING_DIR": str(tmp_path / "wd"), "WORKSPACE": "team"}

    made = cli("--json", "snapshot", "-m", "first", "--tag", "cli", env=env)
    assert made.returncode == 0, made.stderr
    snapshot = json.loads(made.stdout)
    assert snapshot["graph_id"] == "team" and snapshot["tags"] == ["cli"]
    snapshot_id = snapshot["snapshot_id"]

    listed = json.loads(cli("--json", "list", env=env).stdout)
    assert [s["snapshot_id"] for s in listed] == [snapshot_id]
    shown = json.loads(cli("--json", "show", snapshot_id[:10], env=env).stdout)
    assert len(shown["files"]) == 12
    verified = cli("--json", "verify", env=env)
    assert verified.returncode == 0 and json.loads(verified.stdout)["ok"] is True
    one = cli("--json", "verify", snapshot_id[:8], "--read-data-subset", "0.5", env=env)
    assert one.returncode == 0 and json.loads(one.stdout)["snapshots_checked"] == 1

    plan = json.loads(cli("--json", "restore", snapshot_id, "--target", str(tmp_path / "out"), "--dry-run", env=env).stdout)
    assert plan["dry_run"] is True and not (tmp_path / "out").exists()
    restored = cli("restore", snapshot_id, "--target", str(tmp_path / "out"), env=env)
    assert restored.returncode == 0, restored.stderr
    assert graph_files(tmp_path / "out") == graph_files(tmp_path / "wd" / "team")

    stats = json.loads(cli("--json", "stats", env=env).stdout)
    assert stats["snapshot_count"] == 1 and stats["graphs"] == 1
    # Damage the repository: verify says so with its own exit code.
    pack = max((p for p in (tmp_path / "repo" / "data").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 1
    pack.write_bytes(bytes(data))
    damaged = cli("verify", "--all-graphs", env=env)
    assert damaged.returncode == 3 and "DAMAGED" in damaged.stdout

    deleted = cli("delete", snapshot_id, env=env)
    assert deleted.returncode == 0 and "deleted" in deleted.stdout
    assert json.loads(cli("--json", "list", env=env).stdout) == []


def test_errors_exit_non_zero_with_one_clear_line(tmp_path: Path):
    env = {"LIGHTRAG_BACKUP_STORAGE_PATH": str(tmp_path / "repo")}
    missing_repo = cli("list", env=env)
    assert missing_repo.returncode == 1 and "no lightrag-backup repository" in missing_repo.stderr
    assert not (tmp_path / "repo" / "config").exists(), "reading commands create nothing"

    no_graph = cli("snapshot", "--working-dir", str(tmp_path / "missing"), env=env)
    assert no_graph.returncode == 1 and "does not exist" in no_graph.stderr
    assert "Traceback" not in no_graph.stderr

    unknown = cli("--json", "show", "deadbeef", "-g", "g1", env=env)
    assert unknown.returncode == 1 and json.loads(unknown.stdout)["error"]["kind"] == "snapshot_not_found"
    assert cli("--repo", "", "list").returncode == 1
    assert cli().returncode == 2
