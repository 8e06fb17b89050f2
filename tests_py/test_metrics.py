"""``GET /metrics`` on a running server, scraped and parsed with prometheus_client's own parser
after real backups, a verify that finds damage and a replication: every value must match what
the REST API reports for the same thing."""

from __future__ import annotations

import pytest

from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from helpers import add_document, build, start_server, stop_serve

KEY = "metrics-key"


pytestmark = pytest.mark.processes


def scrape(client: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = client.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    values = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def value(values: dict[Any, float], name: str, **labels: str) -> float:
    return values[(name, tuple(sorted(labels.items())))]


def test_metrics_match_what_the_api_reports(tmp_path: Path):
    build(tmp_path / "m-graphs" / "docs", 2, seed=41)
    build(tmp_path / "m-graphs" / "notes", 1, seed=42)
    server = start_server(tmp_path, "m", KEY, env={"LIGHTRAG_REPLICATION_ALLOWED_DIRS": str(tmp_path)})
    client = server["client"]
    try:
        assert httpx.get(f"{server['base']}/metrics").status_code in (401, 403), "behind the key"
        for graph_id in ("docs", "notes"):
            assert client.post(f"/backup/graphs/{graph_id}/snapshots?wait=true", json={}).status_code == 200
        add_document(tmp_path / "m-graphs" / "docs", seed=43, start=10)
        second = client.post("/backup/graphs/docs/snapshots?wait=true", json={}).json()["result"]
        made = client.post("/replication/targets", json={"name": "offsite", "base_url": f"file://{tmp_path / 'offsite'}"})
        assert made.status_code == 201, made.text
        replicated = client.post("/replication/graphs/notes/replicate?wait=true").json()["result"]["offsite"]
        assert replicated["status"] == "completed", replicated
        # A verify that finds damage: one pack cut short.
        pack = max((tmp_path / "m-repo" / "data").rglob("*"), key=lambda p: p.stat().st_size if p.is_file() else 0)
        pack.write_bytes(pack.read_bytes()[: pack.stat().st_size // 2])
        damaged = client.post(f"/backup/graphs/docs/snapshots/{second['snapshot_id']}/verify?wait=true").json()
        assert damaged["result"]["ok"] is False, damaged

        values = scrape(client)
        stats = client.get("/backup/stats").json()
        overview = {g["graph_id"]: g for g in client.get("/backup/graphs").json()}
        for graph_id in ("docs", "notes"):
            graph = stats["graphs"][graph_id]
            assert value(values, "lightrag_backup_snapshots", graph=graph_id) == overview[graph_id]["snapshot_count"]
            assert value(values, "lightrag_backup_logical_bytes", graph=graph_id) == graph["logical_bytes"]
            assert value(values, "lightrag_backup_stored_bytes", graph=graph_id) == graph["stored_bytes"]
            assert value(values, "lightrag_backup_dedup_ratio", graph=graph_id) == graph["dedup_ratio"]
            newest = overview[graph_id]["newest"]
            assert value(values, "lightrag_backup_last_success_timestamp_seconds", graph=graph_id) == \
                datetime.fromisoformat(newest["timestamp"]).timestamp()
            assert value(values, "lightrag_backup_last_new_bytes", graph=graph_id) == newest["stored_bytes"]
            assert 0 < value(values, "lightrag_backup_last_duration_seconds", graph=graph_id) < 60
        assert value(values, "lightrag_backup_verify_failures_total", graph="docs") == 1
        assert value(values, "lightrag_backup_verify_failures_total", graph="notes") == 0
        assert value(values, "lightrag_backup_repository_bytes") == stats["overall"]["repository_bytes"]

        replication = client.get("/replication/metrics").json()["offsite"]["graphs"]["notes"]
        assert value(values, "lightrag_replication_bytes_sent_total", target="offsite", graph="notes") == \
            replication["bytes_sent"] > 0
        assert value(values, "lightrag_replication_successes_total", target="offsite", graph="notes") == \
            replication["successes"] == 1
        assert value(values, "lightrag_replication_failures_total", target="offsite", graph="notes") == 0
        assert value(values, "lightrag_replication_lag_seconds", target="offsite", graph="notes") == \
            replication["lag_seconds"] == 0

        status = client.get("/recovery/status").json()
        assert value(values, "lightrag_recovery_role", role="primary") == 1
        assert value(values, "lightrag_recovery_role", role="standby") == 0
        assert value(values, "lightrag_recovery_epoch") == status["epoch"] == 0
        # RPO grows with the clock: the scrape came first, the status a moment later.
        scraped = value(values, "lightrag_recovery_rpo_seconds", graph="notes")
        assert 0 <= status["graphs"]["notes"]["rpo_seconds"] - scraped < 10, (scraped, status["graphs"]["notes"])
        # docs has a standby (the offsite repository takes every graph) that holds none of it.
        assert status["graphs"]["docs"]["rpo_seconds"] is None
        assert value(values, "lightrag_recovery_rpo_seconds", graph="docs") == float("inf")
    finally:
        stop_serve(server)


def test_metrics_can_be_public(tmp_path: Path):
    (tmp_path / "p-graphs").mkdir()
    server = start_server(tmp_path, "p", KEY, env={"LIGHTRAG_BACKUP_METRICS_PUBLIC": "true"})
    try:
        answer = httpx.get(f"{server['base']}/metrics")
        assert answer.status_code == 200 and "lightrag_recovery_role" in answer.text, answer.text
        # Only the metrics: the rest still needs the key.
        assert httpx.get(f"{server['base']}/backup/stats").status_code in (401, 403)
    finally:
        stop_serve(server)
