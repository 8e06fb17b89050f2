"""What the tests share: what a user checks after a restore (the files, the graph, query
answers), and the one way each kind of process is launched and driven: the command line
(:func:`cli`), ``lightrag-backup serve`` (:func:`start_serve`), LightRAG's own server with the
backup routes mounted (:func:`start_mounted`), and a REST job waited for (:func:`wait_job`).
No test module imports another: what two share lives here."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from lightrag.backup.offline_graph import new_rag

QUESTION = "Who worked with Project Zeta in Riga?"


async def observe(rag: Any) -> dict[str, Any]:
    """The knowledge graph and query answers of a LightRAG instance, comparable with ==.

    ``local`` is its retrieved context, line by line in sorted order: LightRAG ranks entities
    of equal degree in the order its store returns them, which a reload may change (the stub
    answer, a hash of the whole prompt, changed with it: a flaky test, not a stale graph); the
    entities, relations and chunks it retrieves are the graph's state."""
    from lightrag import QueryParam

    graph = await rag.get_knowledge_graph("*", max_depth=2)
    context = await rag.aquery(QUESTION, param=QueryParam(mode="local", enable_rerank=False, only_need_context=True))
    answers: dict[str, Any] = {"local": sorted(str(context).splitlines())}
    for mode in ("global", "naive"):
        answers[mode] = await rag.aquery(QUESTION, param=QueryParam(mode=mode, enable_rerank=False))
    return {
        "nodes": sorted((n.id, n.properties.get("description", "")) for n in graph.nodes),
        "edges": sorted((e.source, e.target, e.properties.get("description", "")) for e in graph.edges),
        "answers": answers,
    }


async def observe_folder(working_dir: Path, workspace: str) -> dict[str, Any]:
    """Open the graph in ``working_dir/workspace`` with a fresh LightRAG instance and observe it.

    Each check uses its own workspace: LightRAG shares in-memory data between instances of the
    same workspace in one process.
    """
    rag = await new_rag(working_dir, workspace=workspace)
    try:
        return await observe(rag)
    finally:
        await rag.finalize_storages()


def eventually(check: Callable[[], Any], what: str, seconds: float = 60) -> Any:
    """``check()``'s first true value, polled every 0.1 s; fails after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def server_env(name: str) -> str:
    """A test server's setting from ``scripts/test-servers.sh env``: without it the test skips,
    unless ``LRB_REQUIRE_CLOUD_BACKENDS=1`` (CI), where it fails."""
    import os

    import pytest

    value = os.environ.get(name)
    if not value:
        if os.environ.get("LRB_REQUIRE_CLOUD_BACKENDS") == "1":
            pytest.fail(f"{name} is not set but LRB_REQUIRE_CLOUD_BACKENDS=1 (run scripts/test-servers.sh start)")
        pytest.skip(f"{name} not set: run scripts/test-servers.sh start")
    return value


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_serve(repo: Path, catalog: Path, graphs: Path, key: str, *extra: str, port: int = 0,
                ca: "Path | None" = None, env: "dict[str, str] | None" = None, init: bool = True) -> dict[str, Any]:
    """`lightrag-backup serve` over ``graphs`` in its own process on a free loopback port, its
    repository created first; returns the process, its base URL and a client with the key.
    ``ca``: the server speaks HTTPS (``extra`` has its certificate) signed by this CA.
    Stop it with :func:`stop_serve`."""
    import os
    import ssl

    import subprocess
    import sys

    import httpx

    if init:
        subprocess.run([sys.executable, "-m", "lightrag.backup.cli", "--repo", str(repo), "init"], check=True,
                       capture_output=True)
    port = port or free_port()
    # Its output goes to a file: a pipe nobody reads fills up (64 KiB of logs) and then blocks
    # the server on its next log line.
    log_path = Path(str(catalog) + f".serve-{port}.log")
    log = open(log_path, "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "lightrag.backup.cli", "--repo", str(repo), "--catalog", str(catalog), "serve",
         "--graphs-dir", str(graphs), "--port", str(port), "--api-key", key, *extra],
        stdout=log, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})},
    )
    log.close()
    base = f"{'https' if ca else 'http'}://127.0.0.1:{port}"
    verify: Any = ssl.create_default_context(cafile=str(ca)) if ca else True
    wait_healthy(process, base, log_path, 60, verify=verify)
    client = httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=120, verify=verify)
    return {"process": process, "base": base, "client": client, "repo": repo, "catalog": catalog, "graphs": graphs,
            "port": port, "key": key, "extra": extra, "env": env, "ca": ca, "log": log_path}


def restart_serve(server: dict[str, Any]) -> dict[str, Any]:
    """The same server (repository, catalog, graphs, port, options) started again, after it
    stopped or was killed."""
    server["client"].close()
    return start_serve(server["repo"], server["catalog"], server["graphs"], server["key"], *server["extra"],
                       port=server["port"], ca=server["ca"], env=server["env"], init=False)


def forget_shared_data() -> None:
    """Drop what LightRAG keeps in memory per workspace across instances of one process: the
    next graph built here starts empty instead of inheriting the last one's documents."""
    from lightrag.kg.shared_storage import finalize_share_data

    finalize_share_data()


