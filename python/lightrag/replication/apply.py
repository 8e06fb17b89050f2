"""A standby that applies: each newly replicated snapshot of a graph is restored into the graph
this instance serves (its folder in ``--graphs-dir``, or the live LightRAG instance of
``lightrag-backup-server``, which reloads without a restart), so the standby answers queries
from the replicated graph within seconds.

Off by default per graph. On with ``PUT /replication/graphs/{graph_id}/apply`` (kept in the
repository's settings, so a rebuilt catalog keeps it) or, for every graph without its own
setting, ``LIGHTRAG_REPLICATION_APPLY`` (``*`` or a comma-separated list of graph ids).

Applying runs after the push that committed the snapshot has been answered (a push never
waits for it), one graph at a time under the graph's lock (it waits for a backup or restore of
the graph to finish), and coalesces: a burst of commits applies the newest once. It restores
the graph's head (its newest snapshot that is neither ``diverged`` nor a safety snapshot), keeping what it
replaced as a safety snapshot (``pre-restore``) when that differs. Every outcome is kept in
the catalog (``applied:<graph>``) and shown by ``GET /replication/graphs/{graph_id}/apply``.
A shutdown during an apply is safe: a restore stages every file before it swaps any.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Optional

from lightrag.backup.types import validate_graph_id

from lightrag.backup.instance import instance_role
from .switches import GraphSwitch

if TYPE_CHECKING:
    from lightrag.backup.manager import BackupManager

log = logging.getLogger("lightrag.replication.apply")

#: The repository settings kind of the per-graph apply switch.
APPLY_SETTINGS = "replication-apply"
#: ``*`` or graph ids (comma-separated): graphs applied unless their own setting says no.
APPLY_ENV = "LIGHTRAG_REPLICATION_APPLY"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class StandbyApplier:
    """Restores replicated snapshots into the graphs this standby serves (see the module)."""

    def __init__(self, manager: "BackupManager", resolve_graph: Optional[Callable[[str], None]] = None) -> None:
        self.manager = manager
        self.resolve_graph = resolve_graph
        self._pending: set[str] = set()
        self._tasks: dict[str, "asyncio.Task[None]"] = {}
        self.switch = GraphSwitch(manager.storage, APPLY_SETTINGS, APPLY_ENV)

    # -- the switch -------------------------------------------------------------------------

    def enabled(self, graph_id: str) -> bool:
        """Whether ``graph_id``'s replicated snapshots are applied here."""
        return self.switch.enabled(graph_id)

    def set_enabled(self, graph_id: str, enabled: bool, *, require_served: bool = True) -> dict[str, Any]:
        """Turn applying on or off for ``graph_id``; on needs the graph to be served here
        (:class:`GraphNotFoundError` otherwise, naming what to do) unless ``require_served``
        is false (the CLI, which serves nothing itself, sets it for a server)."""
        validate_graph_id(graph_id)
        if enabled and require_served:
            self._served(graph_id)
        self.switch.set(graph_id, enabled)
        return self.status(graph_id)

    def status(self, graph_id: str) -> dict[str, Any]:
        """Whether applying is on, and the last outcome (snapshot, when, how long, error)."""
        return {"graph_id": graph_id, "enabled": self.enabled(graph_id),
                "running": graph_id in self._tasks and not self._tasks[graph_id].done(),
                "last": self._last(graph_id)}

    def _last(self, graph_id: str) -> Optional[dict[str, Any]]:
        return last_applied(self.manager.catalog, graph_id)

    def _served(self, graph_id: str) -> Any:
        from lightrag.backup.errors import GraphNotFoundError

        if self.resolve_graph is not None:
            self.resolve_graph(graph_id)
        try:
            return self.manager.get_graph(graph_id)
        except GraphNotFoundError:
            raise GraphNotFoundError(
                f"graph {graph_id!r} is not served by this instance: a standby applies into a graph it serves "
                "(create its folder in --graphs-dir, or run lightrag-backup-server with it)") from None

    # -- applying -------------------------------------------------------------------------

    def committed(self, graph_id: str) -> None:
        """A snapshot of ``graph_id`` was committed here by a push: apply it soon, if wanted.
        Call from the event loop; returns at once (the switch is read by the task)."""
        self._pending.add(graph_id)
        task = self._tasks.get(graph_id)
        if task is None or task.done():
            self._tasks[graph_id] = asyncio.get_running_loop().create_task(self._run(graph_id))

    async def _run(self, graph_id: str) -> None:
        while graph_id in self._pending:
            self._pending.discard(graph_id)
            try:
                if await asyncio.to_thread(self.enabled, graph_id):
                    await self.apply(graph_id)
            except Exception as error:  # kept in the status and the log; the next commit retries
                log.warning("graph %s: applying the replicated snapshot failed: %s", graph_id, error)

    async def apply(self, graph_id: str) -> dict[str, Any]:
        """Restore ``graph_id``'s head into the graph served here, unless it is applied
        already. Returns the outcome kept in the status."""
        backup = await asyncio.to_thread(self._served, graph_id)
        # The head, not `latest`: this standby's own safety snapshots are newer than what it
        # applied, and applying one would put back what the primary's state replaced.
        head = await asyncio.to_thread(backup.head)
        if head is None:
            return {}  # nothing received yet
        last = await asyncio.to_thread(self._last, graph_id) or {}
        if last.get("snapshot_id") == head.snapshot_id and not last.get("error"):
            return dict(last)
        started = time.perf_counter()
        outcome: dict[str, Any] = {"snapshot_id": head.snapshot_id, "started_at": _now()}
        try:
            async with self.manager.locks.wait_hold(graph_id, "apply"):
                # A failover may have made this instance the primary while it waited: what it
                # serves now is its own, never overwritten by what it received before.
                if await asyncio.to_thread(instance_role, self.manager.catalog) != "standby":
                    outcome.update(error="not applied: this instance is the primary now", skipped=True)
                    return outcome
                await backup.arestore_snapshot(head.snapshot_id, safety_snapshot=True)
            safety = (backup.last_restore or {}).get("safety_snapshot")
            outcome.update(error=None, safety_snapshot=safety["snapshot_id"] if safety else None)
        except Exception as error:
            outcome["error"] = f"{type(error).__name__}: {error}"
            raise
        finally:
            outcome["applied_at"] = _now()
            outcome["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
            await asyncio.to_thread(self.manager.catalog.set_state, f"applied:{graph_id}", json.dumps(outcome))
        log.info("graph %s: applied snapshot %s in %.0f ms", graph_id, head.snapshot_id, outcome["duration_ms"])
        return outcome


def last_applied(catalog: Any, graph_id: str) -> Optional[dict[str, Any]]:
    """The outcome of the last apply of ``graph_id`` on this standby (``snapshot_id``,
    ``applied_at``, ``error``, ...), if any."""
    raw = catalog.state(f"applied:{graph_id}")
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


__all__ = ["APPLY_ENV", "APPLY_SETTINGS", "StandbyApplier", "last_applied"]
