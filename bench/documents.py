"""Document-level restore against the two alternatives an operator has today (issue 32).

On the bench graph (``bench/run.py``'s ``version-00``, or one built here), a document of a few
dozen chunks is inserted through LightRAG's real pipeline (extraction by the stub LLM, its calls
counted), the graph is snapshotted into an encrypted repository, and the document is deleted
through LightRAG (``adelete_by_doc_id``). Then, each from that same state:

- ``restore_documents``: the document alone, from the snapshot;
- a full restore of the snapshot into the live instance (what an operator does today: it also
  loses whatever was inserted since);
- re-inserting the document through LightRAG (``ainsert``), with the LLM cache LightRAG's
  deletion keeps and without it: then every chunk's extraction is an LLM call again (counted;
  with the stub they cost nothing, with a real model each takes seconds).

Usage: ``python bench/documents.py [--graph DIR] [--entities 20000] [--chunks 24] [--work DIR]``.
Prints one JSON object (times in seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from encryption import provision  # noqa: E402


def document(chunks: int, entities: int, seed: int = 7) -> str:
    """A document of about ``chunks`` LightRAG chunks (1200 characters each with the bench's
    character tokenizer) naming new people and existing entities of the bench graph."""
    rng = random.Random(seed)
    sentences = []
    while sum(len(s) + 1 for s in sentences) < chunks * 1100:
        number = len(sentences)
        existing = f"Entity {rng.randrange(entities):07d}"
        sentences.append(f"[[Bench Person {number:04d}]] reviewed [[{existing}]] with [[Bench Team {number % 9}]] "
                         f"on record {rng.randrange(10**6)}.")
    return "Restore benchmark document. " + " ".join(sentences)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(graph: Path, work: Path, chunks: int, entities: int) -> dict[str, Any]:
    from lightrag.backup import GraphBackup, offline_graph
    from lightrag.backup.display import quiet_lightrag_logs
    from lightrag.backup.storage import LocalBackupStorage

    quiet_lightrag_logs()
    logging.getLogger("lightrag").setLevel(logging.ERROR)
    calls = {"llm": 0, "embedded_texts": 0}
    llm, embedding = offline_graph.stub_llm, offline_graph.make_embedding_func

    async def counting_llm(*args: Any, **kwargs: Any) -> str:
        calls["llm"] += 1
        return await llm(*args, **kwargs)

    def counting_embedding(dim: int = 16) -> Any:
        from lightrag.utils import EmbeddingFunc

        inner = embedding(dim)

        async def embed(texts: Any, **kwargs: Any) -> Any:
            calls["embedded_texts"] += len(texts)
            return await inner.func(texts, **kwargs)

        return EmbeddingFunc(embedding_dim=dim, func=embed, model_name=inner.model_name)

    offline_graph.stub_llm = counting_llm  # type: ignore[assignment]
    offline_graph.make_embedding_func = counting_embedding  # type: ignore[assignment]

    folder = work / "graph"
    shutil.rmtree(work / "graph", ignore_errors=True)
    shutil.rmtree(work / "repo", ignore_errors=True)
    shutil.copytree(graph, folder)
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    started = time.perf_counter()
    rag = await offline_graph.new_rag(folder, embedding_dim=1024)
    out: dict[str, Any] = {"graph_bytes": size, "load_s": round(time.perf_counter() - started, 2)}
    try:
        text = document(chunks, entities)
        before = dict(calls)
        started = time.perf_counter()
        await rag.ainsert(text, file_paths="restore-benchmark.txt")
        out["insert"] = {"s": round(time.perf_counter() - started, 2), "llm_calls": calls["llm"] - before["llm"],
                         "embedded_texts": calls["embedded_texts"] - before["embedded_texts"]}
        from lightrag.base import DocStatus

        processed = await rag.doc_status.get_docs_by_statuses([DocStatus.PROCESSED])
        doc_id = next(key for key, doc in processed.items() if doc.file_path == "restore-benchmark.txt")
        status = await rag.doc_status.get_by_id(doc_id)
        out["document"] = {"id": doc_id, "chunks": len(status["chunks_list"]), "characters": len(text)}

        backup = GraphBackup.from_rag("bench-documents", rag,
                                      LocalBackupStorage(work / "repo", password=os.environ["LIGHTRAG_BACKUP_PASSWORD"]))
        started = time.perf_counter()
        snapshot = await backup.acreate_snapshot("with the document")
        out["snapshot_s"] = round(time.perf_counter() - started, 2)

        async def delete() -> None:
            result = await rag.adelete_by_doc_id(doc_id)
            assert result.status == "success", result

        await delete()
        rss = peak_mb()
        before = dict(calls)
        started = time.perf_counter()
        if os.environ.get("BENCH_PROFILE"):
            import cProfile
            import pstats

            profile = cProfile.Profile()
            profile.enable()
            report = await backup.arestore_documents(snapshot.snapshot_id, [doc_id])
            profile.disable()
            pstats.Stats(profile, stream=sys.stderr).sort_stats("cumulative").print_stats(45)
        else:
            report = await backup.arestore_documents(snapshot.snapshot_id, [doc_id])
        out["restore_document"] = {
            "s": round(time.perf_counter() - started, 2),
            "report_ms": report["duration_ms"],
            "timings_ms": {**report["timings_ms"], "of which flush": report["flush_ms"]},
            "llm_calls": calls["llm"] - before["llm"],
            "embedded_texts": calls["embedded_texts"] - before["embedded_texts"],
            "calls_reported": report["calls"],
            "entities": {k: len(v) for k, v in report["entities"].items()},
            "relations": {k: len(v) for k, v in report["relations"].items()},
            "peak_rss_growth_mb": round(peak_mb() - rss, 1),
        }

        await delete()
        before = dict(calls)
        started = time.perf_counter()
        await backup.arestore_snapshot(snapshot.snapshot_id)
        out["full_restore"] = {"s": round(time.perf_counter() - started, 2), "llm_calls": calls["llm"] - before["llm"]}
        assert await rag.doc_status.get_by_id(doc_id)

        # Re-inserted: LightRAG's deletion keeps the document's LLM cache by default, so its
        # extraction answers from the cache; deleted with its cache (or into an instance
        # without it), every chunk is extracted by the LLM again.
        for label, drop_cache in (("reinsert_cache_kept", False), ("reinsert", True)):
            result = await rag.adelete_by_doc_id(doc_id, delete_llm_cache=drop_cache)
            assert result.status == "success", result
            before = dict(calls)
            started = time.perf_counter()
            await rag.ainsert(text, file_paths="restore-benchmark.txt")
            out[label] = {"s": round(time.perf_counter() - started, 2), "llm_calls": calls["llm"] - before["llm"],
                          "embedded_texts": calls["embedded_texts"] - before["embedded_texts"]}
    finally:
        await rag.finalize_storages()
    out["peak_rss_mb"] = round(peak_mb(), 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", type=Path, help="a bench graph folder (default: WORK/version-00, built if missing)")
    parser.add_argument("--entities", type=int, default=20000)
    parser.add_argument("--chunks", type=int, default=24)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-documents"))
    args = parser.parse_args()
    provision(args.work)
    graph = args.graph or args.work / "version-00"
    if not graph.exists():
        from lightrag_graph import build

        asyncio.run(build(graph, args.entities))
    print(json.dumps(asyncio.run(run(graph, args.work, args.chunks, args.entities)), indent=2))


if __name__ == "__main__":
    main()