def build(folder: Path, count: int, *, seed: int) -> None:
    """A real LightRAG graph of ``count`` documents in ``folder``."""
    import asyncio

    from lightrag.backup.offline_graph import build_graph

    async def run() -> None:
        forget_shared_data()
        rag = await build_graph(folder, count, seed=seed)
        await rag.finalize_storages()
        forget_shared_data()

    asyncio.run(run())


def add_document(folder: Path, *, seed: int, start: int) -> None:
    """One more document inserted by LightRAG into the graph in ``folder`` (another process's
    write, as far as a server watching the folder can tell)."""
    import asyncio

    from lightrag.backup.offline_graph import documents, new_rag

    async def run() -> None:
        forget_shared_data()
        rag = await new_rag(folder)
        try:
            await rag.ainsert(documents(1, seed=seed, start=start))
        finally:
            await rag.finalize_storages()
            forget_shared_data()

    asyncio.run(run())


def delete_document(folder: Path, which: int = 0) -> str:
    """Delete a document of the graph in ``folder`` through LightRAG (``adelete_by_doc_id``),
    the ``which``-th by id; returns its id."""
    import asyncio
    import json

    from lightrag.backup.offline_graph import new_rag

    doc_id = sorted(json.loads((folder / "kv_store_doc_status.json").read_text()))[which]

    async def run() -> None:
        forget_shared_data()
        rag = await new_rag(folder)
        try:
            assert (await rag.adelete_by_doc_id(doc_id)).status == "success"
        finally:
            await rag.finalize_storages()
            forget_shared_data()

    asyncio.run(run())
    return doc_id


def start_server(root: Path, name: str, key: str, *extra: str, env: "dict[str, str] | None" = None,
                 ca: "Path | None" = None) -> dict[str, Any]:
    """`serve` over ``root/<name>-graphs`` with its repository and catalog beside it."""
    graphs = root / f"{name}-graphs"
    graphs.mkdir(parents=True, exist_ok=True)
    return start_serve(root / f"{name}-repo", root / f"{name}.sqlite3", graphs, key, *extra, env=env, ca=ca)


def stop_serve(server: dict[str, Any]) -> None:
    server["client"].close()
    server["process"].terminate()
    server["process"].wait(timeout=30)


def make_test_ca(folder: Path) -> dict[str, Path]:
    """A private CA and a certificate it signed for 127.0.0.1 and localhost, as PEM files in
    ``folder``: ``ca``, ``cert``, ``key``."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lightrag-backup test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"ca": folder / "ca.pem", "cert": folder / "server.pem", "key": folder / "server-key.pem"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return paths


def wait_applied(client: Any, graph_id: str, snapshot_id: str) -> dict[str, Any]:
    """Wait until a standby that applies has applied ``snapshot_id`` of ``graph_id``; its outcome."""
    import time

    deadline = time.monotonic() + 60
    while True:
        status = client.get(f"/replication/graphs/{graph_id}/apply").json()
        last = status.get("last") or {}
        if last.get("snapshot_id") == snapshot_id and not status["running"]:
            assert last["error"] is None, last
            return dict(last)
        assert time.monotonic() < deadline, status
        time.sleep(0.1)


#: Azurite's well-known development account key.
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_connection(endpoint: str, key: str = AZURITE_KEY) -> str:
    """A connection string to Azurite's development account at ``endpoint``."""
    return (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={key};BlobEndpoint={endpoint}/devstoreaccount1;"
    )


