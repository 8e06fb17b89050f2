"""The lightrag-backup command: results, JSON output, clear errors and exit codes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

import pytest

from lightrag.backup.offline_graph import build_graph, graph_files

from helpers import cli


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

    refused = cli("snapshot", "-m", "first", env=env)
    assert refused.returncode == 1 and "lightrag-backup --repo" in refused.stderr and "init" in refused.stderr
    assert not (tmp_path / "repo").exists(), "a snapshot without --init created a repository"
    made = cli("--json", "snapshot", "--init", "-m", "first", "--tag", "cli", env=env)
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

    no_graph = cli("snapshot", "--init", "--working-dir", str(tmp_path / "missing"), env=env)
    assert no_graph.returncode == 1 and "does not exist" in no_graph.stderr
    assert not (tmp_path / "repo").exists(), "a failed first snapshot left a repository behind"
    assert "Traceback" not in no_graph.stderr

    assert cli("init", env=env).returncode == 0
    unknown = cli("--json", "show", "deadbeef", "-g", "g1", env=env)
    assert unknown.returncode == 1 and json.loads(unknown.stdout)["error"]["kind"] == "snapshot_not_found"
    assert cli("--repo", "", "list").returncode == 1
    assert cli().returncode == 2


def test_habits_users_bring_from_restic(tmp_path: Path):
    """Global options after the command, --version, `latest`, a header on `list`, and an
    ambiguous prefix that names its candidates."""
    from lightrag.backup import GraphBackup

    async def build() -> None:
        rag = await build_graph(tmp_path / "wd", 1)
        await rag.finalize_storages()

    asyncio.run(build())
    repo = str(tmp_path / "repo")
    version = cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("lightrag-backup 0.")

    made = cli("snapshot", "--init", "--repo", repo, "-w", str(tmp_path / "wd"), "-g", "docs", "--json", "-m", "one")
    assert made.returncode == 0, made.stderr
    first = json.loads(made.stdout)["snapshot_id"]
    listed = cli("list", "--repo", repo, "--json")
    assert listed.returncode == 0 and [s["snapshot_id"] for s in json.loads(listed.stdout)] == [first]
    text = cli("list", "--repo", repo).stdout.splitlines()
    assert text[0].split()[:3] == ["snapshot", "time", "(UTC)"] and text[1].startswith(first)

    # Enough snapshots that two share a first character (17 > 16 hex digits).
    backup = GraphBackup("docs", repo, tmp_path / "wd")
    ids = [first] + [backup.create_snapshot(f"n{i}").snapshot_id for i in range(16)]
    newest = ids[-1]
    shown = cli("show", "latest", "-g", "docs", "--repo", repo, "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["snapshot_id"] == newest
    restored = cli("restore", "latest", "-g", "docs", "--target", str(tmp_path / "out"), "--repo", repo)
    assert restored.returncode == 0 and newest in restored.stdout
    assert graph_files(tmp_path / "out") == graph_files(tmp_path / "wd")
    shared = next(c for c in "0123456789abcdef" if sum(i.startswith(c) for i in ids) >= 2)
    ambiguous = cli("show", shared, "-g", "docs", "--repo", repo)
    assert ambiguous.returncode == 1 and "ambiguous" in ambiguous.stderr
    for candidate in sorted(i for i in ids if i.startswith(shared))[:10]:
        assert candidate in ambiguous.stderr
    empty = cli("show", "latest", "-g", "nothing", "--repo", repo)
    assert empty.returncode == 1 and "no snapshots" in empty.stderr


def test_a_dotenv_file_is_read_and_the_environment_wins(tmp_path: Path):
    async def build() -> None:
        rag = await build_graph(tmp_path / "wd", 1)
        await rag.finalize_storages()

    asyncio.run(build())
    work = tmp_path / "project"
    work.mkdir()
    (work / ".env").write_text(f"LIGHTRAG_BACKUP_STORAGE_PATH={tmp_path / 'from-dotenv'}\nWORKING_DIR={tmp_path / 'wd'}\n"
                               "LIGHTRAG_GRAPH_ID=dotenv-graph\n")
    unset = ("LIGHTRAG_BACKUP_STORAGE_PATH", "WORKING_DIR", "WORKSPACE", "LIGHTRAG_GRAPH_ID", "LIGHTRAG_BACKUP_S3_BUCKET")
    made = cli("--json", "snapshot", "--init", cwd=work, unset=unset)
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["graph_id"] == "dotenv-graph"
    assert (tmp_path / "from-dotenv" / "config").is_file()
    # A variable set in the environment wins over the file.
    env_repo = tmp_path / "from-env"
    again = cli("--json", "snapshot", "--init", cwd=work, unset=unset[1:], env={"LIGHTRAG_BACKUP_STORAGE_PATH": str(env_repo)})
    assert again.returncode == 0, again.stderr
    assert (env_repo / "config").is_file()


def test_the_demo_tells_its_own_story(tmp_path: Path):
    done = cli("demo", "--dir", str(tmp_path / "demo"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "snapshot 1:" in done.stdout and "byte-identical: True" in done.stdout
    # A document deleted through LightRAG, named by the diff, put back alone without a model call.
    assert "1 document," in done.stdout and "0 LLM calls, 0 embedding calls" in done.stdout
    assert "matches snapshot 1 again: True" in done.stdout
    lines = (done.stdout + done.stderr).splitlines()
    assert not [line for line in lines if line.startswith(("INFO", "WARNING"))], "LightRAG's log lines leaked into the demo"


@pytest.mark.processes
def test_the_replication_demo_runs_two_servers_and_fails_over(tmp_path: Path):
    done = cli("--json", "demo", "--replication", "--dir", str(tmp_path / "demo"))
    assert done.returncode == 0, done.stdout + done.stderr
    story = json.loads(done.stdout)
    assert story["ok"] is True
    lines = "\n".join(story["steps"])
    assert "replicated to the standby" in lines and "killed the primary (SIGKILL)" in lines
    assert "it is the primary: True; its graph matches the primary's: True" in lines
    # Neither server failed along the way (the primary's log ends at the SIGKILL).
    for server in ("primary", "standby"):
        log = (tmp_path / "demo" / server / "serve.log").read_text()
        assert "Traceback" not in log, log[-3000:]


def test_nothing_checked_is_not_a_pass_and_a_missing_repository_is_never_created(tmp_path: Path):
    repo = tmp_path / "repo"
    for command in (["list"], ["show", "latest"], ["verify"], ["stats"], ["forget", "--keep-last", "1"],
                    ["prune"], ["catalog", "show"], ["schedule", "show"],
                    ["serve", "--graphs-dir", str(tmp_path)]):
        done = cli("--repo", str(repo), *command)
        assert done.returncode == 1, (command, done.stdout, done.stderr)
        assert f"lightrag-backup --repo {repo} init" in done.stderr, (command, done.stderr)
        assert not repo.exists(), f"{command} created a repository"
    assert cli("--repo", str(repo), "init").returncode == 0 and (repo / "config").is_file()

    typo = cli("--repo", str(repo), "verify", "-g", "typo")
    assert typo.returncode == 1 and "nothing to verify" in typo.stdout, typo.stdout
    empty = cli("--repo", str(repo), "--json", "verify", "--all-graphs")
    assert empty.returncode == 1 and json.loads(empty.stdout)["checked_nothing"] is True


def test_serve_refuses_an_open_server_off_loopback(tmp_path: Path):
    repo = tmp_path / "repo"
    assert cli("--repo", str(repo), "init").returncode == 0
    graphs = tmp_path / "graphs"
    graphs.mkdir()
    unset = ("LIGHTRAG_API_KEY",)
    refused = cli("--repo", str(repo), "serve", "--graphs-dir", str(graphs), "--host", "0.0.0.0", unset=unset)
    assert refused.returncode == 1 and "without an API key" in refused.stderr and "--no-auth" in refused.stderr
    # --no-auth gets past the check with a warning (192.0.2.1 is a documentation address this
    # machine does not have: the bind fails before anything listens or is sent).
    forced = cli("--repo", str(repo), "serve", "--graphs-dir", str(graphs), "--host", "192.0.2.1", "--port", "9",
                 "--no-auth", unset=unset)
    assert "WARNING: no API key on 192.0.2.1" in forced.stderr, forced.stderr
    assert f"repository {repo}" in forced.stderr and "auth: NONE (--no-auth)" in forced.stderr
    assert "refusing" not in forced.stderr


def test_schedule_set_changes_only_what_it_is_given(tmp_path: Path):
    async def build() -> None:
        rag = await build_graph(tmp_path / "wd", 1)
        await rag.finalize_storages()

    asyncio.run(build())
    base = ("--repo", str(tmp_path / "repo"), "--catalog", str(tmp_path / "catalog.sqlite3"))
    assert cli(*base, "init").returncode == 0
    made = cli(*base, "--json", "schedule", "set", "-g", "g1", "-w", str(tmp_path / "wd"), "--every", "6h", "--keep-last", "3")
    assert made.returncode == 0, made.stderr
    first = json.loads(made.stdout)
    assert first["interval_seconds"] == 6 * 3600 and first["retention"] == {"keep_last": 3}
    cron = json.loads(cli(*base, "--json", "schedule", "set", "-g", "g1", "-w", str(tmp_path / "wd"),
                          "--cron", "0 3 * * *").stdout)
    assert cron["cron"] == "0 3 * * *" and cron["retention"] == {"keep_last": 3}, cron
    kept = json.loads(cli(*base, "--json", "schedule", "set", "-g", "g1", "-w", str(tmp_path / "wd"),
                          "--keep-daily", "7").stdout)
    assert kept["cron"] == "0 3 * * *" and kept["next_run"] == cron["next_run"] and kept["retention"] == {"keep_daily": 7}

    missing = cli(*base, "schedule", "set", "-g", "g2", "-w", str(tmp_path / "nowhere"), "--every", "1h")
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    assert "g2" not in cli(*base, "catalog", "show").stdout, "a refused schedule registered its graph"
    typo = cli(*base, "schedule", "set", "-g", "g1", "-w", str(tmp_path / "wd"), "--every", "6x")
    assert typo.returncode == 1 and "not an interval" in typo.stderr and "cron" not in typo.stderr
    assert json.loads(cli(*base, "--json", "schedule", "show", "-g", "g1").stdout)[0]["retention"] == {"keep_daily": 7}
