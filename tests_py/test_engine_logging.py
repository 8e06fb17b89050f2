"""The Rust engine's log records reach Python's ``logging`` under ``lightrag.backup.engine``:
a push that meets 503s retries, and each retry is a WARNING an operator's logging sees."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest

from fault_proxy import FaultProxy
from helpers import build, start_server, stop_serve

from lightrag.backup import BackupManager
from lightrag.backup.storage import LocalBackupStorage
from lightrag.replication import ReplicationManager, ReplicationTarget

KEY = "logging-key"


@pytest.mark.processes
def test_the_engines_retries_reach_python_logging(tmp_path: Path, caplog):
    build(tmp_path / "graph", 1, seed=81)
    standby = start_server(tmp_path, "s", KEY, "--role", "standby")
    proxy = FaultProxy(standby["port"])
    try:
        manager = BackupManager(LocalBackupStorage(tmp_path / "repo"), tmp_path / "catalog.sqlite3")
        manager.register_graph("g", tmp_path / "graph")
        manager.get_graph("g").create_snapshot()
        replication = ReplicationManager(manager)
        replication.register_target(ReplicationTarget(name="standby", base_url=proxy.base, api_key=KEY))
        proxy.fail_next = 3
        # LightRAG's own `lightrag` logger does not propagate to the root: listen where an
        # operator's configuration would, on the engine's logger tree.
        engine = logging.getLogger("lightrag.backup.engine")
        engine.addHandler(caplog.handler)
        try:
            with caplog.at_level(logging.INFO, logger="lightrag.backup.engine"):
                result = replication.replicate_graph("g")["standby"]
        finally:
            engine.removeHandler(caplog.handler)
        assert result["status"] == "completed", result
        retries = [r for r in caplog.records if r.name == "lightrag.backup.engine.replication.peer"]
        assert retries, [(r.name, r.getMessage()) for r in caplog.records]
        assert all(r.levelno == logging.WARNING and "503" in r.getMessage() and "retrying in" in r.getMessage()
                   for r in retries), [r.getMessage() for r in retries]
        assert proxy.failures_sent == 3
    finally:
        proxy.close()
        stop_serve(standby)


@pytest.mark.cloud
def test_the_object_store_clients_retries_reach_python_logging(tmp_path: Path, caplog):
    from helpers import server_env

    from lightrag.backup import GraphBackup
    from lightrag.backup.storage import S3BackupStorage

    endpoint, bucket = server_env("LRB_TEST_S3_ENDPOINT"), server_env("LRB_TEST_S3_BUCKET")
    proxy = FaultProxy(int(endpoint.rsplit(":", 1)[1]))
    build(tmp_path / "graph", 1, seed=82)
    engine = logging.getLogger("lightrag.backup.engine")
    engine.addHandler(caplog.handler)
    try:
        storage = S3BackupStorage(bucket, f"logging-{uuid.uuid4().hex}", endpoint_url=proxy.base,
                                  access_key_id="test-key", secret_access_key="test-secret-value")
        proxy.fail_next = 2
        with caplog.at_level(logging.INFO, logger="lightrag.backup.engine"):
            snapshot = GraphBackup("g", storage, working_dir=tmp_path / "graph").create_snapshot()
        assert snapshot.snapshot_id and proxy.failures_sent == 2
        retried = [r for r in caplog.records if r.name.startswith("lightrag.backup.engine.object_store")]
        assert retried, [(r.name, r.getMessage()) for r in caplog.records]
    finally:
        engine.removeHandler(caplog.handler)
        proxy.close()
