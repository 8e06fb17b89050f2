"""A file snapshot read as records directly: LightRAG's files parsed as LightRAG writes them.

A document restore reads a few records of each store of a snapshot. Reading a file snapshot
through LightRAG's own file storages (:func:`.files.from_file_storages`) costs a private copy of
the graph, a LightRAG instance loading it and the records written and read back: 12 s for the
387 MB bench graph. The files are LightRAG's canonical form already (:mod:`.mapping`): the JSON
KV stores are ``{key: record}``, the GraphML typed by its keys, and NanoVectorDB's files a
``data`` list beside a base64 float32 ``matrix`` (row ``i`` is ``data[i]``'s vector). Parsed
here directly, with the same checks, they give what :class:`.load.Records` gives (``kv``,
``nodes``, ``edges``, ``vectors``, ``dim``, :meth:`replay_table`) in a fraction of that.
Another vector file layout (Faiss) is read the general way (:func:`readable` says which).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional
from xml.parsers.expat import ExpatError

from ..errors import InvalidInputError
from . import layout, mapping

GRAPHML = "graph_chunk_entity_relation.graphml"
VECTOR_FILES = {"entities_vdb": "vdb_entities.json", "relationships_vdb": "vdb_relationships.json",
                "chunks_vdb": "vdb_chunks.json"}
_NS = "{http://graphml.graphdrawing.org/xmlns}"


def kv_file(store: str) -> str:
    return f"kv_store_{store}.json"


def readable(folder: Path) -> bool:
    """Whether ``folder`` holds a file graph this module reads: NanoVectorDB vector files (or
    none of a store), no other vector layout."""
    return not any(folder.glob("faiss_index_*")) and (folder / VECTOR_FILES["chunks_vdb"]).exists()


class FileGraphRecords:
    """The graph files in ``folder`` read into records and checked (see the module documentation)."""

    def __init__(self, folder: Path, embedding_dim: Optional[int] = None) -> None:
        try:
            self.kv: dict[str, dict[str, Any]] = {
                name: self._json(folder / kv_file(name), {}) for name in layout.KV_STORES + (layout.DOC_STATUS,)
            }
            for name, records in self.kv.items():
                if not isinstance(records, dict) or not all(isinstance(r, dict) for r in records.values()):
                    raise ValueError(f"{kv_file(name)} is not a JSON object of records")
                # The file form less the record's key echoed back (``_id``), as every reader gives it.
                self.kv[name] = {key: mapping.canonical_kv(name, key, record) for key, record in records.items()}
            self.nodes, self.edges = _graphml(folder / GRAPHML)
            self.vectors: dict[str, tuple[VectorRows, Any]] = {}
            dims = set()
            files = {}
            for store, name in VECTOR_FILES.items():
                data = self._json(folder / name, None)
                if data is not None:
                    files[store] = data
                    dims.add(int(data["embedding_dim"]))
            if len(dims) > 1:
                raise ValueError(f"the vector files disagree on the embedding dimension ({sorted(dims)})")
            dim = dims.pop() if dims else embedding_dim
            if dim is None or dim <= 0:
                raise ValueError("no vector file records the embedding dimension")
            self.dim = int(dim)
            for store in VECTOR_FILES:
                data = files.get(store) or {"data": [], "matrix": ""}
                rows = data["data"]
                matrix = Base64Rows(VECTOR_FILES[store], data["matrix"] or "", len(rows), self.dim)
                self.vectors[store] = (VectorRows(store, rows), matrix)
        except (OSError, ValueError, TypeError, KeyError, ExpatError) as error:
            raise InvalidInputError(f"the snapshot's graph files are not readable: {type(error).__name__}: {error}") from None
        self.manifest: dict[str, Any] = {"embedding": {"dim": self.dim, "model_name": None}, "status": "complete"}

    @staticmethod
    def _json(path: Path, missing: Any) -> Any:
        if not path.exists():
            return missing
        with open(path, "rb") as source:
            return json.load(source)

    def replay_table(self, name: str, keys: Optional[Any] = None) -> dict[str, Any]:
        """Each record's content -> its saved vector (of the records ``keys`` names, or all),
        for the replaying embedding function."""
        rows, matrix = self.vectors[name]
        return rows.contents(matrix, keys)


class Base64Rows:
    """The rows of NanoVectorDB's base64 float32 matrix, each decoded when it is read: a
    restore reads a few of many (decoding all of the 387 MB bench graph's took 0.7 s)."""

    def __init__(self, name: str, text: str, rows: int, dim: int) -> None:
        self._text, self._width = text, dim * 4
        self.shape = (rows, dim)
        if len(text) != 4 * -(-rows * self._width // 3):
            raise ValueError(f"{name}: its matrix holds {len(text)} base64 characters; {rows} rows of {dim} float32 "
                             f"need {4 * -(-rows * self._width // 3)}")

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, row: int) -> Any:
        import numpy as np

        if not 0 <= row < self.shape[0]:
            raise IndexError(row)
        start = row * self._width
        first = start // 3 * 3  # base64 turns every 3 bytes into 4 characters
        raw = base64.b64decode(self._text[first // 3 * 4 : -(-(start + self._width) // 3) * 4], validate=True)
        return np.frombuffer(raw, dtype="<f4", count=self.shape[1], offset=start - first)


class VectorRows(Mapping[str, dict[str, Any]]):
    """A NanoVectorDB file's rows by id, in file order (row ``i``'s vector is the matrix's row
    ``i``), each made a record only when it is read: a restore reads a few of many."""

    def __init__(self, store: str, rows: list[dict[str, Any]]) -> None:
        self._store = store
        self._rows = rows
        self._index = {str(row["__id__"]): i for i, row in enumerate(rows)}
        if len(self._index) != len(rows):
            raise ValueError(f"{VECTOR_FILES[store]} holds a row id twice")

    def __getitem__(self, key: str) -> dict[str, Any]:
        return _vector_record(self._store, self._rows[self._index[key]])

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def contents(self, matrix: Any, keys: Optional[Any] = None) -> dict[Any, Any]:
        """Each row's content -> its vector in ``matrix``, for the rows ``keys`` names (or all)."""
        if keys is None:
            return {row.get("content"): matrix[i] for i, row in enumerate(self._rows)}
        found = (self._index[key] for key in keys if key in self._index)
        return {self._rows[i].get("content"): matrix[i] for i in found}


def _vector_record(store: str, row: dict[str, Any]) -> dict[str, Any]:
    """A NanoVectorDB row as its storage's ``get_by_id`` gives it (its write time as
    ``created_at``, no bookkeeping fields), in the canonical form."""
    record = {k: v for k, v in row.items() if k != "__write_seq__"}
    if "__created_at__" in row:
        record["created_at"] = row["__created_at__"]
    return mapping.canonical_vector(store, str(row["__id__"]), record)


def _value(text: Optional[str], kind: str) -> Any:
    text = text or ""
    if kind in ("long", "int"):
        return int(text)
    if kind in ("double", "float"):
        return float(text)
    if kind == "boolean":
        return text.strip().lower() in ("true", "1")
    return text


def _graphml(path: Path) -> tuple[dict[str, dict[str, Any]], list[tuple[str, str, dict[str, Any]]]]:
    """Nodes (id -> properties) and edges ``(source, target, properties)`` of LightRAG's GraphML,
    typed by its keys as NetworkX reads them; parsed by expat's callbacks, no element built."""
    import xml.parsers.expat

    nodes: dict[str, dict[str, Any]] = {}
    edges: list[tuple[str, str, dict[str, Any]]] = []
    if not path.exists():
        return nodes, edges
    keys: dict[str, tuple[str, str]] = {}
    props: Optional[dict[str, Any]] = None
    data_key: Optional[str] = None
    text: list[str] = []

    def start(name: str, attributes: dict[str, str]) -> None:
        nonlocal props, data_key
        local = name.rpartition(" ")[2]
        if local == "key":
            keys[attributes.get("id", "")] = (attributes.get("attr.name", ""), attributes.get("attr.type", "string"))
        elif local == "node":
            props = {}
            nodes[attributes.get("id", "")] = props
        elif local == "edge":
            props = {}
            edges.append((attributes.get("source", ""), attributes.get("target", ""), props))
        elif local == "data" and props is not None:
            data_key = attributes.get("key", "")
            text.clear()

    def end(name: str) -> None:
        nonlocal props, data_key
        local = name.rpartition(" ")[2]
        if local == "data" and data_key is not None and props is not None:
            field, kind = keys.get(data_key, (data_key, "string"))
            props[field] = _value("".join(text), kind)
            data_key = None
        elif local in ("node", "edge"):
            props = None

    def characters(data: str) -> None:
        if data_key is not None:
            text.append(data)

    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")
    parser.buffer_text = True
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = characters
    with open(path, "rb") as source:
        parser.ParseFile(source)
    return nodes, edges


__all__ = ["FileGraphRecords", "readable"]
