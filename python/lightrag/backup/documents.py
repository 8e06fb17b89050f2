"""Document-level restore: documents of a snapshot put back into the graph as it is now.

LightRAG users lose documents, not whole graphs. Restoring the whole graph to bring one
document back loses everything inserted since; this puts back the documents alone. What comes
back is what LightRAG would hold had the documents never been deleted:

- each document's full text, its text chunks and their vectors, and the LLM cache entries its
  chunks list (their extraction results), then its per-document anchors (``full_entities``,
  ``full_relations``), and its doc status last: a document is listed only once all of it is in;
- each entity and relation its chunks contributed. One the graph no longer holds comes back as
  the snapshot held it (graph node or edge, vector row, chunk tracking), and is rebuilt from
  its sources when some of those are gone from the graph meanwhile. One the graph still holds
  (other documents cite it) gets the document's chunks back in its sources, in the order the
  snapshot had them, and is rebuilt from all of them by LightRAG's own
  ``rebuild_knowledge_from_chunks``, the way LightRAG rebuilds after a deletion: from the
  cached extraction results, not the LLM.

Nothing else changes: documents inserted after the snapshot stay, with their entities.

No model is called where the snapshot holds the answer. While the restore writes, each vector
storage embeds through a replay function that answers every text the snapshot embedded with
its saved vector, and calls the instance's own function only for a text the snapshot never
embedded (an entity whose description is rebuilt from sources the snapshot did not have
together); the LLM is wrapped to count. The report says how many of each were made.

The plan (:func:`plan`) is computed from the snapshot's records and the graph's storages
before anything is written, and is what a dry run returns. Writing (:func:`apply`) goes
through the instance's storage interfaces, so every LightRAG backend works; the caller holds
the pipeline, takes the safety snapshot and rolls back on a failure
(:meth:`~lightrag.backup.sources.GraphSource.restore_documents`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from .errors import DocumentExistsError, DocumentNotFoundError, InvalidInputError
from .records import layout, load, mapping

BATCH = 500


def _split(source_id: Any) -> list[str]:
    from lightrag.constants import GRAPH_FIELD_SEP

    if isinstance(source_id, list):
        return [c for c in source_id if c]
    return [c for c in str(source_id or "").split(GRAPH_FIELD_SEP) if c]


def _pair(source: str, target: str) -> tuple[str, str]:
    return (source, target) if source <= target else (target, source)


@dataclass
class Plan:
    """What a document restore adds and changes (see the module documentation)."""

    snapshot_id: str
    documents: list[dict[str, Any]]
    #: Documents still in the graph, deleted through LightRAG first (``replace``).
    replaced: list[str]
    chunks: list[str]
    cache_ids: list[str]
    #: Entities written as the snapshot held them: the graph no longer holds them, or their
    #: sources are back to the snapshot's exactly.
    entities_back: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Entity -> the chunk ids it is rebuilt from (after it is put back, if it was gone).
    entities_rebuilt: dict[str, list[str]] = field(default_factory=dict)
    #: Entities the graph no longer holds.
    entities_absent: set[str] = field(default_factory=set)
    #: Relation (as the snapshot's edge names it) -> its properties, put back.
    relations_back: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    relations_rebuilt: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    relations_absent: set[tuple[str, str]] = field(default_factory=set)

    @property
    def subject(self) -> str:
        """What is restored, in a few words (for the safety snapshot's description)."""
        if self.documents:
            return f"{len(self.documents)} document(s)"
        names = sorted(self.entities_back)
        return "entit" + ("y " if len(names) == 1 else "ies ") + ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")

    def summary(self) -> dict[str, Any]:
        """The plan as JSON: what would be added (``restored``: absent from the graph) and
        changed (``changed``: still in the graph, its sources gaining the documents' chunks),
        and which of those LightRAG rebuilds from their chunks (``rebuilt``)."""
        def pairs(items: Any) -> list[list[str]]:
            return sorted([list(pair) for pair in items])

        relations = set(self.relations_back) | set(self.relations_rebuilt)
        entities = set(self.entities_back) | set(self.entities_rebuilt)
        return {
            "snapshot_id": self.snapshot_id,
            "documents": self.documents,
            "replaced": self.replaced,
            "chunks": len(self.chunks),
            "llm_cache_entries": len(self.cache_ids),
            "entities": {
                "restored": sorted(self.entities_absent),
                "changed": sorted(entities - self.entities_absent),
                "rebuilt": sorted(self.entities_rebuilt),
            },
            "relations": {
                "restored": pairs(self.relations_absent),
                "changed": pairs(relations - self.relations_absent),
                "rebuilt": pairs(self.relations_rebuilt),
            },
        }


def resolve(records: "load.Records", wanted: list[str]) -> list[str]:
    """The document ids ``wanted`` names (ids, or file paths as LightRAG recorded them, or
    their last part), in order, each once."""
    statuses = records.kv["doc_status"]
    found: list[str] = []
    for name in wanted:
        name = str(name).strip()
        if not name:
            raise InvalidInputError("an empty document id or file path")
        if name in statuses:
            match = [name]
        else:
            match = [key for key, status in statuses.items() if status.get("file_path") == name]
            if not match:
                match = [key for key, status in statuses.items()
                         if os.path.basename(str(status.get("file_path") or "")) == name]
        if not match:
            raise DocumentNotFoundError(
                f"the snapshot holds no document {name!r} (by id or file path); "
                "`lightrag-backup deleted` lists the documents snapshots hold"
            )
        if len(match) > 1:
            raise InvalidInputError(
                f"{name!r} is the file path of {len(match)} documents in the snapshot ({', '.join(sorted(match)[:5])}); "
                "name them by id"
            )
        if match[0] not in found:
            found.append(match[0])
    return found


async def plan(records: "load.Records", rag: Any, wanted: list[str], *, snapshot_id: str,
               replace: bool) -> Plan:
    """What restoring documents ``wanted`` of ``records`` (a snapshot) into ``rag`` adds and
    changes, read from both without writing. Raises :class:`DocumentNotFoundError` for a
    document the snapshot lacks, :class:`DocumentExistsError` for one the graph holds (unless
    ``replace``: then the plan is made as if it were deleted first)."""
    kv = records.kv
    doc_ids = resolve(records, wanted)
    replaced: list[str] = []
    gone: set[str] = set()  # chunks of the replaced versions: deleted before the restore writes
    for doc_id in doc_ids:
        for current_id, current in await _current_versions(rag, doc_id, kv["doc_status"][doc_id].get("file_path")):
            if not replace:
                what = "is in the graph" if current_id == doc_id else f"has another version in the graph ({current_id})"
                raise DocumentExistsError(
                    f"document {doc_id} ({current.get('file_path')}) {what}; pass replace=True (--replace) to delete "
                    "that through LightRAG and restore the snapshot's version"
                )
            if current_id not in replaced:
                replaced.append(current_id)
                gone.update(_split(current.get("chunks_list") or []))
    documents: list[dict[str, Any]] = []
    chunks: list[str] = []
    for doc_id in doc_ids:
        status = kv["doc_status"][doc_id]
        own = _split(status.get("chunks_list") or []) or [
            key for key, chunk in kv["text_chunks"].items() if chunk.get("full_doc_id") == doc_id
        ]
        missing = [c for c in own if c not in kv["text_chunks"]]
        if doc_id not in kv["full_docs"] or missing:
            raise InvalidInputError(
                f"the snapshot holds the status of document {doc_id} but not "
                + ("its text" if doc_id not in kv["full_docs"] else f"{len(missing)} of its {len(own)} chunks")
                + " (it was taken while the document was being processed or deleted): restore it from another snapshot"
            )
        documents.append({"id": doc_id, "file_path": status.get("file_path"), "status": status.get("status"),
                          "chunks": len(own)})
        chunks.extend(c for c in own if c not in chunks)
    mine = set(chunks)
    cache = kv["llm_response_cache"]
    cache_ids: list[str] = []
    for chunk_id in chunks:
        for key in kv["text_chunks"][chunk_id].get("llm_cache_list") or []:
            if key in cache and key not in cache_ids:
                cache_ids.append(key)
    result = Plan(snapshot_id, documents, replaced, chunks, cache_ids)
    await _plan_entities(result, records, rag, mine, gone, doc_ids)
    await _plan_relations(result, records, rag, mine, gone, doc_ids)
    return result


async def plan_entities(records: "load.Records", rag: Any, names: list[str], *, snapshot_id: str,
                        replace: bool) -> Plan:
    """What putting entities ``names`` of ``records`` (a snapshot) back as they were, with
    their relations, changes in ``rag``: for an entity deleted or edited by hand
    (``adelete_by_entity``, ``aedit_entity``). One the graph still holds is refused
    (:class:`DocumentExistsError`) unless ``replace``. Their sources are the snapshot's where
    those chunks are still in the graph; an entity whose chunks are all gone is refused (its
    documents are: restore those). A relation comes back when its other end is in the graph."""
    from .errors import EntityNotFoundError

    wanted: list[str] = []
    for name in names:
        name = str(name).strip()
        if name not in records.nodes:
            raise EntityNotFoundError(f"the snapshot holds no entity {name!r} (names are case-sensitive)")
        if name not in wanted:
            wanted.append(name)
    graph = rag.chunk_entity_relation_graph
    present = await graph.get_nodes_batch(wanted)
    held = [name for name in wanted if present.get(name)]
    if held and not replace:
        raise DocumentExistsError(
            f"the graph holds entit{'y' if len(held) == 1 else 'ies'} {', '.join(held)}; pass replace=True (--replace) "
            "to put the snapshot's version in place of the current one"
        )
    result = Plan(snapshot_id, [], [], [], [])
    sources = {name: _entity_sources(records, name) for name in wanted}
    checked = {c for ids in sources.values() for c in ids}
    existing = await _existing_chunks(rag, checked, set())
    for name in wanted:
        target = [c for c in sources[name] if c in existing]
        if not target:
            raise InvalidInputError(
                f"entity {name!r} came from chunks the graph no longer holds (their documents were deleted): "
                "restore those documents (--document), and their entities come back with them"
            )
        if not present.get(name):
            result.entities_absent.add(name)
        result.entities_back[name] = records.nodes[name]
        if target != sources[name]:
            result.entities_rebuilt[name] = target
    coming = set(wanted)
    others = sorted({n for s, t, _ in records.edges if s in coming or t in coming for n in (s, t)} - coming)
    around = await graph.get_nodes_batch(others) if others else {}
    edges = [(s, t, props) for s, t, props in records.edges
             if (s in coming or t in coming) and (s in coming or around.get(s)) and (t in coming or around.get(t))]
    live_edges = await graph.get_edges_batch([{"src": s, "tgt": t} for s, t, _ in edges]) if edges else {}
    for source, target_name, props in edges:
        ids = _relation_sources(records, _pair(source, target_name), props)
        unknown = set(ids) - checked
        if unknown:  # chunks the entities' sources did not name: asked once
            existing |= await _existing_chunks(rag, unknown, set())
            checked |= unknown
        target = [c for c in ids if c in existing]
        if not target:
            continue  # every chunk citing it is gone: LightRAG would not hold it either
        edge = (source, target_name)
        if not live_edges.get((source, target_name)):
            result.relations_absent.add(edge)
        result.relations_back[edge] = props
        if target != ids:
            result.relations_rebuilt[edge] = target
    return result


#: File paths LightRAG records for a document inserted without one: they name no version.
_NO_FILE_PATH = frozenset({"", "unknown_source", "no-file-path"})


async def _current_versions(rag: Any, doc_id: str, file_path: Any) -> list[tuple[str, dict[str, Any]]]:
    """The graph's versions of a document: itself, and a document of the same file path under
    another id (its content changed: LightRAG names a document by its content)."""
    found: list[tuple[str, dict[str, Any]]] = []
    current = await rag.doc_status.get_by_id(doc_id)
    if current:
        found.append((doc_id, current))
    if not isinstance(file_path, str) or file_path in _NO_FILE_PATH:
        return found
    if not await rag.doc_status.get_doc_by_file_path(file_path):
        return found
    from lightrag.base import DocStatus

    everything = await rag.doc_status.get_docs_by_statuses(list(DocStatus), strict=True)
    for other_id, other in sorted(everything.items()):
        if other_id != doc_id and getattr(other, "file_path", None) == file_path:
            found.append((other_id, {"file_path": file_path, "chunks_list": getattr(other, "chunks_list", None) or []}))
    return found


def _entity_sources(records: "load.Records", name: str) -> list[str]:
    row = records.kv["entity_chunks"].get(name) or {}
    return _split(row.get("chunk_ids") or []) or _split(records.nodes[name].get("source_id"))


def _relation_sources(records: "load.Records", pair: tuple[str, str], props: dict[str, Any]) -> list[str]:
    from lightrag.utils import make_relation_chunk_key

    row = records.kv["relation_chunks"].get(make_relation_chunk_key(*pair)) or {}
    return _split(row.get("chunk_ids") or []) or _split(props.get("source_id"))


async def _existing_chunks(rag: Any, ids: set[str], gone: set[str]) -> set[str]:
    wanted = sorted(ids - gone)
    found: set[str] = set()
    for start in range(0, len(wanted), BATCH):
        batch = wanted[start : start + BATCH]
        for chunk_id, record in zip(batch, await rag.text_chunks.get_by_ids(batch)):
            if record:
                found.add(chunk_id)
    return found


def _target(snapshot_sources: list[str], mine: set[str], live_sources: Optional[list[str]],
            existing: set[str]) -> list[str]:
    """The sources an entity or relation has once the documents are back: the snapshot's, in
    its order, where they are the documents' own or still in the graph, then the ones the graph
    gained since."""
    if live_sources is None:
        return [c for c in snapshot_sources if c in mine or c in existing]
    keep = set(live_sources) | mine
    known = set(snapshot_sources)
    return [c for c in snapshot_sources if c in keep] + [c for c in live_sources if c not in known]


def _decide(key: Any, props: dict[str, Any], snapshot_sources: list[str], target: list[str],
            live_sources: Optional[list[str]], replacing: bool, back: dict[Any, Any], rebuilt: dict[Any, Any],
            absent: set[Any]) -> None:
    """What becomes of one entity or relation (``live_sources`` is ``None`` when the graph no
    longer holds it): written as the snapshot held it, rebuilt from ``target``, or both."""
    if live_sources is None:
        absent.add(key)
    if target == snapshot_sources or live_sources is None:
        # Its sources are the snapshot's again: what LightRAG held then, exactly (a rebuild
        # would word some fields its own way, and need embeddings for them); or it is gone,
        # and is put back before it is rebuilt.
        back[key] = props
    if target != snapshot_sources and (live_sources is None or target != live_sources or replacing):
        rebuilt[key] = target


async def _plan_entities(result: Plan, records: "load.Records", rag: Any, mine: set[str], gone: set[str],
                         doc_ids: list[str]) -> None:
    names: set[str] = set()
    for doc_id in doc_ids:
        names.update((records.kv["full_entities"].get(doc_id) or {}).get("entity_names") or [])
    for name, props in records.nodes.items():
        if mine.intersection(_split(props.get("source_id"))):
            names.add(name)
    sources = {name: _entity_sources(records, name) for name in names if name in records.nodes}
    sources = {name: ids for name, ids in sources.items() if mine.intersection(ids)}
    ordered = sorted(sources)
    live_nodes = await rag.chunk_entity_relation_graph.get_nodes_batch(ordered) if ordered else {}
    tracked = await _tracking(rag.entity_chunks, ordered)
    others = {c for name in ordered if not live_nodes.get(name) for c in sources[name]} - mine
    existing = await _existing_chunks(rag, others, gone)
    for name in ordered:
        live = live_nodes.get(name)
        live_sources = None
        if live:
            live_sources = [c for c in (tracked.get(name) or _split(live.get("source_id"))) if c not in gone]
        target = _target(sources[name], mine, live_sources, existing)
        _decide(name, records.nodes[name], sources[name], target, live_sources, bool(gone),
                result.entities_back, result.entities_rebuilt, result.entities_absent)


async def _plan_relations(result: Plan, records: "load.Records", rag: Any, mine: set[str], gone: set[str],
                          doc_ids: list[str]) -> None:
    edges = {_pair(s, t): (s, t, props) for s, t, props in records.edges}
    pairs: set[tuple[str, str]] = set()
    for doc_id in doc_ids:
        for pair in (records.kv["full_relations"].get(doc_id) or {}).get("relation_pairs") or []:
            if isinstance(pair, (list, tuple)) and len(pair) == 2:
                pairs.add(_pair(str(pair[0]), str(pair[1])))
    for pair, (_, _, props) in edges.items():
        if mine.intersection(_split(props.get("source_id"))):
            pairs.add(pair)
    sources = {pair: _relation_sources(records, pair, edges[pair][2]) for pair in pairs if pair in edges}
    sources = {pair: ids for pair, ids in sources.items() if mine.intersection(ids)}
    ordered = sorted(sources)
    graph = rag.chunk_entity_relation_graph
    live_edges = await graph.get_edges_batch([{"src": s, "tgt": t} for s, t in ordered]) if ordered else {}
    from lightrag.utils import make_relation_chunk_key

    tracked = await _tracking(rag.relation_chunks, [make_relation_chunk_key(*pair) for pair in ordered])
    others = {c for pair in ordered if not live_edges.get(pair) for c in sources[pair]} - mine
    existing = await _existing_chunks(rag, others, gone)
    # An endpoint neither in the graph nor coming back (an entity edited away by hand) comes
    # back as the snapshot held it: an edge needs both of its nodes.
    endpoints = sorted({n for pair in ordered for n in pair} - set(result.entities_back))
    present = await graph.get_nodes_batch(endpoints) if endpoints else {}
    for name in endpoints:
        if not present.get(name) and name in records.nodes:
            result.entities_back[name] = records.nodes[name]
            result.entities_absent.add(name)
    for pair in ordered:
        source, target_name, props = edges[pair]
        live = live_edges.get(pair)
        live_sources = None
        if live:
            key = make_relation_chunk_key(*pair)
            live_sources = [c for c in (tracked.get(key) or _split(live.get("source_id"))) if c not in gone]
        target = _target(sources[pair], mine, live_sources, existing)
        _decide((source, target_name), props, sources[pair], target, live_sources, bool(gone),
                result.relations_back, result.relations_rebuilt, result.relations_absent)


async def _tracking(storage: Any, keys: list[str]) -> dict[str, list[str]]:
    """The chunk ids a chunk-tracking store (``entity_chunks``/``relation_chunks``) holds per key."""
    if storage is None or not keys:
        return {}
    found: dict[str, list[str]] = {}
    for start in range(0, len(keys), BATCH):
        batch = keys[start : start + BATCH]
        for key, row in zip(batch, await storage.get_by_ids(batch)):
            if row and isinstance(row, dict):
                found[key] = _split(row.get("chunk_ids") or [])
    return found


class Calls:
    """Model calls made while a restore writes: LLM calls, and embedding calls with the texts
    they embedded (the texts answered from the snapshot are counted apart)."""

    def __init__(self) -> None:
        self.llm = 0
        self.embedding = 0
        self.embedded_texts = 0
        self.replayed_texts = 0

    def to_dict(self) -> dict[str, int]:
        return {"llm": self.llm, "embedding": self.embedding, "embedded_texts": self.embedded_texts,
                "vectors_from_snapshot": self.replayed_texts}


def _replaying(original: Any, table: dict[Any, Any], calls: Calls) -> Any:
    """An embedding function answering each text the snapshot embedded with its saved vector,
    and the rest (counted) with ``original``."""
    import numpy as np
    from lightrag.utils import EmbeddingFunc

    async def replay(texts: list[str], **kwargs: Any) -> Any:
        rows: list[Any] = [table.get(text) for text in texts]
        misses = [i for i, row in enumerate(rows) if row is None]
        calls.replayed_texts += len(texts) - len(misses)
        if misses:
            calls.embedding += 1
            calls.embedded_texts += len(misses)
            embedded = await original([texts[i] for i in misses], **kwargs)
            for i, vector in zip(misses, embedded):
                rows[i] = np.asarray(vector, dtype=np.float32)
        return np.array(rows, dtype=np.float32).reshape(len(rows), -1)

    return EmbeddingFunc(
        embedding_dim=int(getattr(original, "embedding_dim")),
        func=replay,
        model_name=getattr(original, "model_name", None),
    )


def _counting(function: Any, calls: Calls) -> Any:
    if function is None:
        return None

    async def counted(*args: Any, **kwargs: Any) -> Any:
        calls.llm += 1
        return await function(*args, **kwargs)

    return counted


def _vector_rows(records: "load.Records", store: str, keys: list[str]) -> dict[str, dict[str, Any]]:
    rows, _ = records.vectors[store]
    text_chunks = records.kv["text_chunks"]
    return {key: mapping.vector_upsert_record(store, rows[key], text_chunks, key) for key in keys if key in rows}


async def _upsert(storage: Any, items: dict[str, Any]) -> None:
    pairs = list(items.items())
    for start in range(0, len(pairs), BATCH):
        await storage.upsert(dict(pairs[start : start + BATCH]))


async def apply(the_plan: Plan, records: "load.Records", rag: Any) -> dict[str, Any]:
    """Write ``the_plan`` into ``rag`` through its storages (the caller holds the pipeline and
    undoes a failure); returns the model calls made and what LightRAG's rebuild reported."""
    from lightrag.utils import compute_mdhash_id, make_relation_chunk_key

    kv = records.kv
    calls = Calls()
    await _tell_pipeline(rag, f"lightrag-backup: restoring {the_plan.subject} from snapshot {the_plan.snapshot_id}")
    vdbs = {"chunks_vdb": rag.chunks_vdb, "entities_vdb": rag.entities_vdb, "relationships_vdb": rag.relationships_vdb}
    originals = {name: storage.embedding_func for name, storage in vdbs.items()}
    # The snapshot's vectors of the rows this restore writes: a rebuilt description the
    # snapshot never embedded is no row's content there.
    written = {"chunks_vdb": the_plan.chunks,
               "entities_vdb": [compute_mdhash_id(name, prefix="ent-")
                                for name in {**the_plan.entities_back, **the_plan.entities_rebuilt}],
               "relationships_vdb": [compute_mdhash_id(a + b, prefix="rel-")
                                     for s, t in {**the_plan.relations_back, **the_plan.relations_rebuilt}
                                     for a, b in ((s, t), (t, s))]}
    for name, storage in vdbs.items():
        storage.embedding_func = _replaying(originals[name], records.replay_table(name, written[name]), calls)
    rebuild: dict[str, Any] = {}
    try:
        # Chunks and their extraction results first: the rebuild reads them.
        await _upsert(rag.text_chunks, {c: kv["text_chunks"][c] for c in the_plan.chunks})
        if rag.llm_response_cache is not None and the_plan.cache_ids:
            present = await rag.llm_response_cache.get_by_ids(the_plan.cache_ids)
            await _upsert(rag.llm_response_cache, {key: kv["llm_response_cache"][key]
                                                   for key, row in zip(the_plan.cache_ids, present) if not row})
        chunk_rows = _vector_rows(records, "chunks_vdb", the_plan.chunks)
        for chunk_id in the_plan.chunks:  # a chunk the snapshot holds no vector of is embedded (counted)
            if chunk_id not in chunk_rows:
                chunk = kv["text_chunks"][chunk_id]
                chunk_rows[chunk_id] = {k: chunk[k] for k in ("content", "full_doc_id", "file_path", "tokens",
                                                                "chunk_order_index") if k in chunk}
        await _upsert(rag.chunks_vdb, chunk_rows)

        graph = rag.chunk_entity_relation_graph
        for name, props in the_plan.entities_back.items():
            await graph.upsert_node(name, dict(props))
        await _upsert(rag.entities_vdb, _vector_rows(
            records, "entities_vdb", [compute_mdhash_id(name, prefix="ent-") for name in the_plan.entities_back]))
        if rag.entity_chunks is not None:
            await _upsert(rag.entity_chunks, {name: kv["entity_chunks"][name] for name in the_plan.entities_back
                                              if name in kv["entity_chunks"]})
        relation_rows = _relation_vector_keys(records, the_plan.relations_back)
        for (source, target), props in the_plan.relations_back.items():
            await graph.upsert_edge(source, target, dict(props))
        await _upsert(rag.relationships_vdb, _vector_rows(records, "relationships_vdb", relation_rows))
        if rag.relation_chunks is not None:
            keys = [make_relation_chunk_key(*pair) for pair in the_plan.relations_back]
            await _upsert(rag.relation_chunks, {key: kv["relation_chunks"][key] for key in keys
                                                if key in kv["relation_chunks"]})

        if the_plan.entities_rebuilt or the_plan.relations_rebuilt:
            rebuild = await _rebuild(the_plan, rag, calls)

        for store, field_name in (("full_entities", "entity_names"), ("full_relations", "relation_pairs")):
            rows = {doc["id"]: kv[store][doc["id"]] for doc in the_plan.documents if doc["id"] in kv[store]}
            if rows:
                await _upsert(getattr(rag, store), rows)
        await _upsert(rag.full_docs, {doc["id"]: kv["full_docs"][doc["id"]] for doc in the_plan.documents})
        # Listed last: a document is in the graph once all of it is.
        await _upsert(rag.doc_status, {doc["id"]: kv["doc_status"][doc["id"]] for doc in the_plan.documents})
        # Every storage written is flushed, as LightRAG flushes after an insert (the graph has
        # no dirty flag); buffering vector stores embed here, so the replay stays until then.
        flush_started = time.perf_counter()
        for name in layout.ROLES:
            storage = getattr(rag, name, None)
            if storage is not None:
                await storage.index_done_callback()
        flush_ms = round((time.perf_counter() - flush_started) * 1000, 1)
    finally:
        for name, storage in vdbs.items():
            storage.embedding_func = originals[name]
    await _tell_pipeline(rag, f"lightrag-backup: restored {the_plan.subject} from snapshot {the_plan.snapshot_id} "
                              f"({calls.llm} LLM calls, {calls.embedding} embedding calls)")
    return {"calls": calls.to_dict(), "flush_ms": flush_ms, **rebuild}


def _relation_vector_keys(records: "load.Records", pairs: Any) -> list[str]:
    from lightrag.utils import compute_mdhash_id

    rows, _ = records.vectors["relationships_vdb"]
    keys = []
    for source, target in pairs:
        for key in (compute_mdhash_id(source + target, prefix="rel-"), compute_mdhash_id(target + source, prefix="rel-")):
            if key in rows:
                keys.append(key)
                break
    return keys


async def _rebuild(the_plan: Plan, rag: Any, calls: Calls) -> dict[str, Any]:
    """LightRAG's own rebuild of the entities and relations whose sources changed, from the
    cached extraction results of all their chunks; its chunk tracking written first, as a
    deletion writes it."""
    from lightrag.operate import rebuild_knowledge_from_chunks
    from lightrag.utils import make_relation_chunk_key

    now = int(time.time())
    if rag.entity_chunks is not None and the_plan.entities_rebuilt:
        await _upsert(rag.entity_chunks, {name: {"chunk_ids": ids, "count": len(ids), "updated_at": now}
                                          for name, ids in the_plan.entities_rebuilt.items()})
    if rag.relation_chunks is not None and the_plan.relations_rebuilt:
        await _upsert(rag.relation_chunks, {make_relation_chunk_key(*pair): {"chunk_ids": ids, "count": len(ids),
                                                                              "updated_at": now}
                                            for pair, ids in the_plan.relations_rebuilt.items()})
    config = rag._build_global_config()
    config["role_llm_funcs"] = {role: _counting(function, calls)
                                for role, function in (config.get("role_llm_funcs") or {}).items()}
    config["llm_model_func"] = _counting(config.get("llm_model_func"), calls)
    status, lock = await _pipeline_status(rag)
    report = await rebuild_knowledge_from_chunks(
        entities_to_rebuild=dict(the_plan.entities_rebuilt),
        relationships_to_rebuild=dict(the_plan.relations_rebuilt),
        knowledge_graph_inst=rag.chunk_entity_relation_graph,
        entities_vdb=rag.entities_vdb,
        relationships_vdb=rag.relationships_vdb,
        text_chunks_storage=rag.text_chunks,
        llm_response_cache=rag.llm_response_cache,
        global_config=config,
        pipeline_status=status,
        pipeline_status_lock=lock,
        entity_chunks_storage=rag.entity_chunks,
        relation_chunks_storage=rag.relation_chunks,
        rebuild_policy="rollback",
    )
    degraded = sorted(getattr(report, "degraded_entities", {}) or {})
    missing = sorted(getattr(report, "missing_cache_chunk_ids", set()) or set())
    return {"rebuild": {"entities": len(the_plan.entities_rebuilt), "relations": len(the_plan.relations_rebuilt),
                        "chunks_without_cached_extraction": missing, "degraded_entities": degraded}}


async def _tell_pipeline(rag: Any, message: str) -> None:
    """A line in LightRAG's pipeline status and history (what its WebUI shows), as LightRAG's
    own operations write theirs."""
    status, lock = await _pipeline_status(rag)
    if status is None or lock is None:
        return
    try:
        from lightrag.kg.shared_storage import append_pipeline_history
    except ImportError:  # an older LightRAG: its history is a plain list
        append_pipeline_history = None
    async with lock:
        status["latest_message"] = message
        if append_pipeline_history is not None:
            append_pipeline_history(status, message)
        elif isinstance(status.get("history_messages"), list):
            status["history_messages"].append(message)


async def _pipeline_status(rag: Any) -> tuple[Any, Any]:
    try:
        from lightrag.kg.shared_storage import get_namespace_data, get_namespace_lock

        workspace = getattr(rag, "workspace", None)
        return (await get_namespace_data("pipeline_status", workspace=workspace),
                get_namespace_lock("pipeline_status", workspace=workspace))
    except Exception:  # noqa: BLE001 - storages used without a pipeline: nothing to report to
        return None, None


__all__ = ["Calls", "Plan", "apply", "plan", "plan_entities", "resolve"]
