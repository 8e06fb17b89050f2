"""Validation that knows LightRAG: :class:`HealthValidator` (the Phase 5A design's methods).

What a verify checks (every chunk's hash) says the bytes are the ones backed up; this says
they make a LightRAG graph worth serving: every file parses, the graph, vector and KV stores
agree on entities, relations and chunks, the vector dimensions agree (the engine's
``validate.rs`` does the reading), and the graph's protection is fresh: its newest snapshot is
not older than its schedule allows, its last verify passed, and its standbys are not lagging
past ``LIGHTRAG_RECOVERY_MAX_LAG_SECONDS`` (300).

A live graph is validated on a consistent copy of its files (hard links taken while its
pipeline is held for milliseconds); a snapshot is restored into a scratch folder first, so
nothing live is touched. Every result is logged and kept in the catalog (``health_checks``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from lightrag.backup import _native
from lightrag.backup.environment import env_number
from lightrag.backup.twins import on_loop
from lightrag.backup.errors import BackupError, InvalidInputError, SnapshotNotFoundError
from lightrag.backup.types import check_snapshot_id, validate_graph_id

from .points import DEGRADED, FAILED, HealthStatus, Problem

if TYPE_CHECKING:
    from lightrag.backup.manager import BackupManager
    from lightrag.replication.graph_replication import ReplicationManager

logger = logging.getLogger("lightrag.recovery.health")


#: Where scratch restores go (validation of snapshots, drills): ``LIGHTRAG_RECOVERY_SCRATCH_DIR``,
#: else the system's temporary folder.
SCRATCH_ENV = "LIGHTRAG_RECOVERY_SCRATCH_DIR"


def max_lag_seconds() -> float:
    return env_number("LIGHTRAG_RECOVERY_MAX_LAG_SECONDS", 300.0)


def scratch_root() -> Optional[str]:
    import os

    return os.environ.get(SCRATCH_ENV) or None



def check_folder(graph_id: str, folder: Path, source: str, recorded: Optional[dict[str, Any]] = None) -> HealthStatus:
    """The engine's LightRAG checks of the graph files in ``folder`` (with ``recorded``, a
    snapshot's metadata, its counts are compared too)."""
    op = _native.DisasterRecoveryManager.check_graph_dir_op(
        str(folder), json.dumps(recorded) if recorded is not None else None)
    found = json.loads(op.run())
    return HealthStatus(
        graph_id=graph_id,
        status=found["status"],
        problems=[Problem._from_native(p) for p in found["problems"]],
        counts=dict(found["counts"]),
        source=source,
        omitted_problems=int(found["omitted_problems"]),
        smoke=found.get("smoke"),
    )


