"""Smoke queries: does a recovered graph answer?

- Through a running LightRAG instance (``rag``): a real query, ``mode="naive"`` with
  ``only_need_context=True`` (the embedding model is called once, the LLM never), asked with
  the text of one of the graph's own chunks (so the question lies on that chunk's own vector,
  whatever the embedding model); it must come back with context that holds graph text.
- On a folder (a drill's scratch restore, a graph served by ``lightrag-backup serve``): the
  retrieval path without any model, run by the engine while it validates the folder (one read
  of the files): a few entities' stored vectors are searched for over the whole entity matrix
  (cosine, as NanoVectorDB searches), each must find its own entity first, which must be a node
  of the graph citing a chunk of the text chunk store.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any, Optional


async def smoke_query(graph_id: str, *, folder: Optional[Path] = None, rag: Any = None) -> dict[str, Any]:
    """``{graph_id, ok, method, detail, took_ms}``; never raises for a graph that does not
    answer (``ok`` is false and ``detail`` says why)."""
    started = time.perf_counter()
    try:
        if rag is not None:
            ok, detail = await _through_lightrag(rag)
            method = "lightrag query (naive, context only)"
        elif folder is not None:
            ok, detail = await asyncio.to_thread(_on_folder, graph_id, Path(folder))
            method = "vector search + graph + chunk store (no model)"
        else:
            raise ValueError("smoke_query needs a folder or a LightRAG instance")
    except Exception as error:  # noqa: BLE001 - a graph that cannot answer is the finding
        ok, detail, method = False, f"{type(error).__name__}: {error}", "failed to run"
    return {"graph_id": graph_id, "ok": ok, "method": method, "detail": detail,
            "took_ms": round((time.perf_counter() - started) * 1000, 1)}


async def _through_lightrag(rag: Any) -> tuple[bool, str]:
    from lightrag.base import QueryParam

    first = await _first_chunk(rag)
    if first is None:
        return False, "the instance holds no text chunk to ask about"
    content = str(first[1].get("content", ""))[:_QUESTION_CHARS]
    words = " ".join(content.split()[:12])
    context = await rag.aquery(content, param=QueryParam(mode="naive", only_need_context=True, top_k=5, chunk_top_k=5))
    text = context if isinstance(context, str) else json.dumps(context, default=str)
    if not text or not any(w in text for w in words.split()[:3]):
        return False, f"asked with chunk {first[0]} ({words!r}...), got no context holding it ({text[:120]!r})"
    return True, f"asked with chunk {first[0]} ({words!r}...): {len(text)} characters of context"


async def _first_chunk(rag: Any) -> Optional[tuple[str, dict[str, Any]]]:
    """The text chunk to ask with: the first by id of a JSON store's memory, or, for any other
    store (which cannot list its keys), the first chunk of the first processed document."""
    chunks = getattr(rag, "text_chunks", None)
    data = getattr(chunks, "_data", None)
    if data is not None:
        return next(iter(sorted(data.items())), None)
    from lightrag.base import DocStatus

    docs = await rag.doc_status.get_docs_by_statuses([DocStatus.PROCESSED])
    for doc_id in sorted(docs):
        record = await rag.doc_status.get_by_id(doc_id) or {}
        for chunk_id in sorted(record.get("chunks_list") or []):
            chunk = await rag.text_chunks.get_by_id(chunk_id)
            if chunk:
                return chunk_id, dict(chunk)
    return None


#: A chunk's text is the question (LightRAG's chunks are 1200 tokens by default).
_QUESTION_CHARS = 16000


def _on_folder(graph_id: str, folder: Path) -> tuple[bool, str]:
    from .health import check_folder

    found = folder_smoke(check_folder(graph_id, folder, "folder"))
    return bool(found["ok"]), str(found["detail"])


def folder_smoke(health: Any) -> dict[str, Any]:
    """The smoke query a folder's validation ran (a :class:`HealthStatus` from ``check_folder``),
    in :func:`smoke_query`'s shape."""
    smoke = health.smoke
    if smoke is None:
        ok, detail = False, "the entity vectors cannot be searched (see the validation's problems)"
    else:
        ok, detail = bool(smoke["ok"]), str(smoke["detail"])
    return {"graph_id": health.graph_id, "ok": ok, "method": "vector search + graph + chunk store (no model)",
            "detail": detail, "took_ms": 0.0}


__all__ = ["folder_smoke", "smoke_query"]
