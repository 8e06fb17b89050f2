"""Graphs kept in databases: PostgreSQL 15 and Redis from Debian, started by
``scripts/test-servers.sh``. Real LightRAG graphs are built in each combination, snapshotted,
changed, snapshotted again and restored into fresh backends of the same and other kinds and
into file storages; every record and vector is compared, and LightRAG answers the same queries
from each restored graph.

Without the servers these tests skip, unless ``LRB_REQUIRE_CLOUD_BACKENDS=1`` (CI).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import numpy as np
import pytest
from helpers import QUESTION, forget_shared_data, free_port, server_env

from lightrag.backup import GraphBackup
from lightrag.backup.errors import GraphStorageUnavailableError, InvalidInputError
from lightrag.backup.offline_graph import build_graph, documents, new_rag
from lightrag.backup.records import StorageConfig, capture, digest, layout, load, mapping
from lightrag.backup.records.target import _environment

POSTGRES = {"kv_storage": "PGKVStorage", "doc_status_storage": "PGDocStatusStorage", "graph_storage": "PGTableGraphStorage"}
REDIS = {"kv_storage": "RedisKVStorage", "doc_status_storage": "RedisDocStatusStorage"}
# Redis KV beside PostgreSQL doc status and graph: a graph spread over two databases.
MIXED = {"kv_storage": "RedisKVStorage", "doc_status_storage": "PGDocStatusStorage", "graph_storage": "PGTableGraphStorage"}


pytestmark = pytest.mark.databases


@pytest.fixture(scope="module")
def db_env() -> dict[str, str]:
    """The backend variables LightRAG's storages read, for the test servers."""
    return {
        "POSTGRES_HOST": server_env("LRB_TEST_PG_HOST"),
        "POSTGRES_PORT": server_env("LRB_TEST_PG_PORT"),
        "POSTGRES_USER": server_env("LRB_TEST_PG_USER"),
        "POSTGRES_PASSWORD": "",
        "POSTGRES_DATABASE": "postgres",
        "REDIS_URI": server_env("LRB_TEST_REDIS_URI"),
    }


@pytest.fixture(autouse=True)
def _fresh_shared_data():
    forget_shared_data()
    yield
    forget_shared_data()


def workspace() -> str:
    return "t" + uuid.uuid4().hex[:12]


@contextlib.asynccontextmanager
async def graph(
    folder: Path, env: dict[str, str], storages: "dict[str, str] | None", *, ws: str, docs: int = 4
) -> AsyncIterator[Any]:
    """A live LightRAG instance (stub models) on ``storages``, with ``docs`` documents."""
    with _environment(env):
        rag = await (build_graph(folder, docs, workspace=ws, storages=storages) if docs else
                     new_rag(folder, workspace=ws, storages=storages))
    try:
        yield rag
    finally:
        await rag.finalize_storages()


async def records_of(rag: Any, folder: Path) -> dict[str, Any]:
    """Every record of an instance, comparable across backends: write times left out."""
    await capture.capture(rag, folder)
    return comparable(load.Records(folder))


def comparable(records: "load.Records") -> dict[str, Any]:
    out: dict[str, Any] = {name: {k: mapping.comparable_kv(v) for k, v in kv.items()} for name, kv in records.kv.items()}
    out["nodes"] = {k: mapping.comparable_vector(v) for k, v in records.nodes.items()}
    out["edges"] = {(s, t): mapping.comparable_vector(p) for s, t, p in records.edges}
    for name, (metas, _) in records.vectors.items():
        out[name] = {k: mapping.comparable_vector(v) for k, v in metas.items()}
    return out


def differences(a: dict[str, Any], b: dict[str, Any], limit: int = 12) -> list[Any]:
    """The first differing (store, id, field, a, b), to say what a failed comparison saw."""
    found: list[Any] = []
    for store in sorted(set(a) | set(b)):
        sa, sb = a.get(store, {}), b.get(store, {})
        for key in sorted(set(sa) | set(sb), key=str):
            ra, rb = sa.get(key), sb.get(key)
            if ra == rb:
                continue
            if not isinstance(ra, dict) or not isinstance(rb, dict):
                found.append((store, key, ra is not None, rb is not None))
            else:
                found.extend(
                    (store, key, f, ra.get(f, "<absent>"), rb.get(f, "<absent>"))
                    for f in sorted(set(ra) | set(rb))
                    if ra.get(f, "<absent>") != rb.get(f, "<absent>")
                )
            if len(found) >= limit * 20:
                break
    # One example of each differing (store, field).
    seen: dict[Any, Any] = {}
    for item in found:
        seen.setdefault((item[0], item[2]) if len(item) == 5 else item[:2], item)
    return list(seen.values())


def vectors_of(records: "load.Records") -> dict[str, dict[str, Any]]:
    return {
        name: {key: matrix[row] for row, key in enumerate(metas)} for name, (metas, matrix) in records.vectors.items()
    }


def assert_same_vectors(a: "load.Records", b: "load.Records", atol: float) -> None:
    va, vb = vectors_of(a), vectors_of(b)
    for name in va:
        assert set(va[name]) == set(vb[name]), name
        assert va[name], f"{name} holds no vectors: the graph is not a real test"
        for key in va[name]:
            assert np.allclose(va[name][key], vb[name][key], atol=atol, rtol=0), (name, key)


async def answers(rag: Any) -> dict[str, Any]:
    """The graph and LightRAG's global and naive answers. (``local`` ranks entities of equal
    degree in the order the store returns them, which is not part of a graph's state.)"""
    from lightrag import QueryParam

    kg = await rag.get_knowledge_graph("*", max_depth=2)
    out: dict[str, Any] = {
        "nodes": sorted((n.id, n.properties.get("description", "")) for n in kg.nodes),
        "edges": sorted(tuple(sorted((e.source, e.target))) for e in kg.edges),
    }
    for mode in ("global", "naive"):
        out[mode] = await rag.aquery(QUESTION, param=QueryParam(mode=mode, enable_rerank=False))
    assert out["nodes"] and out["naive"], "an empty graph proves nothing"
    return out


async def snapshot_records(backup: GraphBackup, snapshot_id: str, folder: Path) -> "load.Records":
    """The records a snapshot holds, as restored from the repository."""
    await backup.snapshots.aunpack(snapshot_id, folder)
    return load.Records(folder)


async def snapshot_change_snapshot(backup: GraphBackup, rag: Any) -> list[tuple[Any, dict[str, Any]]]:
    """Snapshot, change the graph (two more documents), snapshot again: each snapshot with the
    answers the graph gave when it was taken."""
    steps = []
    for step in range(2):
        if step:
            await rag.ainsert(documents(2, seed=41, start=60))
        snapshot = await backup.acreate_snapshot(f"step {step}")
        assert snapshot.metadata["records"]["complete"], snapshot.metadata["records"]
        steps.append((snapshot, await answers(rag)))
    assert steps[1][1]["nodes"] != steps[0][1]["nodes"], "the change changed nothing"
    return steps


async def restore_into_each(backup: GraphBackup, snapshot_id: str, source: "load.Records", then: dict[str, Any],
                            targets: list[Any], tmp_path: Path) -> None:
    """Restore the snapshot into each ``(kind, StorageConfig or None for files, vector
    tolerance)`` target; each holds the snapshot's every record, its vectors within the
    tolerance, and answers as the source did."""
    for kind, config, atol in targets:
        if config is None:
            await backup.arestore_snapshot(snapshot_id, tmp_path / "files" / "ws")
            assert (tmp_path / "files" / "ws" / "kv_store_full_docs.json").exists()
            config = StorageConfig(working_dir=str(tmp_path / "files"), workspace="ws")
        else:
            await backup.arestore_snapshot(snapshot_id, into=config)
        async with graph(Path(config.working_dir), dict(config.env), config.storages(), ws=config.workspace,
                         docs=0) as target:
            check = tmp_path / f"check-{kind}"
            restored = await records_of(target, check)
            assert restored == comparable(source), (kind, differences(comparable(source), restored))
            assert_same_vectors(source, load.Records(check), atol=atol)
            assert await answers(target) == then, kind
        forget_shared_data()


async def restore_each_step(backup: GraphBackup, steps: list[tuple[Any, dict[str, Any]]], tmp_path: Path,
                            targets: Callable[[], list[Any]]) -> None:
    """Each snapshot of ``steps`` restored into fresh ``targets()`` (see :func:`restore_into_each`)."""
    for step, (snapshot, then) in enumerate(steps):
        folder = tmp_path / f"step{step}"
        source = await snapshot_records(backup, snapshot.snapshot_id, folder / "snap")
        await restore_into_each(backup, snapshot.snapshot_id, source, then, targets(), folder)


