"""The end-to-end scenario on every backend (local folder, S3 on moto, Azure Blob on Azurite),
plus what operators hit first on the cloud ones: refused credentials, a missing bucket, a server
that goes away in the middle of an upload.

The servers come from ``scripts/test-servers.sh start`` (``scripts/test.sh`` starts them).
Without them these tests skip, unless ``LRB_REQUIRE_CLOUD_BACKENDS=1`` (CI), where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import pytest
from helpers import AZURITE_KEY, azurite_connection, cli as run_cli, server_env

from lightrag.backup import GraphBackup
from lightrag.backup.errors import (
    InvalidInputError,
    SnapshotNotFoundError,
    StorageAuthError,
    StorageBackendError,
    StorageLocationNotFoundError,
)
from lightrag.backup.offline_graph import documents, graph_files
from lightrag.backup.storage import (
    AzureBlobBackupStorage,
    BackupStorageBackend,
    LocalBackupStorage,
    S3BackupStorage,
    storage_from_url,
)


pytestmark = pytest.mark.cloud


def s3_storage(prefix: str, **kwargs: Any) -> S3BackupStorage:
    return S3BackupStorage(
        server_env("LRB_TEST_S3_BUCKET"),
        prefix,
        endpoint_url=server_env("LRB_TEST_S3_ENDPOINT"),
        access_key_id="test-key",
        secret_access_key="test-secret-value",
        **kwargs,
    )


def azure_storage(prefix: str, endpoint: str | None = None, **kwargs: Any) -> AzureBlobBackupStorage:
    endpoint = endpoint or server_env("LRB_TEST_AZURITE_ENDPOINT")
    return AzureBlobBackupStorage(
        server_env("LRB_TEST_AZURITE_CONTAINER"),
        prefix,
        connection_string=azurite_connection(endpoint),
        **kwargs,
    )


@pytest.fixture(params=["local", "s3", "azure"])
def make_storage(request, tmp_path: Path) -> Callable[[], BackupStorageBackend]:
    """A factory of storages for one fresh repository on the backend under test."""
    prefix = f"pytest/{uuid.uuid4().hex}"
    if request.param == "local":
        return lambda: LocalBackupStorage(tmp_path / "repo")
    if request.param == "s3":
        s3_storage(prefix)  # skip or fail now, not inside the test
        return lambda: s3_storage(prefix)
    azure_storage(prefix)
    return lambda: azure_storage(prefix)


async def test_snapshot_change_snapshot_restore_on_every_backend(make_storage, tmp_path: Path):
    from lightrag.backup.offline_graph import build_graph

    # One workspace per backend: LightRAG shares a workspace's data between instances in a process.
    workspace = f"backends_{uuid.uuid4().hex[:8]}"
    rag = await build_graph(tmp_path / "graph", 4, workspace=workspace)
    try:
        backup = GraphBackup.from_rag("docs", rag, make_storage())
        graph_dir = Path(rag.working_dir) / workspace
        first = await backup.acreate_snapshot("first")
        first_files = graph_files(graph_dir)
        await rag.ainsert(documents(2, seed=9, start=70))
        second = await backup.acreate_snapshot("second")
        second_files = graph_files(graph_dir)
        assert first_files != second_files
    finally:
        await rag.finalize_storages()

    # A new process's view: a freshly opened storage.
    storage = make_storage()
    again = GraphBackup("docs", storage, working_dir=tmp_path / "unused")
    assert [s.snapshot_id for s in again.list_snapshots()] == [first.snapshot_id, second.snapshot_id]
    # What that cost, request by request (each one billed on an object store): reads only.
    spent = storage.request_counts()
    assert spent["gets"] >= 2 and spent["lists"] and spent["puts"] == spent["deletes"] == 0, spent
    assert "data" not in spent["lists"], spent
    assert storage.verify("docs").ok
    for snapshot, files in ((first, first_files), (second, second_files)):
        target = tmp_path / f"restored-{snapshot.snapshot_id[:8]}"
        assert again.restore_snapshot(snapshot.snapshot_id, target_dir=target)
        assert graph_files(target) == files
    stats = storage.get_storage_stats()
    assert stats["snapshot_count"] == 2 and stats["dedup_ratio"] > 1.0, stats


def test_storage_from_url_and_repr_hide_secrets():
    endpoint = server_env("LRB_TEST_S3_ENDPOINT")
    bucket = server_env("LRB_TEST_S3_BUCKET")
    prefix = f"pytest/{uuid.uuid4().hex}"
    storage = storage_from_url(
        f"s3://{bucket}/{prefix}",
        endpoint_url=endpoint,
        access_key_id="test-key",
        secret_access_key="very-secret-value",
    )
    assert isinstance(storage, S3BackupStorage)
    assert storage.url == f"s3://{bucket}/{prefix}"
    assert "very-secret-value" not in repr(storage)
    assert storage.config["format_version"] >= 2

    azure = storage_from_url(
        f"az://{server_env('LRB_TEST_AZURITE_CONTAINER')}/{prefix}",
        connection_string=azurite_connection(server_env("LRB_TEST_AZURITE_ENDPOINT")),
    )
    assert isinstance(azure, AzureBlobBackupStorage)
    assert AZURITE_KEY not in repr(azure) and "AccountKey" not in repr(azure)

    with pytest.raises(InvalidInputError):
        storage_from_url("s3://bucket/x", no_such_setting="1")
    with pytest.raises(InvalidInputError):
        storage_from_url("/tmp/x", endpoint_url="http://nowhere")
    with pytest.raises(InvalidInputError):
        storage_from_url("ftp://host/x")


def test_refused_credentials_raise_storage_auth_error_without_the_key():
    endpoint = server_env("LRB_TEST_AZURITE_ENDPOINT")
    wrong = "d3Jvbmcta2V5LXRoYXQtaXMtbG9uZy1lbm91Z2gtdG8tYmUtYS1rZXk="
    with pytest.raises(StorageAuthError) as raised:
        AzureBlobBackupStorage(
            server_env("LRB_TEST_AZURITE_CONTAINER"), "denied", connection_string=azurite_connection(endpoint, wrong)
        )
    assert wrong not in str(raised.value)
    assert "AZURE_STORAGE_ACCOUNT_KEY" in str(raised.value)
    assert isinstance(raised.value, PermissionError) and not raised.value.retryable

    s3s = server_env("LRB_TEST_S3S_ENDPOINT")
    with pytest.raises(StorageAuthError) as raised:
        S3BackupStorage(
            server_env("LRB_TEST_S3S_BUCKET"),
            "denied",
            endpoint_url=s3s,
            access_key_id=server_env("LRB_TEST_S3S_KEY"),
            secret_access_key="not-the-secret",
        )
    assert "not-the-secret" not in str(raised.value)


def test_no_aws_credentials_anywhere_is_said_plainly(tmp_path: Path):
    """No keys, no profile files, and an instance metadata service that does not answer (a
    closed loopback port stands in for 169.254.169.254, which a test never contacts)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_METADATA_ENDPOINT=f"http://127.0.0.1:{closed}", HOME=str(tmp_path))
    done = subprocess.run(
        ["lightrag-backup", "--repo", f"s3://{server_env('LRB_TEST_S3_BUCKET')}/nocreds", "-o",
         f"endpoint={server_env('LRB_TEST_S3_ENDPOINT')}", "list"],
        capture_output=True, text=True, timeout=200, env=env,
    )
    assert done.returncode == 1, done.stderr
    assert "no AWS credentials: looked in the environment" in done.stderr, done.stderr
    assert "profile files" in done.stderr and "instance metadata" in done.stderr
    assert "api/token" not in done.stderr  # not the metadata client's internals


