"""One PostgreSQL snapshot for every read of a capture, so that the pipeline hold is only its start.

A LightRAG instance whose storages all live in one PostgreSQL database (``PGKVStorage``,
``PGDocStatusStorage``, ``PGTableGraphStorage``, ``PGVectorStorage``) keeps no record in memory
once its buffers are flushed: the database holds the whole graph. PostgreSQL can freeze that
state for a reader: a ``REPEATABLE READ`` transaction sees the database as it was at its first
query, whatever commits after it. So :func:`open` starts such a transaction while the pipeline
is held (a round trip of milliseconds), the hold is released, and the capture reads everything
through that one transaction: inserts that run meanwhile go through the pool's other
connections and are not seen. The records are those of the moment the hold was taken, as if
the whole read had run under it.

LightRAG's storages read through ``PostgreSQLDB._run_with_retry``, which takes a connection
from ``db.pool``. While a view is open, ``db.pool`` is a :class:`_Router` in front of the pool:
a task reading inside :meth:`View.reading` (and the tasks it starts) gets the view's connection,
every other task a connection of the pool as before. Each use runs in a savepoint, so a read
LightRAG lets fail and catches (a legacy table it probes) does not abort the snapshot.

A view that lost its connection, or whose pool LightRAG reset (its retry after a transient
error closes the pool and reads from a new one, outside the snapshot), is *broken*: leaving
:meth:`View.reading` then raises :class:`SnapshotLostError`, and the capture is not committed.

Anything else (a store in files, Redis or Milvus, an AGE graph, buffered vector writes that
the flush left) keeps the reads under the pipeline hold: :func:`open` returns ``None``.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any, AsyncIterator, Optional

from . import layout

#: The storage classes whose records all live in the database (nothing kept in memory once
#: flushed) and whose reads all go through ``PostgreSQLDB._run_with_retry``.
SNAPSHOT_CLASSES = frozenset({"PGKVStorage", "PGDocStatusStorage", "PGTableGraphStorage", "PGVectorStorage"})

#: The views of the current task, by router: what :meth:`_Router.acquire` hands out.
_reading: contextvars.ContextVar[dict[int, "View"]] = contextvars.ContextVar("lightrag_backup_pg_snapshot")


class SnapshotLostError(ConnectionError):
    """The snapshot's connection or pool went away mid-read: the records read are not one state."""


def _database(rag: Any) -> Optional[Any]:
    """The one ``PostgreSQLDB`` every storage of ``rag`` reads from, or ``None``."""
    db = None
    for name in layout.ROLES:
        storage = getattr(rag, name, None)
        if storage is None or type(storage).__name__ not in SNAPSHOT_CLASSES:
            return None
        if getattr(storage, "_pending_vector_docs", None) or getattr(storage, "_pending_vector_deletes", None):
            return None
        own = getattr(storage, "db", None)
        if own is None or (db is not None and own is not db):
            return None
        db = own
    return db


async def open(rag: Any) -> Optional["View"]:
    """With ``rag``'s pipeline held and its storages flushed: a snapshot of its database that
    the capture can read after the hold is released, or ``None`` when its storages are not all
    in one PostgreSQL database (then read under the hold)."""
    db = _database(rag)
    if db is None:
        return None
    await db._ensure_pool()
    router = db.pool if isinstance(db.pool, _Router) else _Router(db, db.pool)
    connection = await router.pool.acquire()
    transaction = connection.transaction(isolation="repeatable_read", readonly=True)
    try:
        await transaction.start()
        await connection.fetchval("SELECT 1")  # the snapshot is taken at the first query
    except BaseException:
        await router.pool.release(connection)
        raise
    view = View(router, connection, transaction)
    router.views.add(view)
    db.pool = router
    return view


def reads_snapshot(db: Any) -> bool:
    """Whether this task reads ``db`` in one of its views (inside :meth:`View.reading`)."""
    view = _reading.get({}).get(id(getattr(db, "pool", None)))
    return view is not None and not view.closed


class View:
    """An open snapshot of one database; close it with :meth:`close` (or leave :meth:`reading`)."""

    def __init__(self, router: "_Router", connection: Any, transaction: Any) -> None:
        import asyncio

        self.router, self.connection, self.transaction = router, connection, transaction
        self.lock = asyncio.Lock()  # one query at a time on the connection
        self.broken: Optional[str] = None
        self.closed = False

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator["View"]:
        """Within this block, this task's (and its child tasks') PostgreSQL reads of the
        view's database run in the snapshot. The view is closed when the block ends; raises
        :class:`SnapshotLostError` if the snapshot broke meanwhile."""
        token = _reading.set({**_reading.get({}), id(self.router): self})
        try:
            try:
                yield self
            finally:
                _reading.reset(token)
            self._check()
        finally:
            await self.close()

    def _check(self) -> None:
        if self.broken is None and self.connection.is_closed():
            self.broken = "its connection closed"
        if self.broken is None and self.router.db.pool is not self.router:
            self.broken = "LightRAG replaced its connection pool"
        if self.broken is not None:
            raise SnapshotLostError(
                f"the PostgreSQL snapshot the records were read in was lost ({self.broken}); "
                "the reads after it may be of another state"
            )

    @contextlib.asynccontextmanager
    async def use(self) -> AsyncIterator[Any]:
        """The connection, for one of LightRAG's operations, in a savepoint of the snapshot."""
        async with self.lock:
            self._check()
            savepoint = self.connection.transaction()
            await savepoint.start()
            try:
                yield self.connection
            except BaseException:
                try:
                    await savepoint.rollback()
                except Exception as error:
                    self.broken = f"{type(error).__name__}: {error}"
                raise
            await savepoint.commit()

    async def close(self) -> None:
        """End the snapshot (read only: nothing to commit) and give the connection back; the
        last view of a pool takes the router away."""
        if self.closed:
            return
        self.closed = True
        router = self.router
        router.views.discard(self)
        try:
            if not self.connection.is_closed():
                await self.transaction.rollback()
        except Exception:
            pass  # a dead connection: the pool drops it on release
        finally:
            try:
                await router.pool.release(self.connection)
            except Exception:
                pass
            if not router.views and router.db.pool is router:
                router.db.pool = router.pool


class _Router:
    """``db.pool`` while views are open: the view's connection for the tasks reading in it,
    the pool for everyone else."""

    def __init__(self, db: Any, pool: Any) -> None:
        self.db, self.pool = db, pool
        self.views: set[View] = set()

    def acquire(self, *args: Any, **kwargs: Any) -> Any:
        view = _reading.get({}).get(id(self))
        if view is None or view.closed:
            return self.pool.acquire(*args, **kwargs)
        return view.use()

    async def close(self, *args: Any, **kwargs: Any) -> Any:
        # LightRAG closes the pool to reconnect after a transient error: the retried read
        # would run outside the snapshot.
        for view in self.views:
            view.broken = view.broken or "LightRAG closed its connection pool"
        return await self.pool.close(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pool, name)