async def test_a_postgres_graph_restores_into_every_backend_with_its_vectors(tmp_path, storage, db_env):
    async with graph(tmp_path / "src", db_env, POSTGRES, ws=workspace()) as rag:
        backup = GraphBackup.from_rag("pg", rag, storage)
        assert backup.records
        steps = await snapshot_change_snapshot(backup, rag)
    meta = steps[0][0].metadata["records"]
    assert steps[0][0].metadata["capture"] == "records", meta
    assert meta["storages"]["full_docs"] == "PGKVStorage"
    assert meta["counts"]["full_docs"] == 4 and meta["counts"]["graph_nodes"] > 10
    # Its vectors live in NanoVectorDB files, in memory: read with the pipeline held.
    assert meta["read"] == "pipeline_held", meta
    assert steps[1][0].metadata["records"]["counts"]["full_docs"] == 6
    # Nano (the vector store of the targets) keeps float16: 2^-11 of a unit vector's entries.
    await restore_each_step(backup, steps, tmp_path, lambda: [
        ("files", None, 5e-4),
        ("postgres", StorageConfig(**POSTGRES, working_dir=str(tmp_path / "t-pg"), workspace=workspace(), env=db_env),
         5e-4),
        ("redis", StorageConfig(**REDIS, working_dir=str(tmp_path / "t-redis"), workspace=workspace(), env=db_env),
         5e-4),
    ])


async def test_restore_into_its_own_live_postgres_instance_keeps_a_safety_snapshot(tmp_path, storage, db_env):
    async with graph(tmp_path / "src", db_env, POSTGRES, ws=workspace()) as rag:
        backup = GraphBackup.from_rag("own", rag, storage)
        first = await backup.acreate_snapshot()
        then = await answers(rag)
        await rag.ainsert(documents(2, seed=3, start=80))
        changed = await answers(rag)
        assert changed["nodes"] != then["nodes"]

        await backup.arestore_snapshot(first.snapshot_id)
        assert await answers(rag) == then
        assert backup.last_restore["safety_snapshot"]
        safety = await backup.aget_snapshot(backup.last_restore["safety_snapshot"]["snapshot_id"])
        assert "pre-restore" in safety.tags and safety.metadata["records"]["counts"]["full_docs"] == 6

        # It keeps working: an insert lands on top of the restored graph.
        await rag.ainsert(documents(1, seed=4, start=90))
        assert len((await answers(rag))["nodes"]) > len(then["nodes"])

        # And the safety snapshot brings back what the restore replaced.
        await backup.arestore_snapshot(safety.snapshot_id, safety_snapshot=False)
        assert await answers(rag) == changed


async def test_a_redis_graph_restores_into_a_fresh_redis_database_postgres_and_files(tmp_path, storage, db_env):
    async with graph(tmp_path / "src", db_env, REDIS, ws=workspace()) as rag:
        backup = GraphBackup.from_rag("redis", rag, storage)
        steps = await snapshot_change_snapshot(backup, rag)
    assert steps[0][0].metadata["records"]["storages"]["full_docs"] == "RedisKVStorage"
    fresh_db = dict(db_env, REDIS_URI=db_env["REDIS_URI"].rstrip("/") + "/4")
    await restore_each_step(backup, steps, tmp_path, lambda: [
        ("redis-db4", StorageConfig(**REDIS, working_dir=str(tmp_path / "r4"), workspace=workspace(), env=fresh_db),
         5e-4),
        ("postgres", StorageConfig(**POSTGRES, working_dir=str(tmp_path / "pg"), workspace=workspace(), env=db_env),
         5e-4),
        ("files", None, 5e-4),
    ])


async def test_a_file_graph_restores_into_databases(tmp_path, storage, db_env):
    async with graph(tmp_path / "src", db_env, None, ws="") as rag:
        backup = GraphBackup.from_rag("files", rag, storage)
        assert not backup.records
        snapshot = await backup.acreate_snapshot()
        source = await records_of(rag, tmp_path / "source-records")
        then = await answers(rag)
    for name, storages in (("mixed", MIXED), ("redis", REDIS)):
        config = StorageConfig(**storages, working_dir=str(tmp_path / name), workspace=workspace(), env=db_env,
                               embedding_model="stub-16")
        await backup.arestore_snapshot(snapshot.snapshot_id, into=config)
        async with graph(Path(config.working_dir), db_env, config.storages(), ws=config.workspace, docs=0) as target:
            restored = await records_of(target, tmp_path / f"check-{name}")
            assert restored == source, (name, differences(source, restored))
            assert await answers(target) == then, name
        forget_shared_data()


AGED_RESTORE = (
    "import sys\n"
    "from lightrag.backup import GraphBackup\n"
    "from lightrag.backup.storage import LocalBackupStorage\n"
    "GraphBackup('aged', LocalBackupStorage(sys.argv[1], create=False), working_dir=sys.argv[2])"
    ".restore_snapshot(sys.argv[3])\n"
)


async def test_a_records_restore_expires_safety_snapshots_past_their_week(tmp_path, storage, db_env):
    """Safety snapshots expire after a week whatever restores the graph: a restore into
    databases forgets them, in the repository and in the catalog, as a file restore does."""
    from datetime import datetime, timezone

    folder = tmp_path / "wd"
    async with graph(folder, db_env, None, ws="") as rag:
        snapshot = await GraphBackup.from_rag("aged", rag, storage).acreate_snapshot()
        await rag.ainsert(documents(1, seed=5, start=40))
    forget_shared_data()
    # A restore eight days ago (by the child's clock, libfaketime) kept what it replaced.
    subprocess.run(["faketime", "-f", "-8d", sys.executable, "-c", AGED_RESTORE, str(tmp_path / "repo"),
                    str(folder), snapshot.snapshot_id], check=True, timeout=300)
    from lightrag.backup import BackupManager

    manager = BackupManager(storage, tmp_path / "catalog.sqlite3")
    manager.register_graph("aged", working_dir=folder)
    backup = manager.get_graph("aged")
    manager.rebuild_catalog_of("aged")  # the snapshots were taken before this catalog existed
    aged = [s for s in await backup.alist_snapshots() if "pre-restore" in s.tags]
    assert len(aged) == 1 and (datetime.now(timezone.utc) - aged[0].timestamp).days >= 7, aged
    assert {r["backup_id"] for r in manager.catalog.snapshots("aged")} == {snapshot.snapshot_id, aged[0].snapshot_id}

    config = StorageConfig(**REDIS, working_dir=str(tmp_path / "redis"), workspace=workspace(), env=db_env,
                           embedding_model="stub-16")
    await backup.arestore_snapshot(snapshot.snapshot_id, into=config)
    assert backup.last_restore["expired_safety_snapshots"] == [aged[0].snapshot_id], backup.last_restore
    assert [s.snapshot_id for s in await backup.alist_snapshots()] == [snapshot.snapshot_id]
    # The catalog forgets it too (it would list a snapshot the repository no longer has).
    assert [r["backup_id"] for r in manager.catalog.snapshots("aged")] == [snapshot.snapshot_id]
    # A safety snapshot within its week stays (one taken by a records restore now).
    async with graph(tmp_path / "own", db_env, REDIS, ws=config.workspace, docs=0) as target:
        own = GraphBackup.from_rag("aged", target, storage)
        await own.arestore_snapshot(snapshot.snapshot_id, into=None, replace=True)
        assert own.last_restore["expired_safety_snapshots"] == []
    assert any("pre-restore" in s.tags for s in await backup.alist_snapshots())


async def test_query_cache_entries_nothing_points_to_are_found_by_the_native_listing(tmp_path, storage, db_env):
    async with graph(tmp_path / "src", db_env, POSTGRES, ws=workspace()) as rag:
        before = await capture.capture(rag, tmp_path / "before")
        await answers(rag)  # queries cache their keywords and answers under keys no chunk lists
        after = await capture.capture(rag, tmp_path / "after")
    cache_before, cache_after = before["stores"]["llm_response_cache"], after["stores"]["llm_response_cache"]
    assert cache_after["native"] > cache_before["native"]
    assert cache_after["captured"] == cache_after["native"] > cache_after["derived"]
    assert after["complete"]