def test_missing_bucket_is_an_error_unless_creation_is_asked_for(tmp_path: Path):
    endpoint = server_env("LRB_TEST_S3_ENDPOINT")
    bucket = f"lrb-py-{uuid.uuid4().hex[:16]}"
    options = dict(endpoint_url=endpoint, access_key_id="k", secret_access_key="test-secret-value")
    with pytest.raises(StorageLocationNotFoundError) as raised:
        S3BackupStorage(bucket, "repo", **options)
    assert bucket in str(raised.value) and "create_bucket=True" in str(raised.value)
    storage = S3BackupStorage(bucket, "repo", create_bucket=True, **options)
    assert storage.list_graphs() == []

    container = f"lrb-py-{uuid.uuid4().hex[:16]}"
    azure_endpoint = server_env("LRB_TEST_AZURITE_ENDPOINT")
    with pytest.raises(StorageLocationNotFoundError):
        AzureBlobBackupStorage(container, connection_string=azurite_connection(azure_endpoint))
    assert AzureBlobBackupStorage(
        container, connection_string=azurite_connection(azure_endpoint), create_container=True
    ).list_graphs() == []


def test_cli_works_with_an_s3_url(tmp_path: Path):
    import asyncio

    from lightrag.backup.offline_graph import build_graph

    async def build() -> None:
        rag = await build_graph(tmp_path / "graph", 2)
        await rag.finalize_storages()

    asyncio.run(build())
    endpoint = server_env("LRB_TEST_S3_ENDPOINT")
    url = f"s3://{server_env('LRB_TEST_S3_BUCKET')}/pytest/{uuid.uuid4().hex}"
    # Credentials and endpoint the way the AWS CLI takes them: from the environment.
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "cli-secret-value",
           "AWS_ENDPOINT_URL": endpoint}

    def cli(*args: str, repo: str = url) -> subprocess.CompletedProcess:
        return run_cli("--repo", repo, "--no-progress", *args, env=env, timeout=120)

    done = cli("snapshot", "--init", "-g", "g1", "-w", str(tmp_path / "graph"))
    assert done.returncode == 0, done.stderr
    listed = cli("--json", "list")
    assert listed.returncode == 0, listed.stderr
    snapshots = json.loads(listed.stdout)
    assert len(snapshots) == 1
    done = cli("restore", "-g", "g1", snapshots[0]["snapshot_id"], "--target", str(tmp_path / "restored"))
    assert done.returncode == 0, done.stderr
    assert graph_files(tmp_path / "restored") == graph_files(tmp_path / "graph")

    missing_bucket = f"s3://lrb-nope-{uuid.uuid4().hex[:12]}/x"
    bad = cli("list", repo=missing_bucket)
    assert bad.returncode == 1 and "does not exist" in bad.stderr, bad.stderr
    assert "cli-secret-value" not in bad.stderr
    created = cli("--create-bucket", "snapshot", "--init", "-g", "g1", "-w", str(tmp_path / "graph"), repo=missing_bucket)
    assert created.returncode == 0, created.stderr
    bad_option = cli("-o", "endpoint", "list")
    assert bad_option.returncode == 2 or bad_option.returncode == 1
    assert "KEY=VALUE" in bad_option.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_azurite(port: int, location: Path) -> subprocess.Popen:
    binary = server_env("LRB_TEST_AZURITE_BIN")
    process = subprocess.Popen(
        [binary, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(location),
         "--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("azurite did not start")


def test_azurite_stopping_mid_upload_leaves_a_valid_repository(tmp_path: Path):
    """A real server stop (Azurite shut down) while a snapshot uploads: a clear retryable
    error, earlier snapshots still verify, and the same call completes once it is back."""
    server_env("LRB_TEST_AZURITE_BIN")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    location = tmp_path / "azurite"
    location.mkdir()
    server = start_azurite(port, location)
    try:
        subprocess.run([sys.executable, str(Path(__file__).parents[1] / "scripts" / "azurite_container.py"),
                        endpoint, "outage"], check=True)
        options = dict(max_retries="1", retry_timeout="1s", backoff_initial="50ms")
        storage = AzureBlobBackupStorage("outage", connection_string=azurite_connection(endpoint), **options)
        graph = tmp_path / "graph"
        graph.mkdir()
        (graph / "kv_store_full_docs.json").write_text(json.dumps({"doc": {"content": "x"}}))
        backup = GraphBackup("g", storage, working_dir=graph)
        first = backup.create_snapshot("small")
        (graph / "vdb_chunks.json").write_bytes(os.urandom(48 * 1024 * 1024))

        killed = []

        def progress(phase: str, done: int, total: int) -> None:
            if not killed and done > 20 * 1024 * 1024:
                server.send_signal(signal.SIGTERM)
                server.wait()
                killed.append(True)

        with pytest.raises(StorageBackendError) as raised:
            backup.create_snapshot("big", progress=progress)
        assert killed, "the server was stopped mid-upload"
        assert raised.value.retryable

        server = start_azurite(port, location)
        again = AzureBlobBackupStorage("outage", connection_string=azurite_connection(endpoint), **options)
        backup = GraphBackup("g", again, working_dir=graph)
        assert [s.snapshot_id for s in backup.list_snapshots()] == [first.snapshot_id]
        assert again.verify("g").ok
        second = backup.create_snapshot("big")
        assert again.verify("g").ok
        target = tmp_path / "restored"
        backup.restore_snapshot(second.snapshot_id, target_dir=target)
        assert graph_files(target) == graph_files(graph)
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(location, ignore_errors=True)


async def test_a_new_process_takes_what_never_changes_from_this_hosts_cache(make_storage, tmp_path: Path,
                                                                          monkeypatch):
    """Index objects and manifests never change: a process opening an object-store repository
    fetches only those no process on this host fetched before, checks every cached one (a
    damaged entry is fetched again), and never serves a forgotten snapshot from the cache. A
    local repository is not cached."""
    from lightrag.backup.offline_graph import build_graph
    from lightrag.backup.snapshots import GraphSnapshots

    cache = tmp_path / "cache"
    monkeypatch.setenv("LIGHTRAG_BACKUP_CACHE_DIR", str(cache))
    workspace = f"cache_{uuid.uuid4().hex[:8]}"
    rag = await build_graph(tmp_path / "graph", 2, workspace=workspace)
    try:
        backup = GraphBackup.from_rag("docs", rag, make_storage())
        made = [await backup.acreate_snapshot("one")]
        await rag.ainsert(documents(1, seed=3, start=40))
        made.append(await backup.acreate_snapshot("two"))
    finally:
        await rag.finalize_storages()

    def fresh_process_gets(expected: list[str]) -> int:
        storage = make_storage()
        assert [s.snapshot_id for s in GraphSnapshots("docs", storage).list_snapshots()] == expected
        return int(storage.request_counts()["gets"])

    both = [s.snapshot_id for s in made]
    shutil.rmtree(cache, ignore_errors=True)
    cold = fresh_process_gets(both)
    warm = fresh_process_gets(both)
    index = sorted(cache.glob("*/index/*"))
    manifests = sorted(cache.glob("*/snapshots/docs/*"))
    if not make_storage().url.startswith(("s3://", "az://")):
        assert index == manifests == [] and warm == cold
        return
    assert len(index) == 2 and len(manifests) == 2 and warm == cold - 4, (cold, warm, index, manifests)
    index[0].write_bytes(b"tampered")
    manifests[0].write_bytes(manifests[0].read_bytes()[:-1] + b"!")
    assert fresh_process_gets(both) == cold - 2  # the damaged entries fetched again, and kept
    assert fresh_process_gets(both) == cold - 4
    # A snapshot forgotten by another process is listed by nobody, and never read from here.
    make_storage().delete_snapshot(made[0].snapshot_id)
    assert fresh_process_gets(both[1:]) <= cold - 4
    assert [p.name for p in cache.glob("*/snapshots/docs/*")] == [made[1].snapshot_id]


def test_a_compaction_by_another_process_is_followed_and_every_snapshot_restores(make_storage, tmp_path: Path,
                                                                               monkeypatch):
    """Index objects merged by one process (another host, say) while a second one holds the
    small ones in memory: the second lists again, takes the merged object (from this host's
    cache on an object store: the compacting process kept it there), drops the cached small
    ones, and restores every snapshot."""
    from lightrag.backup import BackupManager
    from lightrag.backup.offline_graph import graph_files
    from lightrag.backup.snapshots import GraphSnapshots

    cache = tmp_path / "cache"
    monkeypatch.setenv("LIGHTRAG_BACKUP_CACHE_DIR", str(cache))
    graph = tmp_path / "graph"
    graph.mkdir()
    writer = GraphBackup("g", make_storage(), working_dir=graph)
    expected = {}
    for seed in range(4):
        (graph / "kv_store_full_docs.json").write_text(json.dumps({f"doc-{seed}": {"content": f"round {seed} " * 30}}))
        expected[writer.create_snapshot().snapshot_id] = graph_files(graph)
    reader = make_storage()
    assert len(GraphSnapshots("g", reader).list_snapshots()) == 4
    assert reader.engine.index_object_counts() == (4, 4)

    report = BackupManager(make_storage(), tmp_path / "catalog.sqlite3").compact_index()
    assert (report["merged"], report["written"], report["index_objects_after"]) == (4, 1, 1), report
    assert reader.engine.index_object_counts() == (1, 1)
    remote = reader.url.startswith(("s3://", "az://"))
    assert len(list(cache.glob("*/index/*"))) == (1 if remote else 0)
    gets = reader.request_counts()["gets"]
    restorer = GraphBackup("g", reader, working_dir=graph)
    for snapshot_id, files in expected.items():
        target = tmp_path / f"restored-{snapshot_id}"
        restorer.restore_snapshot(snapshot_id, target)
        assert graph_files(target) == files
    if remote:
        # The merged index came from the cache: restores fetch manifests and packs, no index.
        assert reader.request_counts()["gets"] - gets <= 2 * len(expected), reader.request_counts()


async def test_recovery_points_come_from_this_hosts_cache_once_seen(make_storage, tmp_path: Path, monkeypatch):
    """Recovery points never change either: listing them in a new process reads only the
    points this host has not seen; a deleted point is never served from the cache."""
    from lightrag.backup import BackupManager
    from lightrag.backup.offline_graph import build_graph
    from lightrag.recovery import DisasterRecoveryManager

    cache = tmp_path / "cache"
    monkeypatch.setenv("LIGHTRAG_BACKUP_CACHE_DIR", str(cache))
    workspace = f"points_{uuid.uuid4().hex[:8]}"
    rag = await build_graph(tmp_path / "graph", 2, workspace=workspace)
    await rag.finalize_storages()
    manager = BackupManager(make_storage(), tmp_path / "catalog.sqlite3")
    manager.register_graph("docs", tmp_path / "graph", workspace)
    recovery = DisasterRecoveryManager(manager)
    points = [await recovery.acreate_recovery_point(description=str(n)) for n in range(2)]
    await recovery.avalidate_recovery_point(points[1].checkpoint_id)  # a validation beside it

    def fresh_process() -> tuple[list[str], int]:
        storage = make_storage()
        listed = DisasterRecoveryManager(BackupManager(storage, tmp_path / f"c-{uuid.uuid4().hex}.sqlite3"))
        ids = [p.checkpoint_id for p in listed.list_recovery_points()]
        return ids, int(storage.request_counts()["gets"])

    newest_first = [p.checkpoint_id for p in reversed(points)]
    shutil.rmtree(cache, ignore_errors=True)
    ids, cold = fresh_process()
    assert ids == newest_first
    ids, warm = fresh_process()
    assert ids == newest_first
    if not make_storage().url.startswith(("s3://", "az://")):
        assert warm == cold and not list(cache.glob("*/recovery/*"))
        return
    cached = [p for p in cache.rglob("*") if p.is_file()]
    assert len([p for p in cache.glob("*/recovery/*") if p.is_file()]) == 2
    assert len(list(cache.glob("*/recovery/*.validations/*"))) == 1
    assert warm == cold - len(cached), (cold, warm, cached)
    await recovery.adelete_recovery_point(points[0].checkpoint_id)
    ids, _ = fresh_process()
    assert ids == [points[1].checkpoint_id]
    assert sorted(p.name for p in cache.glob("*/recovery/*")) == [points[1].checkpoint_id,
                                                                   f"{points[1].checkpoint_id}.validations"]


def test_a_new_process_reads_a_graphs_manifests_with_one_request_each(tmp_path: Path, monkeypatch):
    """Uncached (a new host), listing a graph's snapshots reads each manifest once and the
    graph's key state once, with many reads in flight: not the key state again per manifest
    (32 extra requests for 16 manifests read at once before this was fixed)."""
    from lightrag.backup.snapshots import GraphSnapshots

    monkeypatch.setenv("LIGHTRAG_BACKUP_CACHE", "off")
    prefix = f"pytest/{uuid.uuid4().hex}"
    graph = tmp_path / "graph"
    graph.mkdir()
    writer = GraphBackup("g", s3_storage(prefix), working_dir=graph)
    for n in range(40):
        (graph / "kv_store_full_docs.json").write_text(json.dumps({f"doc-{n}": f"document {n}"}))
        writer.create_snapshot()
    storage = s3_storage(prefix)
    opened = storage.request_counts()["gets"]
    assert len(GraphSnapshots("g", storage).list_snapshots()) == 40
    read = storage.request_counts()["gets"] - opened
    assert 40 <= read <= 40 + 2, read


def test_finding_and_verifying_one_snapshot_lists_neither_every_manifest_nor_every_pack(tmp_path: Path):
    """A lookup by id prefix, a verify of one snapshot and the list of graphs cost the same
    whatever the history: the S3 server's own log shows no listing of every pack (`data/`)
    and none of every graph's manifests (`snapshots/` is listed by folder only)."""
    import time

    from lightrag.backup.snapshots import GraphSnapshots

    log = Path(server_env("LRB_TEST_MOTO_LOG"))
    prefix = f"pytest/{uuid.uuid4().hex}"
    ids = {}
    for name in ("a", "b"):
        graph = tmp_path / name
        graph.mkdir()
        writer = GraphBackup(name, s3_storage(prefix), working_dir=graph)
        for n in range(3):
            (graph / "kv_store_full_docs.json").write_text(json.dumps({f"doc-{n}": f"{name} {n}"}))
            ids.setdefault(name, []).append(writer.create_snapshot().snapshot_id)
    start = log.stat().st_size
    storage = s3_storage(prefix)
    report = GraphSnapshots("a", storage).verify_snapshot(ids["a"][1][:8])
    assert report.ok and report.snapshot_id == ids["a"][1]
    assert sorted(storage.list_graphs()) == ["a", "b"]
    with pytest.raises(SnapshotNotFoundError, match="belongs to graph"):
        GraphSnapshots("a", storage).get_snapshot(ids["b"][0])
    time.sleep(0.5)  # a request's line is written once its answer is sent
    with log.open("rb") as handle:
        handle.seek(start)
        mine = [line for line in handle.read().decode(errors="replace").splitlines() if prefix in line]
    assert mine, "the server logs this test's requests"
    assert not [line for line in mine if f"prefix={prefix}/data/" in line], "no listing of every pack"
    every_graph = [line for line in mine if f"prefix={prefix}/snapshots/ " in line or f"prefix={prefix}/snapshots/&" in line]
    # Only the refused lookup (to name the graph the id belongs to) lists every manifest.
    assert len([line for line in every_graph if "delimiter" not in line]) == 1, every_graph


def test_a_snapshot_into_500_snapshots_costs_no_more_requests_than_into_20(tmp_path: Path, monkeypatch):
    """On S3, a new process's snapshot of a changed graph makes the same number of requests
    whatever the history (this host's cache having seen it, as after any earlier command):
    compaction keeps the index objects few, the commit check lists no packs, and what never
    changes comes from the cache."""
    from lightrag.backup.snapshots import GraphSnapshots

    monkeypatch.setenv("LIGHTRAG_BACKUP_CACHE_DIR", str(tmp_path / "cache"))
    graph = tmp_path / "graph"
    graph.mkdir()

    def change(n: int) -> None:
        (graph / "kv_store_full_docs.json").write_text(json.dumps({f"doc-{n}": {"content": f"document {n} " * 20}}))

    def requests(counts: dict[str, Any]) -> int:
        return int(counts["gets"] + counts["heads"] + sum(counts["lists"].values()) + counts["puts"] + counts["deletes"])

    spent = {}
    for history in (20, 500):
        prefix = f"pytest/{uuid.uuid4().hex}"
        writer = GraphBackup("g", s3_storage(prefix), working_dir=graph)
        for n in range(history):
            change(n)
            writer.create_snapshot()
        # Another command on this host saw the history (the cache is warm) ...
        assert len(GraphSnapshots("g", s3_storage(prefix)).list_snapshots()) == history
        # ... then a new process takes a snapshot of a changed graph.
        change(10_000 + history)
        storage = s3_storage(prefix)
        GraphBackup("g", storage, working_dir=graph).create_snapshot()
        spent[history] = requests(storage.request_counts())
        index_objects, _ = storage.engine.index_object_counts()
        assert index_objects <= 64, index_objects
    assert spent[500] <= spent[20], spent
