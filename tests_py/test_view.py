"""A server's read endpoints answer from what it computed last while nothing changed: a
Prometheus scrape, ``/backup/stats``, ``/backup/graphs`` and a snapshot list make no request
to the repository; this process's writes show at once, another process's after a refresh of
the listings (``lightrag.backup.view``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lightrag.backup import BackupManager, GraphBackup
from lightrag.backup.app import create_app
from lightrag.backup.errors import InvalidInputError
from lightrag.backup.storage import LocalBackupStorage
from lightrag.backup.view import RepositoryView, refresh_seconds_from_env

KEY = "view-test-key"
READS = ("/metrics", "/backup/stats", "/backup/graphs", "/backup/graphs/g/snapshots", "/recovery/status")


def requests(storage: Any) -> int:
    counts = storage.request_counts()
    return int(counts["gets"] + counts["heads"] + sum(counts["lists"].values()) + counts["puts"] + counts["deletes"])


def change(graph: Path, n: int) -> None:
    graph.mkdir(parents=True, exist_ok=True)
    (graph / "kv_store_full_docs.json").write_text(json.dumps({f"doc-{n}": {"content": f"document {n} " * 20}}))


def test_reads_come_from_memory_until_something_changes(tmp_path: Path):
    from fastapi.testclient import TestClient

    graph = tmp_path / "graph"
    manager = BackupManager(LocalBackupStorage(tmp_path / "repo"), tmp_path / "catalog.sqlite3")
    manager.register_graph("g", graph)
    change(graph, 0)
    manager.get_graph("g").create_snapshot()
    app = create_app(manager, api_key=KEY, run_scheduler=False)
    headers = {"X-API-Key": KEY}
    with TestClient(app) as client:
        assert isinstance(manager.view, RepositoryView)

        def read_all() -> dict[str, Any]:
            answers = {}
            for path in READS:
                response = client.get(path, headers=headers)
                assert response.status_code == 200, (path, response.text)
                answers[path] = response.text if path == "/metrics" else response.json()
            return answers

        first = read_all()
        assert len(first["/backup/graphs/g/snapshots"]) == 1
        before = requests(manager.storage)
        for _ in range(5):
            assert read_all()["/backup/graphs/g/snapshots"] == first["/backup/graphs/g/snapshots"]
        assert requests(manager.storage) == before, "answered from memory: no request to the store"

        # A snapshot by this process shows at the next request.
        change(graph, 1)
        manager.get_graph("g").create_snapshot()
        answers = read_all()
        assert len(answers["/backup/graphs/g/snapshots"]) == 2
        assert answers["/backup/stats"]["graphs"]["g"]["snapshot_count"] == 2
        assert 'lightrag_backup_snapshots{graph="g"} 2' in answers["/metrics"].replace(".0", "")

        # Another process's snapshot: unseen until the listings are refreshed, then shown.
        change(graph, 2)
        GraphBackup("g", LocalBackupStorage(tmp_path / "repo"), working_dir=graph).create_snapshot()
        assert len(read_all()["/backup/graphs/g/snapshots"]) == 2
        listed = requests(manager.storage)
        assert manager.view.refresh() is True
        assert requests(manager.storage) - listed == 8, "one listing per watched prefix"
        answers = read_all()
        assert len(answers["/backup/graphs/g/snapshots"]) == 3
        assert answers["/backup/stats"]["graphs"]["g"]["snapshot_count"] == 3
        assert manager.view.refresh() is False, "nothing new"


def test_a_kept_status_or_scrape_reads_no_snapshot_row_however_long_the_history(tmp_path: Path, monkeypatch):
    """At 10,000 snapshots a scrape must not walk them: once computed, ``/metrics`` and
    ``/recovery/status`` read no catalog row of a snapshot, no graph list per graph and copy
    no snapshot list; the ages in them (RPO) still run on."""
    import time

    from fastapi.testclient import TestClient

    from lightrag.backup.catalog import Catalog

    manager = BackupManager(LocalBackupStorage(tmp_path / "repo"), tmp_path / "catalog.sqlite3")
    for name in ("a", "b", "c"):
        graph = tmp_path / name
        manager.register_graph(name, graph)
        for n in range(3):
            change(graph, n)
            manager.get_graph(name).create_snapshot()
    app = create_app(manager, api_key=KEY, run_scheduler=False)
    headers = {"X-API-Key": KEY}
    calls: list[str] = []
    for method in ("snapshots", "graphs", "last_health", "replication_logs", "verify_failures", "recovery_events"):
        original = getattr(Catalog, method)

        def spy(self: Any, *args: Any, _name: str = method, _original: Any = original, **kwargs: Any) -> Any:
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Catalog, method, spy)
    with TestClient(app) as client:
        first = client.get("/recovery/status", headers=headers).json()
        assert client.get("/metrics", headers=headers).status_code == 200
        calls.clear()
        time.sleep(0.05)
        for _ in range(3):
            again = client.get("/recovery/status", headers=headers).json()
            assert client.get("/metrics", headers=headers).status_code == 200
        assert calls == [], "answered from what was kept"
        assert sorted(again["graphs"]) == ["a", "b", "c"]
        assert again["graphs"]["a"]["newest_snapshot"] == first["graphs"]["a"]["newest_snapshot"]
        assert again["graphs"]["a"]["rpo_seconds"] > first["graphs"]["a"]["rpo_seconds"], "the age runs on"
        # A snapshot taken here shows at the next answer.
        change(tmp_path / "b", 9)
        taken = manager.get_graph("b").create_snapshot()
        after = client.get("/recovery/status", headers=headers).json()
        assert after["graphs"]["b"]["newest_snapshot"]["snapshot_id"] == taken.snapshot_id


def test_the_refresh_period_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("LIGHTRAG_BACKUP_REFRESH_SECONDS", raising=False)
    assert refresh_seconds_from_env() == 30
    monkeypatch.setenv("LIGHTRAG_BACKUP_REFRESH_SECONDS", "5")
    assert refresh_seconds_from_env() == 5
    for bad in ("0", "soon", "-3"):
        monkeypatch.setenv("LIGHTRAG_BACKUP_REFRESH_SECONDS", bad)
        with pytest.raises(InvalidInputError, match="LIGHTRAG_BACKUP_REFRESH_SECONDS"):
            refresh_seconds_from_env()
