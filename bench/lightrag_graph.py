"""Real LightRAG graphs of a chosen size, built offline and reproducibly from a seed.

Entities, relations and chunks go in through LightRAG's own ``ainsert_custom_kg`` (its
storages, its embedding calls with a deterministic stub, its file formats), in batches; no
LLM extraction, so a 1 GB graph builds in minutes. The change step mimics real use: about 1%
new entities, relations and chunks, 0.2% of the entities deleted from the middle (rows leave
the vector matrices), and some descriptions edited.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys
import time
from pathlib import Path
from typing import Any

from lightrag.backup.offline_graph import new_rag

logging.getLogger("lightrag").setLevel(logging.ERROR)
logging.getLogger("nano-vectordb").setLevel(logging.ERROR)

WORDS = (
    "graph vector entity relation chunk document knowledge retrieval index query context "
    "summary keyword source model embedding storage backup replica failover archive ledger "
    "river mountain harbor station market library theatre garden factory bridge"
).split()


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def entity_name(number: int) -> str:
    return f"Entity {number:07d}"


def custom_kg(start: int, count: int, seed: int) -> dict[str, Any]:
    """``count`` entities from number ``start``, each with a relation to a neighbour and a
    chunk per ten entities."""
    rng = random.Random(seed * 1_000_003 + start)
    chunks, entities, relations = [], [], []
    for number in range(start, start + count):
        source = f"chunk-{seed}-{number // 10:07d}"
        if number % 10 == 0 or number == start:
            chunks.append({"content": _text(rng, 120), "source_id": source, "file_path": f"doc-{number // 100}.txt"})
        entities.append({
            "entity_name": entity_name(number),
            "entity_type": rng.choice(["person", "organization", "location", "concept"]),
            "description": _text(rng, 40),
            "source_id": source,
        })
        if number > start:
            relations.append({
                "src_id": entity_name(number - 1),
                "tgt_id": entity_name(number),
                "description": _text(rng, 25),
                "keywords": ", ".join(rng.sample(WORDS, 3)),
                "weight": 1.0,
                "source_id": source,
            })
    return {"chunks": chunks, "entities": entities, "relationships": relations}


async def build(
    working_dir: Path,
    entities: int,
    *,
    seed: int = 0,
    dim: int = 1024,
    batch: int = 2000,
    workspace: str = "",
    storages: dict[str, str] | None = None,
) -> None:
    """Build a graph of ``entities`` entities in ``working_dir`` (or in the databases
    ``storages`` name, under ``workspace``)."""
    rag = await new_rag(working_dir, workspace=workspace, embedding_dim=dim, storages=storages)
    try:
        for start in range(0, entities, batch):
            await rag.ainsert_custom_kg(custom_kg(start, min(batch, entities - start), seed))
    finally:
        await rag.finalize_storages()


async def change(
    working_dir: Path,
    entities: int,
    *,
    round_number: int,
    seed: int = 0,
    dim: int = 1024,
    workspace: str = "",
    storages: dict[str, str] | None = None,
) -> dict[str, int]:
    """One change step on a graph of about ``entities`` entities."""
    rng = random.Random(seed * 7919 + round_number)
    rag = await new_rag(working_dir, workspace=workspace, embedding_dim=dim, storages=storages)
    try:
        added = max(1, entities // 100)
        first_new = entities + round_number * added * 10  # fresh numbers each round
        await rag.ainsert_custom_kg(custom_kg(first_new, added, seed + round_number + 1))

        # Delete 0.2% of the entities from the middle of the matrix, in one flush.
        graph = rag.chunk_entity_relation_graph
        names = sorted(await graph.get_all_labels()) if hasattr(graph, "get_all_labels") else []
        middle = len(names) // 2
        doomed = names[middle: middle + max(1, entities // 500)]
        for name in doomed:
            await rag.entities_vdb.delete_entity(name)
            await rag.relationships_vdb.delete_entity_relation(name)
            await graph.delete_node(name)
        # Edit a few descriptions.
        for name in rng.sample(names[:middle], min(5, middle)):
            node = await graph.get_node(name)
            if node:
                node["description"] = "edited: " + _text(rng, 10)
                await graph.upsert_node(name, node)
        await rag._insert_done()
        return {"added": added, "deleted": len(doomed)}
    finally:
        await rag.finalize_storages()


if __name__ == "__main__":
    directory, count = Path(sys.argv[1]), int(sys.argv[2])
    started = time.monotonic()
    asyncio.run(build(directory, count))
    size = sum(p.stat().st_size for p in directory.iterdir() if p.is_file())
    print(f"built {count} entities, {size / 1e6:.1f} MB in {time.monotonic() - started:.1f} s")
    started = time.monotonic()
    print(asyncio.run(change(directory, count, round_number=1)), f"{time.monotonic() - started:.1f} s")
