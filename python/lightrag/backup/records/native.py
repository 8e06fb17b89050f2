"""Listing a storage's ids the backend's own way.

LightRAG's KV and vector interfaces cannot list keys, so the capture derives ids as LightRAG
builds them; a native listing, where the backend has one, both checks that derivation and
reaches records nothing points to (query-time LLM cache entries, orphans). ``list_ids``
returns ``None`` for a backend without a native lister here: its capture is marked unchecked.
"""

from __future__ import annotations

from typing import Any, Optional

#: Storage classes with a native lister, for the README and the manifest.
LISTED = (
    "JsonKVStorage",
    "JsonDocStatusStorage",
    "NanoVectorDBStorage",
    "FaissVectorDBStorage",
    "PGKVStorage",
    "PGDocStatusStorage",
    "PGVectorStorage",
    "RedisKVStorage",
    "RedisDocStatusStorage",
    "MilvusVectorDBStorage",
)


def backend_of(storage: Any) -> str:
    """A short name of the backend behind a storage: files, postgres, redis, milvus, ..."""
    name = type(storage).__name__
    for prefix, backend in (
        ("Json", "files"),
        ("Nano", "files"),
        ("NetworkX", "files"),
        ("Faiss", "files"),
        ("PG", "postgres"),
        ("Redis", "redis"),
        ("Milvus", "milvus"),
        ("Mongo", "mongo"),
        ("Neo4J", "neo4j"),
        ("Memgraph", "memgraph"),
        ("Qdrant", "qdrant"),
        ("OpenSearch", "opensearch"),
    ):
        if name.startswith(prefix):
            return backend
    return name


async def list_ids(storage: Any) -> Optional[set[str]]:
    """Every id the storage holds in its workspace, read natively; ``None`` when unsupported."""
    name = type(storage).__name__
    if name in ("JsonKVStorage", "JsonDocStatusStorage"):
        data = getattr(storage, "_data", None)
        return set(data.keys()) if data is not None else None
    if name == "NanoVectorDBStorage":
        client_storage = await storage.client_storage
        ids = {row["__id__"] for row in client_storage.get("data", [])}
        return ids | set(getattr(storage, "_pending_upserts", {}) or {})
    if name == "FaissVectorDBStorage":
        await storage._get_index()
        return {meta["__id__"] for meta in storage._id_to_meta.values() if "__id__" in meta}
    if name in ("PGKVStorage", "PGDocStatusStorage", "PGVectorStorage"):
        return await _postgres_ids(storage)
    if name in ("RedisKVStorage", "RedisDocStatusStorage"):
        return await _redis_ids(storage)
    if name == "MilvusVectorDBStorage":
        import asyncio

        # pymilvus blocks: off the event loop, so the instance answers queries meanwhile.
        return await asyncio.to_thread(_milvus_ids, storage)
    return None


def _milvus_ids(storage: Any) -> set[str]:
    """Every id of the storage's collection (one per workspace and namespace), by Milvus's
    query iterator (a plain query caps its result). Blocking: run in a thread."""
    ensure_loaded = getattr(storage, "_ensure_collection_loaded", None)
    if callable(ensure_loaded):
        ensure_loaded()
    iterator = storage._client.query_iterator(
        collection_name=storage.final_namespace, batch_size=1000, filter='id != ""', output_fields=["id"]
    )
    ids: set[str] = set()
    try:
        while True:
            rows = iterator.next()
            if not rows:
                return ids
            ids.update(str(row["id"]) for row in rows)
    finally:
        iterator.close()


async def read_vectors(storage: Any) -> Optional[tuple[dict[str, dict[str, Any]], dict[str, Any]]]:
    """Every record and vector of a vector store read in bulk, the backend's own way, or
    ``None`` where there is no such read (the caller then asks ``get_by_ids`` and
    ``get_vectors_by_ids``). pgvector: its rows, vector included, in pages.

    NanoVectorDB: its matrix rows (float32, what its queries search) beside its data rows,
    when nothing is buffered or unsaved (the capture flushes first). LightRAG's own
    ``get_vectors_by_ids`` decodes the float16 copy each row also keeps, one row at a time,
    and its ``get_by_ids`` scans every row per call: for a graph of 20000 entities that was
    most of the pause."""
    if type(storage).__name__ == "PGVectorStorage":
        return await _pgvector_rows(storage)
    if type(storage).__name__ != "NanoVectorDBStorage":
        return None
    for pending in ("_pending_upserts", "_pending_deletes", "_unsaved_upserts", "_unsaved_deletes"):
        if getattr(storage, pending, None):
            return None
    format_record = getattr(storage, "_format_record", None)
    if format_record is None:
        return None
    client_storage = await storage.client_storage  # used before the next await (see LightRAG)
    data, matrix = client_storage["data"], client_storage["matrix"]
    if len(data) != len(matrix):
        return None
    records: dict[str, dict[str, Any]] = {}
    vectors: dict[str, Any] = {}
    for row, dp in enumerate(data):
        key = str(dp["__id__"])
        records[key] = format_record(dp)
        vectors[key] = matrix[row]
    return records, vectors


