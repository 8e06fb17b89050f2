"""Continuous replication: a change to a graph is noticed within seconds, snapshotted (an
unchanged graph stores nothing) and pushed to its targets.

A graph replicates continuously when its switch is on: ``PUT
/replication/graphs/{graph_id}/continuous``, ``lightrag-backup replication continuous -g ID
--on`` (kept in the repository's settings) or ``LIGHTRAG_REPLICATION_CONTINUOUS`` (``*`` or
graph ids). The server that owns the graphs (``serve``, ``lightrag-backup-server``) watches
them every ``LIGHTRAG_REPLICATION_CONTINUOUS_POLL_SECONDS`` (default 1):

- The signal is the graph's files: LightRAG writes its JSON and GraphML stores when its
  pipeline finishes a batch of inserts (``index_done_callback``), for a live instance and for
  a folder another process writes alike. A change is acted on once the files stayed the same
  for a quarter of a second (a batch being written is not chased file by file; a snapshot also
  checks that nothing changed while it read, and reads again if something did); a live
  instance's snapshot reserves its pipeline as every live snapshot does.
- The snapshot is taken under the graph's lock, never beside another operation on it (a
  restore, a scheduled backup: the watcher tries again at the next poll), with
  ``skip_if_unchanged`` so a touch that changed nothing stores nothing.
- Its commit is pushed by the automatic replicator (``auto.py``): the one of
  ``LIGHTRAG_REPLICATION_ENABLED`` when it runs, else one of its own that pushes only the
  continuous graphs.
- A standby never snapshots continuously (what it serves is what it received).

``status()`` says, per graph, when its last change was noticed, which snapshot it gave, how
long the snapshot took, and the last error.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Optional

from lightrag.backup.background import BackgroundTask
from lightrag.backup.environment import env_number
from lightrag.backup.errors import BackupError, OperationRunningError

from .switches import GraphSwitch

if TYPE_CHECKING:
    from pathlib import Path

    from .auto import AutoReplicator
    from .graph_replication import ReplicationManager

log = logging.getLogger("lightrag.replication.continuous")

#: The repository settings kind of the per-graph continuous switch.
CONTINUOUS_SETTINGS = "replication-continuous"
CONTINUOUS_ENV = "LIGHTRAG_REPLICATION_CONTINUOUS"
POLL_ENV = "LIGHTRAG_REPLICATION_CONTINUOUS_POLL_SECONDS"
#: How often the switches are read again from the repository (a listing in an object store).
REFRESH_SECONDS = 15.0
CONTINUOUS = "continuous replication"
#: How long a change's files must stay put before they are snapshotted.
SETTLE_SECONDS = 0.25


def poll_seconds() -> float:
    return env_number(POLL_ENV, 1.0, low=0.05, high=3600)


def fingerprint(folder: "Path") -> tuple[tuple[str, int, int], ...]:
    """The graph files of ``folder`` (name, size, modification time): what a write changes."""
    from lightrag.backup import _native

    try:
        entries = list(os.scandir(folder))
    except OSError:
        return ()
    seen = []
    for entry in entries:
        if entry.is_file() and _native.is_graph_file(entry.name):
            try:
                stat = entry.stat()
            except OSError:
                continue  # replaced while we looked: the next poll sees the new one
            seen.append((entry.name, stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(seen))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class ContinuousReplicator(BackgroundTask):
    """Watches the continuous graphs of ``replication``'s manager and snapshots each change;
    ``await start()`` / ``await stop()``. ``auto``: the running automatic replicator, if any."""

    def __init__(self, replication: "ReplicationManager", auto: Optional["AutoReplicator"] = None, *,
                 poll: Optional[float] = None, gate: Optional[Callable[[], bool]] = None) -> None:
        self.replication = replication
        #: Passed to the replicator of its own (see AutoReplicator.gate).
        self.gate = gate
        self.manager = replication.backup
        self.switch = GraphSwitch(self.manager.storage, CONTINUOUS_SETTINGS, CONTINUOUS_ENV)
        self.poll = float(poll) if poll is not None else poll_seconds()
        self.auto = auto
        self._own_auto: Optional["AutoReplicator"] = None
        self._graphs: set[str] = set()
        self._refreshed = 0.0
        self._snapshotted: dict[str, tuple[Any, ...]] = {}
        self._status: dict[str, dict[str, Any]] = {}
        self._stopping = False

    # -- which graphs -----------------------------------------------------------------------

    def is_continuous(self, graph_id: str) -> bool:
        return graph_id in self._graphs

    def refresh(self) -> None:
        """Read the switches again at the next poll (after one was changed)."""
        self._refreshed = 0.0

    async def _reload(self) -> None:
        def continuous_graphs() -> set[str]:  # a settings listing and a catalog read: off the loop
            settings = self.switch.settings()
            return {g for g in self.manager.graph_ids if self.switch.enabled(g, settings)}

        graphs = await asyncio.to_thread(continuous_graphs)
        for gone in self._graphs - graphs:
            self._snapshotted.pop(gone, None)
        self._graphs = graphs
        self._refreshed = time.monotonic()

    # -- running ----------------------------------------------------------------------------

    @property
    def auto_replicator(self) -> Optional["AutoReplicator"]:
        """The replicator that pushes what this watcher snapshots (the shared one, or its own
        while running)."""
        return self.auto if self.auto is not None else self._own_auto

    async def start(self) -> None:
        from .auto import AutoReplicator

        if self._task is not None:
            return
        if self.auto is None:
            self._own_auto = AutoReplicator(self.replication, only=self.is_continuous, gate=self.gate)
            await self._own_auto.start()
        self._stopping = False
        self._launch(self._run(), "lightrag-continuous-replication")

    async def stop(self) -> None:
        self._stopping = True
        await self._cancel()
        if self._own_auto is not None:
            await self._own_auto.stop()  # after the last snapshot: its push runs first
            self._own_auto = None

    async def _run(self) -> None:
        from lightrag.backup.instance import instance_role

        while not self._stopping:
            try:
                if time.monotonic() - self._refreshed >= REFRESH_SECONDS:
                    await self._reload()
                if self._graphs and await asyncio.to_thread(instance_role, self.manager.catalog) != "standby":
                    for graph_id in sorted(self._graphs):
                        await self._check(graph_id)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # a bad round is logged; the next one tries again
                log.warning("continuous replication: %s", error)
            await asyncio.sleep(self.poll)

    async def _check(self, graph_id: str) -> None:
        try:
            backup = self.manager.get_graph(graph_id)
        except BackupError:
            return  # no longer registered
        current = await asyncio.to_thread(fingerprint, backup.graph_dir)
        if not current or current == self._snapshotted.get(graph_id):
            return  # unchanged, or LightRAG has not written the graph's files yet
        if graph_id in self._snapshotted:
            self._status.setdefault(graph_id, {})["change_seen_at"] = _now()
            # Still being written, maybe: act once the files stay put for a moment.
            await asyncio.sleep(min(SETTLE_SECONDS, self.poll))
            if await asyncio.to_thread(fingerprint, backup.graph_dir) != current:
                return  # the next poll looks again
        try:
            holder = self.manager.locks.try_acquire(graph_id, CONTINUOUS)
        except OperationRunningError:
            return  # another operation on the graph: the next poll tries again
        status = self._status.setdefault(graph_id, {})
        started = time.perf_counter()
        try:
            snapshot = await backup.acreate_snapshot(CONTINUOUS, ["continuous"], skip_if_unchanged=True)
            self._snapshotted[graph_id] = current
            status.update(snapshot_id=snapshot.snapshot_id, skipped=snapshot.skipped, error=None,
                          snapshot_at=_now(), snapshot_ms=round((time.perf_counter() - started) * 1000, 1))
        except BackupError as error:
            status.update(error=f"{type(error).__name__}: {error}", failed_at=_now())
            log.warning("continuous replication of %s: the snapshot failed: %s", graph_id, error)
        finally:
            self.manager.locks.release(holder)

    def status(self, graph_id: Optional[str] = None) -> dict[str, Any]:
        """Per continuous graph (or one): the last change seen, the snapshot it gave, errors."""
        graphs = [graph_id] if graph_id else sorted(self._graphs)
        return {g: {"enabled": g in self._graphs, **self._status.get(g, {})} for g in graphs}


__all__ = ["CONTINUOUS_ENV", "CONTINUOUS_SETTINGS", "ContinuousReplicator", "fingerprint", "poll_seconds"]
