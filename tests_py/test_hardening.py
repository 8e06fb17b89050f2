"""Damaged repositories and hostile peers, as bad luck and an attacker would bring them: the
CLI on a repository with a truncated manifest; pushes to a real standby (`serve --role standby`)
with the API key but hostile content (path escapes, epochs past 64 bits, zstd bombs, floods);
servers that would listen unguarded; secrets on command lines and in URLs."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import httpx
import msgpack
import pytest
import zstandard

from helpers import build, cli, start_serve, stop_serve

KEY = "hardening-key"


# -- a repository with one unreadable manifest, through the CLI ------------------------------


def write_graph(folder: Path, version: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kv_store_full_docs.json").write_text(json.dumps({"doc": version}))
    (folder / "graph_chunk_entity_relation.graphml").write_text("<graphml/>")


@pytest.mark.processes
def test_one_unreadable_manifest_blocks_no_command(tmp_path: Path):
    repo, graph = tmp_path / "repo", tmp_path / "g"
    base = ["--repo", str(repo), "--catalog", str(tmp_path / "catalog.db")]
    assert cli(*base, "init").returncode == 0
    ids = []
    for version in (1, 2):
        write_graph(graph, version)
        made = cli("--json", *base, "snapshot", "-g", "g", "-w", str(graph))
        assert made.returncode == 0, made.stderr
        ids.append(json.loads(made.stdout)["snapshot_id"])
    older = repo / "snapshots" / "g" / ids[0]
    older.write_bytes(older.read_bytes()[:30])  # head -c 30 m > m2 && mv m2 m

    # Snapshots of that graph go on.
    write_graph(graph, 3)
    made = cli("--json", *base, "snapshot", "-g", "g", "-w", str(graph))
    assert made.returncode == 0, made.stderr
    ids.append(json.loads(made.stdout)["snapshot_id"])
    # list shows the rest and flags it.
    listed = cli(*base, "list")
    assert listed.returncode == 0, listed.stderr
    assert ids[1] in listed.stdout and ids[2] in listed.stdout
    assert f"! {ids[0]}" in listed.stdout and "UNREADABLE" in listed.stdout
    as_json = json.loads(cli("--json", *base, "list").stdout)
    assert [s["snapshot_id"] for s in as_json if s.get("unreadable")] == [ids[0]]
    # The REST list does the same.
    graphs = tmp_path / "graphs"
    graphs.mkdir()
    (graphs / "g").symlink_to(graph)
    server = start_serve(repo, tmp_path / "serve.db", graphs, KEY, init=False)
    try:
        listed_rest = server["client"].get("/backup/graphs/g/snapshots")
        assert listed_rest.status_code == 200, listed_rest.text
        flagged = [s for s in listed_rest.json() if s.get("unreadable")]
        assert [s["snapshot_id"] for s in flagged] == [ids[0]] and len(listed_rest.json()) == 3
    finally:
        stop_serve(server)
    # verify exits non-zero naming it, for the graph and for every graph.
    for scope in (["-g", "g"], ["--all-graphs"]):
        verified = cli(*base, "verify", *scope)
        assert verified.returncode == 3, verified.stdout + verified.stderr
        assert ids[0] in verified.stdout and "DAMAGED" in verified.stdout
        assert verified.stdout.count("integrity check failed") <= 1, verified.stdout
    # stats, forget and catalog rebuild work on the rest.
    assert cli(*base, "stats").returncode == 0
    assert cli(*base, "forget", "-g", "g", "--keep-last", "5").returncode == 0
    rebuilt = cli(*base, "catalog", "rebuild")
    assert rebuilt.returncode == 0 and "2 snapshots" in rebuilt.stdout, rebuilt.stdout + rebuilt.stderr
    # prune frees nothing and says which one, and how to resolve it.
    pruned = cli(*base, "prune")
    assert pruned.returncode != 0 and ids[0] in pruned.stderr
    assert "delete" in pruned.stderr and "repair" in pruned.stderr
    # A dry-run repair names it and changes nothing; repair sets it aside; prune then runs.
    dry = cli("--json", *base, "repair", "--dry-run")
    assert json.loads(dry.stdout)["unreadable_objects"] == [f"snapshots/g/{ids[0]}"]
    assert older.exists()
    repaired = cli(*base, "repair")
    assert repaired.returncode == 0 and "set aside" in repaired.stdout, repaired.stdout + repaired.stderr
    assert not older.exists() and (repo / "quarantine" / "snapshots" / "g" / ids[0]).exists()
    assert cli(*base, "prune").returncode == 0
    assert cli(*base, "verify", "-g", "g").returncode == 0


def test_delete_removes_an_unreadable_manifest(tmp_path: Path):
    repo, graph = tmp_path / "repo", tmp_path / "g"
    base = ["--repo", str(repo), "--catalog", str(tmp_path / "catalog.db")]
    assert cli(*base, "init").returncode == 0
    write_graph(graph, 1)
    made = json.loads(cli("--json", *base, "snapshot", "-g", "g", "-w", str(graph)).stdout)
    manifest = repo / "snapshots" / "g" / made["snapshot_id"]
    manifest.write_bytes(manifest.read_bytes()[:30])
    deleted = cli(*base, "delete", "-g", "g", made["snapshot_id"])
    assert deleted.returncode == 0, deleted.stderr
    assert not manifest.exists()
    assert cli(*base, "prune").returncode == 0


@pytest.mark.processes
def test_messages_say_what_is_wrong(tmp_path: Path):
    repo = tmp_path / "repo"
    base = ["--repo", str(repo), "--catalog", str(tmp_path / "catalog.db")]
    assert cli(*base, "init").returncode == 0
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    not_folder = cli(*base, "snapshot", "-g", "g", "-w", str(a_file))
    assert not_folder.returncode != 0 and "is not a folder" in not_folder.stderr, not_folder.stderr
    banana = cli(*base, "forget", "-g", "g", "--keep-within", "banana")
    assert banana.returncode != 0 and "is not a duration" in banana.stderr and "too large" not in banana.stderr
    long_id = "a" * 5000
    shown = cli(*base, "show", "-g", "g", long_id)
    assert shown.returncode != 0 and len(shown.stderr) < 600, shown.stderr
    not_repo = cli("--repo", str(a_file), "list")
    assert not_repo.returncode != 0 and "not a lightrag-backup repository" in not_repo.stderr, not_repo.stderr
    assert "cannot create folder" not in not_repo.stderr


# -- hostile pushes to a real standby ---------------------------------------------------------


@pytest.fixture(scope="module")
def standby(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """A standby whose repository is not encrypted: a hostile peer's plaintext manifests and
    packs then reach the decoders and checks under test (an encrypted standby refuses them
    before, as not authentic: tests/encryption.rs)."""
    root = tmp_path_factory.mktemp("standby")
    graphs = root / "graphs"
    graphs.mkdir()
    subprocess.run([sys.executable, "-m", "lightrag.backup.cli", "--repo", str(root / "repo"), "init", "--encryption",
                    "none"], check=True, capture_output=True)
    server = start_serve(root / "repo", root / "catalog.db", graphs, KEY, "--role", "standby", init=False)
    server["root"] = root
    yield server
    stop_serve(server)


def push(server: dict[str, Any], path: str, body: bytes, epoch: str = "1", **params: str) -> httpx.Response:
    return httpx.post(f"{server['base']}/replication/receive/{path}", content=body, params=params,
                      headers={"X-API-Key": KEY, "X-Source-Epoch": epoch}, timeout=120)


def manifest_bytes(graph_id: str, files: list[dict[str, Any]]) -> bytes:
    """A snapshot manifest as the engine encodes it: LRBS, a version, zstd(msgpack)."""
    manifest = {
        "snapshot_id": str(uuid.uuid4()), "graph_id": graph_id, "time": "2026-12-01T00:00:00Z",
        "hostname": "attacker", "description": None, "tags": [], "metadata_json": "{}", "files": files,
        "data_hash": bytes(32), "logical_size": 0, "added_size": 0, "added_raw_size": 0,
    }
    return b"LRBS\x04" + zstandard.ZstdCompressor().compress(msgpack.packb(manifest, use_bin_type=True))


def zero_bomb(size: int, *, declared: bool = True) -> bytes:
    """One zstd frame of ``size`` zero bytes (a few tens of KiB for a GiB), with its size in
    its header or not (then only inflating it tells)."""
    compressor = zstandard.ZstdCompressor(level=1, write_content_size=declared)
    out = compressor.compressobj(size=size if declared else -1)
    block = bytes(1 << 20)
    parts = [out.compress(block) for _ in range(size >> 20)]
    return b"".join(parts) + out.flush()


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def standby_snapshots(server: dict[str, Any], graph_id: str) -> list[Any]:
    listed = httpx.get(f"{server['base']}/replication/receive/graphs/{graph_id}/snapshots",
                       headers={"X-API-Key": KEY, "X-Source-Epoch": "1"}, timeout=30)
    assert listed.status_code == 200, listed.text
    return list(listed.json()["snapshots"])


@pytest.mark.processes
def test_a_pushed_manifest_gets_the_checks_a_local_one_gets(standby):
    for path in ("../../escape.txt", "/etc/cron.d/x", "kv_store_a\0.json", "notes.txt"):
        file = {"path": path, "size": 0, "mtime_ns": 0, "mode": 0o644, "digest": bytes(32), "chunks": [],
                "encoding": "Raw"}
        refused = push(standby, "graphs/hostile/snapshots", manifest_bytes("hostile", [file]), expected_head="none")
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["kind"] == "invalid_input"
    twice = {"path": "kv_store_full_docs.json", "size": 0, "mtime_ns": 0, "mode": 0o644, "digest": bytes(32),
             "chunks": [], "encoding": "Raw"}
    refused = push(standby, "graphs/hostile/snapshots", manifest_bytes("hostile", [twice, twice]), expected_head="none")
    assert refused.status_code == 422 and "twice" in refused.json()["error"]["message"]
    assert standby_snapshots(standby, "hostile") == []
    assert not list((standby["root"] / "repo" / "snapshots").glob("**/*"))


@pytest.mark.processes
def test_epochs_past_the_engines_range_are_refused_and_not_recorded(standby):
    info = lambda: httpx.get(f"{standby['base']}/replication/receive/info",  # noqa: E731
                             headers={"X-API-Key": KEY}, timeout=30).json()
    before = info()["epoch"]
    for epoch in ("99999999999999999999999", str(2**63), "-1", "1e3", "7x", "+5", "1_0"):
        refused = push(standby, "graphs/g/want", json.dumps({"chunks": []}).encode(), epoch=epoch)
        assert refused.status_code == 422, (epoch, refused.text)
        assert refused.json()["error"]["kind"] == "invalid_input"
    assert info()["epoch"] == before
    # The largest epoch is accepted (and then fences lower ones), a normal one still works.
    ok = httpx.post(f"{standby['base']}/replication/receive/graphs/g/want", json={"chunks": []},
                    headers={"X-API-Key": KEY, "X-Source-Epoch": str(before)}, timeout=30)
    assert ok.status_code == 200, ok.text


def pack_bytes(blobs: list[tuple[bytes, bytes, int]]) -> bytes:
    """A pack: header, blobs (id, stored bytes, claimed plaintext length), trailer, footer."""
    body, entries = bytearray(b"LRBPACK\x04"), []
    for blob_id, stored, raw_length in blobs:
        entries.append([blob_id, len(body), len(stored), raw_length])
        body += stored
    trailer = zstandard.ZstdCompressor().compress(msgpack.packb(entries, use_bin_type=True))
    return bytes(body + trailer + struct.pack("<I", len(trailer)) + b"LRBT")


@pytest.mark.processes
def test_zstd_bombs_are_refused_before_they_inflate(standby):
    pid = standby["process"].pid
    before = peak_rss(pid)
    bombs = [zero_bomb(1 << 30), zero_bomb(1 << 30, declared=False)]
    assert all(len(bomb) < 64 * 1024 for bomb in bombs)
    chunk_id = hashlib.sha256(b"whatever").digest()
    # A pack whose one chunk inflates to 1 GiB: claimed small, as the largest chunk, or as
    # what it is; its size declared in the frame or not.
    for bomb in bombs:
        for claimed in (100, 1 << 20, 1 << 30):
            refused = push(standby, "packs", pack_bytes([(chunk_id, bomb, claimed)]))
            assert refused.status_code == 422, refused.text
            assert refused.json()["error"]["kind"] == "integrity"
    # Manifest bombs, four at once.
    manifest_bomb = b"LRBS\x04" + bombs[1]

    async def four() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=120) as client:
            return list(await asyncio.gather(*(
                client.post(f"{standby['base']}/replication/receive/graphs/bomb/snapshots", content=manifest_bomb,
                            params={"expected_head": "none"}, headers={"X-API-Key": KEY, "X-Source-Epoch": "1"})
                for _ in range(4))))

    for answer in asyncio.run(four()):
        assert answer.status_code == 422, answer.text
    grown = peak_rss(pid) - before
    # The documented bound (ReceiveGate): what one request inflates stays near its body; far
    # below the 1 GiB (4 GiB for four manifests) the bombs hold.
    assert grown < 200 * 1024 * 1024, f"the standby's peak RSS grew by {grown / 2**20:.0f} MiB"
    assert standby_snapshots(standby, "bomb") == []


@pytest.mark.processes
def test_a_flood_of_pushes_is_answered_503_with_retry_after(standby):
    host, port = standby["base"].removeprefix("http://").split(":")
    held: list[socket.socket] = []
    try:
        # Requests whose bodies never come: two take the turns, sixteen wait for one.
        for _ in range(18):
            conn = socket.create_connection((host, int(port)))
            conn.sendall((f"POST /replication/receive/packs HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {KEY}\r\n"
                          "X-Source-Epoch: 1\r\nContent-Length: 1000\r\n\r\n").encode())
            held.append(conn)
        deadline = time.monotonic() + 30
        while True:
            answer = push(standby, "packs", b"x")
            if answer.status_code == 503 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] == "1"
        assert answer.json()["error"]["kind"] == "busy"
    finally:
        for conn in held:
            conn.close()
    # Once they are gone, pushes are taken again.
    deadline = time.monotonic() + 30
    while push(standby, "packs", b"x").status_code == 503:
        assert time.monotonic() < deadline
        time.sleep(0.2)


# -- servers and secrets ------------------------------------------------------------------------


def test_lightrag_backup_server_refuses_to_listen_unguarded(tmp_path: Path):
    launcher = Path(__file__).parent / "mounted_server.py"
    env = {k: v for k, v in os.environ.items() if k not in ("LIGHTRAG_API_KEY", "AUTH_ACCOUNTS")}
    env.update({"WORKING_DIR": str(tmp_path / "rag"), "INPUT_DIR": str(tmp_path / "in"), "LOG_DIR": str(tmp_path),
                "HOST": "0.0.0.0", "PORT": "9"})
    done = subprocess.run([sys.executable, str(launcher)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2, done.stdout[-3000:] + done.stderr[-3000:]
    assert "refusing to serve on 0.0.0.0 without an API key" in done.stdout + done.stderr
    assert "--backup-no-auth" in done.stdout + done.stderr


@pytest.mark.processes
def test_serve_reads_its_key_from_a_file_not_the_command_line(tmp_path: Path):
    graphs = tmp_path / "graphs"
    build(graphs / "g", 1, seed=3)
    key_file = tmp_path / "key"
    key_file.write_text("from-a-file\n")
    server = start_serve(tmp_path / "repo", tmp_path / "catalog.db", graphs, "unused", "--api-key-file",
                         str(key_file))
    try:
        assert "from-a-file" not in Path(f"/proc/{server['process'].pid}/cmdline").read_text()
        assert httpx.get(f"{server['base']}/backup/graphs", timeout=30).status_code == 401
        assert httpx.get(f"{server['base']}/backup/graphs", headers={"X-API-Key": "unused"},
                         timeout=30).status_code == 403
        assert httpx.get(f"{server['base']}/backup/graphs", headers={"X-API-Key": "from-a-file"},
                         timeout=30).status_code == 200
    finally:
        stop_serve(server)
    helped = cli("serve", "--help")
    assert "process list" in helped.stdout and "--api-key-file" in helped.stdout


def test_endpoint_passwords_are_masked_in_output():
    from lightrag.replication.targets import ReplicationTarget

    target = ReplicationTarget("s3", "http://user:s3cret@127.0.0.1:9000/x",
                               options={"endpoint": "http://minio:hunter2@127.0.0.1:9000"})
    shown = json.dumps(target.to_dict())
    assert "s3cret" not in shown and "hunter2" not in shown and "user:***@" in shown
    assert "s3cret" in target.to_dict(secrets=True)["base_url"]


# -- a database graph's snapshot into a new machine's empty LightRAG ---------------------------


async def test_a_records_snapshot_restores_into_a_live_empty_file_backed_instance(tmp_path: Path):
    """The migration from databases to files: a new machine, an empty LightRAG, the backup
    brought in. An empty graph needs no safety snapshot; the restore goes through."""
    import shutil

    from helpers import forget_shared_data
    from lightrag.backup import GraphBackup
    from lightrag.backup.storage import LocalBackupStorage
    from lightrag.backup.offline_graph import new_rag

    fixture = Path(__file__).parent / "fixtures" / "records-v1"
    storage = LocalBackupStorage(tmp_path / "repo")
    shutil.copytree(fixture, tmp_path / "src")
    snapshot = GraphBackup("migrated", storage, tmp_path / "src").create_snapshot()
    forget_shared_data()
    rag = await new_rag(tmp_path / "live", workspace="ws", embedding_dim=8)
    try:
        live = GraphBackup("migrated", storage, rag=rag)
        assert await live.arestore_snapshot(snapshot.snapshot_id)
        assert len(await rag.chunk_entity_relation_graph.get_all_nodes()) == 20
        assert live.last_restore["safety_snapshot"] is None
    finally:
        await rag.finalize_storages()
        forget_shared_data()


# -- a backup never refuses a writer -----------------------------------------------------------


def held_doc_ids(snapshot: Any, storage: Any, folder: Path) -> set[str]:
    """The documents a snapshot holds, in full_docs and in doc status: restored, then read."""
    from lightrag.backup import GraphBackup

    GraphBackup(snapshot.graph_id, storage, os.devnull).restore_snapshot(snapshot.snapshot_id, folder)
    full = json.loads((folder / "kv_store_full_docs.json").read_text())
    status = json.loads((folder / "kv_store_doc_status.json").read_text())
    return set(full) | set(status)


async def test_an_insert_racing_a_snapshot_is_accepted_and_wholly_in_the_next(rag, tmp_path: Path, monkeypatch):
    """The hold of a snapshot (milliseconds for a file graph, made long here) does not refuse a
    document LightRAG is given meanwhile: it waits, and lands wholly after the snapshot."""
    from lightrag.backup import GraphBackup, _live
    from lightrag.backup.offline_graph import documents
    from lightrag.backup.storage import LocalBackupStorage

    storage = LocalBackupStorage(tmp_path / "repo")
    backup = GraphBackup("live", storage, rag=rag)
    held = asyncio.Event()
    real_flush = _live.flush_storages

    async def slow_flush(instance: Any) -> None:
        held.set()
        await asyncio.sleep(1.0)  # the hold of a big database graph
        await real_flush(instance)

    monkeypatch.setattr(_live, "flush_storages", slow_flush)
    snapshotting = asyncio.create_task(backup.acreate_snapshot())
    await held.wait()
    # Before: PipelineReservationConflictError (HTTP 409 from LightRAG's API).
    inserting = asyncio.create_task(rag.apipeline_enqueue_documents(documents(1, seed=77, start=50),
                                                                    ids=["doc-racing"]))
    first = await snapshotting
    await inserting
    monkeypatch.setattr(_live, "flush_storages", real_flush)
    second = await backup.acreate_snapshot()
    # The documents queued during the hold are processed in the background after it: let that
    # run end before the instance is finalised (else it fails on finalised storages, and the
    # event loop's close waits on it).
    await asyncio.gather(*list(_live._background))
    assert "doc-racing" not in held_doc_ids(first, storage, tmp_path / "first")
    assert "doc-racing" in held_doc_ids(second, storage, tmp_path / "second")


# -- a broken CA file is one target's problem ---------------------------------------------------


@pytest.mark.processes
def test_a_broken_ca_file_fails_its_own_target_only(tmp_path: Path):
    from helpers import make_test_ca

    tls = make_test_ca(tmp_path / "tls")
    graphs = tmp_path / "graphs"
    build(graphs / "g", 2, seed=5)
    primary = start_serve(tmp_path / "repo", tmp_path / "catalog.db", graphs, KEY,
                          env={"LIGHTRAG_REPLICATION_ALLOWED_DIRS": str(tmp_path / "copies")})
    try:
        client = primary["client"]
        ca_file = tmp_path / "target-ca.pem"
        ca_file.write_bytes(tls["ca"].read_bytes())
        for name, body in (("broken", {"base_url": "https://127.0.0.1:9", "ca_file": str(ca_file)}),
                           ("healthy", {"base_url": f"file://{tmp_path / 'copies' / 'dr'}"})):
            made = client.post("/replication/targets", json={"name": name, **body})
            assert made.status_code == 201, made.text
        ca_file.write_text("this CA file was damaged after the target was registered")
        assert client.post("/backup/graphs/g/snapshots?wait=true").status_code == 200
        done = client.post("/replication/graphs/g/replicate?wait=true")
        assert done.status_code == 200, done.text
        result = done.json()["result"]
        assert result["healthy"]["status"] == "completed", result
        assert result["broken"]["status"] == "failed" and "not a PEM CA certificate" in result["broken"]["error"]
        broken_id = next(t["target_id"] for t in client.get("/replication/targets").json() if t["name"] == "broken")
        health = client.post(f"/replication/targets/{broken_id}/health")
        assert health.status_code == 200 and health.headers["content-type"].startswith("application/json")
        assert health.json()["healthy"] is False and "not a PEM CA certificate" in health.json()["error"]
    finally:
        stop_serve(primary)