_PGVECTOR_PAGE = 2000


async def _pgvector_rows(storage: Any) -> Optional[tuple[dict[str, dict[str, Any]], dict[str, Any]]]:
    """A pgvector table's rows of the workspace, pages of 2000 in id order, each row read once
    with its vector: the shape LightRAG's ``get_by_ids`` returns (``SELECT *`` with
    ``created_at`` in epoch seconds, the vector column left out), the vector beside it. Its
    per-id reads fetch every vector twice (``get_by_ids`` selects the vector column, then
    drops it) in 500-id batches. A row without a vector is returned without one (the capture
    reports it missing). ``None`` while upserts or deletes are buffered, unless the read runs in
    a :mod:`.pg_snapshot` (checked unbuffered when it was taken; what is buffered since is
    after it)."""
    import numpy as np

    from . import pg_snapshot

    buffered = getattr(storage, "_pending_vector_docs", None) or getattr(storage, "_pending_vector_deletes", None)
    if buffered and not pg_snapshot.reads_snapshot(storage.db):
        return None
    table = postgres_table(storage)
    records: dict[str, dict[str, Any]] = {}
    vectors: dict[str, Any] = {}
    last = ""
    while True:
        rows = await storage.db.query(
            f"SELECT *, EXTRACT(EPOCH FROM create_time)::BIGINT as created_at FROM {table} "
            "WHERE workspace=$1 AND id > $2 ORDER BY id LIMIT $3",
            [storage.workspace, last, _PGVECTOR_PAGE],
            multirows=True,
        )
        for row in rows or []:
            record = dict(row)
            vector = record.pop("content_vector", None)
            key = str(record["id"])
            records[key] = record
            last = key
            if vector is None:
                continue
            if hasattr(vector, "to_numpy"):  # pgvector's codec: a Vector (or HalfVec)
                vector = vector.to_numpy()
            elif isinstance(vector, str):  # a connection without pgvector's codec
                vector = np.array([float(x) for x in vector.strip("[]").split(",")], dtype=np.float32)
            vectors[key] = np.asarray(vector, dtype=np.float32)
        if not rows or len(rows) < _PGVECTOR_PAGE:
            return records, vectors


def postgres_table(storage: Any) -> str:
    table = getattr(storage, "table_name", None)
    if table:
        return str(table)
    from lightrag.kg.postgres_impl import namespace_to_table_name

    table = namespace_to_table_name(storage.namespace)
    if not table:
        raise ValueError(f"no PostgreSQL table for namespace {storage.namespace!r}")
    return str(table)


async def _postgres_ids(storage: Any) -> set[str]:
    rows = await storage.db.query(
        f"SELECT id FROM {postgres_table(storage)} WHERE workspace = $1", [storage.workspace], multirows=True
    )
    return {row["id"] for row in rows or []}


async def _redis_ids(storage: Any) -> set[str]:
    prefix = f"{storage.final_namespace}:"
    ids: set[str] = set()
    async with storage._get_redis_connection() as redis:
        cursor = 0
        while True:
            cursor, keys = await redis.scan(cursor, match=f"{_glob_escape(prefix)}*", count=1000)
            for key in keys:
                key = key.decode() if isinstance(key, bytes) else key
                ids.add(key[len(prefix):])
            if not cursor:
                break
    return ids


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def storage_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean a backend failed (went away, timed out, refused), as opposed
    to a bug: these make a capture retryable."""
    import asyncio

    errors: list[type[BaseException]] = [OSError, asyncio.TimeoutError]
    for module, names in (
        ("asyncpg", ("PostgresError", "InterfaceError")),
        ("redis.exceptions", ("RedisError",)),
        ("pymilvus.exceptions", ("MilvusException",)),
        # LightRAG's storages retry with tenacity, which ends with RetryError.
        ("tenacity", ("RetryError",)),
    ):
        try:
            imported = __import__(module, fromlist=list(names))
        except ImportError:
            continue
        errors.extend(getattr(imported, name) for name in names if hasattr(imported, name))
    return tuple(errors)
