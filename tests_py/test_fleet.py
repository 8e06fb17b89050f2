"""Several hosts sharing one S3 repository: three writer processes, each with its own catalog
and its own cache, take snapshots of their graphs while a maintenance process runs forget and
prune with a short grace (and so compacts the index) over and over. Afterwards a fresh catalog
verifies every chunk, and every snapshot that survived restores what its writer backed up."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from helpers import cli, server_env

from lightrag.backup.offline_graph import graph_files

pytestmark = pytest.mark.cloud

WRITER = r'''
import hashlib, json, os, sys
from pathlib import Path
from lightrag.backup import BackupManager
from lightrag.backup.errors import RepositoryConflictError
from lightrag.backup.offline_graph import graph_files
from lightrag.backup.storage import storage_from_url

url, graph_id, folder, catalog, rounds, out = sys.argv[1:]
manager = BackupManager(storage_from_url(url), catalog)
graph = Path(folder)
graph.mkdir(parents=True, exist_ok=True)
manager.register_graph(graph_id, graph)
made, conflicts = {}, 0
for n in range(int(rounds)):
    (graph / "kv_store_full_docs.json").write_text(json.dumps({f"{graph_id}-{n}": {"content": f"round {n} " * 50}}))
    (graph / "vdb_entities.json").write_bytes(os.urandom(96 * 1024))
    for attempt in range(8):
        try:
            snapshot = manager.get_graph(graph_id).create_snapshot()
            break
        except RepositoryConflictError:
            conflicts += 1  # a prune took data this snapshot reused: retried, as documented
    else:
        raise SystemExit("the snapshot kept conflicting with the prunes")
    made[snapshot.snapshot_id] = {k: hashlib.sha256(v).hexdigest() for k, v in graph_files(graph).items()}
Path(out).write_text(json.dumps({"made": made, "conflicts": conflicts}))
'''


def digests(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest() for name, data in graph_files(folder).items()}


def test_three_writers_and_a_pruning_maintainer_on_one_s3_repository_lose_nothing(tmp_path: Path):
    url = f"s3://{server_env('LRB_TEST_S3_BUCKET')}/pytest/{uuid.uuid4().hex}"
    env = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "fleet-secret", "AWS_ENDPOINT_URL": server_env("LRB_TEST_S3_ENDPOINT")}
    full_env = {**os.environ, **env}
    assert cli("--repo", url, "init", env=env).returncode == 0

    writers = []
    for number in range(3):
        host = tmp_path / f"host-{number}"
        host.mkdir()
        writers.append(subprocess.Popen(
            [sys.executable, "-c", WRITER, url, f"graph-{number}", str(host / "graph"), str(host / "catalog.sqlite3"),
             "12", str(host / "made.json")],
            env={**full_env, "LIGHTRAG_BACKUP_CACHE_DIR": str(host / "cache")}, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True))
    # The maintainer: its own catalog and cache, forget (keep the newest 3 of every graph) and
    # prune with a 1 s grace, again and again while the writers run.
    maintainer = tmp_path / "maintainer"
    maintenance_env = {**env, "LIGHTRAG_BACKUP_CACHE_DIR": str(maintainer / "cache")}
    base = ("--repo", url, "--catalog", str(maintainer / "catalog.sqlite3"), "--no-progress", "--json")
    rounds, deleted = 0, 0
    while any(w.poll() is None for w in writers) or rounds < 2:
        forgot = cli(*base, "forget", "--keep-last", "3", env=maintenance_env)
        assert forgot.returncode == 0, forgot.stderr
        pruned = cli(*base, "prune", "--grace", "1", "--repack-threshold", "0", env=maintenance_env)
        # Another prune (none here) or a compaction by a writer holds the lock: a conflict.
        assert pruned.returncode == 0 or "is running" in pruned.stderr, pruned.stderr
        if pruned.returncode == 0:
            deleted += json.loads(pruned.stdout)["packs_deleted"]
        rounds += 1
        time.sleep(0.2)
    for writer in writers:
        assert writer.wait() == 0, writer.stderr.read() if writer.stderr else ""
    assert deleted > 0, "the prunes freed data while the writers ran"

    made: dict[str, dict[str, str]] = {}
    for number in range(3):
        made.update(json.loads((tmp_path / f"host-{number}" / "made.json").read_text())["made"])
    assert len(made) == 36

    # A fresh host: a new catalog and an empty cache read every chunk of every snapshot.
    fresh = ("--repo", url, "--catalog", str(tmp_path / "fresh.sqlite3"), "--no-progress")
    fresh_env = {**env, "LIGHTRAG_BACKUP_CACHE_DIR": str(tmp_path / "fresh-cache")}
    verify = cli(*fresh, "--json", "verify", "--all-graphs", env=fresh_env)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    survivors = json.loads(cli(*fresh, "--json", "list", env=fresh_env).stdout)
    assert len(survivors) >= 9, "at least the newest 3 of every graph"
    for snapshot in survivors:
        assert snapshot["snapshot_id"] in made, "every surviving snapshot is one a writer committed"
        target = tmp_path / "restored" / snapshot["snapshot_id"]
        restored = cli(*fresh, "restore", "-g", snapshot["graph_id"], snapshot["snapshot_id"], "--target", str(target),
                       env=fresh_env)
        assert restored.returncode == 0, restored.stderr
        assert digests(target) == made[snapshot["snapshot_id"]]
