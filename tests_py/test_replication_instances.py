"""Replication between lightrag-backup instances: real `serve` processes on loopback with
different API keys, a primary pushing to a standby over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from lightrag.backup import GraphBackup
from lightrag.backup.catalog import Catalog
from lightrag.backup.offline_graph import graph_files
from lightrag.backup.storage import LocalBackupStorage

from helpers import add_document, build, start_server, start_serve, stop_serve, wait_applied

PRIMARY_KEY, STANDBY_KEY, OTHER_KEY = "primary-key-1", "standby-key-2", "other-key-3"


pytestmark = pytest.mark.processes


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> Iterator[dict[str, dict[str, Any]]]:
    root = tmp_path_factory.mktemp("instances")
    build(root / "primary-graphs" / "g1", 3, seed=5)
    started = {
        "primary": start_server(root, "primary", PRIMARY_KEY),
        "standby": start_server(root, "standby", STANDBY_KEY, "--role", "standby"),
        "other": start_server(root, "other", OTHER_KEY),  # a primary: takes no pushes
    }
    yield started
    for server in started.values():
        stop_serve(server)


def test_a_primary_pushes_only_what_the_standby_lacks(servers, tmp_path: Path):
    primary, standby = servers["primary"]["client"], servers["standby"]
    made = primary.post("/replication/targets", json={"name": "standby", "base_url": standby["base"],
                                                      "api_key": STANDBY_KEY})
    assert made.status_code == 201, made.text
    target_id = made.json()["target_id"]
    health = primary.post(f"/replication/targets/{target_id}/health").json()
    assert health["healthy"] is True and health["role"] == "standby" and health["epoch"] == 0, health

    first = primary.post("/backup/graphs/g1/snapshots?wait=true").json()["result"]
    synced = primary.post("/replication/graphs/g1/replicate?wait=true")
    assert synced.status_code == 200, synced.text
    result = synced.json()["result"]["standby"]
    assert result["status"] == "completed" and result["bytes_sent"] == first["stored_bytes"], result
    assert result["snapshots"][0]["data_hash"] == first["data_hash"]

    # The standby lists it (its own repository and catalog), and restores it byte for byte.
    listed = standby["client"].get("/backup/graphs/g1/snapshots").json()
    assert [s["snapshot_id"] for s in listed] == [first["snapshot_id"]]
    copy = GraphBackup("g1", LocalBackupStorage(standby["repo"], create=False), os.devnull)
    assert copy.verify_snapshot(first["snapshot_id"]).ok
    copy.restore_snapshot(first["snapshot_id"], target_dir=tmp_path / "from-standby")
    assert graph_files(tmp_path / "from-standby") == graph_files(servers["primary"]["graphs"] / "g1")

    # A change step sends only what changed; pushing again sends nothing.
    add_document(servers["primary"]["graphs"] / "g1", seed=9, start=400)
    second = primary.post("/backup/graphs/g1/snapshots?wait=true").json()["result"]
    delta = primary.post("/replication/graphs/g1/replicate?wait=true").json()["result"]["standby"]
    # Exactly the bytes the primary itself added for the change travel (not the whole graph).
    assert delta["bytes_sent"] == second["stored_bytes"] < second["size_bytes"] // 2, (delta, second["stored_bytes"])
    again = primary.post("/replication/graphs/g1/replicate?wait=true").json()["result"]["standby"]
    assert again["bytes_sent"] == 0 and {s["status"] for s in again["snapshots"]} == {"present"}
    status = primary.get("/replication/graphs/g1/status").json()["targets"]["standby"]
    assert status["holds_newest"] is True


def test_role_endpoints_answer_a_load_balancer(servers):
    for name, is_primary in (("primary", True), ("standby", False), ("other", True)):
        base = servers[name]["base"]
        as_primary, as_standby = httpx.get(f"{base}/primary"), httpx.get(f"{base}/standby")  # no key
        assert (as_primary.status_code, as_standby.status_code) == ((200, 503) if is_primary else (503, 200)), name
        assert as_primary.json() == {"role": "primary" if is_primary else "standby", "epoch": 0, "fenced": None,
                                     "acting_as": "primary" if is_primary else "standby", "primary": None}
        assert httpx.head(f"{base}/primary").status_code == as_primary.status_code
        assert httpx.head(f"{base}/standby").status_code == as_standby.status_code


def test_refusals_wrong_key_a_primary_target_and_a_fenced_push(servers):
    primary = servers["primary"]["client"]
    primary.post("/backup/graphs/g1/snapshots?wait=true")
    wrong = primary.post("/replication/targets", json={"name": "wrong-key", "base_url": servers["standby"]["base"],
                                                       "api_key": "not-the-key"}).json()
    assert primary.post(f"/replication/targets/{wrong['target_id']}/health").json()["healthy"] is False
    failed = primary.post("/replication/graphs/g1/replicate?wait=true", json={"targets": ["wrong-key"]})
    outcome = failed.json()["result"]["wrong-key"]
    assert outcome["status"] == "failed" and "403" in outcome["error"] and "not-the-key" not in failed.text

    other = primary.post("/replication/targets", json={"name": "other", "base_url": servers["other"]["base"],
                                                       "api_key": OTHER_KEY}).json()
    refused = primary.post("/replication/graphs/g1/replicate?wait=true", json={"targets": ["other"]}).json()
    assert refused["result"]["other"]["status"] == "failed"
    assert "target_is_primary" in refused["result"]["other"]["error"]
    assert servers["other"]["client"].get("/backup/graphs").json() == [], "a primary target took data"

    # The standby moved to epoch 5 (a failover elsewhere): this primary's push is fenced.
    standby_catalog, primary_catalog = Catalog(servers["standby"]["catalog"]), Catalog(servers["primary"]["catalog"])
    standby_catalog.set_state("epoch", "5")
    try:
        raw = servers["standby"]["client"].get("/replication/receive/graphs/g1/snapshots",
                                               headers={"X-Source-Epoch": "0"})
        assert raw.status_code == 409 and raw.json()["error"] == {**raw.json()["error"], "kind": "fenced", "epoch": 5}
        fenced = primary.post("/replication/graphs/g1/replicate?wait=true", json={"targets": ["standby"]}).json()
        assert "fenced" in fenced["result"]["standby"]["error"], fenced
        assert json.loads(primary_catalog.state("fenced") or "{}")["epoch"] == 5
        # It learnt it is no longer the primary: it pushes nothing, to any target, even once the
        # standby would take it again, until failover gives it a higher epoch.
        standby_catalog.set_state("epoch", "0")
        primary.post("/backup/graphs/g1/snapshots?wait=true")
        held = primary.post("/replication/graphs/g1/replicate?wait=true", json={"targets": ["standby"]}).json()
        assert held["result"]["standby"]["status"] == "failed", held
        assert "no longer the primary" in held["result"]["standby"]["error"]
        assert servers["standby"]["client"].get("/replication/receive/info").json()["fenced"] is None
        assert primary.get("/replication/receive/info").json()["fenced"]["epoch"] == 5
        # A load balancer asking it (no key) hears it is no longer the primary.
        role = httpx.get(f"{servers['primary']['base']}/primary")
        assert role.status_code == 503 and role.json()["acting_as"] == "fenced", role.text
        primary_catalog.set_state("epoch", "6")  # what a failover back to it will do
        again = primary.post("/replication/graphs/g1/replicate?wait=true", json={"targets": ["standby"]}).json()
        assert again["result"]["standby"]["status"] == "completed", again
        assert httpx.get(f"{servers['primary']['base']}/primary").status_code == 200
    finally:
        standby_catalog.set_state("epoch", "0")
        primary_catalog.set_state("epoch", "0")
        primary_catalog.set_state("fenced", "")
    for target in (wrong, other):
        primary.delete(f"/replication/targets/{target['target_id']}")


def test_hostile_pushes_change_nothing(servers):
    standby = servers["standby"]["client"]
    before = sorted(p.name for p in (servers["standby"]["repo"] / "data").rglob("*") if p.is_file())
    # Not a pack; a pack whose chunk does not match its id; a manifest for chunks it lacks.
    assert standby.post("/replication/receive/packs", content=b"junk").status_code == 422
    primary_packs = sorted((servers["primary"]["repo"] / "data").rglob("*"), key=lambda p: p.stat().st_size)
    pack = bytearray(next(p for p in reversed(primary_packs) if p.is_file()).read_bytes())
    pack[len(pack) // 3] ^= 0x11
    tampered = standby.post("/replication/receive/packs", content=bytes(pack))
    assert tampered.status_code == 422 and tampered.json()["error"]["kind"] == "integrity", tampered.text
    assert "nothing" in tampered.json()["error"]["message"]
    assert standby.post("/replication/receive/graphs/g1/snapshots?expected_head=none",
                        content=b"LRBS\x03garbage").status_code == 422
    # A commit must say which head it expects; ids it names are ids.
    assert standby.post("/replication/receive/graphs/g1/snapshots", content=b"x").status_code == 422
    assert standby.post("/replication/receive/graphs/g1/snapshots?expected_head=../x", content=b"x").status_code == 422
    assert standby.post("/replication/receive/graphs/g1/snapshots?expected_head=none&diverged=../../x",
                        content=b"x").status_code == 422
    assert standby.post("/replication/receive/graphs/..%2Fx/snapshots", content=b"x").status_code in (404, 422)
    assert standby.post("/replication/receive/graphs/g1/want", json={"chunks": ["zz"]}).status_code == 422
    assert standby.post("/replication/receive/graphs/g1/want", json={"chunks": ["00" * 32] * 10_001}).status_code == 422
    assert httpx.post(f"{servers['standby']['base']}/replication/receive/packs", content=b"x").status_code == 401
    # The switches take a boolean for a graph id, and nothing else.
    for switch in ("apply", "continuous"):
        assert standby.put(f"/replication/graphs/..%2Fx/{switch}", json={"enabled": True}).status_code in (404, 422)
        bad = standby.put(f"/replication/graphs/g1/{switch}", json={"enabled": "maybe"})
        assert bad.status_code == 422 and bad.json()["error"]["kind"] == "invalid_input", bad.text
        assert standby.put(f"/replication/graphs/g1/{switch}", json={"enabled": True, "x": 1}).status_code == 422
    after = sorted(p.name for p in (servers["standby"]["repo"] / "data").rglob("*") if p.is_file())
    assert after == before, "a refused push stored something"


def test_a_standby_that_changed_on_its_own_conflicts_and_nothing_is_lost(servers, tmp_path: Path):
    primary, standby = servers["primary"]["client"], servers["standby"]

    build(servers["primary"]["graphs"] / "c1", 2, seed=11)
    for name, policy in (("c-reject", "reject"), ("c-wins", "source_wins")):
        made = primary.post("/replication/targets", json={"name": name, "base_url": standby["base"],
                                                          "api_key": STANDBY_KEY, "graphs": ["c1"],
                                                          "conflict_policy": policy})
        assert made.status_code == 201, made.text

    def replicate(target: str) -> dict[str, Any]:
        answer = primary.post("/replication/graphs/c1/replicate?wait=true", json={"targets": [target]})
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["result"][target])

    first = primary.post("/backup/graphs/c1/snapshots?wait=true").json()["result"]
    assert replicate("c-reject")["status"] == "completed"
    # The standby's graph changes on its own, and is backed up there.
    build(tmp_path / "own", 2, seed=12)
    standby_repo = LocalBackupStorage(standby["repo"], create=False)
    own = GraphBackup("c1", standby_repo, tmp_path / "own").create_snapshot(adopt=True)
    (servers["primary"]["graphs"] / "c1" / "kv_store_llm_response_cache.json").write_text("{}")
    second = primary.post("/backup/graphs/c1/snapshots?wait=true").json()["result"]

    def on_standby() -> list[Any]:
        return GraphBackup("c1", standby_repo, os.devnull).list_snapshots()

    before = [s.snapshot_id for s in on_standby()]
    assert first["snapshot_id"] in before and own.snapshot_id in before
    refused = replicate("c-reject")
    assert refused["status"] == "failed" and "conflict" in refused["error"] and own.snapshot_id in refused["error"]
    assert [s.snapshot_id for s in on_standby()] == before, "a rejected push changed the standby"
    logged = primary.get("/replication/logs", params={"graph_id": "c1", "status": "failed"}).json()
    assert logged and "conflict" in logged[0]["error_message"]

    won = replicate("c-wins")
    assert won["status"] == "completed" and won["diverged"] == [own.snapshot_id], won
    after = on_standby()
    assert len(after) == 3, after
    diverged = [s for s in after if "diverged" in s.tags]
    assert len(diverged) == 1 and diverged[0].data_hash == own.data_hash, "the standby's own state is kept"
    assert GraphBackup("c1", standby_repo, os.devnull).get_snapshot("latest").snapshot_id == second["snapshot_id"]
    # The standby's catalog follows: it lists the re-issued id, not the old one.
    listed = {s["snapshot_id"] for s in standby["client"].get("/backup/graphs/c1/snapshots").json()}
    assert diverged[0].snapshot_id in listed and own.snapshot_id not in listed, listed
    # Nothing left to conflict over: the next push under either policy finds no conflict.
    assert replicate("c-reject")["status"] == "completed"
    for target in primary.get("/replication/targets").json():
        if target["name"] in ("c-reject", "c-wins"):
            primary.delete(f"/replication/targets/{target['target_id']}")


def test_a_standby_that_applies_serves_each_replicated_snapshot(servers, tmp_path: Path):
    from helpers import observe_folder

    primary, standby = servers["primary"]["client"], servers["standby"]

    build(servers["primary"]["graphs"] / "a1", 2, seed=13)
    # Only a graph this standby serves can be applied; off by default.
    refused = standby["client"].put("/replication/graphs/a1/apply", json={"enabled": True})
    assert refused.status_code == 404 and "--graphs-dir" in refused.json()["error"]["message"], refused.text
    (standby["graphs"] / "a1").mkdir()
    assert standby["client"].get("/replication/graphs/a1/apply").json()["enabled"] is False
    on = standby["client"].put("/replication/graphs/a1/apply", json={"enabled": True})
    assert on.status_code == 200 and on.json()["enabled"] is True, on.text
    primary.post("/replication/targets", json={"name": "applying", "base_url": standby["base"],
                                               "api_key": STANDBY_KEY, "graphs": ["a1"]})

    first = primary.post("/backup/graphs/a1/snapshots?wait=true").json()["result"]
    pushed = primary.post("/replication/graphs/a1/replicate?wait=true", json={"targets": ["applying"]}).json()
    assert pushed["result"]["applying"]["status"] == "completed", pushed
    applied = wait_applied(standby["client"], "a1", first["snapshot_id"])
    assert applied["safety_snapshot"] is None, "an empty folder has nothing to keep"
    assert graph_files(standby["graphs"] / "a1") == graph_files(servers["primary"]["graphs"] / "a1")

    # A change step: applied too; what it replaced is kept as a safety snapshot there.
    add_document(servers["primary"]["graphs"] / "a1", seed=14, start=500)
    second = primary.post("/backup/graphs/a1/snapshots?wait=true").json()["result"]
    primary.post("/replication/graphs/a1/replicate?wait=true", json={"targets": ["applying"]})
    applied = wait_applied(standby["client"], "a1", second["snapshot_id"])
    assert graph_files(standby["graphs"] / "a1") == graph_files(servers["primary"]["graphs"] / "a1")
    kept = GraphBackup("a1", LocalBackupStorage(standby["repo"], create=False), os.devnull).get_snapshot(
        applied["safety_snapshot"])
    assert "pre-restore" in kept.tags and kept.data_hash == first["data_hash"]
    # LightRAG opened on the standby's graph answers as on the primary's (own workspaces: one
    # process shares a workspace's data between instances).
    import shutil

    for name, folder in (("p", servers["primary"]["graphs"] / "a1"), ("s", standby["graphs"] / "a1")):
        shutil.copytree(folder, tmp_path / name / f"ws-{name}")
    primary_view = asyncio.run(observe_folder(tmp_path / "p", "ws-p"))
    assert primary_view["nodes"] and asyncio.run(observe_folder(tmp_path / "s", "ws-s")) == primary_view
    # The safety snapshot is the standby's own, but no divergence: the next push goes through.
    again = primary.post("/replication/graphs/a1/replicate?wait=true", json={"targets": ["applying"]}).json()
    assert again["result"]["applying"]["status"] == "completed", again
    assert standby["client"].put("/replication/graphs/a1/apply", json={"enabled": False}).json()["enabled"] is False


def test_pushes_survive_errors_resets_and_a_standby_killed_mid_transfer(tmp_path: Path):
    import signal

    from fault_proxy import FaultProxy

    build(tmp_path / "p-graphs" / "big", 2, seed=8)
    big = tmp_path / "p-graphs" / "big" / "vdb_chunks.json"
    big.write_bytes(os.urandom(40 * 1024 * 1024))  # incompressible: several 16 MiB packs
    primary = start_server(tmp_path, "p", PRIMARY_KEY)
    standby = start_server(tmp_path, "s", STANDBY_KEY, "--role", "standby")
    proxy = FaultProxy(standby["port"])
    try:
        client = primary["client"]
        client.post("/replication/targets", json={"name": "flaky", "base_url": proxy.base, "api_key": STANDBY_KEY})
        first = client.post("/backup/graphs/big/snapshots?wait=true").json()["result"]
        # 503 to the first two connections, and a connection reset after 5 MB: retried through.
        proxy.fail_next, proxy.reset_after = 2, 5 * 1024 * 1024
        done = client.post("/replication/graphs/big/replicate?wait=true").json()["result"]["flaky"]
        assert done["status"] == "completed", done
        assert proxy.failures_sent == 2 and proxy.resets == 1
        assert done["bytes_sent"] == first["stored_bytes"]

        # The standby is killed (SIGKILL) right after it stored its first pack of a new snapshot.
        big.write_bytes(os.urandom(40 * 1024 * 1024))
        second = client.post("/backup/graphs/big/snapshots?wait=true").json()["result"]
        proxy.on_answer = (b'"chunks"', lambda: os.kill(standby["process"].pid, signal.SIGKILL))
        cut = client.post("/replication/graphs/big/replicate?wait=true").json()["result"]["flaky"]
        assert cut["status"] == "failed", cut
        standby["process"].wait(timeout=30)
        standby["client"].close()
        seen = GraphBackup("big", LocalBackupStorage(standby["repo"], create=False), os.devnull).list_snapshots()
        assert [s.snapshot_id for s in seen] == [first["snapshot_id"]], "a half-received snapshot became visible"

        restarted = start_serve(standby["repo"], standby["catalog"], standby["graphs"], STANDBY_KEY, "--role",
                                "standby", port=standby["port"])
        standby = restarted
        rest = client.post("/replication/graphs/big/replicate?wait=true").json()["result"]["flaky"]
        assert rest["status"] == "completed", rest
        sent = [s for s in rest["snapshots"] if s["status"] == "copied"]
        assert [s["snapshot_id"] for s in sent] == [second["snapshot_id"]]
        assert 0 < rest["bytes_sent"] < second["stored_bytes"], (rest["bytes_sent"], second["stored_bytes"])
        copy = GraphBackup("big", LocalBackupStorage(standby["repo"], create=False), os.devnull)
        assert copy.verify_snapshot(second["snapshot_id"]).ok
        copy.restore_snapshot(second["snapshot_id"], target_dir=tmp_path / "restored")
        assert graph_files(tmp_path / "restored") == graph_files(big.parent)
    finally:
        proxy.close()
        stop_serve(primary)
        if standby["process"].poll() is None:
            stop_serve(standby)


def test_pushes_complete_through_429s_a_black_hole_truncated_answers_and_delay(tmp_path: Path):
    from fault_proxy import FaultProxy

    graph = tmp_path / "p-graphs" / "faults"
    build(graph, 2, seed=31)
    standby = start_server(tmp_path, "s", STANDBY_KEY, "--role", "standby")
    # A request that gets no answer is given up after 3 s, then retried.
    primary = start_server(tmp_path, "p", PRIMARY_KEY, env={"LIGHTRAG_REPLICATION_TIMEOUT_SECONDS": "3"})
    proxy = FaultProxy(standby["port"])
    copy = GraphBackup("faults", LocalBackupStorage(standby["repo"], create=False), os.devnull)

    def too_many() -> None:
        proxy.fail_next, proxy.fail_status = 2, 429

    def black_hole() -> None:
        proxy.black_hole_next = 1

    def truncated() -> None:
        proxy.truncate_next = 2

    def slow() -> None:
        proxy.delay = 0.05

    try:
        client = primary["client"]
        client.post("/replication/targets", json={"name": "faulty", "base_url": proxy.base, "api_key": STANDBY_KEY})
        for number, fault in enumerate((too_many, black_hole, truncated, slow)):
            add_document(graph, seed=40 + number, start=700 + number)
            made = client.post("/backup/graphs/faults/snapshots?wait=true").json()["result"]
            fault()
            done = client.post("/replication/graphs/faults/replicate?wait=true").json()["result"]["faulty"]
            assert done["status"] == "completed", (fault.__name__, done)
            proxy.delay = 0.0
            # Nothing corrupt on the standby: the copy verifies, reading every chunk, and restores.
            assert copy.verify_snapshot(made["snapshot_id"]).ok, fault.__name__
            copy.restore_snapshot(made["snapshot_id"], target_dir=tmp_path / f"restored-{number}")
            assert graph_files(tmp_path / f"restored-{number}") == graph_files(graph), fault.__name__
        assert (proxy.failures_sent, proxy.black_holed, proxy.truncated) == (2, 1, 2)
        logs = client.get("/replication/logs", params={"graph_id": "faults", "status": "completed"}).json()
        assert len(logs) == 4
    finally:
        proxy.close()
        stop_serve(primary)
        stop_serve(standby)


def test_with_replication_enabled_every_commit_reaches_the_standby_by_itself(tmp_path: Path):
    import time

    build(tmp_path / "p-graphs" / "auto", 2, seed=4)
    standby = start_server(tmp_path, "s", STANDBY_KEY, "--role", "standby")
    os.environ["LIGHTRAG_REPLICATION_ENABLED"] = "true"
    os.environ["LIGHTRAG_REPLICATION_CATCH_UP_SECONDS"] = "2"
    try:
        primary = start_server(tmp_path, "p", PRIMARY_KEY)
    finally:
        del os.environ["LIGHTRAG_REPLICATION_ENABLED"], os.environ["LIGHTRAG_REPLICATION_CATCH_UP_SECONDS"]
    try:
        client = primary["client"]
        client.post("/replication/targets", json={"name": "standby", "base_url": standby["base"],
                                                  "api_key": STANDBY_KEY})
        made = client.post("/backup/graphs/auto/snapshots?wait=true").json()["result"]
        committed = time.monotonic()
        deadline = committed + 60
        while True:
            listed = standby["client"].get("/backup/graphs/auto/snapshots")
            if listed.status_code == 200 and [s["snapshot_id"] for s in listed.json()] == [made["snapshot_id"]]:
                break
            assert time.monotonic() < deadline, "the commit never reached the standby"
            time.sleep(0.1)
        print(f"commit on the primary -> commit on the standby: {time.monotonic() - committed:.2f} s")
        logs = client.get("/replication/logs", params={"graph_id": "auto"}).json()
        assert logs and logs[0]["status"] == "completed" and logs[0]["backup_id"] == made["snapshot_id"]
    finally:
        stop_serve(primary)
        stop_serve(standby)


def test_https_targets_signed_by_a_private_ca(tmp_path: Path):
    from helpers import make_test_ca

    tls = make_test_ca(tmp_path / "tls")

    build(tmp_path / "p-graphs" / "tls", 2, seed=6)
    standby = start_server(tmp_path, "s", STANDBY_KEY, "--role", "standby", "--ssl-certfile", str(tls["cert"]),
                           "--ssl-keyfile", str(tls["key"]), ca=tls["ca"])
    primary = start_server(tmp_path, "p", PRIMARY_KEY)
    # Trusting the CA for every target of an instance: SSL_CERT_FILE.
    trusting = start_serve(tmp_path / "t-repo", tmp_path / "t.sqlite3", tmp_path / "p-graphs", OTHER_KEY,
                           env={"SSL_CERT_FILE": str(tls["ca"])})
    try:
        assert standby["base"].startswith("https://")
        client = primary["client"]
        untrusted = client.post("/replication/targets", json={"name": "no-ca", "base_url": standby["base"],
                                                              "api_key": STANDBY_KEY}).json()
        trusted = client.post("/replication/targets", json={"name": "ca", "base_url": standby["base"],
                                                            "api_key": STANDBY_KEY, "ca_file": str(tls["ca"])}).json()
        refused = client.post(f"/replication/targets/{untrusted['target_id']}/health").json()
        assert refused["healthy"] is False and "certificate" in refused["error"].lower(), refused
        assert client.post(f"/replication/targets/{trusted['target_id']}/health").json()["healthy"] is True

        made = client.post("/backup/graphs/tls/snapshots?wait=true").json()["result"]
        done = client.post("/replication/graphs/tls/replicate?wait=true", json={"targets": ["ca"]}).json()["result"]
        assert done["ca"]["status"] == "completed" and done["ca"]["bytes_sent"] == made["stored_bytes"], done
        assert done["ca"]["snapshots"][0]["data_hash"] == made["data_hash"]
        failed = client.post("/replication/graphs/tls/replicate?wait=true", json={"targets": ["no-ca"]}).json()
        assert failed["result"]["no-ca"]["status"] == "failed"
        assert "certificate" in failed["result"]["no-ca"]["error"].lower(), failed

        other = trusting["client"]
        target = other.post("/replication/targets", json={"name": "env-ca", "base_url": standby["base"],
                                                          "api_key": STANDBY_KEY}).json()
        assert other.post(f"/replication/targets/{target['target_id']}/health").json()["healthy"] is True
        theirs = other.post("/backup/graphs/tls/snapshots?wait=true").json()["result"]
        pushed = other.post("/replication/graphs/tls/replicate?wait=true").json()["result"]["env-ca"]
        # Another source, the same content: what the standby holds diverges from nothing.
        assert theirs["data_hash"] == made["data_hash"]
        assert pushed["status"] == "completed" and pushed["diverged"] == [], pushed
    finally:
        stop_serve(primary)
        stop_serve(trusting)
        stop_serve(standby)


def test_continuous_replication_snapshots_and_pushes_each_change_within_seconds(tmp_path: Path):
    import time

    build(tmp_path / "p-graphs" / "cont", 2, seed=21)
    standby = start_server(tmp_path, "s", STANDBY_KEY, "--role", "standby")
    primary = start_server(tmp_path, "p", PRIMARY_KEY, env={"LIGHTRAG_REPLICATION_CONTINUOUS_POLL_SECONDS": "0.2"})
    on_standby = GraphBackup("cont", LocalBackupStorage(standby["repo"], create=False), os.devnull)

    def wait_for_standby_copy(deadline_seconds: float = 60) -> str:
        """Until the standby's newest snapshot restores to exactly the primary's folder."""
        deadline = time.monotonic() + deadline_seconds
        checked: set[str] = set()
        while time.monotonic() < deadline:
            snapshots = on_standby.list_snapshots()
            if snapshots and snapshots[-1].snapshot_id not in checked:
                newest = snapshots[-1].snapshot_id
                checked.add(newest)
                target = tmp_path / f"check-{newest}"
                on_standby.restore_snapshot(newest, target_dir=target)
                if graph_files(target) == graph_files(tmp_path / "p-graphs" / "cont"):
                    return newest
            time.sleep(0.1)
        raise AssertionError("the change never reached the standby")

    try:
        client = primary["client"]
        client.post("/replication/targets", json={"name": "standby", "base_url": standby["base"],
                                                  "api_key": STANDBY_KEY})
        assert client.get("/replication/graphs/cont/continuous").json()["enabled"] is False
        assert client.put("/replication/graphs/nope/continuous", json={"enabled": True}).status_code == 404
        on = client.put("/replication/graphs/cont/continuous", json={"enabled": True})
        assert on.status_code == 200 and on.json()["enabled"] is True, on.text
        # The graph as it is reaches the standby without anyone asking for a snapshot.
        first = wait_for_standby_copy()

        # Another process (LightRAG) changes the folder: noticed, snapshotted, pushed.
        add_document(tmp_path / "p-graphs" / "cont", seed=1, start=601)
        written = time.monotonic()
        second = wait_for_standby_copy()
        print(f"continuous: write on the primary -> on the standby in {time.monotonic() - written:.2f} s")
        assert second != first
        watched = client.get("/replication/graphs/cont/continuous").json()["watcher"]
        assert watched["enabled"] is True and watched["error"] is None, watched

        # An unchanged graph stores nothing, however often it is looked at.
        count = len(GraphBackup("cont", LocalBackupStorage(primary["repo"], create=False), os.devnull).list_snapshots())
        time.sleep(1.5)
        assert len(GraphBackup("cont", LocalBackupStorage(primary["repo"], create=False),
                               os.devnull).list_snapshots()) == count
        # Off: changes stay on the primary until someone replicates.
        client.put("/replication/graphs/cont/continuous", json={"enabled": False})
        time.sleep(0.5)
        add_document(tmp_path / "p-graphs" / "cont", seed=2, start=602)
        time.sleep(2)
        assert on_standby.list_snapshots()[-1].snapshot_id == second
    finally:
        stop_serve(primary)
        stop_serve(standby)