async def test_refusals_change_nothing(tmp_path, storage, db_env):
    async with graph(tmp_path / "src", db_env, POSTGRES, ws=workspace()) as rag:
        backup = GraphBackup.from_rag("refuse", rag, storage)
        snapshot = await backup.acreate_snapshot()
        occupied = StorageConfig(**POSTGRES, working_dir=str(tmp_path / "occ"), workspace=workspace(), env=db_env)
        await backup.arestore_snapshot(snapshot.snapshot_id, into=occupied)
        async with graph(tmp_path / "occ", db_env, POSTGRES, ws=occupied.workspace, docs=0) as target:
            held = await records_of(target, tmp_path / "held")
        forget_shared_data()

        # A target that holds a graph is not replaced unless asked.
        with pytest.raises(InvalidInputError, match="already holds a graph"):
            await backup.arestore_snapshot(snapshot.snapshot_id, into=occupied)
        folder = tmp_path / "out"
        await backup.arestore_snapshot(snapshot.snapshot_id, folder)
        with pytest.raises(InvalidInputError, match="already holds a LightRAG graph"):
            await backup.arestore_snapshot(snapshot.snapshot_id, folder)
        # Vectors of another dimension do not fit: refused before anything is dropped.
        with _environment(db_env):
            other = await new_rag(tmp_path / "dim", workspace=occupied.workspace, embedding_dim=8, storages=POSTGRES)
        try:
            with pytest.raises(InvalidInputError, match="16 dimensions"):
                await backup.arestore_snapshot(snapshot.snapshot_id, into=other, replace=True)
        finally:
            await other.finalize_storages()
        forget_shared_data()
        async with graph(tmp_path / "occ", db_env, POSTGRES, ws=occupied.workspace, docs=0) as target:
            assert await records_of(target, tmp_path / "held-after") == held
        with pytest.raises(InvalidInputError, match="LightRAG instance or a"):
            await backup.arestore_snapshot(snapshot.snapshot_id, into="postgres://somewhere")


async def test_records_are_laid_out_in_creation_order_and_vectors_are_exact_float32(tmp_path, storage, db_env):
    async with graph(tmp_path / "src", db_env, POSTGRES, ws=workspace()) as rag:
        folder = tmp_path / "records"
        manifest = await capture.capture(rag, folder)
        assert manifest["format"] == "lightrag-records" and manifest["version"] == 1
        assert manifest["embedding"] == {"dim": 16, "model_name": "stub-16"}
        assert manifest["lightrag_version"]
        for name in [*layout.ROLES, layout.NODES, layout.EDGES]:
            if name != layout.GRAPH:
                rows = {tuple(row[:-1]) if len(row) > 2 else row[0]: row[-1]
                        for row in layout.read_lines(folder / layout.records_file(name))}
                assert list(rows) == layout.creation_order(rows), f"{name} is not in creation order"
        for name in layout.VECTOR_STORES:
            ids = [row[0] for row in layout.read_lines(folder / layout.records_file(name))]
            raw = np.frombuffer((folder / layout.vectors_file(name, 16)).read_bytes(), dtype="<f4").reshape(len(ids), 16)
            # Exactly the float32 rows NanoVectorDB searches (its matrix), not the float16 copy
            # its get_vectors_by_ids decodes (that one within float16 rounding).
            client = await getattr(rag, name).client_storage
            matrix = {row["__id__"]: client["matrix"][i] for i, row in enumerate(client["data"])}
            decoded = await getattr(rag, name).get_vectors_by_ids(ids)
            for row, key in enumerate(ids):
                assert np.array_equal(raw[row], matrix[key]), (name, key)
                assert np.allclose(raw[row], decoded[key], atol=5e-4, rtol=0), (name, key)