class HealthValidator:
    """Validates the graphs of ``manager`` (live instances and folders), their snapshots, and
    their replicated copies (with ``replication``)."""

    def __init__(self, manager: "BackupManager", *, replication: "Optional[ReplicationManager]" = None,
                 max_lag: Optional[float] = None) -> None:
        self.manager = manager
        self.replication = replication
        self.max_lag = float(max_lag) if max_lag is not None else max_lag_seconds()
        #: The full result of the last :meth:`validate_backup` / :meth:`validate_replication`.
        self.last_report: Optional[dict[str, Any]] = None

    # -- live graphs ----------------------------------------------------------------------

    async def avalidate_graph(self, graph_id: str) -> HealthStatus:
        """The graph as it is now: its files (a consistent copy for a live instance) and its
        freshness (backups, verify, standbys)."""
        validate_graph_id(graph_id)
        backup = self.manager.get_graph(graph_id)
        source = "live" if backup.rag is not None else "folder"
        try:
            async with backup.consistent_view() as folder:
                status = await asyncio.to_thread(check_folder, graph_id, folder, source)
        except BackupError as error:
            status = HealthStatus(graph_id, FAILED, source=source)
            status.add(Problem(FAILED, str(backup.graph_dir), "file", None, f"{type(error).__name__}: {error}"))
        await asyncio.to_thread(self._freshness, graph_id, status)
        await asyncio.to_thread(self.record, status)
        return status

    validate_graph = on_loop(avalidate_graph)

    async def avalidate_all_graphs(self) -> dict[str, HealthStatus]:
        """:meth:`validate_graph` of every registered graph."""
        return {graph_id: await self.avalidate_graph(graph_id) for graph_id in self.manager.graph_ids}

    validate_all_graphs = on_loop(avalidate_all_graphs)

    def _freshness(self, graph_id: str, status: HealthStatus) -> None:
        now = datetime.now(timezone.utc)
        snapshots = [s for s in self.manager.snapshots_of(graph_id).list_snapshots() if "pre-restore" not in s.tags]
        schedule = self.manager.get_schedule(graph_id)
        interval = (schedule or {}).get("interval_seconds") if (schedule or {}).get("enabled") else None
        if not snapshots:
            status.add(Problem(DEGRADED, "backups", "snapshot", None,
                               f"graph {graph_id} has no snapshot: nothing could restore it"))
        elif interval:
            age = (now - snapshots[-1].timestamp).total_seconds()
            # One missed run is allowed (a run in progress, a busy graph); two are not.
            if age > 2 * float(interval) + min(60.0, float(interval)):
                status.add(Problem(DEGRADED, "backups", "snapshot", snapshots[-1].snapshot_id,
                                   f"the newest snapshot of {graph_id} is {_age(age)} old, but its schedule runs "
                                   f"every {_age(float(interval))}: scheduled backups are not happening"))
        last_verify = self.manager.catalog.last_verify(graph_id)
        if last_verify is not None and not last_verify["ok"]:
            status.add(Problem(DEGRADED, "backups", "snapshot", last_verify.get("snapshot_id"),
                               f"the last verify of {graph_id} ({last_verify['verified_at']}) failed: "
                               f"{'; '.join(last_verify.get('errors') or [])[:300]}"))
        if self.replication is not None:
            for name, target in self.replication.get_replication_status(graph_id)["targets"].items():
                lag = float(target.get("lag_seconds") or 0)
                if lag > self.max_lag:
                    reason = f" (last error: {target['last_error']})" if target.get("last_error") else ""
                    status.add(Problem(DEGRADED, "replication", "standby", name,
                                       f"standby {name} lags {_age(lag)} behind {graph_id}'s newest snapshot, "
                                       f"past the {_age(self.max_lag)} allowed{reason}"))

    def record(self, status: HealthStatus) -> None:
        """Keep a graph's health result in the catalog (what ``/recovery/status`` shows) and log it."""
        problems = [p.to_dict() for p in status.problems]
        self.manager.catalog.record_health(status.graph_id, status.status, problems)
        if status.healthy:
            logger.info("graph %s is healthy (%s)", status.graph_id, status.source)
        else:
            logger.warning("graph %s is %s", status.graph_id, status.summary())

    # -- snapshots ------------------------------------------------------------------------

    async def avalidate_snapshot(self, graph_id: str, snapshot_id: str) -> HealthStatus:
        """A snapshot restored into a scratch folder (every chunk hash-checked on the way) and
        checked there, counts compared with what it recorded; nothing live is touched."""
        validate_graph_id(graph_id)
        check_snapshot_id(snapshot_id)
        backup = self.manager.graph_view(graph_id)
        snapshot = await backup.aget_snapshot(snapshot_id)
        scratch = Path(tempfile.mkdtemp(prefix=f"lightrag-validate-{graph_id}-", dir=scratch_root()))
        source = f"snapshot {snapshot.snapshot_id}"
        try:
            try:
                await backup.arestore_snapshot(snapshot.snapshot_id, target_dir=scratch / "graph", safety_snapshot=False)
            except BackupError as error:
                status = HealthStatus(graph_id, FAILED, source=source)
                status.add(Problem(FAILED, "repository", "snapshot", snapshot.snapshot_id,
                                   f"snapshot {snapshot.snapshot_id} cannot be restored whole: {error}"))
                return status
            return await asyncio.to_thread(check_folder, graph_id, scratch / "graph", source, snapshot.metadata)
        finally:
            await asyncio.to_thread(shutil.rmtree, scratch, True)

    validate_snapshot = on_loop(avalidate_snapshot)

    async def avalidate_backup(self, backup_id: str) -> bool:
        """Whether a snapshot (any graph's) restores whole and is a healthy LightRAG graph;
        :attr:`last_report` holds what was found."""
        check_snapshot_id(backup_id)
        graph_id = await asyncio.to_thread(self._graph_of, backup_id)
        status = await self.avalidate_snapshot(graph_id, backup_id)
        self.last_report = status.to_dict()
        return status.healthy

    validate_backup = on_loop(avalidate_backup)

    def _graph_of(self, backup_id: str) -> str:
        rows = [r for r in self.manager.catalog.snapshots() if r["backup_id"].startswith(backup_id)]
        if len(rows) == 1:
            return str(rows[0]["graph_id"])
        for graph_id in self.manager.storage.list_graphs():
            try:
                self.manager.snapshots_of(graph_id).get_snapshot(backup_id)
                return graph_id
            except SnapshotNotFoundError:
                continue
        raise SnapshotNotFoundError(f"no snapshot {backup_id!r} in any graph of {self.manager.storage.location}")

    # -- replicated copies ----------------------------------------------------------------

    async def avalidate_replication(self, replication_log: "dict[str, Any] | str") -> bool:
        """Whether the target of a replication log (a row of ``replication_logs``, or its
        ``log_id``) holds the snapshot whole: it has it with the same ``data_hash``, and reads
        it back with every chunk hash-checked. :attr:`last_report` holds what was found."""
        if self.replication is None:
            raise InvalidInputError("this validator has no replication manager (HealthValidator(..., replication=...))")
        log = await asyncio.to_thread(self._log_row, replication_log)
        if log.get("status") != "completed":
            self.last_report = {"log": log, "ok": False,
                                "errors": [f"the replication did not complete (status {log.get('status')})"]}
            return False
        answer = await self.replication.averify_on_target(log["target_id"], log["graph_id"], log["backup_id"])
        errors = list(answer.get("errors") or [])
        expected = log.get("data_hash")
        if answer.get("present") and expected and answer.get("data_hash") != expected:
            errors.append(f"the target's copy has data hash {answer.get('data_hash')}, the log says {expected}")
        ok = bool(answer.get("ok")) and not errors
        self.last_report = {"log": log, "target": answer, "ok": ok, "errors": errors}
        if not ok:
            logger.warning("replicated copy of %s on %s is not whole: %s", log["backup_id"], answer.get("target"),
                           "; ".join(errors))
        return ok

    validate_replication = on_loop(avalidate_replication)

    def _log_row(self, replication_log: "dict[str, Any] | str") -> dict[str, Any]:
        if isinstance(replication_log, dict):
            for key in ("target_id", "graph_id", "backup_id"):
                if not replication_log.get(key):
                    raise InvalidInputError(f"the replication log has no {key}")
            return dict(replication_log)
        for row in self.manager.catalog.replication_logs(None, newest_first=True, limit=100000):
            if row["log_id"] == replication_log:
                return dict(row)
        raise InvalidInputError(f"no replication log {replication_log!r}")


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


__all__ = ["HealthValidator", "check_folder", "max_lag_seconds"]
