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
