"""Replication to another repository (a folder, S3, Azure Blob): only what the target lacks,
checked on arrival, restorable from the target alone, logged, with secrets kept out of sight."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from lightrag.backup import BackupManager, GraphBackup
from lightrag.backup.errors import InvalidInputError
from lightrag.backup.offline_graph import build_graph, documents, graph_files, new_rag
from lightrag.backup.storage import LocalBackupStorage, storage_from_url
from lightrag.replication import GraphReplicator, ReplicationManager, ReplicationTarget
from lightrag.replication.errors import TargetExistsError

from helpers import server_env
from helpers import azurite_connection, cli


async def graph_in(path: Path) -> Path:
    workspace = f"w{uuid.uuid4().hex[:8]}"
    rag = await build_graph(path, 3, workspace=workspace)
    await rag.finalize_storages()
    return path / workspace


async def add_documents(graph: Path, seed: int) -> None:
    rag = await new_rag(graph.parent, workspace=graph.name)
    try:
        await rag.ainsert(documents(1, seed=seed, start=300 + seed))
    finally:
        await rag.finalize_storages()


def target_of(kind: str, tmp_path: Path) -> tuple[ReplicationTarget, dict[str, Any]]:
    """A target on each backend, and how to open its repository directly."""
    prefix = f"replica-{uuid.uuid4().hex[:10]}"
    if kind == "file":
        url = f"file://{tmp_path / 'replica'}"
        return ReplicationTarget("dr-file", url), {"url": str(tmp_path / "replica")}
    if kind == "s3":
        options = {"endpoint": server_env("LRB_TEST_S3_ENDPOINT"), "access_key_id": "test-key",
                   "secret_access_key": "test-secret-value"}
        url = f"s3://{server_env('LRB_TEST_S3_BUCKET')}/{prefix}"
        return ReplicationTarget("dr-s3", url, options=options), {"url": url, **options}
    options = {"connection_string": azurite_connection(server_env("LRB_TEST_AZURITE_ENDPOINT"))}
    url = f"az://{server_env('LRB_TEST_AZURITE_CONTAINER')}/{prefix}"
    return ReplicationTarget("dr-azure", url, options=options), {"url": url, **options}


@pytest.mark.parametrize("kind", ["file", pytest.param("s3", marks=pytest.mark.cloud),
                                  pytest.param("azure", marks=pytest.mark.cloud)])
async def test_replicate_a_graph_then_only_its_changes_and_restore_from_the_target(tmp_path: Path, kind: str):
    graph = await graph_in(tmp_path / "wd")
    manager = BackupManager(LocalBackupStorage(tmp_path / "repo"), tmp_path / "catalog.sqlite3")
    manager.register_graph("docs", graph)
    first = manager.get_graph("docs").create_snapshot("first")
    replication = ReplicationManager(manager)
    target, opened = target_of(kind, tmp_path)
    assert replication.register_target(target) is True
    assert replication.check_target_health(target.name)["healthy"] is True

    synced = replication.replicate_graph("docs")[target.name]
    assert synced["status"] == "completed", synced
    assert [s["status"] for s in synced["snapshots"]] == ["copied"]
    assert synced["snapshots"][0]["data_hash"] == first.data_hash and synced["bytes_sent"] > 0

    await add_documents(graph, 1)
    second = manager.get_graph("docs").create_snapshot("second")
    replicator = GraphReplicator("docs", replication)
    assert replicator.replicate_snapshot() is True  # the newest, confirmed by its data hash
    delta = replicator.last_result[target.name]
    assert delta["snapshots"][0]["snapshot_id"] == second.snapshot_id
    # Exactly what is new since the first snapshot travels: the bytes the source itself added.
    assert synced["bytes_sent"] == first.stored_bytes
    assert delta["bytes_sent"] == second.stored_bytes < second.size_bytes // 2, (delta, second.stored_bytes)
    assert replication.replicate_graph("docs")[target.name]["bytes_sent"] == 0  # nothing left to send

    # The target alone restores the graph: a DR site that knows only its own repository.
    url = opened.pop("url")
    standby = storage_from_url(url, create=False, **opened)
    assert [s.snapshot_id for s in GraphBackup("docs", standby, os.devnull).list_snapshots()] == [
        first.snapshot_id, second.snapshot_id]
    assert standby.verify("docs").ok
    GraphBackup("docs", standby, os.devnull).restore_snapshot(second.snapshot_id, target_dir=tmp_path / "dr")
    assert graph_files(tmp_path / "dr") == graph_files(graph)

    status = replication.get_replication_status("docs")["targets"][target.name]
    assert status["holds_newest"] and status["lag_seconds"] == 0 and status["last_error"] is None
    logs = replication.logs("docs")
    assert [log.backup_id for log in logs] == [second.snapshot_id, first.snapshot_id]
    assert all(log.status.value == "completed" and log.bytes_sent for log in logs)
    metrics = replication.get_replication_metrics()[target.name]["graphs"]["docs"]
    assert metrics["successes"] == 2 and metrics["failures"] == 0 and metrics["latency_p50_ms"] is not None
    # The async twins answer as their methods do.
    assert (await replication.aget_replication_metrics())[target.name]["graphs"]["docs"]["successes"] == 2
    assert (await replication.aget_replication_status("docs"))["targets"][target.name]["holds_newest"]
    assert (await replication.acheck_target_health(target.name))["healthy"] is True
    assert await replicator.acheck_target_health(target.name) is True
    assert (await replicator.aget_replication_status())["newest_snapshot"] == second.snapshot_id
    assert await replication.ahandle_replication_failure("docs", target.name) is True
    assert await replicator.aadd_target(target) is True and await replicator.areplicate_snapshot() is True


async def test_targets_keep_their_secrets_and_refuse_what_they_cannot_do(tmp_path: Path, monkeypatch):
    graph = await graph_in(tmp_path / "wd")
    manager = BackupManager(LocalBackupStorage(tmp_path / "repo"), tmp_path / "catalog.sqlite3")
    manager.register_graph("docs", graph)
    replication = ReplicationManager(manager)
    secret = "s3cr3t-key-value"
    target = ReplicationTarget("vault", f"file://{tmp_path / 'vault'}", api_key=secret,
                               options={"secret_access_key": "hidden-too"})
    replication.register_target(target)
    assert secret not in repr(target) and "hidden-too" not in repr(target)
    listed = replication.targets()[0].to_dict()
    assert listed["api_key"] == "***" and listed["options"]["secret_access_key"] == "***"
    assert (tmp_path / "catalog.sqlite3").stat().st_mode & 0o077 == 0, "the catalog holding keys is private"
    settings = list((tmp_path / "repo" / "settings").rglob("*"))
    assert settings and not any(secret.encode() in p.read_bytes() for p in settings if p.is_file())
    with pytest.raises(TargetExistsError):
        replication.register_target(ReplicationTarget("vault", f"file://{tmp_path / 'other'}"))
    with pytest.raises(InvalidInputError, match="scheme"):
        ReplicationTarget("ftp", "ftp://host/x")
    with pytest.raises(InvalidInputError):
        ReplicationTarget("bad name!", "s3://b/p")
    monkeypatch.setenv("LIGHTRAG_REPLICATION_MAX_TARGETS", "1")
    with pytest.raises(InvalidInputError, match="LIGHTRAG_REPLICATION_MAX_TARGETS"):
        replication.register_target(ReplicationTarget("second", f"file://{tmp_path / 'second'}"))
    monkeypatch.setenv("STANDBY_KEY", "from-the-environment")
    referenced = ReplicationTarget("env-ref", "file:///tmp/x", api_key="env:STANDBY_KEY")
    assert referenced.resolved_api_key() == "from-the-environment" and referenced.to_dict()["api_key"] == "env:STANDBY_KEY"

    # A catalog rebuilt from the repository lists the target again (without its secret).
    fresh = ReplicationManager(BackupManager(LocalBackupStorage(tmp_path / "repo"), tmp_path / "new.sqlite3"))
    assert fresh.targets() == [] and fresh.restore_targets() == 1
    assert fresh.targets()[0].name == "vault" and fresh.targets()[0].api_key is None

    # An unreachable target fails, is logged, and names no secret.
    broken = ReplicationTarget("broken", "s3://nowhere/x", options={
        "endpoint": "http://127.0.0.1:9", "access_key_id": "k", "secret_access_key": "do-not-print",
        "max_retries": "0", "retry_timeout": "1s"})
    replication = ReplicationManager(manager, retries=1, backoff=0.01)
    monkeypatch.setenv("LIGHTRAG_REPLICATION_MAX_TARGETS", "5")
    replication.register_target(broken)
    manager.get_graph("docs").create_snapshot("one")
    result = replication.replicate_graph("docs", targets=["broken"])["broken"]
    assert result["status"] == "failed" and "do-not-print" not in result["error"]
    failures = replication.logs("docs", target="broken")
    assert failures and all(log.status.value == "failed" and "do-not-print" not in (log.error_message or "")
                            for log in failures)
    assert replication.handle_replication_failure("docs", "broken") is False
    health = replication.check_target_health("broken")
    assert health["healthy"] is False and "do-not-print" not in health["error"]


async def test_the_cli_registers_replicates_and_reports(tmp_path: Path):
    graph = await graph_in(tmp_path / "wd")
    base = ("--repo", str(tmp_path / "repo"), "--catalog", str(tmp_path / "catalog.sqlite3"))
    assert cli(*base, "snapshot", "--init", "-g", "docs", "-w", str(graph)).returncode == 0
    added = cli(*base, "--json", "target", "add", "offsite", f"file://{tmp_path / 'offsite'}", "--api-key", "hush")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["api_key"] == "***" and "hush" not in added.stdout
    assert "offsite" in cli(*base, "target", "list").stdout
    assert cli(*base, "target", "health", "offsite").returncode == 0
    done = cli(*base, "--json", "replicate", "-g", "docs")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["docs"]["offsite"]["status"] == "completed"
    status = json.loads(cli(*base, "--json", "replication", "status", "-g", "docs").stdout)
    assert status["targets"]["offsite"]["holds_newest"] is True
    logs = json.loads(cli(*base, "--json", "replication", "logs", "-g", "docs").stdout)
    assert len(logs) == 1 and logs[0]["status"] == "completed"
    again = cli(*base, "replicate")
    assert again.returncode == 0 and "1 already there" in again.stdout
    assert cli(*base, "--repo", str(tmp_path / "offsite"), "verify", "-g", "docs").returncode == 0
    assert cli(*base, "target", "remove", "offsite").returncode == 0
    assert cli(*base, "target", "health", "offsite").returncode == 1
    # The apply switch a standby server follows, kept in the repository.
    assert "applying off" in cli(*base, "replication", "apply", "-g", "docs").stdout
    on = cli(*base, "--json", "replication", "apply", "-g", "docs", "--on")
    assert on.returncode == 0 and json.loads(on.stdout)["enabled"] is True, on.stderr
    assert "applying on" in cli(*base, "replication", "apply", "-g", "docs").stdout
    assert cli(*base, "replication", "apply", "-g", "docs", "--on", "--off").returncode != 0


def test_one_peer_client_asks_every_question_and_an_unreachable_peer_is_retryable(tmp_path: Path):
    """What one instance asks another (info, verify, promote) goes through the engine's peer
    client, on the engine's route paths; a peer nobody answers for is a typed, retryable
    failure, not bad input."""
    from lightrag.backup.app import create_app
    from lightrag.backup.errors import PeerUnreachableError
    from lightrag.replication.peer import ROUTES, receive_path

    manager = BackupManager(LocalBackupStorage(tmp_path / "repo"), tmp_path / "catalog.sqlite3")
    replication = ReplicationManager(manager)
    gone = ReplicationTarget("gone", "http://127.0.0.1:9", api_key="k")
    replication.register_target(gone)
    peer = replication.peer(gone)
    for ask in (peer.info, lambda: peer.verify("g1", "0123abcd"), lambda: peer.promote({"checkpoint_id": "x"})):
        with pytest.raises(PeerUnreachableError) as raised:
            ask()
        assert raised.value.retryable and raised.value.refusal == "unreachable" and raised.value.http_status == 502
    health = replication.check_target_health("gone")
    assert health["healthy"] is False and "PeerUnreachableError" in health["error"]

    # The routes an instance serves are the ones the client asks.
    served = set(create_app(manager, run_scheduler=False).openapi()["paths"])
    asked = {receive_path(name) for name in ROUTES if name not in ("receive", "promote")} | {ROUTES["promote"]}
    assert asked <= served, asked - served
    assert receive_path("verify", graph_id="g1", snapshot_id="s") == "/replication/receive/graphs/g1/snapshots/s/verify"
