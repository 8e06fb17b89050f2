"""Processes that die, and many short processes: the repository and the interpreter survive."""

from __future__ import annotations

import pytest

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from lightrag.backup import GraphBackup
from lightrag.backup.offline_graph import build_graph, graph_files
from lightrag.backup.storage import LocalBackupStorage

SNAPSHOT_SCRIPT = textwrap.dedent(
    """
    import sys
    from lightrag.backup import GraphBackup
    from lightrag.backup.storage import LocalBackupStorage

    def progress(phase, done, total):
        print(f"{phase} {done} {total}", flush=True)

    backup = GraphBackup("g", LocalBackupStorage(sys.argv[1]), working_dir=sys.argv[2])
    backup.create_snapshot("killed", progress=progress)
    print("finished", flush=True)
    """
)


pytestmark = pytest.mark.processes


def _build(graph_dir: Path) -> None:
    async def build() -> None:
        rag = await build_graph(graph_dir, 2)
        await rag.finalize_storages()

    asyncio.run(build())


def test_sigkill_during_a_snapshot_leaves_every_earlier_snapshot_restorable(tmp_path: Path):
    graph_dir, repo_dir = tmp_path / "wd", tmp_path / "repo"
    _build(graph_dir)
    storage = LocalBackupStorage(repo_dir)
    backup = GraphBackup("g", storage, working_dir=graph_dir)
    earlier = backup.create_snapshot("before the crash")
    earlier_files = graph_files(graph_dir)

    # Make the next snapshot long: a large, incompressible vector file.
    with open(graph_dir / "vdb_entities.json", "ab") as out:
        for _ in range(24):
            out.write(os.urandom(16 << 20))
    process = subprocess.Popen(
        [sys.executable, "-c", SNAPSHOT_SCRIPT, str(repo_dir), str(graph_dir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    killed_at = None
    for line in process.stdout:  # kill once a quarter of the data has gone through
        phase, done, total = line.split()[0], *map(int, line.split()[1:3] or (0, 0))
        if phase == "snapshot" and int(total) and done >= total // 4:
            process.send_signal(signal.SIGKILL)
            killed_at = done
            break
    process.wait(timeout=60)
    assert killed_at is not None and process.returncode == -signal.SIGKILL, "the snapshot was killed mid-way"

    storage = LocalBackupStorage(repo_dir, create=False)
    backup = GraphBackup("g", storage, working_dir=graph_dir)
    assert [s.snapshot_id for s in backup.list_snapshots()] == [earlier.snapshot_id]
    assert backup.verify_snapshot(earlier.snapshot_id).ok
    backup.restore_snapshot(earlier.snapshot_id, target_dir=tmp_path / "restored")
    assert graph_files(tmp_path / "restored") == earlier_files

    # The next run simply completes, reusing what the killed run stored.
    started = time.monotonic()
    after = backup.create_snapshot("after the crash")
    assert backup.verify_snapshot(after.snapshot_id).ok
    backup.restore_snapshot(after.snapshot_id, target_dir=tmp_path / "restored-after")
    assert graph_files(tmp_path / "restored-after") == graph_files(graph_dir)
    assert time.monotonic() - started < 600


ASYNC_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from lightrag.backup import GraphBackup
    from lightrag.backup.storage import LocalBackupStorage

    async def main():
        backup = GraphBackup("g" + sys.argv[3], LocalBackupStorage(sys.argv[1]), working_dir=sys.argv[2])
        snapshot = await backup.acreate_snapshot()
        *lists, stats = await asyncio.gather(*(backup.alist_snapshots() for _ in range(6)), backup.aget_backup_stats())
        assert all(snapshot in listed for listed in lists) and stats["snapshot_count"] >= 1

    asyncio.run(main())
    """
)


def test_many_short_processes_using_the_async_api_exit_cleanly(tmp_path: Path):
    graph_dir, repo_dir = tmp_path / "wd", tmp_path / "repo"
    graph_dir.mkdir()
    (graph_dir / "kv_store_full_docs.json").write_text('{\n  "doc-1": {}\n}')
    (graph_dir / "graph_chunk_entity_relation.graphml").write_text("<graphml/>")
    LocalBackupStorage(repo_dir)
    failures = []
    runs = 60
    for batch in range(0, runs, 4):
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", ASYNC_SCRIPT, str(repo_dir), str(graph_dir), str(n % 3)],
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in range(batch, min(batch + 4, runs))
        ]
        for process in processes:
            _, stderr = process.communicate(timeout=120)
            if process.returncode != 0:
                failures.append((process.returncode, stderr[-2000:]))
    assert failures == []


FORK_SCRIPT = textwrap.dedent(
    """
    import asyncio, os, sys
    from lightrag.backup import GraphBackup
    from lightrag.backup.storage import LocalBackupStorage

    backup = GraphBackup("g", LocalBackupStorage(sys.argv[1]), working_dir=sys.argv[2])
    backup.create_snapshot("parent")
    asyncio.run(backup.alist_snapshots())  # the runtime now runs in the parent
    pid = os.fork()
    if pid == 0:  # a gunicorn-style worker
        try:
            backup.create_snapshot("child, sync")
            asyncio.run(backup.acreate_snapshot("child, async"))
            os._exit(0 if len(backup.list_snapshots()) == 3 else 1)
        except BaseException as error:
            print(error, file=sys.stderr)
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))
    """
)


def test_a_forked_worker_can_use_the_sync_and_async_api(tmp_path: Path):
    graph_dir = tmp_path / "wd"
    graph_dir.mkdir()
    (graph_dir / "kv_store_full_docs.json").write_text('{\n  "doc-1": {}\n}')
    result = subprocess.run(
        [sys.executable, "-c", FORK_SCRIPT, str(tmp_path / "repo"), str(graph_dir)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_ctrl_c_stops_a_long_snapshot_cleanly(tmp_path: Path):
    graph_dir, repo_dir = tmp_path / "wd", tmp_path / "repo"
    _build(graph_dir)
    with open(graph_dir / "vdb_entities.json", "ab") as out:
        for _ in range(48):
            out.write(os.urandom(16 << 20))
    # Ctrl-C in a terminal: SIGINT at its default disposition. A test run started in the
    # background (`cmd &`, as CI runners may do) inherits SIGINT ignored, and an ignored
    # SIGINT stays ignored in the child (nohup semantics), which is not what this tests.
    process = subprocess.Popen(
        ["lightrag-backup", "--repo", str(repo_dir), "snapshot", "--init", "-w", str(graph_dir), "-g", "g"],
        stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while not any(p.is_file() for p in (repo_dir / "data").rglob("*")) and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    storage = LocalBackupStorage(repo_dir, create=False)
    assert storage.list_snapshots("g") == []
    # The interrupted run's data is reused by the next one.
    backup = GraphBackup("g", storage, working_dir=graph_dir)
    snapshot = backup.create_snapshot()
    assert backup.verify_snapshot(snapshot.snapshot_id, read_data=False).ok


HOLD_STAGING = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from lightrag.backup import staging

    print(staging.new(Path(sys.argv[1])), flush=True)
    time.sleep(600)
    """
)


