"""Cross-backend field mapping: each backend's records to and from the canonical form.

The canonical form is what LightRAG's file storages keep (they are LightRAG's reference
storages). Every difference seen between backends is mapped here explicitly, and nothing is
dropped unless it is an echo of the record's own key or workspace:

- KV and doc status (PostgreSQL, Redis): ``_id``, and ``id`` equal to the key, are the
  record's own key echoed back; ``workspace`` is where it lives. Dropped.
- PostgreSQL columns a record never set come back as their defaults (``POSTGRES_DEFAULTS``:
  ``parse_engine``/``process_options``/``sidecar_location`` NULL in full docs, ``heading`` and
  ``sidecar`` ``{}`` in text chunks, ``error_msg`` NULL in doc status). A field holding exactly
  its column default is left out, as the file form leaves it out; LightRAG reads the two alike.
- LLM cache (PostgreSQL): ``return_value`` echoes ``return``; ``id``, ``mode`` and
  ``original_prompt`` are kept when they carry information.
- Vectors (pgvector): rows keep ``chunk_ids`` as an array where files keep ``source_id``
  joined with LightRAG's separator; relation rows keep their endpoints as
  ``source_id``/``target_id`` where files keep ``src_id``/``tgt_id``; rows carry their own
  ``create_time``/``update_time`` stamps; chunk rows repeat ``tokens`` and
  ``chunk_order_index`` of their text chunk. All mapped to the file form on capture, and back
  (through LightRAG's upsert, which takes the file form) on restore.
- Vectors restored into PostgreSQL need ``tokens`` and ``chunk_order_index`` on chunk rows:
  taken from the text chunk of the same id.
- Fields a backend has no column for are not stored there (``UNSTORED``): PostgreSQL's text
  chunk table keeps no ``source_id`` or ``status`` (present on chunks inserted with
  ``ainsert_custom_kg``). A restore into such a target says which fields, in how many
  records, it could not store (``not_stored`` in its outcome, and a warning in the log).
- Timestamps PostgreSQL returns as datetimes (pgvector rows' ``created_at``) become epoch
  seconds, as the file stores keep write times (any other datetime: an ISO 8601 string).
- Write times (``create_time``/``update_time`` in KV, ``created_at`` in vector stores) are
  stamped by the target store when it writes, so a restored record carries the time of the
  restore there. Kept in the records; excluded when records are compared.
"""

from __future__ import annotations

from typing import Any

#: Fields a target store stamps itself when it writes (not comparable across a restore).
KV_WRITE_TIME_FIELDS = frozenset({"create_time", "update_time"})
VECTOR_WRITE_TIME_FIELDS = frozenset({"created_at", "__created_at__"})
_ECHOES = frozenset({"_id", "workspace"})
POSTGRES_DEFAULTS: dict[str, dict[str, Any]] = {
    "full_docs": {"parse_engine": None, "process_options": None, "sidecar_location": None},
    "text_chunks": {"heading": {}, "sidecar": {}},
    "doc_status": {"error_msg": None},
}
_VECTOR_INTERNAL = frozenset({"__id__", "__vector__", "vector", "__metrics__", "distance", "id"})


#: Fields pgvector chunk rows repeat from their text chunk (restored from it: see
#: :func:`vector_upsert_record`).
POSTGRES_VECTOR_ROW_FIELDS: dict[str, tuple[str, ...]] = {"chunks_vdb": ("tokens", "chunk_order_index")}

UNSTORED: dict[str, dict[str, tuple[str, ...]]] = {
    "postgres": {"text_chunks": ("source_id", "status")},
}


def not_stored(backend_of_store: dict[str, str], kv: dict[str, dict[str, Any]]) -> dict[str, int]:
    """``{"<store>.<field>": records}`` for the fields the target's backends cannot keep."""
    found: dict[str, int] = {}
    for store, records in kv.items():
        fields = UNSTORED.get(backend_of_store.get(store, ""), {}).get(store, ())
        for field in fields:
            count = sum(1 for record in records.values() if field in record)
            if count:
                found[f"{store}.{field}"] = count
    return found


def _plain(field: str, value: Any) -> Any:
    """JSON values: PostgreSQL hands timestamps back as datetimes (pgvector rows'
    ``created_at``); a write time becomes epoch seconds as the file stores keep it, any other
    datetime an ISO 8601 string."""
    from datetime import datetime

    if isinstance(value, datetime):
        if field in KV_WRITE_TIME_FIELDS or field in VECTOR_WRITE_TIME_FIELDS:
            return int(value.timestamp())
        return value.isoformat()
    return value


def canonical_kv(store: str, key: str, record: dict[str, Any], backend: str = "files") -> dict[str, Any]:
    """A KV or doc-status record in the file form."""
    out = {k: _plain(k, v) for k, v in record.items() if k not in _ECHOES and not (k == "id" and v == key)}
    if backend == "postgres":
        for field, default in POSTGRES_DEFAULTS.get(store, {}).items():
            if field in out and out[field] == default:
                del out[field]
    if store == "llm_response_cache" and "return_value" in out and out.get("return_value") == out.get("return"):
        del out["return_value"]
    return out


def canonical_vector(store: str, key: str, record: dict[str, Any], backend: str = "files") -> dict[str, Any]:
    """A vector store's metadata record in the file form (without the vector)."""
    out = {k: _plain(k, v) for k, v in record.items() if k not in _ECHOES and k not in _VECTOR_INTERNAL}
    if backend == "postgres":
        # pgvector rows are table rows: relation endpoints in source_id/target_id, the row's
        # own write stamps, and chunk rows repeating their text chunk's tokens and order.
        if store == "relationships_vdb" and "target_id" in out:
            out["src_id"], out["tgt_id"] = out.pop("source_id", None), out.pop("target_id")
        for field in POSTGRES_VECTOR_ROW_FIELDS.get(store, ()) + ("create_time", "update_time"):
            out.pop(field, None)
    chunk_ids = out.pop("chunk_ids", None)
    if chunk_ids is not None and "source_id" not in out:
        from lightrag.constants import GRAPH_FIELD_SEP

        out["source_id"] = GRAPH_FIELD_SEP.join(chunk_ids) if isinstance(chunk_ids, list) else chunk_ids
    return out


def vector_upsert_record(store: str, record: dict[str, Any], text_chunks: dict[str, Any], key: str) -> dict[str, Any]:
    """What a vector store's ``upsert`` takes for a canonical record (every backend's fields)."""
    out = dict(record)
    if store == "chunks_vdb":
        chunk = text_chunks.get(key) or {}
        for field in ("tokens", "chunk_order_index", "full_doc_id", "file_path"):
            if field not in out and field in chunk:
                out[field] = chunk[field]
    return out


def comparable_kv(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in KV_WRITE_TIME_FIELDS}


def comparable_vector(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in VECTOR_WRITE_TIME_FIELDS}
