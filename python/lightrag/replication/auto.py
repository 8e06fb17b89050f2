"""Automatic replication: every committed snapshot is pushed to every enabled target right
after its commit, and a periodic catch-up pushes whatever an earlier failure left behind.

One asyncio task in the process that owns the graphs (``LIGHTRAG_REPLICATION_ENABLED=true``
starts it with the server). A commit never waits for replication: the manager's commit
listener only marks the graph as pending. Each target is worked on by its own coroutine, so
a slow or unreachable target does not delay the others.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Optional

from lightrag.backup.background import BackgroundTask
from lightrag.backup.environment import env_flag, env_number

if TYPE_CHECKING:
    import asyncio

    from lightrag.backup.types import BackupSnapshot

    from .graph_replication import ReplicationManager

logger = logging.getLogger("lightrag.replication.auto")


def enabled_by_environment() -> bool:
    return env_flag("LIGHTRAG_REPLICATION_ENABLED")


def catch_up_seconds() -> float:
    return env_number("LIGHTRAG_REPLICATION_CATCH_UP_SECONDS", 300.0)


class AutoReplicator(BackgroundTask):
    """Pushes each commit of ``replication``'s manager to its targets, and catches up every
    ``interval`` seconds. ``await start()`` / ``await stop()`` (a push in progress finishes)."""

    def __init__(self, replication: "ReplicationManager", *, interval: Optional[float] = None,
                 only: Optional[Callable[[str], bool]] = None,
                 gate: Optional[Callable[[], bool]] = None) -> None:
        self.replication = replication
        #: Push only the graphs this accepts (continuous mode without LIGHTRAG_REPLICATION_ENABLED).
        self.only = only
        #: Push only while this says the instance acts as the primary (called off the event
        #: loop); what is pending meanwhile waits, and goes out once it does.
        self.gate = gate
        self.interval = float(interval) if interval is not None else catch_up_seconds()
        self._pending: dict[str, set[str]] = {}
        self._wake: Optional["asyncio.Event"] = None
        self._loop: Optional["asyncio.AbstractEventLoop"] = None
        self._stopping = False
        #: Per target name, the outcome of its last push round.
        self.last_round: dict[str, dict[str, Any]] = {}

    async def start(self) -> None:
        import asyncio

        if self.running:
            return
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stopping = False
        self.replication.backup.add_commit_listener(self.notify)
        self.replication.backup.add_shred_listener(self.notify_shred)
        self._launch(self._run(), "lightrag-replication")

    async def stop(self) -> None:
        self.replication.backup.remove_commit_listener(self.notify)
        self.replication.backup.remove_shred_listener(self.notify_shred)
        self._stopping = True
        if self._wake is not None:
            self._wake.set()
        await self._join()

    def notify(self, snapshot: "BackupSnapshot") -> None:
        """The commit listener: mark the graph pending for every target (from any thread)."""
        self.notify_graphs([snapshot.graph_id])

    def _every_graph(self) -> "list[str]":
        """Every graph with snapshots, and every shredded one (its shred goes to targets that
        lack it; one delivered is not sent again)."""
        backup = self.replication.backup
        return sorted(set(backup.storage.list_graphs()) | {g["graph_id"] for g in backup.shredded_graphs()})

    def notify_shred(self, graph_id: str) -> None:
        """The shred listener: the shred goes to every target that takes the graph."""
        self.notify_graphs([graph_id])

    def notify_graphs(self, graph_ids: "list[str]") -> None:
        """Mark graphs pending for every target that takes them, as a commit would (a new
        recovery point naming them goes out with their next push). From any thread."""
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        wanted = [g for g in graph_ids if self.only is None or self.only(g)]
        if not wanted:
            return

        def mark() -> None:
            for graph_id in wanted:
                for target in self.replication.targets():
                    if target.takes(graph_id):
                        self._pending.setdefault(target.target_id, set()).add(graph_id)
            wake.set()

        loop.call_soon_threadsafe(mark)

    async def _run(self) -> None:
        import asyncio

        assert self._loop is not None and self._wake is not None
        wake = self._wake
        next_catch_up = self._loop.time() + self.interval
        while not self._stopping:
            timer = self._loop.call_later(max(next_catch_up - self._loop.time(), 0.01), wake.set)
            try:
                await wake.wait()
            finally:
                timer.cancel()
            wake.clear()
            if self._stopping:
                break
            work = self._pending
            self._pending = {}
            if self._loop.time() >= next_catch_up:
                next_catch_up = self._loop.time() + self.interval
                # One listing of the repository (an object-store request: off the event loop).
                every_graph = await asyncio.to_thread(self._every_graph)
                if self.only is not None:
                    every_graph = [g for g in every_graph if self.only(g)]
                for target in self.replication.targets():
                    work.setdefault(target.target_id, set()).update(g for g in every_graph if target.takes(g))
            if work and self.gate is not None and not await asyncio.to_thread(self.gate):
                for target_id, graphs in work.items():
                    self._pending.setdefault(target_id, set()).update(graphs)
                logger.debug("not acting as the primary: %d target(s) wait", len(work))
                continue
            if work:
                await asyncio.gather(*(self._push_to(target_id, graphs) for target_id, graphs in work.items()))

    async def _push_to(self, target_id: str, graphs: set[str]) -> None:
        import asyncio

        try:
            target = self.replication.get_target(target_id)
        except KeyError:
            return  # removed meanwhile
        for graph_id in sorted(graphs):
            outcome = (await self.replication.areplicate_graph(graph_id, targets=[target.name]))[target.name]
            self.last_round[target.name] = outcome
            if outcome["status"] != "completed":
                logger.warning("replication of %s to %s failed (the catch-up retries it): %s",
                               graph_id, target.name, outcome["error"])
            else:
                logger.info("replicated %s to %s: %s bytes", graph_id, target.name, outcome["bytes_sent"])


__all__ = ["AutoReplicator", "catch_up_seconds", "enabled_by_environment"]