def cli(*args: str, env: "dict[str, str] | None" = None, cwd: "Path | None" = None,
        unset: Iterable[str] = (), timeout: float = 300) -> "subprocess.CompletedProcess[str]":
    """``lightrag-backup`` as an operator runs it (the console script installed beside this
    interpreter), with this process's environment plus ``env`` and without ``unset``."""
    full_env = dict(os.environ)
    for name in unset:
        full_env.pop(name, None)
    full_env.update(env or {})
    script = Path(sys.executable).parent / "lightrag-backup"
    command = str(script) if script.exists() else "lightrag-backup"
    return subprocess.run([command, *args], capture_output=True, text=True, env=full_env, timeout=timeout, cwd=cwd)


def wait_job(client: Any, job: "dict[str, Any]", seconds: float = 120) -> "dict[str, Any]":
    """Poll a REST job (``status_url``) until it is neither queued nor running."""
    deadline = time.monotonic() + seconds
    while job["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
        response = client.get(job["status_url"])
        assert response.status_code == 200, response.text
        job = response.json()
    return job


#: The API key of every mounted LightRAG server the tests start.
MOUNTED_API_KEY = "mounted-key-456"
MOUNTED_LAUNCHER = Path(__file__).parent / "mounted_server.py"


def start_mounted(root: Path, *extra: str, env: "dict[str, str] | None" = None,
                  port: "int | None" = None) -> "tuple[subprocess.Popen, str]":
    """LightRAG's API server with the backup routes mounted (``mounted_server.py``: stub LLM
    and embeddings behind an OpenAI-compatible loopback server), its graph in
    ``root/rag_storage``; returns the process and its base URL once ``/health`` answers."""

    port = port or free_port()
    environment = {
        **os.environ,
        "WORKING_DIR": str(root / "rag_storage"),
        "INPUT_DIR": str(root / "inputs"),
        "PORT": str(port),
        "LIGHTRAG_API_KEY": MOUNTED_API_KEY,
        "LOG_DIR": str(root),
        **(env or {}),
    }
    log = open(root / f"server-{port}.log", "w")
    process = subprocess.Popen([sys.executable, str(MOUNTED_LAUNCHER), *extra], cwd=root, env=environment,
                               stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    wait_healthy(process, base, root / f"server-{port}.log", 120)
    return process, base


def wait_healthy(process: subprocess.Popen, base: str, log_path: Path, seconds: float, verify: Any = True) -> None:
    """Wait until a started server answers ``/health``; a server that exits or stays silent
    is killed and its log's end raised."""
    import httpx

    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=1, verify=verify).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"server did not start: {log_path.read_text()[-6000:]}")
        time.sleep(0.2)


def stop_mounted(process: subprocess.Popen) -> int:
    """Stop a mounted server as an operator's Ctrl-C does; its exit code."""
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def insert(client: Any, text: str, name: str) -> None:
    """Insert a document through LightRAG's API and wait until its pipeline has processed it."""
    response = client.post("/documents/text", json={"text": text, "file_source": name})
    assert response.status_code == 200, response.text
    track_id = response.json()["track_id"]
    deadline = time.monotonic() + 120
    while True:
        status = client.get("/documents/pipeline_status").json()
        tracked = client.get(f"/documents/track_status/{track_id}").json()
        states = [d["status"] for d in tracked.get("documents", [])]
        if not status["busy"] and states and all(s == "processed" for s in states):
            return
        assert "failed" not in states and time.monotonic() < deadline, (status, tracked)
        time.sleep(0.2)


def labels(client: Any) -> "list[str]":
    response = client.get("/graph/label/list")
    assert response.status_code == 200, response.text
    return response.json()


def exists(client: Any, name: str) -> bool:
    response = client.get("/graph/entity/exists", params={"name": name})
    assert response.status_code == 200, response.text
    return response.json()["exists"]


def answers(client: Any, question: str) -> str:
    response = client.post("/query", json={"query": question, "mode": "hybrid"})
    assert response.status_code == 200, response.text
    return response.json()["response"]