def _start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [server_env("LRB_TEST_REDIS_BIN"), "--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder),
         "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    import socket

    deadline = time.monotonic() + 15
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            break
        assert time.monotonic() < deadline, "redis did not start"
        time.sleep(0.05)
    return process, f"redis://127.0.0.1:{port}"


async def test_the_database_going_away_mid_capture_commits_nothing(tmp_path, storage, db_env):
    process, uri = _start_redis(tmp_path)
    try:
        env = dict(db_env, REDIS_URI=uri)
        async with graph(tmp_path / "src", env, REDIS, ws=workspace()) as rag:
            backup = GraphBackup.from_rag("gone", rag, storage)
            good = await backup.acreate_snapshot()

            original = rag.text_chunks.get_by_ids

            async def killed_mid_read(ids: list[str]) -> Any:
                process.send_signal(signal.SIGKILL)
                process.wait()
                return await original(ids)

            rag.text_chunks.get_by_ids = killed_mid_read
            with pytest.raises(GraphStorageUnavailableError) as raised:
                await backup.acreate_snapshot()
            assert raised.value.retryable and raised.value.http_status == 503
            rag.text_chunks.get_by_ids = original
            assert [s.snapshot_id for s in await backup.alist_snapshots()] == [good.snapshot_id]
            assert (await backup.averify_snapshot(good.snapshot_id)).ok
            assert not list(Path(rag.working_dir).glob(".lightrag-backup-stage-*")), "staging left behind"
    finally:
        if process.poll() is None:
            process.kill()


def test_a_fresh_postgres_database_is_restored_from_another_process(tmp_path, storage, db_env):
    """LightRAG keeps one PostgreSQL pool per process: a graph moved to another database is
    restored by a process of its own (here a child running the same API)."""
    ws = workspace()
    database = "lrb_" + uuid.uuid4().hex[:8]
    psql = [os.path.join(server_env("LRB_TEST_PG_BIN"), "psql"), "-h", db_env["POSTGRES_HOST"], "-p",
            db_env["POSTGRES_PORT"], "-U", db_env["POSTGRES_USER"], "-v", "ON_ERROR_STOP=1"]
    if not os.path.exists(psql[0]):
        psql[0] = "psql"
    subprocess.run([*psql, "-c", f"CREATE DATABASE {database}"], check=True, capture_output=True)
    script = f"""
import asyncio, json, os, sys
from lightrag.backup import GraphBackup
from lightrag.backup.storage import LocalBackupStorage
from lightrag.backup.offline_graph import build_graph, new_rag
from lightrag.backup.records import StorageConfig
from lightrag.backup.records.target import _environment
POSTGRES = {POSTGRES!r}
env = json.loads(sys.argv[1])
async def main():
    repo = LocalBackupStorage({str(tmp_path / 'repo')!r})
    if sys.argv[2] == "backup":
        with _environment(env):
            rag = await build_graph({str(tmp_path / 'src')!r}, 3, workspace={ws!r}, storages=POSTGRES)
        snapshot = await GraphBackup.from_rag("moved", rag, repo).acreate_snapshot()
        await rag.finalize_storages()
        print(json.dumps(snapshot.snapshot_id))
    else:
        target = StorageConfig(**POSTGRES, working_dir={str(tmp_path / 'dst')!r}, workspace={ws!r}, env=env)
        await GraphBackup("moved", repo, {str(tmp_path / 'unused')!r}).arestore_snapshot(sys.argv[3], into=target)
        with _environment(env):
            rag = await new_rag({str(tmp_path / 'dst')!r}, workspace={ws!r}, storages=POSTGRES)
        print(json.dumps(len(await rag.chunk_entity_relation_graph.get_all_nodes())))
        await rag.finalize_storages()
asyncio.run(main())
"""
    source_env = json.dumps(db_env)
    target_env = json.dumps(dict(db_env, POSTGRES_DATABASE=database))
    try:
        run = lambda *args: json.loads(  # noqa: E731
            subprocess.run([sys.executable, "-c", script, *args], check=True, capture_output=True, text=True,
                           timeout=300).stdout.strip().splitlines()[-1]
        )
        snapshot_id = run(source_env, "backup")
        nodes = run(target_env, "restore", snapshot_id)
        assert nodes > 5
        count = subprocess.run(
            [*psql, "-d", database, "-tAc", f"SELECT count(*) FROM lightrag_doc_full WHERE workspace = '{ws}'"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
        assert count == "3"
    finally:
        subprocess.run([*psql, "-c", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"], capture_output=True)


def _env_file(path: Path, env: dict[str, str], storages: dict[str, str], working_dir: Path, ws: str) -> Path:
    names = {"kv_storage": "LIGHTRAG_KV_STORAGE", "vector_storage": "LIGHTRAG_VECTOR_STORAGE",
             "graph_storage": "LIGHTRAG_GRAPH_STORAGE", "doc_status_storage": "LIGHTRAG_DOC_STATUS_STORAGE"}
    lines = [f"{names[k]}={v}" for k, v in storages.items()]
    lines += [f"{k}={v}" for k, v in env.items()]
    lines += [f"WORKING_DIR={working_dir}", f"WORKSPACE={ws}", "EMBEDDING_DIM=16", "EMBEDDING_MODEL=stub-16"]
    path.write_text("\n".join(lines) + "\n")
    return path


async def test_the_cli_backs_up_from_lightrags_variables_and_restores_into_another_backend(tmp_path, db_env):
    from helpers import cli

    ws = workspace()
    async with graph(tmp_path / "src", db_env, POSTGRES, ws=ws) as rag:
        then = await answers(rag)  # its query cache entries are part of the graph backed up
        source = await records_of(rag, tmp_path / "source-records")
    forget_shared_data()
    source_env = _env_file(tmp_path / "source.env", db_env, POSTGRES, tmp_path / "src", ws)
    repo = str(tmp_path / "repo")
    unset = ("LIGHTRAG_BACKUP_STORAGE_PATH", "WORKING_DIR", "WORKSPACE", "LIGHTRAG_GRAPH_ID", "LIGHTRAG_BACKUP_S3_BUCKET")
    made = cli("--repo", repo, "--json", "snapshot", "--init", "--from-env", str(source_env), "-g", "cli", unset=unset)
    assert made.returncode == 0, made.stderr
    snapshot = json.loads(made.stdout)
    assert snapshot["graph_id"] == "cli"

    target_ws = workspace()
    target_env = _env_file(tmp_path / "target.env", db_env, REDIS, tmp_path / "dst", target_ws)
    done = cli("--repo", repo, "restore", "latest", "-g", "cli", "--into-env", str(target_env), unset=unset)
    assert done.returncode == 0, done.stderr
    assert "restored snapshot" in done.stdout and "full_docs" in done.stdout
    async with graph(tmp_path / "dst", db_env, REDIS, ws=target_ws, docs=0) as target:
        restored = await records_of(target, tmp_path / "check")
        assert restored == source, differences(source, restored)
        assert await answers(target) == then

    # The target holds a graph now: a second restore is refused, and says how to go on.
    again = cli("--repo", repo, "restore", "latest", "-g", "cli", "--into-env", str(target_env), unset=unset)
    assert again.returncode != 0 and "already holds a graph" in again.stderr and "replace" in again.stderr
    missing = cli("--repo", repo, "restore", "latest", "-g", "cli", "--into-env", str(tmp_path / "nope.env"), unset=unset)
    assert missing.returncode != 0 and "no such file" in missing.stderr
    replaced = cli("--repo", repo, "restore", "latest", "-g", "cli", "--into-env", str(target_env), "--replace",
                   unset=unset)
    assert replaced.returncode == 0, replaced.stderr


def _custom_kg(count: int) -> dict[str, Any]:
    """A graph of ``count`` entities in a chain, one chunk per ten, inserted without an LLM."""
    chunks, entities, relations = [], [], []
    for number in range(count):
        source = f"chunk-{number // 10:06d}"
        if number % 10 == 0:
            chunks.append({"content": f"chunk {number // 10} text " * 20, "source_id": source, "file_path": "kg.txt"})
        entities.append({"entity_name": f"Entity {number:06d}", "entity_type": "concept",
                         "description": f"entity number {number}", "source_id": source})
        if number:
            relations.append({"src_id": f"Entity {number - 1:06d}", "tgt_id": f"Entity {number:06d}",
                              "description": f"link {number}", "keywords": "chain", "weight": 1.0,
                              "source_id": source})
    return {"chunks": chunks, "entities": entities, "relationships": relations}


KILLED_SNAPSHOT = """
import asyncio, json, sys, time
from lightrag.backup import GraphBackup
from lightrag.backup.offline_graph import new_rag
from lightrag.backup.records.target import _environment
from lightrag.backup.storage import LocalBackupStorage

env, storages, point, repo, working_dir, ws = *map(json.loads, sys.argv[1:3]), *sys.argv[3:]

def progress(phase, done, total):
    if phase == point:
        print("AT", phase, done, total, flush=True)
        time.sleep(600)  # killed here

async def main():
    with _environment(env):
        rag = await new_rag(working_dir, workspace=ws, storages=storages)
    await GraphBackup.from_rag("killed", rag, LocalBackupStorage(repo)).acreate_snapshot(progress=progress)
    print("FINISHED", flush=True)

asyncio.run(main())
"""


async def test_a_snapshot_process_killed_mid_capture_commits_nothing_and_the_next_one_removes_its_leftovers(
    tmp_path, storage, db_env
):
    """SIGKILL of the snapshotting process while it reads the records under the pipeline hold,
    while it lays them out, and as the engine starts storing them (a kill in the middle of the
    engine's writes is tested on a large graph in test_crash_and_processes: records go through
    the same commit order): no snapshot is committed, the earlier one verifies and restores,
    and the next snapshot completes, holds the same graph and removes the staging folders the
    killed processes left behind."""
    ws = workspace()
    with _environment(db_env):
        rag = await new_rag(tmp_path / "src", workspace=ws, storages=POSTGRES)
    try:
        await rag.ainsert_custom_kg(_custom_kg(1500))
        backup = GraphBackup.from_rag("killed", rag, storage)
        good = await backup.acreate_snapshot()
        assert good.metadata["records"]["complete"]
    finally:
        await rag.finalize_storages()
    forget_shared_data()

    for point in ("records:kv", "records:write", "snapshot"):
        child = subprocess.Popen(
            [sys.executable, "-c", KILLED_SNAPSHOT, json.dumps(db_env), json.dumps(POSTGRES), point,
             str(tmp_path / "repo"), str(tmp_path / "src"), ws],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        line = child.stdout.readline()
        assert line.startswith("AT " + point), (point, line, child.communicate(timeout=60))
        left = list((tmp_path / "src").glob(".lightrag-backup-stage-*"))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        assert left, f"killed at {point} with nothing staged: the test kills too early"
        assert [s.snapshot_id for s in await backup.alist_snapshots()] == [good.snapshot_id], point
        assert (await backup.averify_snapshot(good.snapshot_id, read_data=True)).ok, point

    with _environment(db_env):
        rag = await new_rag(tmp_path / "src", workspace=ws, storages=POSTGRES)
    try:
        after = await GraphBackup.from_rag("killed", rag, storage).acreate_snapshot()
    finally:
        await rag.finalize_storages()
    assert after.metadata["records"]["complete"]
    # The same graph: a process reopening NanoVectorDB files reads float16-rounded vectors
    # (within VECTOR_TOLERANCE of the float32 ones the first process held), the rest exactly.
    assert after.metadata["records"]["digest"] == good.metadata["records"]["digest"]
    assert not list((tmp_path / "src").glob(".lightrag-backup-stage-*")), "the killed runs' staging stayed"
    first, last = [await snapshot_records(backup, s.snapshot_id, tmp_path / f"check-{s.snapshot_id}")
                   for s in (good, after)]
    assert comparable(first) == comparable(last)
    assert not digest.vectors_differ(first.vectors, last.vectors)


async def test_a_restore_killed_midway_is_marked_refused_for_backup_and_completed_by_running_it_again(
    tmp_path, storage, db_env
):
    from helpers import cli

    from lightrag.backup.errors import RestoreIncompleteError

    rag = await new_rag(tmp_path / "src")
    try:
        await rag.ainsert_custom_kg(_custom_kg(4000))
        backup = GraphBackup.from_rag("big", rag, storage)
        snapshot = await backup.acreate_snapshot()
        source = await records_of(rag, tmp_path / "source-records")
    finally:
        await rag.finalize_storages()
    forget_shared_data()

    ws = workspace()
    target_env = _env_file(tmp_path / "target.env", db_env, POSTGRES, tmp_path / "dst", ws)
    marker = tmp_path / "dst" / f".lightrag-backup-restoring-{ws}.json"
    command = ["lightrag-backup", "--repo", str(tmp_path / "repo"), "restore", snapshot.snapshot_id, "-g", "big",
               "--into-env", str(target_env)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "the restore never began writing"
        time.sleep(0.005)
    time.sleep(0.3)  # into the writes
    assert child.poll() is None, "the restore finished before it could be killed: make the graph larger"
    child.send_signal(signal.SIGKILL)
    child.wait()

    # The target says it is partial: a backup of it is refused, naming the snapshot.
    assert json.loads(marker.read_text())["snapshot_id"] == snapshot.snapshot_id
    with _environment(db_env):
        target = await new_rag(tmp_path / "dst", workspace=ws, storages=POSTGRES)
    try:
        with pytest.raises(RestoreIncompleteError, match=snapshot.snapshot_id):
            await GraphBackup.from_rag("partial", target, storage).acreate_snapshot()
    finally:
        await target.finalize_storages()
    forget_shared_data()

    # Running the same restore again completes it (no --replace needed for its own partial state).
    again = cli("--repo", str(tmp_path / "repo"), "restore", snapshot.snapshot_id, "-g", "big", "--into-env",
                str(target_env))
    assert again.returncode == 0, again.stderr
    assert not marker.exists()
    # PostgreSQL keeps no source_id/status on text chunks (custom-KG chunks have them): said, not hidden.
    assert "not stored by the target" in again.stdout and "text_chunks.source_id in 400 records" in again.stdout
    for chunk in source["text_chunks"].values():
        chunk.pop("source_id", None)
        chunk.pop("status", None)
    async with graph(tmp_path / "dst", db_env, POSTGRES, ws=ws, docs=0) as target:
        restored = await records_of(target, tmp_path / "check")
        assert restored == source, differences(source, restored)


async def test_recovery_points_hold_database_graphs_and_fail_over_into_the_same_or_another_backend(tmp_path, db_env):
    """A recovery point of a live PostgreSQL graph; a failover restores it into the same
    instance (its records re-stamped on write: validated by content, not bytes), and a
    standby with no database fails over into LightRAG files in its graphs dir."""
    from lightrag.backup import BackupManager
    from lightrag.backup.storage import LocalBackupStorage
    from lightrag.recovery import DisasterRecoveryManager
    from lightrag.backup.instance import instance_role, set_instance_role

    async with graph(tmp_path / "src", db_env, POSTGRES, ws=workspace()) as rag:
        manager = BackupManager(LocalBackupStorage(tmp_path / "repo"), tmp_path / "catalog.sqlite3")
        manager.register_graph("pg", rag=rag)
        recovery = DisasterRecoveryManager(manager)
        point = await recovery.acreate_recovery_point(description="database graph")
        snapshot = await manager.get_graph("pg").aget_snapshot(point.snapshots["pg"])
        assert snapshot.metadata["capture"] == "records" and snapshot.metadata["records"]["digest"]
        validated = await recovery.avalidate_recovery_point(point.checkpoint_id)
        assert validated["validated"], validated
        then = await answers(rag)
        point_records = await records_of(rag, tmp_path / "point-records")

        await rag.ainsert(documents(2, seed=21, start=70))
        set_instance_role(manager.catalog, "standby")
        assert await recovery.ainitiate_failover(point.checkpoint_id) is True, json.dumps(recovery.last_report,
                                                                                          default=str)
        report = recovery.last_report
        assert report["ok"] and report["validation"]["ok"], report
        assert [a["action"] for a in report["actions"]] == ["restore", "adopt", "promote"]
        assert instance_role(manager.catalog) == "primary"
        # Before any query adds its cache entries: the graph holds the point's records.
        pg = manager.get_graph("pg")
        assert await pg.aholds_snapshot(point.snapshots["pg"])
        assert await answers(rag) == then
        restored = await records_of(rag, tmp_path / "after-failover")
        assert restored == point_records, differences(point_records, restored)
        await rag.ainsert(documents(1, seed=22, start=75))
        assert not await pg.aholds_snapshot(point.snapshots["pg"]), "a changed graph still holds the point"

    # Another machine's standby, with no PostgreSQL: the same point into a folder of files.
    forget_shared_data()
    other = BackupManager(LocalBackupStorage(tmp_path / "repo"), tmp_path / "other.sqlite3")
    set_instance_role(other.catalog, "standby")
    elsewhere = DisasterRecoveryManager(other, graphs_dir=tmp_path / "graphs")
    assert await elsewhere.ainitiate_failover(point.checkpoint_id) is True, json.dumps(elsewhere.last_report, default=str)
    assert elsewhere.last_report["validation"]["ok"], elsewhere.last_report
    folder = tmp_path / "graphs" / "pg"
    assert (folder / "kv_store_full_docs.json").exists() and not list(folder.glob("records*"))
    forget_shared_data()
    shutil_copy = tmp_path / "as-files"
    import shutil

    shutil.copytree(folder, shutil_copy / "ws")
    async with graph(shutil_copy, db_env, None, ws="ws", docs=0) as files_rag:
        assert await answers(files_rag) == then


async def test_a_standby_applies_replicated_database_snapshots_into_its_own_files(tmp_path, db_env):
    """A PostgreSQL graph's snapshots, pushed by the primary's server to a standby's server
    over HTTP, are applied there into a folder of LightRAG files: another backend."""
    import asyncio

    from helpers import start_server, stop_serve, wait_applied

    from lightrag.backup.storage import LocalBackupStorage

    primary = start_server(tmp_path, "primary", "primary-key")
    standby = start_server(tmp_path, "standby", "standby-key", "--role", "standby")
    try:
        (standby["graphs"] / "pg").mkdir()
        on = await asyncio.to_thread(standby["client"].put, "/replication/graphs/pg/apply", json={"enabled": True})
        assert on.status_code == 200, on.text
        made = await asyncio.to_thread(primary["client"].post, "/replication/targets",
                                       json={"name": "standby", "base_url": standby["base"], "api_key": "standby-key"})
        assert made.status_code == 201, made.text
        repo = LocalBackupStorage(primary["repo"], create=False)

        async def push() -> None:
            pushed = await asyncio.to_thread(primary["client"].post, "/replication/graphs/pg/replicate?wait=true")
            assert pushed.json()["result"]["standby"]["status"] == "completed", pushed.text

        async with graph(tmp_path / "src", db_env, POSTGRES, ws=workspace()) as rag:
            backup = GraphBackup.from_rag("pg", rag, repo)
            snapshots = []
            for step in range(2):
                if step:
                    await rag.ainsert(documents(2, seed=31, start=60))
                snapshots.append(await backup.acreate_snapshot(f"step {step}"))
                source = await records_of(rag, tmp_path / f"source-{step}")
                await push()
                applied = await asyncio.to_thread(wait_applied, standby["client"], "pg", snapshots[-1].snapshot_id)
                folder = standby["graphs"] / "pg"
                assert (folder / "kv_store_full_docs.json").exists() and not list(folder.glob("records*"))
                # Opened under a workspace of its own (one process shares a workspace's data).
                copy = tmp_path / f"standby-copy-{step}"
                import shutil

                shutil.copytree(folder, copy / f"ws{step}")
                async with graph(copy, db_env, None, ws=f"ws{step}", docs=0) as served:
                    restored = await records_of(served, tmp_path / f"standby-{step}")
                    assert restored == source, differences(source, restored)
            # The second apply replaced a graph: the standby kept what it replaced.
            assert applied["safety_snapshot"], applied
    finally:
        stop_serve(primary)
        stop_serve(standby)


def test_lightrag_backup_server_backs_up_and_restores_its_postgres_instance(tmp_path, db_env):
    """The real server (LightRAG's own, with the backup routes) on LightRAG's PostgreSQL
    storages, configured the way LightRAG's server is: its live instance is snapshotted as
    records and restored into, and it answers from the restored graph without a restart."""
    from helpers import exists, insert, labels, start_mounted as start, stop_mounted as stop, wait_job

    import httpx

    ws = workspace()
    env = {**db_env, "LIGHTRAG_KV_STORAGE": POSTGRES["kv_storage"],
           "LIGHTRAG_DOC_STATUS_STORAGE": POSTGRES["doc_status_storage"],
           "LIGHTRAG_GRAPH_STORAGE": POSTGRES["graph_storage"], "WORKSPACE": ws}
    process, base = start(tmp_path, "--backup-repo", str(tmp_path / "repo"), "--backup-graph-id", "served",
                          "--backup-catalog", str(tmp_path / "catalog.sqlite3"), env=env)
    from helpers import MOUNTED_API_KEY as API_KEY

    client = httpx.Client(base_url=base, headers={"X-API-Key": API_KEY}, timeout=120)
    try:
        insert(client, "[[Alice Smith]] works at [[Orion Lab]] in [[Lisbon]]. [[Orion Lab]] funds [[Project Zeta]].",
               "a.txt")
        before = labels(client)
        made = client.post("/backup/graphs/served/snapshots?wait=true", json={"description": "after a.txt"})
        assert made.status_code == 200, made.text
        snapshot = made.json()["result"]
        assert snapshot["metadata"]["capture"] == "records", snapshot["metadata"]
        records = snapshot["metadata"]["records"]
        assert records["complete"] and records["storages"]["full_docs"] == "PGKVStorage", records
        assert snapshot["metadata"]["entities"] == len(before)

        insert(client, "[[Bruno Costa]] leads [[Helix Institute]] in [[Osaka]].", "b.txt")
        assert exists(client, "Helix Institute")
        started = client.post(f"/backup/graphs/served/snapshots/{snapshot['snapshot_id']}/restore", json={})
        assert started.status_code == 202, started.text
        job = wait_job(client, started.json())
        assert job["state"] == "succeeded", job
        assert labels(client) == before and not exists(client, "Helix Institute")
        documents = client.post("/documents/paginated", json={"page": 1, "page_size": 50}).json()["documents"]
        assert sorted(d["file_path"] for d in documents) == ["a.txt"], documents
        listed = client.get("/backup/graphs/served/snapshots").json()
        assert any("pre-restore" in s["tags"] for s in listed), "a safety snapshot precedes the restore"
        # It goes on working: a new document is processed, and backed up.
        insert(client, "[[Chen Wu]] visits [[Riga]].", "c.txt")
        again = client.post("/backup/graphs/served/snapshots?wait=true", json={})
        assert again.status_code == 200 and again.json()["result"]["metadata"]["entities"] == len(before) + 2
    finally:
        client.close()
        stop(process)


PGVECTOR = {**POSTGRES, "vector_storage": "PGVectorStorage"}


async def test_a_pgvector_graph_restores_exactly_into_pgvector_files_and_redis(tmp_path, storage, db_env):
    """Every storage in PostgreSQL, vectors in pgvector (PostgreSQL 16 + pgvector 0.6 from the
    pgserver wheel): restored into a fresh pgvector workspace the vectors are bit-identical;
    into files and Redis + NanoVectorDB within its renormalisation; every graph answers alike.
    Then a graph built on PostgreSQL 15 (no pgvector) moves into pgvector: another server,
    after this process's pool to the first one closed."""
    vector_env = dict(db_env, POSTGRES_PORT=server_env("LRB_TEST_PGVECTOR_PORT"))
    async with graph(tmp_path / "src", vector_env, PGVECTOR, ws=workspace()) as rag:
        backup = GraphBackup.from_rag("pgvector", rag, storage)
        steps = await snapshot_change_snapshot(backup, rag)
    assert steps[0][0].metadata["records"]["storages"]["entities_vdb"] == "PGVectorStorage"
    await restore_each_step(backup, steps, tmp_path, lambda: [
        ("pgvector", StorageConfig(**PGVECTOR, working_dir=str(tmp_path / "pv"), workspace=workspace(), env=vector_env),
         0.0),
        ("redis", StorageConfig(**REDIS, working_dir=str(tmp_path / "rd"), workspace=workspace(), env=db_env), 5e-4),
        ("files", None, 5e-4),
    ])

    async with graph(tmp_path / "pg15", db_env, POSTGRES, ws=workspace()) as rag:
        plain = GraphBackup.from_rag("pg15", rag, storage)
        moved = await plain.acreate_snapshot()
        before = await records_of(rag, tmp_path / "pg15-records")
    into = StorageConfig(**PGVECTOR, working_dir=str(tmp_path / "moved"), workspace=workspace(), env=vector_env)
    await plain.arestore_snapshot(moved.snapshot_id, into=into)
    async with graph(tmp_path / "moved", vector_env, PGVECTOR, ws=into.workspace, docs=0) as target:
        restored = await records_of(target, tmp_path / "moved-records")
        assert restored == before, differences(before, restored)


async def vector_indexes(rag: Any) -> dict[str, list[str]]:
    """Each pgvector store's vector index definitions (``pg_indexes``)."""
    out = {}
    for name in layout.VECTOR_STORES:
        storage = getattr(rag, name)
        rows = await storage.db.query(
            "SELECT indexdef FROM pg_indexes WHERE tablename = $1 AND indexdef ~* ' USING (hnsw|ivfflat) '",
            [storage.table_name.lower()], multirows=True,
        )
        out[name] = sorted(row["indexdef"] for row in rows or [])
    return out


@contextlib.asynccontextmanager
async def pgvector_database(env: dict[str, str]) -> AsyncIterator[dict[str, str]]:
    """A database of its own on the pgvector server: ``env`` pointed at it; dropped after."""
    import asyncpg

    name = "lrb_" + uuid.uuid4().hex[:10]
    connect = dict(host=env["POSTGRES_HOST"], port=int(env["POSTGRES_PORT"]), user=env["POSTGRES_USER"])
    admin = await asyncpg.connect(database="postgres", **connect)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
        yield dict(env, POSTGRES_DATABASE=name)
        forget_shared_data()
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
    finally:
        await admin.close()


async def test_a_pgvector_restore_builds_the_vector_index_after_the_rows_unless_another_workspace_shares_it(
        tmp_path, storage, db_env):
    """Into a database of its own, a pgvector restore drops each vector table's index, writes
    the rows and builds the index again from its own definition (``records.bulk_index``); the
    graph is the snapshot's, exactly, and answers alike. Into a table another workspace
    shares, the index stays. A write that fails inside still gets its index back, and a bad
    ``LIGHTRAG_BACKUP_PG_INDEX_MEMORY`` refuses the restore before anything changes."""
    from lightrag.backup.records import bulk_index

    vector_env = dict(db_env, POSTGRES_PORT=server_env("LRB_TEST_PGVECTOR_PORT"))
    async with graph(tmp_path / "src", vector_env, PGVECTOR, ws=workspace()) as rag:
        backup = GraphBackup.from_rag("bulk", rag, storage)
        snapshot = await backup.acreate_snapshot()
        then = await answers(rag)
        indexes = await vector_indexes(rag)
    assert all(len(found) == 1 for found in indexes.values()), indexes
    source = await snapshot_records(backup, snapshot.snapshot_id, tmp_path / "snap")
    forget_shared_data()

    async with pgvector_database(vector_env) as own_env:
        first = StorageConfig(**PGVECTOR, working_dir=str(tmp_path / "first"), workspace=workspace(), env=own_env)
        await backup.arestore_snapshot(snapshot.snapshot_id, into=first)
        writes = backup.last_restore["restored"]["vector_writes"]
        assert set(writes) == set(layout.VECTOR_STORES), writes
        assert all(how.startswith("bulk") for how in writes.values()), writes
        async with graph(tmp_path / "first", own_env, PGVECTOR, ws=first.workspace, docs=0) as target:
            assert await vector_indexes(target) == indexes
            restored = await records_of(target, tmp_path / "check-first")
            assert restored == comparable(source), differences(comparable(source), restored)
            assert_same_vectors(source, load.Records(tmp_path / "check-first"), atol=0.0)
            assert await answers(target) == then

            entities = target.entities_vdb
            with pytest.raises(RuntimeError, match="a write failed"):
                async with bulk_index.deferred_vector_index(entities, 1, source.dim, bulk_index.memory_cap()) as how:
                    assert how["path"].startswith("bulk")
                    assert (await vector_indexes(target))["entities_vdb"] == []
                    raise RuntimeError("a write failed")
            assert await vector_indexes(target) == indexes
        forget_shared_data()

        second = StorageConfig(**PGVECTOR, working_dir=str(tmp_path / "second"), workspace=workspace(), env=own_env)
        with _environment({bulk_index.MEMORY_ENV: "plenty"}):
            with pytest.raises(InvalidInputError, match=bulk_index.MEMORY_ENV):
                await backup.arestore_snapshot(snapshot.snapshot_id, into=second)
        forget_shared_data()
        async with graph(tmp_path / "second", own_env, PGVECTOR, ws=second.workspace, docs=0) as target:
            assert await vector_indexes(target) == indexes
            empty = load.Records(await _captured(target, tmp_path / "check-refused"))
            assert not any(empty.counts().values()), empty.counts()
        forget_shared_data()

        # The tables now hold the first workspace: its queries keep their index.
        await backup.arestore_snapshot(snapshot.snapshot_id, into=second)
        writes = backup.last_restore["restored"]["vector_writes"]
        assert all(how.startswith("upsert, index kept") for how in writes.values()), writes
        async with graph(tmp_path / "second", own_env, PGVECTOR, ws=second.workspace, docs=0) as target:
            assert await vector_indexes(target) == indexes
            restored = await records_of(target, tmp_path / "check-second")
            assert restored == comparable(source), differences(comparable(source), restored)


def _in_another_connection(env: dict[str, str], statements: list[tuple[str, list[Any]]]) -> list[Any]:
    """Run ``statements`` on a connection of their own, committed before this returns (from a
    thread: a progress callback is synchronous, and the capture's loop is waiting in it)."""
    import asyncio
    import threading

    import asyncpg

    results: list[Any] = []
    failure: list[BaseException] = []

    async def run() -> None:
        connection = await asyncpg.connect(host=env["POSTGRES_HOST"], port=int(env["POSTGRES_PORT"]),
                                           user=env["POSTGRES_USER"], database=env["POSTGRES_DATABASE"])
        try:
            for sql, args in statements:
                results.append(await connection.execute(sql, *args))
        finally:
            await connection.close()

    def thread() -> None:
        try:
            asyncio.run(run())
        except BaseException as error:
            failure.append(error)

    worker = threading.Thread(target=thread)
    worker.start()
    worker.join()
    if failure:
        raise failure[0]
    return results


async def test_an_all_postgresql_graph_is_read_in_one_database_snapshot_after_the_pipeline_is_released(
        tmp_path, storage, db_env):
    """Every storage in one PostgreSQL database: a snapshot holds the pipeline only to open a
    REPEATABLE READ transaction, then reads every record in it with the pipeline free
    (``records.pg_snapshot``). Changes another connection commits in the middle of the reads
    are not in the snapshot, which holds the graph as it was when the hold was taken; the next
    snapshot has them. A snapshot whose connection the server kills mid-read commits nothing,
    and the one after it works."""
    from lightrag.kg.shared_storage import get_namespace_data

    from lightrag.backup.records import native

    vector_env = dict(db_env, POSTGRES_PORT=server_env("LRB_TEST_PGVECTOR_PORT"), POSTGRES_POOL_CLOSE_TIMEOUT="1")
    async with pgvector_database(vector_env) as env, graph(tmp_path / "src", env, PGVECTOR, ws=workspace()) as rag:
        backup = GraphBackup.from_rag("frozen", rag, storage)
        before = await records_of(rag, tmp_path / "before")
        status = await get_namespace_data("pipeline_status", workspace=rag.workspace)
        doc_id = sorted(before["full_docs"])[0]
        entity_id = sorted(before["entities_vdb"])[0]
        changes = [
            (f"UPDATE {native.postgres_table(rag.full_docs)} SET content = 'changed mid-read' "
             "WHERE workspace = $1 AND id = $2", [rag.workspace, doc_id]),
            (f"DELETE FROM {native.postgres_table(rag.entities_vdb)} WHERE workspace = $1 AND id = $2",
             [rag.workspace, entity_id]),
        ]
        busy_during_reads: list[Any] = []

        def change_mid_read(phase: str, done: int, total: int) -> None:
            if phase == "records:doc_status" and not busy_during_reads:
                busy_during_reads.append(status.get("busy"))
                assert _in_another_connection(env, changes) == ["UPDATE 1", "DELETE 1"]

        frozen = await backup.acreate_snapshot("in one snapshot", progress=change_mid_read)
        assert busy_during_reads == [False], "the pipeline was still held while the records were read"
        assert frozen.metadata["records"]["read"] == "postgresql_snapshot", frozen.metadata["records"]
        assert frozen.metadata["records"]["complete"], frozen.metadata["records"]
        held = comparable(await snapshot_records(backup, frozen.snapshot_id, tmp_path / "frozen"))
        assert held == before, differences(before, held)

        after = await records_of(rag, tmp_path / "after")
        assert after["full_docs"][doc_id]["content"] == "changed mid-read"
        assert entity_id not in after["entities_vdb"]
        later = await backup.acreate_snapshot("after the change")
        assert comparable(await snapshot_records(backup, later.snapshot_id, tmp_path / "later")) == after

        killed: list[Any] = []

        def kill_mid_read(phase: str, done: int, total: int) -> None:
            if phase == "records:kv" and not killed:
                # The snapshot's connection is the only one idle inside a transaction.
                killed.extend(_in_another_connection(env, [(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state = 'idle in transaction' AND pid <> pg_backend_pid()", [])]))

        with pytest.raises(GraphStorageUnavailableError, match="snapshot") as raised:
            await backup.acreate_snapshot("killed mid-read", progress=kill_mid_read)
        assert killed == ["SELECT 1"], killed
        assert raised.value.retryable
        assert {s.snapshot_id for s in await backup.alist_snapshots()} == {later.snapshot_id, frozen.snapshot_id}
        assert (await backup.averify_snapshot(later.snapshot_id)).ok
        again = await backup.acreate_snapshot("after the kill")
        assert again.metadata["records"]["read"] == "postgresql_snapshot"
        assert comparable(await snapshot_records(backup, again.snapshot_id, tmp_path / "again")) == after


async def _captured(rag: Any, folder: Path) -> Path:
    await capture.capture(rag, folder)
    return folder


MILVUS = {**POSTGRES, "vector_storage": "MilvusVectorDBStorage"}


async def test_a_milvus_lite_graph_restores_into_another_milvus_and_into_files(tmp_path, storage, db_env):
    """Vectors in Milvus Lite (PyPI ``milvus-lite``, a database file per instance), the rest in
    PostgreSQL: listed natively by Milvus's query iterator, restored into a fresh Milvus file and
    into LightRAG's files with every record and vector, answering alike; and a file graph moved
    into Milvus."""
    import pymilvus  # noqa: F401 - before MILVUS_URI is set (pymilvus reads it on import)

    source_env = dict(db_env, MILVUS_URI=str(tmp_path / "source.db"), MILVUS_DB_NAME="default")
    async with graph(tmp_path / "src", source_env, MILVUS, ws=workspace()) as rag:
        backup = GraphBackup.from_rag("milvus", rag, storage)
        steps = await snapshot_change_snapshot(backup, rag)
    assert steps[0][0].metadata["records"]["storages"]["chunks_vdb"] == "MilvusVectorDBStorage"
    target_env = dict(db_env, MILVUS_URI=str(tmp_path / "target.db"), MILVUS_DB_NAME="default")
    await restore_each_step(backup, steps, tmp_path, lambda: [
        ("milvus", StorageConfig(**MILVUS, working_dir=str(tmp_path / "mv"), workspace=workspace(), env=target_env),
         1e-6),
        ("files", None, 5e-4),
    ])

    # A file graph into PostgreSQL + Redis + Milvus at once, by the embedding model named for
    # the target: every record, and the same answers.
    async with graph(tmp_path / "plain", db_env, None, ws="") as rag:
        files_backup = GraphBackup.from_rag("plain", rag, storage)
        plain = await files_backup.acreate_snapshot()
        before = await records_of(rag, tmp_path / "plain-records")
        then = await answers(rag)
    spread = {**MIXED, "vector_storage": "MilvusVectorDBStorage"}
    into = StorageConfig(**spread, working_dir=str(tmp_path / "to-milvus"), workspace=workspace(), env=target_env,
                         embedding_model="stub-16")
    await files_backup.arestore_snapshot(plain.snapshot_id, into=into)
    async with graph(tmp_path / "to-milvus", target_env, spread, ws=into.workspace, docs=0) as target:
        restored = await records_of(target, tmp_path / "to-milvus-records")
        assert restored == before, differences(before, restored)
        assert await answers(target) == then


def test_a_standby_server_on_redis_applies_what_a_postgres_primary_pushes(tmp_path, db_env):
    """Two `lightrag-backup-server`s, each LightRAG's own server on its own backend: the primary
    keeps its graph in PostgreSQL, the standby in Redis (KV and doc status) beside its own
    NetworkX and NanoVectorDB files. Each snapshot the primary pushes is applied into the
    standby's running instance, which then serves the primary's graph: same entities with the
    same descriptions, same relations, same documents; no restart."""
    import httpx
    from helpers import wait_applied
    from helpers import MOUNTED_API_KEY as API_KEY, exists, insert, labels, start_mounted as start, stop_mounted as stop

    def served(client: httpx.Client) -> dict[str, Any]:
        kg = client.get("/graphs", params={"label": "*", "max_depth": 3, "max_nodes": 1000}).json()
        docs = client.post("/documents/paginated", json={"page": 1, "page_size": 50}).json()["documents"]
        return {"nodes": sorted((n["id"], n["properties"].get("description")) for n in kg["nodes"]),
                "edges": sorted(tuple(sorted((e["source"], e["target"]))) for e in kg["edges"]),
                "documents": sorted((d["file_path"], d["status"], d["chunks_count"]) for d in docs)}

    roots = {name: tmp_path / name for name in ("primary", "standby")}
    for root in roots.values():
        root.mkdir()
    primary_env = {**db_env, "WORKSPACE": workspace(), **{
        f"LIGHTRAG_{kind.upper()}": name for kind, name in POSTGRES.items()}}
    standby_env = {**db_env, "WORKSPACE": workspace(), "LIGHTRAG_REPLICATION_APPLY": "live", **{
        f"LIGHTRAG_{kind.upper()}": name for kind, name in REDIS.items()}}
    common = ("--backup-graph-id", "live")
    primary, primary_base = start(roots["primary"], "--backup-repo", str(roots["primary"] / "repo"), *common,
                                  "--backup-catalog", str(roots["primary"] / "catalog.sqlite3"), env=primary_env)
    standby, standby_base = start(roots["standby"], "--backup-repo", str(roots["standby"] / "repo"), *common,
                                  "--backup-catalog", str(roots["standby"] / "catalog.sqlite3"),
                                  "--backup-role", "standby", env=standby_env)
    source, target = (httpx.Client(base_url=base, headers={"X-API-Key": API_KEY}, timeout=120)
                      for base in (primary_base, standby_base))
    try:
        made = source.post("/replication/targets", json={"name": "standby", "base_url": standby_base,
                                                         "api_key": API_KEY})
        assert made.status_code == 201, made.text
        texts = ["[[Ines Moreau]] directs [[Kite Labs]] in [[Porto]]. [[Kite Labs]] builds [[Drone Nine]].",
                 "[[Omar Haddad]] invests in [[Kite Labs]] from [[Dubai]]."]
        for step, text in enumerate(texts):
            insert(source, text, f"doc-{step}.txt")
            snapshot = source.post("/backup/graphs/live/snapshots?wait=true", json={}).json()["result"]
            assert snapshot["metadata"]["capture"] == "records", snapshot["metadata"]
            pushed = source.post("/replication/graphs/live/replicate?wait=true").json()["result"]["standby"]
            assert pushed["status"] == "completed", pushed
            applied = wait_applied(target, "live", snapshot["snapshot_id"])
            assert standby.poll() is None
            assert served(target) == served(source), step
            assert labels(target) == labels(source)
        assert exists(target, "Omar Haddad") and applied["safety_snapshot"], applied
        # What the standby's Redis holds is the primary's graph, not a copy of files beside it.
        import redis

        keys = redis.Redis.from_url(db_env["REDIS_URI"]).keys(f"{standby_env['WORKSPACE']}_full_docs:*")
        assert len(keys) == len(texts), keys
    finally:
        source.close()
        target.close()
        stop(primary)
        stop(standby)


FAISS = {**POSTGRES, "vector_storage": "FaissVectorDBStorage"}


async def test_a_faiss_graph_restores_into_another_faiss_workspace_and_into_files(tmp_path, storage, db_env):
    """Vectors in Faiss (PyPI ``faiss-cpu``; LightRAG keeps them L2-normalised in float32 index
    files), the rest in PostgreSQL: snapshot, change, snapshot, each restored into a fresh
    PostgreSQL + Faiss workspace and into LightRAG's files, with every record and vector."""
    async with graph(tmp_path / "src", db_env, FAISS, ws=workspace()) as rag:
        backup = GraphBackup.from_rag("faiss", rag, storage)
        steps = await snapshot_change_snapshot(backup, rag)
    assert steps[0][0].metadata["records"]["storages"]["entities_vdb"] == "FaissVectorDBStorage"
    await restore_each_step(backup, steps, tmp_path, lambda: [
        ("faiss", StorageConfig(**FAISS, working_dir=str(tmp_path / "fa"), workspace=workspace(), env=db_env), 1e-6),
        ("files", None, 5e-4),
    ])


async def test_an_insert_racing_a_redis_graph_snapshot_is_accepted_and_wholly_in_the_next(
        tmp_path, storage, db_env, monkeypatch):
    """A Redis graph is read with the pipeline held (seconds on a big graph): a document given
    to LightRAG meanwhile is accepted (not refused with 409), waits, and is wholly in the next
    snapshot and not at all in this one."""
    import asyncio

    async with graph(tmp_path / "src", db_env, REDIS, ws=workspace()) as rag:
        backup = GraphBackup.from_rag("redis-race", rag, storage)
        held, real_read = asyncio.Event(), capture.read

        async def slow_read(*args: Any, **kwargs: Any) -> Any:
            held.set()
            await asyncio.sleep(1.0)
            return await real_read(*args, **kwargs)

        monkeypatch.setattr(capture, "read", slow_read)
        snapshotting = asyncio.create_task(backup.acreate_snapshot())
        await held.wait()
        inserting = asyncio.create_task(rag.apipeline_enqueue_documents(documents(1, seed=78, start=60),
                                                                        ids=["doc-racing"]))
        first = await snapshotting
        await inserting
        monkeypatch.setattr(capture, "read", real_read)
        second = await backup.acreate_snapshot()
    before = await snapshot_records(backup, first.snapshot_id, tmp_path / "first")
    after = await snapshot_records(backup, second.snapshot_id, tmp_path / "second")
    for store in ("full_docs", "doc_status"):
        assert "doc-racing" not in before.kv[store], store
        assert "doc-racing" in after.kv[store], store


async def test_a_postgres_graph_diffs_and_lists_its_deleted_document(tmp_path, storage, db_env):
    """Issue 32: the diff and the deleted-documents list on a database-backed graph (records
    snapshots, and the live graph read as a snapshot captures it)."""
    from lightrag.base import DocStatus

    async with graph(tmp_path / "src", db_env, POSTGRES, ws=workspace()) as rag:
        backup = GraphBackup.from_rag("pg-diff", rag, storage)
        before = await backup.acreate_snapshot()
        same = await backup.adiff(before.snapshot_id, before.snapshot_id)
        assert same.is_empty and same["totals"]["documents"] == [4, 4]
        assert (await backup.adiff(before.snapshot_id)).is_empty
        assert await backup.adeleted_documents() == []
        # Delete one document through LightRAG and insert another.
        removed_id = sorted((await rag.doc_status.get_docs_by_statuses([DocStatus.PROCESSED])).keys())[0]
        await rag.adelete_by_doc_id(removed_id)
        await rag.ainsert(documents(1, seed=5, start=70))
        live = await backup.adiff(before.snapshot_id)
        assert [d["id"] for d in live["documents"]["removed"]] == [removed_id], live.counts
        assert len(live["documents"]["added"]) == 1 and live["entities"]["removed"]
        after = await backup.acreate_snapshot()
        between = await backup.adiff(before.snapshot_id, after.snapshot_id)
        assert between.counts == live.counts
        gone = await backup.adeleted_documents()
        assert [(d["id"], d["snapshot_id"]) for d in gone] == [(removed_id, before.snapshot_id)]


async def test_a_deleted_document_of_a_postgres_graph_is_restored_through_its_storages(tmp_path, storage, db_env,
                                                                                        monkeypatch):
    """Issue 32: the document-level restore writes through the instance's own storages, so a
    database-backed graph gets its document back like a file graph, and a failure part-way
    rolls it back to the safety snapshot."""
    from lightrag.base import DocStatus

    from lightrag.backup.errors import RolledBackError

    async with graph(tmp_path / "src", db_env, POSTGRES, ws=workspace()) as rag:
        backup = GraphBackup.from_rag("pg-undelete", rag, storage)
        before = await backup.acreate_snapshot()
        removed_id = sorted((await rag.doc_status.get_docs_by_statuses([DocStatus.PROCESSED])).keys())[1]
        assert (await rag.adelete_by_doc_id(removed_id)).status == "success"
        await rag.ainsert(documents(1, seed=5, start=70))

        report = await backup.arestore_documents(before.snapshot_id, [removed_id])
        assert [d["id"] for d in report["documents"]] == [removed_id]
        assert report["entities"]["restored"] and report["calls"]["llm"] == 0
        assert (await rag.doc_status.get_by_id(removed_id))["status"] == "processed"
        # Against the snapshot, the graph differs only by the document inserted since.
        since = await backup.adiff(before.snapshot_id)
        counts = since.counts
        assert counts["documents"] == {"added": 1, "removed": 0, "changed": 0}, counts
        assert not since["entities"]["removed"] and not since["relations"]["removed"], counts
        assert counts["chunks"]["removed"] == 0 and counts["vectors:chunks"]["removed"] == 0, counts
        assert await backup.adeleted_documents() == []

        # Deleted again, then a restore failing part-way: the graph is as it was.
        assert (await rag.adelete_by_doc_id(removed_id)).status == "success"
        state = await backup.acreate_snapshot("before the failing restore")
        store = rag.chunk_entity_relation_graph
        original = store.upsert_node

        async def failing(*args: Any, **kwargs: Any) -> None:
            raise ConnectionError("server closed the connection")

        monkeypatch.setattr(store, "upsert_node", failing)
        with pytest.raises(RolledBackError, match="server closed"):
            await backup.arestore_documents(before.snapshot_id, [removed_id])
        monkeypatch.setattr(store, "upsert_node", original)
        assert await rag.doc_status.get_by_id(removed_id) is None
        assert (await backup.adiff(state.snapshot_id)).is_empty
