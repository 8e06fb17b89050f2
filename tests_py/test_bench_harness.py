"""The benchmark harness runs end to end on a tiny graph, so it never rots. No timing is
asserted: the numbers live in BENCHMARKS.md, from the full run."""

from __future__ import annotations

import pytest

import os
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "run.py"


pytestmark = pytest.mark.bench


def test_the_benchmark_runs_every_tool_and_writes_the_report(tmp_path: Path):
    out = tmp_path / "BENCHMARKS.md"
    out.write_text("# Benchmarks\n\nNotes written by hand.\n")
    # The floor's example as `cargo test` built it (a release build is for real numbers).
    env = {**os.environ, "LRB_BENCH_CARGO_PROFILE": "dev"}
    result = subprocess.run(
        [sys.executable, str(BENCH), "--entities", "200", "--dim", "32", "--rounds", "1",
         "--change-rounds", "2", "--work", str(tmp_path / "work"), "--out", str(out), "--live", "--floor"],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = out.read_text()
    # The machine's floor beside each operation, and where the time went, stage by stage.
    assert "The machine's floor" in report and "Where lightrag-backup's time goes" in report
    for row in ("| read |", "| hash |", "| compress |", "| seal |", "| write past the page cache (wall) |"):
        assert row in report, row
    for op in ("first backup", "backup after change", "restore", "verify (read all data)"):
        assert re.search(rf"\| {re.escape(op)} \| [0-9.]+ s \| [0-9.]+ s \| [0-9.]+x \|", report), op
    assert re.search(r"\| hashing \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \|", report)
    assert re.search(r"\| \*\*CPU, all stages\*\* \| \*\*[0-9.]+\*\*", report)
    # A change step's bytes beside the true change (new rows and changed text).
    found = re.search(r"against a true change of ([0-9.]+) MB \(([0-9.]+) MB of new embedding rows, "
                      r"([0-9.]+) MB of changed text under zstd 3\): ([0-9.]+)x the true change", report)
    assert found, report[-3000:]
    assert float(found[4]) > 0
    for tool in ("lightrag-backup", "restic", "borg"):
        assert tool in report
    for row in ("first backup", "backup after change", "restore", "verify (read all data)",
                "bytes added by one change step", "repository after 2 change steps"):
        assert f"| {row}" in report
    assert "paused" in report and "until a query answered" in report
    assert "Notes written by hand." in report


def test_a_run_replaces_its_own_section_and_keeps_the_rest(tmp_path: Path):
    sys.path.insert(0, str(BENCH.parent))
    try:
        import run
    finally:
        sys.path.remove(str(BENCH.parent))
    out = tmp_path / "BENCHMARKS.md"
    out.write_text("# Benchmarks\n\nIntro.\n")
    run.write_section(out, "20000 entities, a,b", "## first run\n")
    run.write_section(out, "60000 entities, a,b", "## big run\n")
    out.write_text(out.read_text() + "\n## Notes\n\nKept.\n")
    run.write_section(out, "20000 entities, a,b", "## second run\n")
    text = out.read_text()
    assert "first run" not in text
    assert text.count("second run") == 1 and text.count("big run") == 1
    assert text.index("Intro.") < text.index("second run") < text.index("big run") < text.index("Kept.")


@pytest.mark.cloud
def test_the_benchmark_runs_on_the_cloud_backends(tmp_path: Path):
    from helpers import server_env

    server_env("LRB_TEST_S3_ENDPOINT")
    server_env("LRB_TEST_AZURITE_ENDPOINT")
    out = tmp_path / "BENCHMARKS.md"
    result = subprocess.run(
        [sys.executable, str(BENCH), "--entities", "200", "--dim", "32", "--rounds", "1",
         "--change-rounds", "1", "--work", str(tmp_path / "work"), "--out", str(out),
         "--tools", "lightrag-backup-s3,lightrag-backup-azure,restic-s3"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = out.read_text()
    for tool in ("lightrag-backup (S3)", "lightrag-backup (Azure)", "restic (S3)"):
        assert tool in report
    assert "faster (S3)" in report


def test_the_recovery_benchmark_measures_drills_failovers_and_rpo(tmp_path: Path):
    out = tmp_path / "BENCHMARKS.md"
    result = subprocess.run(
        [sys.executable, str(BENCH.parent / "recovery.py"), "--entities", "200", "--dim", "32", "--rounds", "1",
         "--inserts", "1", "--gap", "0.5", "--work", str(tmp_path / "work"), "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = out.read_text()
    for row in ("drill (cold)", "restic restore", "borg extract", "failover (cold)", "failover (warm)"):
        assert f"| {row} |" in report
    assert "RPO under continuous replication" in report


def test_the_failover_benchmark_measures_automatic_failover_and_switchover(tmp_path: Path):
    out = tmp_path / "BENCHMARKS.md"
    result = subprocess.run(
        # 1000 entities of 512 dimensions: the first push to the standby carries packs over the
        # 1 MiB LightRAG caps request bodies at (the standby's push routes are exempt).
        [sys.executable, str(BENCH.parent / "failover.py"), "--entities", "1000", "--dim", "512", "--runs", "1",
         "--work", str(tmp_path / "work"), "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = out.read_text()
    assert "| SIGKILL of the primary -> LightRAG on the new primary accepts an insert |" in report
    assert "| switchover (request -> done) |" in report
    assert "Switchover RPO: 0 of" in report, report


@pytest.mark.databases
def test_the_database_benchmark_measures_every_backend_and_the_native_tools(tmp_path: Path):
    """Needs the test servers (PostgreSQL, pgvector, Redis): CI starts them."""
    from helpers import server_env

    for name in ("LRB_TEST_PG_PORT", "LRB_TEST_PGVECTOR_PORT", "LRB_TEST_REDIS_URI"):
        server_env(name)
    out = tmp_path / "BENCHMARKS.md"
    result = subprocess.run(
        [sys.executable, str(BENCH.parent / "databases.py"), "--entities", "200", "--dim", "32",
         "--change-rounds", "1", "--work", str(tmp_path / "work"), "--out", str(out)],
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = out.read_text()
    for row in ("first snapshot (time)", "bytes added per change step (median)",
                "restore beside the graph (fresh workspace, same tables)", "restore into a fresh database",
                "native: first dump (time, size)", "native: restore of the last dump"):
        assert f"| {row}" in report, row
    line = next(line for line in report.splitlines() if line.startswith("| native: restore of the last dump"))
    assert line.count(" s") == 3, line  # PostgreSQL, Redis and pgvector each timed


def test_with_several_peers_each_row_is_compared_with_the_best_of_them(tmp_path: Path):
    """restic 0.14 and 0.18, rustic and borg side by side: each row's ratio names the peer that
    did best on that row, not always the same one."""
    import argparse

    sys.path.insert(0, str(BENCH.parent))
    try:
        import run
    finally:
        sys.path.remove(str(BENCH.parent))

    def result(seconds: dict[str, float], added: int) -> "run.ToolResult":
        r = run.ToolResult()
        for op in run.OPERATIONS:
            r.times[op] = [run.Measure(seconds.get(op, 10.0), 100.0)]
        r.repo_first, r.repo_added_by_change, r.repo_after_rounds = [300_000_000], [added], [400_000_000]
        return r

    results = {
        "lightrag-backup": result({"first backup": 1.0, "restore": 0.5}, 10_000_000),
        "restic": result({"first backup": 4.0, "restore": 1.5}, 250_000_000),
        "borg": result({"first backup": 2.0, "restore": 3.0}, 200_000_000),
        "rustic": result({"first backup": 3.0, "restore": 1.0}, 150_000_000),
    }
    args = argparse.Namespace(entities=200, dim=32, rounds=1, change_rounds=2, live=False,
                              tools="lightrag-backup,restic,borg,rustic")
    text = run.report(results, args, 1.0, None)
    rows = {line.split("|")[1].strip(): line.split("|")[-2].strip() for line in text.splitlines()
            if line.startswith("| ")}
    assert "lightrag-backup vs the best peer" in text
    assert rows["first backup (time, peak RSS)"] == "2.0x faster than borg"
    assert rows["restore (time, peak RSS)"] == "2.0x faster than rustic"
    assert rows["bytes added by one change step"] == "15.0x smaller than rustic"


def test_the_cost_benchmark_counts_requests_as_the_history_grows(tmp_path: Path):
    """With this host's cache, reading and taking snapshots costs the same number of requests
    at 3 and at 12 snapshots; without it, listing grows with the history."""
    import json

    from helpers import server_env

    server_env("LRB_TEST_S3_ENDPOINT")
    out = tmp_path / "BENCHMARKS.md"
    result = subprocess.run(
        [sys.executable, str(BENCH.parent / "costs.py"), "--snapshots", "3,12", "--work", str(tmp_path / "work"),
         "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    small, large = json.loads(result.stdout.strip().splitlines()[-1])
    for operation in ("list cached", "get cached", "snapshot cached"):
        assert small[operation] == large[operation], (operation, small, large)
    assert large["list uncached"] > small["list uncached"] + 10
    assert "Requests per operation as the history grows" in out.read_text()
