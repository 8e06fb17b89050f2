"""What a user checks after a restore: the files, the graph, and query answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightrag.backup.offline_graph import new_rag

QUESTION = "Who worked with Project Zeta in Riga?"


async def observe(rag: Any) -> dict[str, Any]:
    """The knowledge graph and query answers of a LightRAG instance, comparable with ==."""
    from lightrag import QueryParam

    graph = await rag.get_knowledge_graph("*", max_depth=2)
    answers = {}
    for mode in ("local", "global", "naive"):
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


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_serve(repo: Path, catalog: Path, graphs: Path, key: str, *extra: str, port: int = 0) -> dict[str, Any]:
    """`lightrag-backup serve` over ``graphs`` in its own process on a free loopback port, its
    repository created first; returns the process, its base URL and a client with the key.
    Stop it with :func:`stop_serve`."""
    import subprocess
    import sys
    import time

    import httpx

    subprocess.run([sys.executable, "-m", "lightrag.backup.cli", "--repo", str(repo), "init"], check=True,
                   capture_output=True)
    port = port or free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "lightrag.backup.cli", "--repo", str(repo), "--catalog", str(catalog), "serve",
         "--graphs-dir", str(graphs), "--port", str(port), "--api-key", key, *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            output = process.stdout.read() if process.stdout else ""
            raise RuntimeError(f"server did not start: {output}")
        time.sleep(0.2)
    client = httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=120)
    return {"process": process, "base": base, "client": client, "repo": repo, "catalog": catalog, "graphs": graphs,
            "port": port, "key": key, "extra": extra}


def stop_serve(server: dict[str, Any]) -> None:
    server["client"].close()
    server["process"].terminate()
    server["process"].wait(timeout=30)
