"""Writing a restore's vectors into pgvector with the vector index built once, after them.

LightRAG writes pgvector rows into tables whose HNSW (or IVFFlat, VectorChord) index is
maintained on every insert: restoring 42000 vectors of 1024 dimensions that way took 333 s.
Inserting into the table without its vector index and building the index afterwards, in one
pass with enough ``maintenance_work_mem`` for the graph to fit, is what PostgreSQL's own bulk
loads do: measured on 10000 random vectors of 1024 dimensions, 198 s with the index kept
against 0.7 s of inserts and 19 s of index build; and the build of 20000 took 223 s with the
server's default 64 MB, 50 s with 512 MB.

The index is dropped only where nothing else depends on it: the table holds no other
workspace's rows (LightRAG keeps every workspace of a namespace in one table; another graph's
queries must not lose their index for the length of our restore). It is built again from its own
``pg_indexes`` definition, so it comes back exactly as it was (type, operator class, ``m``,
``ef_construction``), whether the writes succeeded or failed. Should the restoring process die
in between, the table is left without its vector index: queries still answer (an exact scan),
the restore's marker says the restore did not finish, and LightRAG creates the missing index
itself the next time it opens the storage (``PostgreSQLDB._create_vector_index``).

``LIGHTRAG_BACKUP_PG_INDEX_MEMORY`` caps the ``maintenance_work_mem`` the build asks for (only
for its own transaction, and never below the server's setting): default ``1GB``, ``0`` keeps the
server's setting.
"""

from __future__ import annotations

import logging
import os
import re
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from ..errors import InvalidInputError
from .native import postgres_table

log = logging.getLogger("lightrag.backup")

MEMORY_ENV = "LIGHTRAG_BACKUP_PG_INDEX_MEMORY"
DEFAULT_MEMORY_CAP = "1GB"
_VECTOR_INDEX = re.compile(r"\sUSING\s+(hnsw|ivfflat|vchordrq|diskann)\s", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def memory_cap() -> int:
    """Bytes of ``maintenance_work_mem`` an index build may ask for, from
    ``LIGHTRAG_BACKUP_PG_INDEX_MEMORY`` (``512MB``, ``2GB``; ``0`` keeps the server's
    setting). Read before a restore touches its target: a bad value refuses the restore."""
    text = os.environ.get(MEMORY_ENV, DEFAULT_MEMORY_CAP)
    match = re.fullmatch(r"\s*(\d+)\s*(|B|[KMGT]B?)\s*", text.upper())
    if not match:
        raise InvalidInputError(f"{MEMORY_ENV}={text!r}: expected an amount such as 512MB or 2GB, or 0")
    unit = match.group(2)
    return int(match.group(1)) * _UNITS[unit if unit.endswith("B") or not unit else unit + "B"]


def build_memory(rows: int, dim: int, cap: int) -> int:
    """What an HNSW build of ``rows`` vectors of ``dim`` float32 needs to keep its graph in
    memory (each element: the vector and about 1 KB of neighbour lists at ``m`` = 16), plus a
    margin, capped."""
    return min(cap, int(rows * (4 * dim + 1024) * 1.5) + 16 * 1024**2)


@asynccontextmanager
async def deferred_vector_index(storage: Any, rows: int, dim: int, cap: int) -> AsyncIterator[dict[str, Any]]:
    """Within this context, ``storage`` (a ``PGVectorStorage`` whose workspace was just
    dropped) has no vector index when no other workspace shares its table; on leaving, the
    index is built again, with up to ``cap`` bytes of ``maintenance_work_mem`` (see
    :func:`memory_cap`). Yields what it did, for the restore's report. Any other storage:
    nothing changes."""
    report: dict[str, Any] = {"path": "upsert"}
    if type(storage).__name__ != "PGVectorStorage" or rows == 0:
        yield report
        return
    db = storage.db
    table = postgres_table(storage).lower()
    shared = await db.query(
        f"SELECT 1 AS shared FROM {table} WHERE workspace <> $1 LIMIT 1", [storage.workspace]
    )
    indexes = [
        (row["indexname"], row["indexdef"])
        for row in await db.query(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1",
            [table],
            multirows=True,
        )
        or []
        if _VECTOR_INDEX.search(row["indexdef"])
    ]
    if shared or not indexes:
        report["path"] = "upsert, index kept" + (" (the table holds other workspaces)" if shared else "")
        yield report
        return
    for name, _ in indexes:
        await db.execute(f"DROP INDEX IF EXISTS {_quoted(name)}")
    report.update(path="bulk: index built after the rows", indexes=[name for name, _ in indexes])
    failed = True
    try:
        yield report
        failed = False
    finally:
        try:
            report["index_memory"] = await _build(db, [definition for _, definition in indexes], build_memory(rows, dim, cap) if cap else 0)
        except Exception as error:  # noqa: BLE001 - reported below, or under the write's own error
            if not failed:
                raise RuntimeError(
                    f"the rows of {table} are written but its vector index could not be built again ({error}); "
                    "queries scan the table until LightRAG creates the index when it next opens the storage, "
                    "or run the restore again"
                ) from error
            log.warning("vector index of %s not rebuilt after a failed restore: %s", table, error)


async def _build(db: Any, definitions: list[str], wanted: int) -> str:
    """Each index built again in one transaction, with ``maintenance_work_mem`` raised to
    ``wanted`` bytes for it where the server's setting is lower (0: left alone)."""
    memory = "server setting"

    async def build(connection: Any) -> None:
        nonlocal memory
        async with connection.transaction():
            if wanted:
                current = await connection.fetchval(
                    "SELECT setting::bigint * 1024 FROM pg_settings WHERE name = 'maintenance_work_mem'"
                )
                if wanted > int(current):
                    memory = f"{wanted // 1024**2}MB"
                    await connection.execute(f"SET LOCAL maintenance_work_mem = '{memory}'")
            for definition in definitions:
                await connection.execute(re.sub(r"^CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", definition))

    await db._run_with_retry(build)
    return memory


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
