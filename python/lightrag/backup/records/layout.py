"""The on-disk layout of a database-backed graph's records (format ``lightrag-records`` v1).

A snapshot of a graph whose storages are databases holds, instead of LightRAG's own files, one
folder of records that the repository chunks and deduplicates like any other file:

- ``records.json``: the manifest. Format and version, the LightRAG version, the embedding
  model (dimension and name), and per storage its role, class, backend, namespace, how many
  records were derived, listed natively and captured, and whether the capture is complete.
- ``records_<storage>.jsonl``: one line per record, ``[id, record]`` (``[source, target,
  properties]`` for graph edges), keys sorted, in the order the records were created (their
  creation time, then id): new records land at the end and an edit changes its own line, so
  a change step touches a few chunks, as LightRAG's own files (appended in insertion order)
  do. Sorting by id alone scattered every change step's new records over the whole file
  (ids are hashes), and each one cost a chunk.
- ``records_<storage>.d<dim>.f32``: for a vector storage, its vectors as raw little-endian
  float32 rows, in the order of its ``.jsonl`` lines: exact. The engine stores each row as its
  own chunk (as it does the decoded matrices of NanoVectorDB files), so an unchanged row
  costs nothing in the next snapshot wherever it moved.

Records are kept in the backend-neutral form of LightRAG's file storages (``mapping`` says how
each backend's fields are mapped to it), so the same graph gives the same records whatever it
was stored in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Iterator

FORMAT = "lightrag-records"
VERSION = 1
MANIFEST = "records.json"

#: The storages of a LightRAG instance, by attribute name, and the role each plays.
KV_STORES = (
    "full_docs",
    "text_chunks",
    "full_entities",
    "full_relations",
    "entity_chunks",
    "relation_chunks",
    "llm_response_cache",
)
DOC_STATUS = "doc_status"
VECTOR_STORES = ("entities_vdb", "relationships_vdb", "chunks_vdb")
GRAPH = "chunk_entity_relation_graph"
ROLES: dict[str, str] = {
    **{name: "kv" for name in KV_STORES},
    DOC_STATUS: "doc_status",
    **{name: "vector" for name in VECTOR_STORES},
    GRAPH: "graph",
}


def records_file(store: str) -> str:
    return f"records_{store}.jsonl"


def vectors_file(store: str, dim: int) -> str:
    """The vectors of a vector store: ``dim`` float32 per row; the engine cuts the file into
    one chunk per row (it reads the row size from the name)."""
    return f"records_{store}.d{int(dim)}.f32"


NODES = "graph_nodes"
EDGES = "graph_edges"


def dumps(value: Any) -> str:
    """One canonical JSON line: keys sorted, no spaces, non-ASCII kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


#: The fields a record's creation time is kept in, by role of the store (the first present).
CREATED_FIELDS = ("create_time", "created_at", "__created_at__")


def creation_order(records: "dict[Any, Any]") -> list[Any]:
    """The keys of ``records`` in the order the records were created: by creation time (a
    number, or an ISO time), then by key, records without one first."""

    def when(record: Any) -> float:
        if isinstance(record, dict):
            for field in CREATED_FIELDS:
                value = record.get(field)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    return float(value)
                if isinstance(value, str) and value:
                    try:
                        from datetime import datetime

                        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
                    except ValueError:
                        continue
        return float("-inf")

    return sorted(records, key=lambda key: (when(records[key]), key))


def write_lines(path: Path, rows: Iterable[Any]) -> int:
    count = 0
    with open(path, "w", encoding="utf-8") as out:
        for row in rows:
            out.write(dumps(row))
            out.write("\n")
            count += 1
    return count


def read_lines(path: Path) -> Iterator[Any]:
    with open(path, encoding="utf-8") as source:
        for number, line in enumerate(source, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError as error:
                    raise ValueError(f"{path.name} line {number} is not JSON: {error}") from None


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of a records folder; ``ValueError`` when it is not one this version reads."""
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{folder} holds no {MANIFEST}: not the records of a database-backed graph") from None
    except ValueError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} manifest")
    if manifest.get("version") != VERSION:
        raise ValueError(
            f"{path} is {FORMAT} version {manifest.get('version')!r}; this lightrag-backup reads version {VERSION} "
            "(upgrade lightrag-backup to restore it)"
        )
    return manifest


def is_records_folder(folder: Path) -> bool:
    return (folder / MANIFEST).is_file()
