"""Real LightRAG graphs built offline: a deterministic stub LLM and embedding function.

Used by ``lightrag-backup demo``, the test suite and the benchmarks. The graphs are built by
the real ``lightrag-hku`` package, through its real insert pipeline and file storages; only
the model calls are stubbed. Entities are the ``[[Name]]`` markers of the input text, and
each pair of neighbouring entities in a sentence becomes a relation, so the same documents
always give the same graph.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Sequence

_ENTITY = re.compile(r"\[\[([^\[\]]{1,80})\]\]")
_TYPES = ("person", "organization", "location", "concept", "event")


class CharTokenizer:
    """A tokenizer that needs no download: one token per character."""

    def encode(self, content: str) -> list[int]:
        return [ord(c) for c in content]

    def decode(self, tokens: list[int]) -> str:
        return "".join(chr(t) for t in tokens)

    def __deepcopy__(self, memo: Any) -> "CharTokenizer":
        return self


def _input_text(prompt: str) -> str:
    marker = "---Input Text---"
    return prompt.split(marker, 1)[1] if marker in prompt else prompt


def _entity_type(name: str) -> str:
    return _TYPES[hashlib.md5(name.encode()).digest()[0] % len(_TYPES)]


def extraction_answer(text: str) -> str:
    """What the stub LLM answers to an entity-extraction prompt over ``text``."""
    lines: list[str] = []
    seen: set[str] = set()
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        names = _ENTITY.findall(sentence)
        for name in names:
            if name not in seen:
                seen.add(name)
                lines.append(f"entity<|#|>{name}<|#|>{_entity_type(name)}<|#|>{name} as described: {sentence.strip()[:200]}")
        for source, target in zip(names, names[1:]):
            if source != target:
                lines.append(
                    f"relation<|#|>{source}<|#|>{target}<|#|>related,cooccurrence<|#|>{source} and {target}: {sentence.strip()[:200]}"
                )
    lines.append("<|COMPLETE|>")
    return "\n".join(lines)


async def stub_llm(prompt: str, system_prompt: str | None = None, history_messages: Any = None, **kwargs: Any) -> str:
    """A deterministic stand-in for the LLM, answering each kind of LightRAG prompt."""
    system = system_prompt or ""
    if "Knowledge Graph Specialist" in system and "extracting entities" in system:
        return extraction_answer(_input_text(prompt))
    if "Knowledge Graph Specialist" in prompt and "extracting entities" in prompt:
        return extraction_answer(_input_text(prompt))
    if "high_level_keywords" in system or "high_level_keywords" in prompt:
        words = sorted(set(_ENTITY.findall(prompt)) | set(re.findall(r"[A-Z][a-z]{3,}", prompt[-400:])))[:5]
        return json.dumps({"high_level_keywords": ["knowledge graph"], "low_level_keywords": words})
    # Summaries and answers: deterministic text derived from the request.
    digest = hashlib.sha256((system + prompt).encode()).hexdigest()[:12]
    context_names = sorted(set(_ENTITY.findall(prompt)))[:8]
    return f"Stub answer {digest}. Mentioned: {', '.join(context_names) or 'nothing'}."


def make_embedding_func(dim: int = 16) -> Any:
    """A deterministic embedding: unit vectors seeded by the SHA-256 of each text."""
    import numpy as np
    from lightrag.utils import EmbeddingFunc

    async def embed(texts: Sequence[str], **kwargs: Any) -> Any:
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            vector = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
            rows.append(vector / np.linalg.norm(vector))
        return np.array(rows, dtype=np.float32)

    return EmbeddingFunc(embedding_dim=dim, func=embed, model_name=f"stub-{dim}")


async def new_rag(
    working_dir: str | Path, *, workspace: str = "", embedding_dim: int = 16, storages: dict[str, str] | None = None
) -> Any:
    """An initialised LightRAG instance with the stub models; file storages unless
    ``storages`` names others (``{"kv_storage": "PGKVStorage", ...}``, connected through the
    environment variables LightRAG reads)."""
    from lightrag.lightrag import LightRAG
    from lightrag.utils import Tokenizer

    Path(working_dir).mkdir(parents=True, exist_ok=True)
    rag = LightRAG(
        working_dir=str(working_dir),
        workspace=workspace,
        llm_model_func=stub_llm,
        embedding_func=make_embedding_func(embedding_dim),
        tokenizer=Tokenizer("char", CharTokenizer()),
        enable_llm_cache_for_entity_extract=True,
        **(storages or {}),
    )
    await rag.initialize_storages()
    try:
        from lightrag.kg.shared_storage import initialize_pipeline_status

        await initialize_pipeline_status(workspace or None)
    except ImportError:  # older LightRAG initialises it in initialize_storages
        pass
    return rag


FIRST_NAMES = ["Alice", "Bruno", "Chen", "Dana", "Emeka", "Farah", "Goran", "Hana", "Ivan", "Jun", "Kofi", "Lena"]
PLACES = ["Lisbon", "Nairobi", "Osaka", "Quito", "Riga", "Tallinn", "Utrecht", "Valencia"]
THINGS = ["Project Zeta", "Orion Lab", "Delta Fund", "Helix Institute", "Nova Archive", "Polaris Group"]


def documents(count: int, *, seed: int = 0, start: int = 0) -> list[str]:
    """``count`` reproducible documents about people, places and organisations."""
    import random

    docs = []
    for number in range(start, start + count):
        rng = random.Random(seed * 1_000_003 + number)
        sentences = []
        for _ in range(rng.randint(3, 6)):
            person = f"{rng.choice(FIRST_NAMES)} {chr(65 + rng.randrange(26))}{number % 97}"
            place = rng.choice(PLACES)
            thing = rng.choice(THINGS)
            sentences.append(
                f"[[{person}]] worked with [[{thing}]] in [[{place}]] on record {rng.randrange(10**6)}."
            )
        docs.append(f"Document {number}. " + " ".join(sentences))
    return docs


async def build_graph(
    working_dir: str | Path,
    doc_count: int = 4,
    *,
    workspace: str = "",
    seed: int = 0,
    embedding_dim: int = 16,
    storages: dict[str, str] | None = None,
) -> Any:
    """Build a graph of ``doc_count`` documents; returns the still-open LightRAG instance."""
    rag = await new_rag(working_dir, workspace=workspace, embedding_dim=embedding_dim, storages=storages)
    await rag.ainsert(documents(doc_count, seed=seed), ids=None)
    return rag


def graph_files(graph_dir: str | Path) -> dict[str, bytes]:
    """The bytes of every graph file in a folder, by name."""
    from . import _native

    folder = Path(graph_dir)
    return {
        p.name: p.read_bytes()
        for p in sorted(folder.iterdir())
        if p.is_file() and _native.is_graph_file(p.name)
    }


def entity_names(graph_dir: str | Path) -> list[str]:
    """Entity names in the graph's GraphML, sorted."""
    import xml.etree.ElementTree as ET

    path = Path(graph_dir, "graph_chunk_entity_relation.graphml")
    if not path.exists():
        return []
    ns = {"g": "http://graphml.graphdrawing.org/xmlns"}
    return sorted(node.get("id", "") for node in ET.parse(path).getroot().iter(f"{{{ns['g']}}}node"))

