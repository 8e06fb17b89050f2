"""Smoke queries: does a recovered graph answer?

- Through a running LightRAG instance (``rag``): a real query, ``mode="naive"`` with
  ``only_need_context=True`` (the embedding model is called once, the LLM never), asked with
  the opening words of one of the graph's own chunks; it must come back with context that
  holds graph text.
- On a folder (a drill's scratch restore, a graph served by ``lightrag-backup serve``): the
  retrieval path without any model, with the libraries LightRAG itself uses: the entity vector
  store is opened with nano-vectordb and queried with stored vectors (each must find its own
  entity first), each entity found must be a node of the NetworkX graph, and a chunk it cites
  must be readable from the text chunk store.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any, Optional

_SEP = "<SEP>"
_PROBES = 3


async def smoke_query(graph_id: str, *, folder: Optional[Path] = None, rag: Any = None) -> dict[str, Any]:
    """``{graph_id, ok, method, detail, took_ms}``; never raises for a graph that does not
    answer (``ok`` is false and ``detail`` says why)."""
    started = time.perf_counter()
    try:
        if rag is not None:
            ok, detail = await _through_lightrag(rag)
            method = "lightrag query (naive, context only)"
        elif folder is not None:
            ok, detail = await asyncio.to_thread(_on_folder, Path(folder))
            method = "vector search + graph + chunk store (no model)"
        else:
            raise ValueError("smoke_query needs a folder or a LightRAG instance")
    except Exception as error:  # noqa: BLE001 - a graph that cannot answer is the finding
        ok, detail, method = False, f"{type(error).__name__}: {error}", "failed to run"
    return {"graph_id": graph_id, "ok": ok, "method": method, "detail": detail,
            "took_ms": round((time.perf_counter() - started) * 1000, 1)}


async def _through_lightrag(rag: Any) -> tuple[bool, str]:
    from lightrag.base import QueryParam

    chunks = getattr(rag, "text_chunks", None)
    data = getattr(chunks, "_data", None) or {}
    first = next(iter(sorted(data.items())), None)
    if first is None:
        return False, "the instance holds no text chunk to ask about"
    words = " ".join(str(first[1].get("content", "")).split()[:12])
    context = await rag.aquery(words, param=QueryParam(mode="naive", only_need_context=True, top_k=5, chunk_top_k=5))
    text = context if isinstance(context, str) else json.dumps(context, default=str)
    if not text or not any(w in text for w in words.split()[:3]):
        return False, f"asked {words!r}, got no context holding it ({text[:120]!r})"
    return True, f"asked {words!r}: {len(text)} characters of context"


def _on_folder(folder: Path) -> tuple[bool, str]:
    import logging

    import networkx as nx
    import numpy as np
    from nano_vectordb import NanoVectorDB

    vdb_file = folder / "vdb_entities.json"
    if not vdb_file.exists():
        return False, "no vdb_entities.json: nothing to search"
    dim = int(json.loads(vdb_file.read_text())["embedding_dim"])
    quiet = logging.getLogger("nano-vectordb")
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        db = NanoVectorDB(dim, storage_file=str(vdb_file))
    finally:
        quiet.setLevel(level)
    storage = db._NanoVectorDB__storage  # type: ignore[attr-defined]
    rows, matrix = storage["data"], storage["matrix"]
    if not rows:
        return False, "the entity vector store is empty"
    graph = nx.read_graphml(folder / "graph_chunk_entity_relation.graphml")
    chunks = json.loads((folder / "kv_store_text_chunks.json").read_text())
    probes = sorted(range(len(rows)), key=lambda i: rows[i]["__id__"])[:_PROBES]
    found = []
    for index in probes:
        hits = db.query(np.asarray(matrix[index]), top_k=1)
        if not hits or hits[0]["__id__"] != rows[index]["__id__"]:
            return False, f"searching with {rows[index].get('entity_name')!r}'s own vector did not find it first"
        name = hits[0].get("entity_name")
        if name not in graph:
            return False, f"entity {name!r} found by vector search is not a node of the graph"
        cited = [c for c in str(graph.nodes[name].get("source_id", "")).split(_SEP) if c]
        if not cited or not any(str(chunks.get(c, {}).get("content", "")) for c in cited):
            return False, f"entity {name!r} cites no readable chunk"
        found.append(name)
    return True, f"found {', '.join(repr(n) for n in found)} by their vectors, in the graph, with their chunks"


__all__ = ["smoke_query"]