def test_staging_folders_of_live_processes_stay_and_those_of_killed_ones_go(tmp_path: Path):
    from lightrag.backup import staging

    holder = subprocess.Popen([sys.executable, "-c", HOLD_STAGING, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        theirs = Path(holder.stdout.readline().strip())
        assert theirs.is_dir() and theirs.parent == tmp_path
        mine = staging.new(tmp_path)
        # Another process's folder in use, and this process's own other folder, both stay.
        assert staging.sweep(tmp_path) == [] and theirs.is_dir()
        second = staging.new(tmp_path)
        assert second != mine and mine.is_dir()
        staging.remove(second)
        # Set up but not yet locked (no lock file): left alone until it is old.
        unlocked = tmp_path / (staging.PREFIX + "unlocked")
        unlocked.mkdir()
        assert staging.sweep(tmp_path) == [] and unlocked.is_dir()
        old = time.time() - staging.UNLOCKED_GRACE_SECONDS - 60
        os.utime(unlocked, (old, old))

        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        assert sorted(staging.sweep(tmp_path)) == sorted([theirs, unlocked])
        assert not theirs.exists() and not unlocked.exists() and mine.is_dir()
        staging.remove(mine)
        assert not mine.exists()
    finally:
        if holder.poll() is None:
            holder.kill()
