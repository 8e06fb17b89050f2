"""Capturing every record of a live LightRAG instance, whatever its storages are.

Called with the instance's pipeline reserved (no insert runs). The graph store lists itself;
doc status lists its documents; for the KV and vector stores, which cannot list, the ids are
derived the way LightRAG builds them (chunk ids from documents and ``source_id`` fields, cache
ids from chunks, vector ids from entity names and relation endpoints) and joined with the
backend's native listing where there is one (``native``). Each storage's entry in the manifest
says how many ids were derived, listed and captured, and what, if anything, is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from . import layout, mapping, native

BATCH = 500
#: The steps of a capture, reported to ``progress(step, done, total)``.
STEPS = ("doc_status", "graph", "kv", "vectors", "write")


async def capture(rag: Any, folder: Path, *, progress: Optional[Callable[[str, int, int], None]] = None) -> dict[str, Any]:
    """Write every record of ``rag`` into ``folder`` (layout ``lightrag-records`` v1) and
    return the manifest. Raises what the storages raise when a backend fails."""
    return (await read(rag, progress=progress)).write(folder)


class Captured:
    """Every record of an instance, read and held in memory until :meth:`write` lays it out
    (so a live instance's pipeline is held for the reads only, not for the writing)."""

    def __init__(self, manifest: dict[str, Any], kv: dict[str, dict[str, Any]], nodes: dict[str, Any],
                 edges: dict[tuple[str, str], Any], vectors: dict[str, tuple[dict[str, Any], Any]],
                 progress: Optional[Callable[[str, int, int], None]]) -> None:
        self.manifest, self.kv, self.nodes, self.edges, self.vectors = manifest, kv, nodes, edges, vectors
        self.progress = progress

    def digest(self) -> str:
        """The content digest of these records (:mod:`.digest`)."""
        from .digest import content_digest

        return content_digest(self.kv, self.nodes, [(s, t, p) for (s, t), p in self.edges.items()], self.vectors)

    def write(self, folder: Path) -> dict[str, Any]:
        """Lay the records out in ``folder``; returns the manifest (with the content digest)."""
        if self.progress is not None:
            self.progress("records:write", STEPS.index("write"), len(STEPS))
        folder.mkdir(parents=True, exist_ok=True)
        order = layout.creation_order
        for name, records in self.kv.items():
            layout.write_lines(folder / layout.records_file(name), ([k, records[k]] for k in order(records)))
        layout.write_lines(folder / layout.records_file(layout.NODES), ([k, self.nodes[k]] for k in order(self.nodes)))
        layout.write_lines(folder / layout.records_file(layout.EDGES),
                           ([s, t, self.edges[(s, t)]] for s, t in order(self.edges)))
        for name, (records, matrix) in self.vectors.items():
            keys = order(records)
            rows = {key: row for row, key in enumerate(records)}
            layout.write_lines(folder / layout.records_file(name), ([k, records[k]] for k in keys))
            ordered = matrix[[rows[k] for k in keys]] if keys else matrix
            dim = int(self.manifest["embedding"]["dim"])
            (folder / layout.vectors_file(name, dim)).write_bytes(ordered.astype("<f4").tobytes())
        manifest = dict(self.manifest)
        manifest["digest"] = self.digest()
        layout.write_manifest(folder, manifest)
        if self.progress is not None:
            self.progress("records:done", len(STEPS), len(STEPS))
        return manifest


async def read(rag: Any, *, progress: Optional[Callable[[str, int, int], None]] = None) -> Captured:
    """Read every record of ``rag``. Raises what the storages raise when a backend fails."""
    import numpy as np
    from lightrag.base import DocStatus
    from lightrag.constants import GRAPH_FIELD_SEP
    from lightrag.utils import compute_mdhash_id, make_relation_chunk_key

    def step(name: str) -> None:
        if progress is not None:
            progress(f"records:{name}", STEPS.index(name), len(STEPS))

    stores: dict[str, dict[str, Any]] = {}

    def entry(name: str, storage: Any, derived: Optional[set[str]], listed: Optional[set[str]]) -> dict[str, Any]:
        stores[name] = {
            "role": layout.ROLES[name],
            "class": type(storage).__name__,
            "backend": native.backend_of(storage),
            "namespace": getattr(storage, "namespace", name),
            "derived": len(derived) if derived is not None else None,
            "native": len(listed) if listed is not None else None,
        }
        return stores[name]

    # Documents: doc status lists them.
    step("doc_status")
    doc_status = rag.doc_status
    listed = await native.list_ids(doc_status)
    docs = await doc_status.get_docs_by_statuses(list(DocStatus), strict=True)
    doc_ids = set(docs) | (listed or set())
    status_records = {
        k: mapping.canonical_kv(layout.DOC_STATUS, k, v, native.backend_of(doc_status))
        for k, v in (await _get_all(doc_status, doc_ids)).items()
    }
    _finish(entry(layout.DOC_STATUS, doc_status, set(docs), listed), status_records, doc_ids, listed, set(docs))

    # The graph lists itself.
    step("graph")
    graph = rag.chunk_entity_relation_graph
    nodes = {str(node["id"]): {k: v for k, v in node.items() if k != "id"} for node in await graph.get_all_nodes()}
    edges: dict[tuple[str, str], dict[str, Any]] = {}
    for edge in await graph.get_all_edges():
        props = {k: v for k, v in edge.items() if k not in ("source", "target")}
        # LightRAG's graphs are undirected and backends return either orientation: the
        # records keep each edge once, its endpoints in sorted order.
        source, target = sorted((str(edge["source"]), str(edge["target"])))
        edges[(source, target)] = props
    stores[layout.GRAPH] = {
        "role": "graph",
        "class": type(graph).__name__,
        "backend": native.backend_of(graph),
        "namespace": getattr(graph, "namespace", layout.GRAPH),
        "nodes": len(nodes),
        "edges": len(edges),
        "status": "complete",
    }

    # KV stores: ids derived as LightRAG builds them, joined with the native listing.
    step("kv")
    chunk_ids: set[str] = set()
    for record in status_records.values():
        chunk_ids.update(record.get("chunks_list") or [])
    for props in list(nodes.values()) + list(edges.values()):
        chunk_ids.update(_split(props.get("source_id"), GRAPH_FIELD_SEP))
    kv: dict[str, dict[str, Any]] = {}

    async def capture_kv(name: str, derived: set[str]) -> dict[str, Any]:
        storage = getattr(rag, name)
        listed = await native.list_ids(storage)
        wanted = derived | (listed or set())
        backend = native.backend_of(storage)
        records = {k: mapping.canonical_kv(name, k, v, backend) for k, v in (await _get_all(storage, wanted)).items()}
        # Derived ids that the store never had are references, not losses: only ids the store
        # listed (or, unlisted, every derived id it answered) count against completeness.
        _finish(entry(name, storage, derived, listed), records, listed if listed is not None else set(records), listed, derived)
        kv[name] = records
        return records

    entity_chunks = await capture_kv("entity_chunks", set(nodes))
    relation_chunks = await capture_kv("relation_chunks", {make_relation_chunk_key(s, t) for s, t in edges})
    for record in list(entity_chunks.values()) + list(relation_chunks.values()):
        chunk_ids.update(record.get("chunk_ids") or [])
    text_chunks = await capture_kv("text_chunks", chunk_ids)
    for name in ("full_docs", "full_entities", "full_relations"):
        await capture_kv(name, set(doc_ids))
    cache_ids: set[str] = set()
    for record in text_chunks.values():
        cache_ids.update(record.get("llm_cache_list") or [])
    await capture_kv("llm_response_cache", cache_ids)

    # Vector stores: metadata and the vectors themselves.
    step("vectors")
    derived_vectors = {
        "entities_vdb": {compute_mdhash_id(name, prefix="ent-") for name in nodes},
        "relationships_vdb": {compute_mdhash_id(s + t, prefix="rel-") for s, t in edges}
        | {compute_mdhash_id(t + s, prefix="rel-") for s, t in edges},
        "chunks_vdb": set(text_chunks) | chunk_ids,
    }
    vectors: dict[str, tuple[dict[str, Any], Any]] = {}
    dim = _embedding_dim(rag)
    for name in layout.VECTOR_STORES:
        storage = getattr(rag, name)
        bulk = await native.read_vectors(storage)
        if bulk is not None:
            listed = set(bulk[0])
            raw, found = bulk
        else:
            listed = await native.list_ids(storage)
            raw = await _get_all(storage, derived_vectors[name] | (listed or set()))
            found = await _get_vectors(storage, sorted(raw))
        backend = native.backend_of(storage)
        records = {k: mapping.canonical_vector(name, k, raw[k], backend) for k in sorted(raw)}
        without_vector = sorted(set(records) - set(found))
        info = entry(name, storage, derived_vectors[name], listed)
        _finish(info, records, listed if listed is not None else set(records), listed, derived_vectors[name])
        if without_vector:
            info["status"] = "incomplete"
            info["missing_vectors"] = without_vector[:50]
            info["missing_vectors_count"] = len(without_vector)
            for key in without_vector:
                records.pop(key)
        ordered = sorted(records)
        matrix = np.zeros((len(ordered), dim), dtype="<f4")
        for row, key in enumerate(ordered):
            vector = np.asarray(found[key], dtype="<f4")
            if vector.shape != (dim,):
                raise ValueError(f"{name} vector {key!r} has {vector.size} dimensions; the embedding has {dim}")
            matrix[row] = vector
        vectors[name] = (records, matrix)

    return Captured(_manifest(rag, stores, dim), {**kv, layout.DOC_STATUS: status_records}, nodes, edges, vectors,
                    progress)


def _manifest(rag: Any, stores: dict[str, Any], dim: int) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        lightrag_version: Optional[str] = version("lightrag-hku")
    except PackageNotFoundError:
        lightrag_version = None
    statuses = {info["status"] for info in stores.values()}
    overall = "incomplete" if "incomplete" in statuses else "unchecked" if "unchecked" in statuses else "complete"
    return {
        "format": layout.FORMAT,
        "version": layout.VERSION,
        "lightrag_version": lightrag_version,
        "workspace": getattr(rag, "workspace", "") or "",
        "embedding": {"dim": dim, "model_name": getattr(rag.embedding_func, "model_name", None)},
        "stores": stores,
        "status": overall,
        "complete": overall == "complete",
    }


def _finish(
    info: dict[str, Any],
    records: dict[str, Any],
    expected: Iterable[str],
    listed: Optional[set[str]],
    derived: Optional[set[str]] = None,
) -> None:
    """Count what was captured and say what was not."""
    info["captured"] = len(records)
    missing = sorted(set(expected) - set(records))
    if missing:
        info["status"] = "incomplete"
        info["missing"] = missing[:50]
        info["missing_count"] = len(missing)
    else:
        info["status"] = "complete" if listed is not None else "unchecked"


def _split(value: Any, separator: str) -> list[str]:
    if not value:
        return []
    if isinstance(value, list):
        return [str(v) for v in value if v]
    return [part for part in str(value).split(separator) if part]


def _embedding_dim(rag: Any) -> int:
    dim = getattr(rag.embedding_func, "embedding_dim", None)
    if not isinstance(dim, int) or dim <= 0:
        raise ValueError("the instance's embedding_func has no embedding_dim")
    return dim


async def _get_all(storage: Any, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    ordered = sorted(ids)
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ordered), BATCH):
        batch = ordered[start : start + BATCH]
        for key, record in zip(batch, await storage.get_by_ids(batch)):
            if record is not None:
                found[key] = dict(record)
    return found


async def _get_vectors(storage: Any, ids: list[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for start in range(0, len(ids), BATCH):
        found.update(await storage.get_vectors_by_ids(ids[start : start + BATCH]))
    return found
