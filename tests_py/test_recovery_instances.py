"""Disaster recovery with real processes on loopback: a primary replicating three graphs
continuously to two standbys, a recovery point over the three, the primary killed with
SIGKILL, failover on a standby, the old primary fenced when it comes back."""

from __future__ import annotations

import pytest

import asyncio
import json
import os
import signal
from pathlib import Path

import httpx

from lightrag.backup import BackupManager
from lightrag.backup.offline_graph import entity_names
from lightrag.backup.storage import LocalBackupStorage
from lightrag.recovery import HealthValidator
from lightrag.replication import ReplicationManager

from helpers import add_document, build, eventually, observe_folder, restart_serve, start_server, stop_serve, wait_job

PRIMARY_KEY, STANDBY_KEY, SECOND_KEY = "dr-primary-key", "dr-standby-key", "dr-second-key"
GRAPHS = ("alpha", "beta", "gamma")


pytestmark = pytest.mark.processes


def snapshot_ids(client: httpx.Client, graph_id: str) -> list[str]:
    answer = client.get(f"/backup/graphs/{graph_id}/snapshots")
    return [s["snapshot_id"] for s in answer.json()] if answer.status_code == 200 else []


def test_failover_to_a_recovery_point_after_the_primary_is_killed(tmp_path: Path):
    for seed, graph_id in enumerate(GRAPHS):
        build(tmp_path / "p-graphs" / graph_id, 2, seed=20 + seed)
    primary_env = {"LIGHTRAG_REPLICATION_CONTINUOUS": "*", "LIGHTRAG_REPLICATION_CONTINUOUS_POLL_SECONDS": "0.2"}
    standby = start_server(tmp_path, "s", STANDBY_KEY, "--role", "standby")
    second = start_server(tmp_path, "s2", SECOND_KEY, "--role", "standby")
    primary = start_server(tmp_path, "p", PRIMARY_KEY, env=primary_env)
    servers = [standby, second, primary]
    try:
        client = primary["client"]
        # The continuous watcher snapshots each graph first; targets registered after that get
        # them at once (not at the next catch-up, minutes later).
        eventually(lambda: all(snapshot_ids(client, g) for g in GRAPHS), "the first continuous snapshots")
        for name, server, key in (("standby", standby, STANDBY_KEY), ("second", second, SECOND_KEY)):
            made = client.post("/replication/targets", json={"name": name, "base_url": server["base"], "api_key": key})
            assert made.status_code == 201, made.text
        for server in (standby, second):
            eventually(lambda s=server: all(snapshot_ids(s["client"], g) for g in GRAPHS), "a new target's graphs",
                       seconds=30)

        # A recovery point over the three graphs, on the primary; it reaches both standbys
        # with its snapshots.
        taken = client.post("/recovery/checkpoint", json={"description": "before the incident", "created_by": "ops"})
        assert taken.status_code == 201, taken.text
        point = taken.json()
        assert point["graphs"] == list(GRAPHS) and set(point["snapshots"]) == set(GRAPHS)
        state = {g: entity_names(tmp_path / "p-graphs" / g) for g in GRAPHS}
        for server in (standby, second):
            eventually(lambda s=server: any(p["checkpoint_id"] == point["checkpoint_id"]
                                            for p in s["client"].get("/recovery/checkpoints").json()),
                       f"the point on {server['base']}")
        listed = standby["client"].get(f"/recovery/checkpoints/{point['checkpoint_id'][:8]}").json()
        assert listed["snapshots"] == point["snapshots"]
        assert client.get("/recovery/checkpoints/0000aaaa").status_code == 404
        assert client.post("/recovery/checkpoint", json={"graphs": ["nope"]}).status_code == 404
        assert client.post("/recovery/checkpoint", json={"graphs": ["../x"]}).status_code == 422
        assert client.post("/recovery/checkpoint", json={"bogus": 1}).status_code == 422
        bare = client.post("/recovery/checkpoint")  # no body: every graph
        assert bare.status_code == 201 and bare.json()["graphs"] == list(GRAPHS), bare.text
        assert client.delete(f"/recovery/checkpoints/{bare.json()['checkpoint_id']}").status_code == 200

        # Later writes replicate continuously, past the point.
        add_document(tmp_path / "p-graphs" / "alpha", seed=29, start=100)
        eventually(lambda: len(snapshot_ids(standby["client"], "alpha")) >= 2, "the later write on the standby")
        assert entity_names(tmp_path / "p-graphs" / "alpha") != state["alpha"]

        # The primary is lost.
        os.kill(primary["process"].pid, signal.SIGKILL)
        primary["process"].wait(timeout=30)

        on_standby = standby["client"]
        assert on_standby.get("/primary").status_code == 503 and on_standby.get("/standby").status_code == 200
        plan = on_standby.post(f"/recovery/checkpoints/{point['checkpoint_id']}/failover?dry_run=true")
        assert plan.status_code == 200, plan.text
        assert plan.json()["ready"] and plan.json()["new_epoch"] == 1
        assert on_standby.get("/primary").status_code == 503, "a plan changes nothing"

        started = on_standby.post(f"/recovery/checkpoints/{point['checkpoint_id']}/failover")
        assert started.status_code == 202, started.text
        again = on_standby.post(f"/recovery/checkpoints/{point['checkpoint_id']}/failover")
        assert again.status_code == 409 and again.json()["error"]["kind"] == "operation_running", again.text
        job = wait_job(on_standby, started.json())
        assert job["state"] == "succeeded", job.get("error")
        report = job["result"]
        assert report["ok"] and report["epoch"] == {"before": 0, "after": 1}, json.dumps(report["validation"])[:3000]
        assert report["rto_seconds"] < 60 and report["rpo_seconds"] >= 0
        print(f"failover of three graphs: RTO {report['rto_seconds']:.2f} s")

        # The standby is the primary now, serving the point's state (not the later write).
        assert on_standby.get("/primary").status_code == 200
        assert on_standby.get("/standby").status_code == 503
        for graph_id in GRAPHS:
            assert entity_names(tmp_path / "s-graphs" / graph_id) == state[graph_id], graph_id
        seen = asyncio.run(observe_folder(tmp_path / "s-graphs", "alpha"))
        assert sorted(n for n, _ in seen["nodes"]) == state["alpha"] and seen["answers"]["naive"]
        status = on_standby.get("/recovery/status").json()
        assert status["acting_as"] == "primary" and status["epoch"] == 1
        assert status["last_failover"]["checkpoint_id"] == point["checkpoint_id"]

        # The other standby follows the new primary ...
        made = on_standby.post("/replication/targets", json={"name": "second", "base_url": second["base"],
                                                               "api_key": SECOND_KEY})
        assert made.status_code == 201, made.text
        pushed = on_standby.post("/replication/graphs/alpha/replicate?wait=true").json()["result"]["second"]
        assert pushed["status"] == "completed", pushed

        # ... and the old primary, back from the dead, is fenced by both: its pushes are
        # refused, and its /primary answers 503 once it has heard the higher epoch.
        primary = servers[2] = restart_serve(primary)
        refused = primary["client"].post("/replication/graphs/alpha/replicate?wait=true").json()["result"]
        assert {r["status"] for r in refused.values()} == {"failed"}, refused
        assert all("fenced" in (r["error"] or "") for r in refused.values()), refused
        assert primary["client"].get("/primary").status_code == 503
        assert primary["client"].get("/primary").json()["acting_as"] == "fenced"
        assert on_standby.get("/primary").status_code == 200

        # The new primary checks the copy it sent: the second standby reads it back whole.
        manager = BackupManager(LocalBackupStorage(tmp_path / "s-repo"), tmp_path / "s.sqlite3")
        log = next(row for row in manager.catalog.replication_logs("alpha", newest_first=True)
                   if row["status"] == "completed")
        validator = HealthValidator(manager, replication=ReplicationManager(manager))
        assert validator.validate_replication(log) is True, validator.last_report
        assert validator.last_report["target"]["data_hash"] == log["data_hash"]

        # A drill of the point on the new primary: measured, nothing live touched.
        drill = on_standby.post(f"/recovery/checkpoints/{point['checkpoint_id']}/drill?wait=true")
        assert drill.status_code == 200, drill.text
        assert drill.json()["result"]["ok"] and drill.json()["result"]["rto_seconds"] > 0
        assert on_standby.get("/recovery/status").json()["rto_seconds"] == drill.json()["result"]["rto_seconds"]
        checked = on_standby.post("/recovery/health-check")
        assert checked.status_code == 200 and set(checked.json()["graphs"]) >= set(GRAPHS)
        validated = on_standby.post(f"/recovery/checkpoints/{point['checkpoint_id']}/validate?wait=true").json()
        assert validated["result"]["validated"] is True, validated
    finally:
        for server in servers:
            if server["process"].poll() is None:
                stop_serve(server)
