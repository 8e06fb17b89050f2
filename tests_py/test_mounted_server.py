"""`lightrag-backup-server`: LightRAG's own API server with the backup routes mounted, over real
HTTP, with its live instance (stub LLM and embeddings behind an OpenAI-compatible loopback
server, see mounted_server.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from helpers import (MOUNTED_API_KEY, MOUNTED_LAUNCHER as LAUNCHER, answers, exists, insert, labels,
                     start_mounted as start,
                     stop_mounted as stop, wait_applied, wait_job)

API_KEY = MOUNTED_API_KEY
PASSWORD = "admin-pass-789"


pytestmark = pytest.mark.processes


@pytest.fixture(scope="module")
def mounted(tmp_path_factory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("mounted")
    process, base = start(root, "--backup-repo", str(root / "repo"), "--backup-graph-id", "live",
                          "--backup-catalog", str(root / "catalog.sqlite3"),
                          env={"AUTH_ACCOUNTS": f"admin:{PASSWORD}", "TOKEN_SECRET": "mounted-token-secret-0123456789"})
    client = httpx.Client(base_url=base, headers={"X-API-Key": API_KEY}, timeout=120)
    yield {"client": client, "base": base, "root": root, "process": process}
    client.close()
    if process.poll() is None:
        stop(process)


def test_routes_sit_behind_lightrags_auth(mounted):
    base = mounted["base"]
    for path in ("/backup/stats", "/backup/graphs/live/snapshots", "/backup/health"):
        response = httpx.get(f"{base}{path}")
        assert response.status_code in (401, 403), (path, response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/json")
        wrong = httpx.get(f"{base}{path}", headers={"X-API-Key": "wrong"})
        assert wrong.status_code in (401, 403), (path, wrong.status_code)
    health = mounted["client"].get("/backup/health").json()
    assert health["graphs"] == ["live"] and health["scheduler_running"] is True
    assert health["repository"] == str(mounted["root"] / "repo")
    # The metrics sit behind the same auth; the status page holds no data, so it does not.
    assert httpx.get(f"{base}/metrics").status_code in (401, 403)
    scraped = mounted["client"].get("/metrics")
    assert scraped.status_code == 200 and 'lightrag_recovery_role{role="primary"} 1.0' in scraped.text, scraped.text
    page = httpx.get(f"{base}/backup/ui")
    assert page.status_code == 200 and "are my graphs safe?" in page.text and API_KEY not in page.text
    # LightRAG's own routes are still there, behind the same key.
    assert httpx.get(f"{base}/graph/label/list").status_code in (401, 403)
    assert mounted["client"].get("/graph/label/list").status_code == 200


def test_a_jwt_from_lightrags_login_opens_the_backup_routes(mounted):
    base = mounted["base"]
    refused = httpx.post(f"{base}/login", data={"username": "admin", "password": "wrong"})
    assert refused.status_code == 401, refused.text
    login = httpx.post(f"{base}/login", data={"username": "admin", "password": PASSWORD})
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    stats = httpx.get(f"{base}/backup/stats", headers={"Authorization": f"Bearer {token}"})
    assert stats.status_code == 200, stats.text
    assert "live" in stats.json()["graphs"]
    forged = httpx.get(f"{base}/backup/stats", headers={"Authorization": f"Bearer {token[:-4]}AAAA"})
    assert forged.status_code in (401, 403), forged.text


def test_live_snapshot_and_restore_through_the_running_server(mounted):
    client = mounted["client"]
    insert(client, "[[Alice Smith]] works at [[Orion Lab]] in [[Lisbon]]. [[Orion Lab]] funds [[Project Zeta]].", "a.txt")
    before = labels(client)
    assert "Alice Smith" in before

    created = client.post("/backup/graphs/live/snapshots?wait=true", json={"description": "after a.txt", "tags": ["api"]})
    assert created.status_code == 200, created.text
    snapshot = created.json()["result"]
    assert snapshot["metadata"]["capture"] == "live", "the live instance is captured online"
    assert snapshot["metadata"]["entities"] == len(before)

    insert(client, "[[Bruno Costa]] leads [[Helix Institute]] in [[Osaka]].", "b.txt")
    assert "Bruno Costa" in labels(client)
    assert exists(client, "Helix Institute") and answers(client, "Who leads [[Helix Institute]]?")

    # An asynchronous restore: 202, then the job is polled to the end.
    started = client.post(f"/backup/graphs/live/snapshots/{snapshot['snapshot_id']}/restore", json={})
    assert started.status_code == 202, started.text
    job = wait_job(client, started.json())
    assert job["state"] == "succeeded", job
    # The running instance answers from the restored graph, without a restart.
    assert labels(client) == before
    assert not exists(client, "Helix Institute") and exists(client, "Orion Lab")
    assert answers(client, "Where does [[Alice Smith]] work?")
    documents = client.post("/documents/paginated", json={"page": 1, "page_size": 50}).json()["documents"]
    assert sorted(d["file_path"] for d in documents) == ["a.txt"], documents

    listed = client.get("/backup/graphs/live/snapshots").json()
    tags = [s["tags"] for s in listed]
    assert ["api"] in tags and any("pre-restore" in t for t in tags), "a safety snapshot precedes the restore"
    verified = client.post(f"/backup/graphs/live/snapshots/{snapshot['snapshot_id']}/verify?wait=true", json={"read_data": True})
    assert verified.status_code == 200 and verified.json()["result"]["ok"], verified.text

    # The server goes on working after the restore: a new document is processed and backed up.
    insert(client, "[[Chen Wu]] visits [[Riga]].", "c.txt")
    assert "Chen Wu" in labels(client)
    again = client.post("/backup/graphs/live/snapshots?wait=true", json={})
    assert again.status_code == 200 and again.json()["result"]["metadata"]["entities"] == len(before) + 2


def test_unknown_graph_bad_ids_and_busy_graph(mounted):
    client = mounted["client"]
    assert client.get("/backup/graphs/nope/snapshots").status_code == 404
    for bad in ("..%2F..%2Fetc", "a%00b", "x" * 300):
        response = client.get(f"/backup/graphs/{bad}/snapshots")
        assert 400 <= response.status_code < 500, (bad, response.status_code)
    missing = client.post("/backup/graphs/live/snapshots/0123abcd/restore?wait=true", json={})
    assert missing.status_code == 404 and missing.json()["error"]["kind"] == "snapshot_not_found", missing.text


def test_schedules_run_in_the_server_and_stop_with_it(tmp_path: Path):
    """A schedule set over HTTP runs in the server's process; SIGINT stops the scheduler, then
    LightRAG, and the process exits 0."""
    process, base = start(tmp_path, env={"LIGHTRAG_BACKUP_STORAGE_PATH": str(tmp_path / "repo"),
                                          "LIGHTRAG_BACKUP_CATALOG_PATH": str(tmp_path / "catalog.sqlite3"),
                                          "LIGHTRAG_BACKUP_GRAPH_ID": "sched"})
    try:
        with httpx.Client(base_url=base, headers={"X-API-Key": API_KEY}, timeout=120) as client:
            insert(client, "[[Dana Reyes]] joins [[Nova Archive]].", "d.txt")
            response = client.post("/backup/schedule", json={"graph_id": "sched", "interval": "1s"})
            assert response.status_code == 200, response.text
            deadline = time.monotonic() + 60
            while True:
                view = client.get("/backup/schedule/sched").json()
                if view.get("last_result") == "created":
                    break
                assert time.monotonic() < deadline, view
                time.sleep(0.2)
            snapshots = client.get("/backup/graphs/sched/snapshots").json()
            assert snapshots and snapshots[0]["tags"] == ["scheduled"]
            assert snapshots[0]["metadata"]["capture"] == "live"
    finally:
        code = stop(process)
    assert code == 0, "\n".join(log.read_text()[-3000:] for log in tmp_path.glob("server-*.log"))


def test_bad_backup_settings_stop_the_server_with_a_clear_message(tmp_path: Path):
    done = subprocess.run([sys.executable, str(LAUNCHER), "--backup-repo", "s3://bucket/x", "--backup-repo-option", "nokey"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "KEY=VALUE" in done.stderr, done.stderr
    done = subprocess.run([sys.executable, str(LAUNCHER), "--backup-bogus", "1"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--backup-bogus" in done.stderr, done.stderr


def test_the_console_script_has_lightrag_servers_options_and_ours():
    script = Path(sys.executable).with_name("lightrag-backup-server")
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "--backup-repo" in done.stdout and "--working-dir" in done.stdout and "--llm-binding" in done.stdout


def test_property_based_pass_over_the_mounted_backup_routes_finds_no_5xx(mounted):
    done = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", f"{mounted['base']}/openapi.json",
         "--include-path-regex", "^/backup", "--checks", "not_a_server_error",
         "--header", f"X-API-Key: {API_KEY}", "--max-examples", "20", "--seed", "20261126",
         "--generation-database", "none", "--request-timeout", "120", "--generation-allow-x00", "true"],
        capture_output=True, text=True, timeout=900, cwd=mounted["root"],
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]


def test_a_mounted_standby_applies_what_its_primary_pushes_and_answers_without_a_restart(tmp_path: Path):
    primary_root, standby_root = tmp_path / "primary", tmp_path / "standby"
    primary_root.mkdir()
    standby_root.mkdir()
    primary, primary_base = start(primary_root, "--backup-repo", str(primary_root / "repo"), "--backup-graph-id",
                                  "live", "--backup-catalog", str(primary_root / "catalog.sqlite3"),
                                  env={"LIGHTRAG_REPLICATION_CONTINUOUS_POLL_SECONDS": "0.3"})
    standby, standby_base = start(standby_root, "--backup-repo", str(standby_root / "repo"), "--backup-graph-id",
                                  "live", "--backup-catalog", str(standby_root / "catalog.sqlite3"),
                                  "--backup-role", "standby", env={"LIGHTRAG_REPLICATION_APPLY": "live"})
    clients = [httpx.Client(base_url=base, headers={"X-API-Key": API_KEY}, timeout=120)
               for base in (primary_base, standby_base)]
    try:
        source, target = clients
        insert(source, "[[Dana Lee]] runs [[Nova Works]] in [[Tallinn]].", "d.txt")
        assert not exists(target, "Dana Lee")
        made = source.post("/replication/targets", json={"name": "standby", "base_url": standby_base,
                                                         "api_key": API_KEY})
        assert made.status_code == 201, made.text
        snapshot = source.post("/backup/graphs/live/snapshots?wait=true", json={}).json()["result"]
        pushed = source.post("/replication/graphs/live/replicate?wait=true").json()["result"]["standby"]
        assert pushed["status"] == "completed", pushed
        wait_applied(target, "live", snapshot["snapshot_id"])
        # The standby's running LightRAG serves the replicated graph, with no restart.
        assert standby.poll() is None
        assert labels(target) == labels(source) and exists(target, "Dana Lee")
        assert answers(target, "Who runs [[Nova Works]]?")
        # Continuous from now on: an insert on the primary is served by the standby within seconds.
        assert source.put("/replication/graphs/live/continuous", json={"enabled": True}).json()["enabled"] is True
        assert not exists(target, "Eva Ross")
        asked = time.monotonic()
        insert(source, "[[Eva Ross]] advises [[Nova Works]] from [[Bergen]].", "e.txt")
        inserted = time.monotonic()
        while not exists(target, "Eva Ross"):
            assert time.monotonic() - inserted < 60, target.get("/replication/graphs/live/apply").json()
            time.sleep(0.2)
        print(f"continuous, live: insert processed on the primary -> answered on the standby in "
              f"{time.monotonic() - inserted:.2f} s ({time.monotonic() - asked:.2f} s from the insert request)")
        assert labels(target) == labels(source)
        # A standby pushes to no instance (and a primary would take no push anyway).
        refused = target.post("/replication/targets", json={"name": "back", "base_url": primary_base,
                                                            "api_key": API_KEY}).json()
        back = target.post("/replication/graphs/live/replicate?wait=true").json()["result"]["back"]
        assert back["status"] == "failed" and "only the primary pushes to instances" in back["error"], (refused, back)
        assert target.delete(f"/replication/targets/{refused['target_id']}").status_code == 200

        # A recovery point of the live graph on the primary reaches the standby; a later
        # insert too; then the primary is lost and the standby fails over to the point.
        point = source.post("/recovery/checkpoint", json={"description": "live point"}).json()
        deadline = time.monotonic() + 60
        while point["checkpoint_id"] not in [p["checkpoint_id"] for p in target.get("/recovery/checkpoints").json()]:
            assert time.monotonic() < deadline, "the point did not reach the standby"
            time.sleep(0.2)
        insert(source, "[[Finn Hale]] audits [[Nova Works]] in [[Oslo]].", "f.txt")
        while not exists(target, "Finn Hale"):
            assert time.monotonic() - deadline < 60
            time.sleep(0.2)
        primary.kill()
        primary.wait(timeout=30)
        done = target.post(f"/recovery/checkpoints/{point['checkpoint_id']}/failover?wait=true")
        assert done.status_code == 200, done.text
        report = done.json()["result"]
        assert report["ok"], report
        live = report["validation"]["graphs"]["live"]
        assert live["source"] == "live" and live["smoke_query"]["ok"], live
        assert "lightrag query" in live["smoke_query"]["method"]
        # The running LightRAG serves the point's state at once: no restart.
        assert standby.poll() is None
        assert exists(target, "Eva Ross") and not exists(target, "Finn Hale")
        assert target.get("/primary").status_code == 200
        # And it takes writes as the primary.
        insert(target, "[[Gus Moe]] joins [[Nova Works]].", "g.txt")
        assert exists(target, "Gus Moe")
    finally:
        for client in clients:
            client.close()
        if primary.poll() is None:
            stop(primary)
        stop(standby)
