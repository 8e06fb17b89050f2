"""The REST API over real HTTP: `lightrag-backup serve` started with uvicorn on loopback, over a
folder of real LightRAG graphs."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any, Iterator

import httpx
import pytest

from lightrag.backup.offline_graph import build_graph, graph_files

from helpers import start_serve, stop_serve, wait_job

API_KEY = "test-api-key-123"


pytestmark = pytest.mark.processes


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[dict[str, Any]]:
    import asyncio

    root = tmp_path_factory.mktemp("api")
    graphs = root / "graphs"

    async def build() -> None:
        for name, docs in (("g1", 3), ("g2", 2)):
            rag = await build_graph(graphs / name, docs, seed=len(name) + docs)
            await rag.finalize_storages()
        # A working dir holding LightRAG workspaces: one graph per workspace.
        for workspace in ("alpha", "beta"):
            rag = await build_graph(graphs / "teams", 1, workspace=workspace, seed=9)
            await rag.finalize_storages()

    asyncio.run(build())
    # A big file makes g2's operations last long enough to overlap.
    (graphs / "g2" / "vdb_chunks.json").write_bytes(os.urandom(48 * 1024 * 1024))
    (graphs / ".hidden").mkdir()
    # Folder targets may be registered over REST only inside the folders the operator allows.
    started = start_serve(root / "repo", root / "catalog.sqlite3", graphs, API_KEY,
                          env={"LIGHTRAG_REPLICATION_ALLOWED_DIRS": str(root / "allowed")})
    yield {"client": started["client"], "base": started["base"], "graphs": graphs, "root": root}
    stop_serve(started)


def test_auth_the_lightrag_way(server):
    base = server["base"]
    missing = httpx.get(f"{base}/backup/graphs/g1/snapshots")
    assert missing.status_code == 401 and missing.json()["error"]["kind"] == "unauthorized"
    wrong = httpx.get(f"{base}/backup/graphs/g1/snapshots", headers={"X-API-Key": "nope"})
    assert wrong.status_code == 403
    assert httpx.get(f"{base}/health").json() == {"status": "ok"}
    health = server["client"].get("/backup/health").json()
    assert health["graphs"] == ["g1", "g2", "teams--alpha", "teams--beta"], \
        "every subfolder with a valid name is a graph, and each workspace of a working dir"


def test_snapshot_job_list_get_verify_restore_delete(server):
    client, graphs = server["client"], server["graphs"]
    started = client.post("/backup/graphs/g1/snapshots", json={"description": "via REST", "tags": ["api"]})
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["state"] in ("queued", "running", "succeeded") and started.headers["location"] == job["status_url"]
    job = wait_job(client, job)
    assert job["state"] == "succeeded", job
    first = job["result"]
    assert first["description"] == "via REST" and first["tags"] == ["api"]
    original = graph_files(graphs / "g1")

    (graphs / "g1" / "kv_store_text_chunks.json").write_text("{}")
    second = client.post("/backup/graphs/g1/snapshots?wait=true", json={}).json()
    assert second["state"] == "succeeded" and second["result"]["data_hash"] != first["data_hash"]

    listed = client.get("/backup/graphs/g1/snapshots").json()
    assert [s["snapshot_id"] for s in listed] == [first["snapshot_id"], second["result"]["snapshot_id"]]
    detail = client.get(f"/backup/graphs/g1/snapshots/{first['snapshot_id'][:8]}").json()
    assert detail["snapshot_id"] == first["snapshot_id"] and {f["path"] for f in detail["files"]} == set(original)

    verified = client.post(f"/backup/graphs/g1/snapshots/{first['snapshot_id']}/verify?wait=true", json={"read_data": True})
    assert verified.status_code == 200 and verified.json()["result"]["ok"] is True

    restored = client.post(f"/backup/graphs/g1/snapshots/{first['snapshot_id']}/restore?wait=true")
    assert restored.status_code == 200, restored.text
    assert graph_files(graphs / "g1") == original
    assert restored.json()["result"]["safety_snapshot"]["tags"] == ["pre-restore"]

    deleted = client.delete(f"/backup/graphs/g1/snapshots/{second['result']['snapshot_id']}")
    assert deleted.status_code == 200
    gone = client.get(f"/backup/graphs/g1/snapshots/{second['result']['snapshot_id']}")
    assert gone.status_code == 404 and gone.json()["error"]["kind"] == "snapshot_not_found"


def test_one_operation_per_graph_at_a_time(server):
    client = server["client"]
    first = client.post("/backup/graphs/g2/snapshots").json()
    second = client.post("/backup/graphs/g2/snapshots")
    assert second.status_code == 409, second.text
    assert second.json()["error"]["job_id"] == first["job_id"]
    assert wait_job(client, first)["state"] == "succeeded"
    # Another graph is not blocked, and the graph is free again afterwards.
    assert client.post("/backup/graphs/g2/snapshots?wait=true").status_code == 200


def test_graphs_retention_and_prune_over_rest(server):
    client = server["client"]
    for graph_id in ("teams--alpha", "teams--beta"):
        made = client.post(f"/backup/graphs/{graph_id}/snapshots?wait=true")
        assert made.status_code == 200, made.text
        assert made.json()["result"]["metadata"]["workspace"] == graph_id.split("--")[1]
    assert client.post("/backup/graphs/teams/snapshots").status_code == 404  # the folder itself is no graph
    graphs = {g["graph_id"]: g for g in client.get("/backup/graphs").json()}
    assert {"g1", "g2", "teams--alpha", "teams--beta"} <= set(graphs)
    alpha = graphs["teams--alpha"]
    assert alpha["snapshot_count"] >= 1 and alpha["newest"]["graph_id"] == "teams--alpha"
    assert alpha["workspace"] == "alpha" and alpha["working_dir"].endswith("teams")
    client.post("/backup/graphs/teams--alpha/snapshots?wait=true", json={"description": "second"})

    plan = client.post("/backup/retention?wait=true", json={"graph_id": "teams--alpha", "keep_last": 1, "dry_run": True})
    assert plan.status_code == 200, plan.text
    assert len(plan.json()["result"]["removed"]) == 1 and plan.json()["result"]["dry_run"] is True
    assert client.get("/backup/graphs/teams--alpha/snapshots").json().__len__() == 2
    done = client.post("/backup/retention?wait=true", json={"graph_id": "teams--alpha", "keep_last": 1})
    assert done.status_code == 200 and len(client.get("/backup/graphs/teams--alpha/snapshots").json()) == 1
    assert_error_shape(client.post("/backup/retention", json={"graph_id": "teams--alpha"}), 422, "invalid_input")
    assert_error_shape(client.post("/backup/retention", json={"graph_id": "nope", "keep_last": 1}), 404, "graph_not_found")

    pruned = client.post("/backup/prune?wait=true", json={"grace_seconds": 0, "dry_run": True})
    assert pruned.status_code == 200, pruned.text
    assert pruned.json()["result"]["dry_run"] is True and pruned.json()["kind"] == "prune"
    started = client.post("/backup/prune", json={"grace_seconds": 3600})
    assert started.status_code == 202 and wait_job(client, started.json())["state"] == "succeeded"


def test_schedule_and_stats(server):
    client = server["client"]
    made = client.post("/backup/schedule", json={"graph_id": "g1", "interval": "6h", "retention": {"keep_last": 5}})
    assert made.status_code == 200, made.text
    assert made.json()["interval_seconds"] == 6 * 3600 and made.json()["retention"] == {"keep_last": 5}
    assert client.get("/backup/schedule/g1").json()["next_run"]
    assert client.get("/backup/schedule/g2").status_code == 404
    cron = client.post("/backup/schedule", json={"graph_id": "g2", "interval": "0 3 * * *"})
    assert cron.json()["cron"] == "0 3 * * *"
    bad = client.post("/backup/schedule", json={"graph_id": "g1", "interval": "whenever"})
    assert bad.status_code == 422 and bad.json()["error"]["kind"] == "invalid_input"
    stats = client.get("/backup/stats").json()
    assert set(stats["graphs"]) >= {"g1"} and stats["overall"]["snapshot_count"] >= 1


@pytest.mark.parametrize(
    "path",
    [
        "/backup/graphs/../snapshots",
        "/backup/graphs/%2e%2e/snapshots",
        "/backup/graphs/..%2F..%2Fetc/snapshots",
        "/backup/graphs/a%00b/snapshots",
        "/backup/graphs/" + "a" * 200 + "/snapshots",
        "/backup/graphs/bad$id/snapshots",
        "/backup/graphs/g1/snapshots/not-hex",
        "/backup/graphs/g1/snapshots/" + "a" * 100,
        "/backup/graphs/nope/snapshots",
        "/backup/jobs/123",
        "/backup/jobs/" + "0" * 32,
        "/backup/schedule/..",
    ],
)
def test_bad_ids_are_refused_with_4xx_json(server, path):
    response = server["client"].get(path)
    assert 400 <= response.status_code < 500, (path, response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    assert_error_shape(response)


def assert_error_shape(response: httpx.Response, status: int | None = None, kind: str | None = None) -> dict[str, Any]:
    """Every error the server sends is {"error": {"kind", "message"}}."""
    if status is not None:
        assert response.status_code == status, response.text
    error = response.json()["error"]
    assert isinstance(error["kind"], str) and isinstance(error["message"], str) and error["message"], error
    if kind is not None:
        assert error["kind"] == kind, error
    return error


def test_every_error_has_one_shape_and_echoes_no_long_input(server):
    client = server["client"]
    assert_error_shape(client.get("/no/such/route"), 404, "not_found")
    assert_error_shape(client.get("/backup/graphs/g1/nothing-here"), 404, "not_found")
    assert_error_shape(client.put("/backup/stats"), 405, "method_not_allowed")
    long_value = "Z" * 5000  # over the 4096 a description may have
    error = assert_error_shape(client.post("/backup/graphs/g1/snapshots", json={"description": long_value}), 422,
                               "invalid_input")
    assert "description" in error["message"] and long_value[:200] not in client.post(
        "/backup/graphs/g1/snapshots", json={"description": long_value}).text
    error = assert_error_shape(client.post("/backup/graphs/g1/snapshots", json={long_value: 1}), 422, "invalid_input")
    assert len(error["message"]) < 600
    assert_error_shape(client.post("/backup/schedule", content=b"{not json",
                                   headers={"content-type": "application/json"}), 422, "invalid_input")
    # Bodies over 1 MiB are refused before they are read, by their length or as they stream in.
    big = b'{"description": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    assert_error_shape(client.post("/backup/schedule", content=big, headers={"content-type": "application/json"}),
                       413, "body_too_large")

    def stream() -> Iterator[bytes]:
        yield b'{"description": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    assert_error_shape(client.post("/backup/schedule", content=stream(), headers={"content-type": "application/json"}),
                       413, "body_too_large")
    # Auth errors too.
    assert_error_shape(httpx.get(f"{server['base']}/backup/stats"), 401, "unauthorized")


def test_docs_work_without_internet(server):
    page = httpx.get(f"{server['base']}/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text.lower()
    assert "https://" not in page.text and "http://" not in page.text  # nothing from elsewhere
    for asset in ("/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css"):
        assert asset in page.text
        served = httpx.get(f"{server['base']}{asset}")
        assert served.status_code == 200 and len(served.content) > 10000, asset


def test_bad_bodies_are_refused_with_422(server):
    client = server["client"]
    for method, path, body in [
        ("post", "/backup/graphs/g1/snapshots", {"unknown": 1}),
        ("post", "/backup/graphs/g1/snapshots", {"tags": "not-a-list"}),
        ("post", "/backup/graphs/g1/snapshots", {"description": "x" * 5000}),
        ("post", "/backup/schedule", {"graph_id": "../x", "interval": 1}),
        ("post", "/backup/schedule", {"graph_id": "g1"}),
        ("post", "/backup/schedule", {"graph_id": "g1", "interval": 1, "retention": {"keep_last": -1}}),
    ]:
        response = getattr(client, method)(path, json=body)
        assert response.status_code == 422, (path, body, response.text)
    raw = client.post("/backup/schedule", content=b"{not json", headers={"content-type": "application/json"})
    assert raw.status_code == 422
    unknown = client.post("/backup/graphs/nope/snapshots")
    assert unknown.status_code == 404 and unknown.json()["error"]["kind"] == "graph_not_found"
    for method, path, body in [("post", "/backup/schedule", {"graph_id": "g1"})]:
        assert_error_shape(getattr(client, method)(path, json=body), 422, "invalid_input")


def test_openapi_schema_is_served(server):
    schema = server["client"].get("/openapi.json").json()
    paths = schema["paths"]
    for path in ("/backup/graphs/{graph_id}/snapshots", "/backup/graphs/{graph_id}/snapshots/{snapshot_id}",
                 "/backup/graphs/{graph_id}/snapshots/{snapshot_id}/restore",
                 "/backup/graphs/{graph_id}/snapshots/{snapshot_id}/verify",
                 "/backup/schedule", "/backup/schedule/{graph_id}", "/backup/stats", "/backup/jobs/{job_id}"):
        assert path in paths, path
    assert set(paths["/backup/graphs/{graph_id}/snapshots"]) == {"get", "post"}


def test_property_based_pass_over_the_openapi_schema_finds_no_5xx(server):
    """schemathesis generates requests from /openapi.json (valid and invalid ones, with NUL
    bytes, huge numbers, odd strings) and fails on any 5xx answer."""
    done = subprocess.run(
        # Not /replication: a generated target URL (s3://, gs://, az://) would send requests
        # off this machine; its routes are tested with hostile input explicitly below. Not the
        # role endpoints: their 503 ("not the primary") is the answer a load balancer wants.
        [sys.executable, "-m", "schemathesis.cli", "run", f"{server['base']}/openapi.json",
         "--exclude-path-regex", "^/(replication|primary$|standby$)", "--checks", "not_a_server_error", "--header", f"X-API-Key: {API_KEY}",
         "--max-examples", "30", "--seed", "20261125", "--generation-database", "none",
         "--request-timeout", "120", "--generation-allow-x00", "true"],
        capture_output=True, text=True, timeout=900, cwd=server["root"],  # its cache stays out of the tree
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    print(done.stdout[-3000:])


def test_replication_endpoints_over_http(server):
    client, root = server["client"], server["root"]
    made = client.post("/replication/targets", json={"name": "dr",
                                                      "base_url": f"file://{root / 'allowed' / 'dr-replica'}",
                                                      "api_key": "standby-secret"})
    assert made.status_code == 201, made.text
    target = made.json()
    assert target["api_key"] == "***" and "standby-secret" not in made.text
    assert_error_shape(client.post("/replication/targets", json={"name": "dr",
                                                                 "base_url": f"file://{root / 'allowed' / 'other'}"}),
                       409, "target_exists")
    # A key holder cannot make the server create a repository in any folder it can write.
    for outside in (f"file://{root / 'ssh'}", str(root / "ssh"), f"file://{root / 'allowed' / '..' / 'ssh'}"):
        refused = client.post("/replication/targets", json={"name": "ssh", "base_url": outside})
        assert_error_shape(refused, 422, "invalid_input")
        assert "LIGHTRAG_REPLICATION_ALLOWED_DIRS" in refused.json()["error"]["message"]
    assert not (root / "ssh").exists()
    # A CA file that is not PEM is refused at registration, naming the problem.
    (root / "broken-ca.pem").write_text("not a certificate")
    refused = client.post("/replication/targets", json={"name": "tls", "base_url": "https://127.0.0.1:9",
                                                        "ca_file": str(root / "broken-ca.pem")})
    assert_error_shape(refused, 422, "invalid_input")
    assert "not a PEM CA certificate" in refused.json()["error"]["message"]
    assert_error_shape(client.post("/replication/targets", json={"name": "x", "base_url": "ftp://nope"}), 422)
    listed = client.get("/replication/targets").json()
    assert [t["name"] for t in listed] == ["dr"] and "standby-secret" not in client.get("/replication/targets").text
    health = client.post(f"/replication/targets/{target['target_id']}/health").json()
    assert health["healthy"] is True and health["latency_ms"] >= 0
    assert_error_shape(client.post(f"/replication/targets/{'0' * 32}/health"), 404, "target_not_found")

    client.post("/backup/graphs/g1/snapshots?wait=true")
    done = client.post("/replication/graphs/g1/replicate?wait=true")
    assert done.status_code == 200, done.text
    result = done.json()["result"]["dr"]
    assert result["status"] == "completed" and result["bytes_sent"] > 0
    status = client.get("/replication/graphs/g1/status").json()
    assert status["targets"]["dr"]["holds_newest"] is True
    logs = client.get("/replication/logs", params={"graph_id": "g1"}).json()
    assert logs and all(row["status"] == "completed" for row in logs)
    assert_error_shape(client.post("/replication/graphs/nope/replicate"), 404, "graph_not_found")
    assert_error_shape(client.get("/replication/logs", params={"limit": 0}), 422, "invalid_input")
    for hostile in ("../../etc", "a" * 200, "x%00y"):
        response = client.post(f"/replication/graphs/{hostile}/replicate")
        assert 400 <= response.status_code < 500 and response.json()["error"]["kind"]
    assert_error_shape(client.post("/replication/targets", json={"name": "../x", "base_url": "file:///tmp"}), 422)
    assert_error_shape(client.post("/replication/targets", json={"name": "y", "base_url": "file:///tmp",
                                                                 "unexpected": 1}), 422)
    assert_error_shape(client.post(f"/replication/targets/{'z' * 32}/health"), 422)
    assert client.delete(f"/replication/targets/{target['target_id']}").status_code == 200


def test_a_deleted_document_is_restored_over_rest(server):
    client, graphs = server["client"], server["graphs"]
    from helpers import delete_document

    snapshot = client.post("/backup/graphs/g1/snapshots?wait=true", json={}).json()["result"]["snapshot_id"]
    deleted = delete_document(graphs / "g1", 1)
    listed = client.get("/backup/graphs/g1/deleted").json()
    assert [(d["id"], d["snapshot_id"]) for d in listed] == [(deleted, snapshot)]
    route = f"/backup/graphs/g1/snapshots/{snapshot[:8]}/restore?wait=true"
    plan = client.post(route, json={"documents": [deleted], "dry_run": True})
    assert plan.status_code == 200, plan.text
    planned = plan.json()["result"]
    assert planned["dry_run"] and [d["id"] for d in planned["documents"]] == [deleted]
    assert planned["entities"]["restored"]
    assert client.get("/backup/graphs/g1/deleted").json() == listed  # a dry run changes nothing

    done = client.post(route, json={"documents": [deleted]})
    assert done.status_code == 200, done.text
    report = done.json()["result"]
    assert report["calls"] == {"llm": 0, "embedding": 0, "embedded_texts": 0,
                               "vectors_from_snapshot": report["calls"]["vectors_from_snapshot"]}
    assert report["entities"] == planned["entities"] and report["safety_snapshot"]["tags"] == ["pre-restore"]
    assert client.get("/backup/graphs/g1/deleted").json() == []
    diff = client.get("/backup/graphs/g1/diff", params={"from": snapshot}).json()
    assert not any(n for counts in diff["counts"].values() for n in counts.values()), diff["counts"]

    # Refusals: the document is back (409), unknown (404), no documents named (422), replace
    # or dry_run without documents (422).
    assert_error_shape(client.post(route, json={"documents": [deleted]}), 409, "document_exists")
    assert_error_shape(client.post(route, json={"documents": ["doc-nope"]}), 404, "document_not_found")
    assert client.post(route, json={"documents": []}).status_code == 422
    assert_error_shape(client.post(route, json={"replace": True}), 422, "invalid_input")
    # Entities: one the graph holds is refused without replace; unknown is 404; not both kinds.
    name = planned["entities"]["restored"][0]
    assert_error_shape(client.post(route, json={"entities": [name]}), 409, "document_exists")
    assert_error_shape(client.post(route, json={"entities": ["Nobody At All"]}), 404, "entity_not_found")
    assert_error_shape(client.post(route, json={"entities": [name], "documents": [deleted]}), 422, "invalid_input")
    put_back = client.post(route, json={"entities": [name], "replace": True, "dry_run": True}).json()["result"]
    assert put_back["entities"]["changed"] == [name] and put_back["dry_run"]


def test_diff_over_rest_counts_first_and_pages(server):
    client, graphs = server["client"], server["graphs"]
    from helpers import add_document

    first = client.post("/backup/graphs/g1/snapshots?wait=true", json={}).json()["result"]["snapshot_id"]
    for start in (50, 51):
        add_document(graphs / "g1", seed=41, start=start)
    since = client.get("/backup/graphs/g1/diff", params={"from": first[:8], "limit": 1})
    assert since.status_code == 200, since.text
    body = since.json()
    assert body["counts"]["documents"]["added"] == 2 and len(body["documents"]["added"]) == 1, body
    assert body["from"] == first[:8] and body["to"] == "live" and body["limit"] == 1
    second = client.post("/backup/graphs/g1/snapshots?wait=true", json={}).json()["result"]["snapshot_id"]
    between = client.get("/backup/graphs/g1/diff", params={"from": first, "to": second, "offset": 1}).json()
    assert between["counts"] == body["counts"] and len(between["documents"]["added"]) == 1
    same = client.get("/backup/graphs/g1/diff", params={"from": second, "to": second}).json()
    assert not any(n for counts in same["counts"].values() for n in counts.values())
    assert_error_shape(client.get("/backup/graphs/g1/diff", params={"from": "0123456789ab"}), 404,
                       "snapshot_not_found")
    assert client.get("/backup/graphs/g1/diff").status_code == 422
    # g2's vdb_chunks.json is random bytes, snapshotted faithfully: not a graph a diff can
    # read, which is bad input (422), not damage to the repository (500).
    unreadable = client.get("/backup/graphs/g2/diff", params={"from": "latest"})
    assert_error_shape(unreadable, 422, "invalid_input")
    assert "vdb_chunks.json" in unreadable.json()["error"]["message"]
    gone = client.get("/backup/graphs/g1/deleted")
    assert gone.status_code == 200 and gone.json() == [], gone.text
