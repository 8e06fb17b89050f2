"""Disaster recovery across a deployment's graphs: :class:`DisasterRecoveryManager`.

- **Recovery points** name one snapshot per graph, taken together (every live instance's
  pipeline held and flushed before any is captured, all released together; unchanged graphs
  reuse their newest snapshot). They live in the repository (the engine's
  ``_native.DisasterRecoveryManager``), are mirrored in the catalog's ``recovery_points``
  table, replicate with their snapshots, and protect what they name from retention.
- **Validation** of a point restores each of its snapshots into a scratch folder and checks it
  as LightRAG would read it (:class:`~lightrag.recovery.health.HealthValidator`).
- **Failover** (on a standby): plan, then restore every graph of the point into its live
  location (staged and hash-checked, atomic per graph, the replaced state kept as a safety
  snapshot), reload live instances, raise the fencing epoch above every epoch seen, become the
  primary. The old primary's pushes are refused from then on (``fenced``).
- **Drills** restore a point into a scratch location, validate it, run smoke queries, and
  record the measured RTO; nothing live is touched.

Every failover and drill writes a report (JSON and Markdown) beside the catalog and records it
in the catalog (``recovery_events``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Optional, Sequence

from lightrag.backup.twins import Prepared, engine_twins, on_loop
from lightrag.backup.errors import BackupError, GraphNotFoundError, InvalidInputError, RepositoryConflictError
from lightrag.backup.graph_backup import GraphBackup, asnapshot_together
from lightrag.backup.types import BackupSnapshot, validate_graph_id
from lightrag.replication.apply import last_applied
from lightrag.backup.instance import fencing_state, instance_epoch, set_instance_epoch, set_instance_role

from .errors import AlreadyPrimaryError, FailoverRunningError
from .health import HealthValidator, check_folder, scratch_root
from .points import FAILED, HEALTHY, HealthStatus, Problem, RecoveryPoint, RecoveryStatusReport, promoted, worst
from .smoke import folder_smoke, smoke_query

if TYPE_CHECKING:
    from lightrag.backup.manager import BackupManager
    from lightrag.replication.graph_replication import ReplicationManager

logger = logging.getLogger("lightrag.recovery")


#: The targets a status is measured against: ours, and the Phase 5A design's.
GOALS = {"rto_seconds": 15.0, "rpo_seconds": 60.0, "design_rto_seconds": 300.0, "design_rpo_seconds": 3600.0,
         # The same two under their earlier names, for readers of the status written before.
         "seed_rto_seconds": 300.0, "seed_rpo_seconds": 3600.0}

_LOCK_WAIT_SECONDS = 120.0



def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: Optional[datetime] = None) -> str:
    return (moment or _now()).isoformat()


class DisasterRecoveryManager:
    """Recovery points, validation, failover and drills for the graphs of ``manager``.

    ``replication``: the instance's :class:`~lightrag.replication.ReplicationManager` (for
    standby lag, epochs of the other instances, and verifying replicated copies; one over
    ``manager`` by default).
    ``graphs_dir``: where a graph that is not registered here lives once failed over (a folder
    per graph, as ``lightrag-backup serve --graphs-dir`` serves them).
    """

    def __init__(
        self,
        manager: "BackupManager",
        *,
        replication: "Optional[ReplicationManager]" = None,
        validator: Optional[HealthValidator] = None,
        graphs_dir: "Optional[str | Path]" = None,
        busy_timeout: float = 30.0,
    ) -> None:
        from lightrag.replication import ReplicationManager

        self.manager = manager
        self.replication = replication if replication is not None else ReplicationManager(manager)
        self.validator = validator or HealthValidator(manager, replication=self.replication)
        self.graphs_dir = Path(graphs_dir).expanduser().absolute() if graphs_dir is not None else None
        self.busy_timeout = float(busy_timeout)
        #: The engine's ``_native.DisasterRecoveryManager`` for this repository.
        self.engine = manager.storage.engine.recovery()
        self._listeners: list[Callable[[RecoveryPoint], None]] = []
        self._failover = threading.Lock()
        #: The report of the last failover or drill run by this object.
        self.last_report: Optional[dict[str, Any]] = None
        #: The failover lease keeper when ``LIGHTRAG_RECOVERY_LEASE_URL`` is set (see
        #: :mod:`lightrag.recovery.lease`): a failover takes the lease first.
        self.lease: Any = None
        self._promotion_listeners: list[Callable[[], None]] = []
        #: Set (to the reason) while a switchover holds writes back: LightRAG's write routes
        #: answer 503 ``switchover_in_progress``.
        self.writes_frozen: Optional[str] = None
        #: LightRAG write requests let through and not answered yet (lightrag-backup-server).
        self.writes_in_flight = 0

    def __repr__(self) -> str:
        return f"DisasterRecoveryManager({self.manager.storage!r})"

    @property
    def catalog(self) -> Any:
        return self.manager.catalog

    def add_point_listener(self, listener: Callable[[RecoveryPoint], None]) -> None:
        """Call ``listener(point)`` after every recovery point this manager takes (the
        replicator uses it to send the point to the standbys)."""
        self._listeners.append(listener)

    def add_promotion_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after a failover or switchover made this instance the primary
        (the replicators then push to the other instances at once)."""
        self._promotion_listeners.append(listener)

    def _promoted(self) -> None:
        for listener in list(self._promotion_listeners):
            try:
                listener()
            except Exception as error:  # noqa: BLE001 - a listener never undoes a promotion
                logger.warning("promotion listener failed: %s", error)

    # -- recovery points ------------------------------------------------------------------

    async def acreate_recovery_point(self, graphs: Optional[list[str]] = None, description: Optional[str] = None,
                                     created_by: Optional[str] = None) -> RecoveryPoint:
        """Take a recovery point of ``graphs`` (default: every registered graph) now."""
        if graphs is not None and (isinstance(graphs, str) or not all(isinstance(g, str) for g in graphs)):
            raise InvalidInputError("graphs must be a list of graph ids")
        for text, name in ((description, "description"), (created_by, "created_by")):
            if text is not None and (not isinstance(text, str) or len(text) > 4096):
                raise InvalidInputError(f"{name} must be a string of at most 4096 characters")
        graph_ids = sorted(set(graphs if graphs is not None else self.manager.graph_ids))
        if not graph_ids:
            raise InvalidInputError("no graph to take a recovery point of: register graphs first (or name them)")
        backups = [self.manager.get_graph(validate_graph_id(g)) for g in graph_ids]
        async with self._holding(graph_ids, "recovery point"):
            for attempt in range(3):
                snapshots, pause_ms = await asnapshot_together(
                    backups, description or "recovery point", ["recovery-point"], busy_timeout=self.busy_timeout)
                metadata = {
                    "together_pause_ms": round(pause_ms, 3),
                    "captured": {s.graph_id: ("unchanged" if s.skipped else
                                              "live" if b.rag is not None else "offline")
                                 for s, b in zip(snapshots, backups)},
                }
                try:
                    raw = await self.engine.create_point_op({s.graph_id: s.snapshot_id for s in snapshots},
                                                            description, created_by, json.dumps(metadata)).start()
                    break
                except RepositoryConflictError:
                    # A retention run forgot a snapshot while the point was written (it was
                    # withdrawn): capture again.
                    if attempt == 2:
                        raise
        point = RecoveryPoint._from_native(json.loads(raw))
        await asyncio.to_thread(self.manager.refresh_recovery_points)
        logger.info("recovery point %s of %s (live pause %.1f ms)", point.checkpoint_id, ", ".join(point.graphs),
                    pause_ms)
        for listener in list(self._listeners):
            try:
                listener(point)
            except Exception as error:  # noqa: BLE001 - a listener never undoes a point
                logger.warning("recovery point listener failed: %s", error)
        return point

    create_recovery_point = on_loop(acreate_recovery_point)

    def held_state(self) -> dict[str, Any]:
        """The newest state this instance holds of every graph in its repository: per graph its
        head (newest snapshot that is neither a safety snapshot nor diverged)."""
        heads = {}
        for graph_id in self.manager.storage.list_graphs():
            head = self.manager.snapshots_of(graph_id).head()
            if head is not None:
                heads[graph_id] = head
        return heads

    async def acreate_point_of_held_state(self, description: str) -> RecoveryPoint:
        """A recovery point of :meth:`held_state`, nothing captured anew: what a standby fails
        over to when its primary is gone."""
        heads = await asyncio.to_thread(self.held_state)
        if not heads:
            raise InvalidInputError("this instance holds no snapshot of any graph: there is nothing to fail over to")
        raw = await self.engine.create_point_op({g: s.snapshot_id for g, s in heads.items()}, description,
                                                "lightrag-backup failover", json.dumps({"held_state": True})).start()
        point = RecoveryPoint._from_native(json.loads(raw))
        await asyncio.to_thread(self.manager.refresh_recovery_points)
        logger.warning("recovery point %s of the held state of %s", point.checkpoint_id, ", ".join(point.graphs))
        return point

    @contextlib.asynccontextmanager
    async def _holding(self, graph_ids: list[str], operation: str) -> AsyncIterator[None]:
        """Hold every graph's lock for the block (taken in id order, so two such callers cannot
        deadlock), waiting up to two minutes for what runs on them."""
        deadline = time.monotonic() + _LOCK_WAIT_SECONDS
        async with contextlib.AsyncExitStack() as stack:
            for graph_id in sorted(graph_ids):
                await stack.enter_async_context(self.manager.locks.wait_hold(
                    graph_id, operation, give_up=lambda: time.monotonic() >= deadline))
            yield

    def _list_recovery_points(self) -> Prepared[list[RecoveryPoint]]:
        """Every recovery point of the repository, newest first."""
        return self.engine.list_points_op(), lambda result: [RecoveryPoint._from_native(p) for p in json.loads(result)]

    list_recovery_points, alist_recovery_points = engine_twins(_list_recovery_points)

    def _get_recovery_point(self, checkpoint_id: str) -> Prepared[RecoveryPoint]:
        """One recovery point by id, unique id prefix, or ``latest``."""
        return (self.engine.get_point_op(_point_ref(checkpoint_id)),
                lambda result: RecoveryPoint._from_native(json.loads(result)))

    get_recovery_point, aget_recovery_point = engine_twins(_get_recovery_point)

    async def adelete_recovery_point(self, checkpoint_id: str) -> bool:
        """Delete a recovery point: the snapshots it named are no longer kept for it."""
        deleted = json.loads(await self.engine.delete_point_op(_point_ref(checkpoint_id)).start())
        await asyncio.to_thread(self.manager.refresh_recovery_points)
        logger.info("recovery point %s deleted", deleted)
        return True

    delete_recovery_point = on_loop(adelete_recovery_point)

    async def avalidate_recovery_point(self, checkpoint_id: str) -> dict[str, Any]:
        """Restore each snapshot of the point into a scratch folder and check it as LightRAG
        would read it; the point's ``validated`` flag follows. Returns ``{checkpoint_id,
        validated, graphs: {graph_id: {status, problems, ...}}}``."""
        point = await self.aget_recovery_point(checkpoint_id)
        results: dict[str, HealthStatus] = {}
        for graph_id, snapshot_id in sorted(point.snapshots.items()):
            results[graph_id] = await self.validator.avalidate_snapshot(graph_id, snapshot_id)
        validated = all(r.healthy for r in results.values())
        graphs = {g: r.to_dict() for g, r in results.items()}
        await self.engine.record_validation_op(point.checkpoint_id, validated, json.dumps(graphs)).start()
        await asyncio.to_thread(self.manager.refresh_recovery_points)
        if validated:
            logger.info("recovery point %s validated: every graph healthy", point.checkpoint_id)
        else:
            logger.warning("recovery point %s failed validation: %s", point.checkpoint_id,
                           "; ".join(f"{g}: {r.summary()}" for g, r in results.items() if not r.healthy))
        return {"checkpoint_id": point.checkpoint_id, "validated": validated, "graphs": graphs}

    validate_recovery_point = on_loop(avalidate_recovery_point)

    # -- where each graph lives -----------------------------------------------------------

    def _live_location(self, graph_id: str, *, create: bool) -> GraphBackup:
        """The graph as this instance serves it: registered (a live instance or a folder), or
        a folder of ``graphs_dir`` (created when missing, with ``create``)."""
        try:
            return self.manager.get_graph(graph_id)
        except GraphNotFoundError:
            if self.graphs_dir is None:
                raise GraphNotFoundError(
                    f"graph {graph_id!r} has no live location on this instance: register it (BackupManager."
                    "register_graph) or serve a folder of graphs (lightrag-backup serve --graphs-dir)") from None
        folder = self.graphs_dir / graph_id
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        self.manager.register_graph(graph_id, folder)
        return self.manager.get_graph(graph_id)

    # -- failover -------------------------------------------------------------------------

    async def aplan_failover(self, recovery_point_id: str) -> dict[str, Any]:
        """What :meth:`initiate_failover` would do, without doing it."""
        point = await self.aget_recovery_point(recovery_point_id)
        return await asyncio.to_thread(self._plan, point)

    plan_failover = on_loop(aplan_failover)

    def _plan(self, point: RecoveryPoint) -> dict[str, Any]:
        status = self.instance_now()
        graphs = []
        for graph_id, snapshot_id in sorted(point.snapshots.items()):
            entry: dict[str, Any] = {"graph_id": graph_id, "snapshot_id": snapshot_id,
                                     "snapshot_time": point.snapshot_details.get(graph_id, {}).get("time")}
            try:
                backup = self._live_location(graph_id, create=False)
                entry["target"] = str(backup.graph_dir)
                entry["live_instance"] = backup.rag is not None
                present = sorted(p.name for p in backup.graph_dir.glob("*") if p.is_file()) \
                    if backup.graph_dir.is_dir() else []
                entry["replaces"] = (f"{len(present)} files now in {backup.graph_dir} (kept as a safety snapshot)"
                                     if present else "nothing (the folder is empty or missing)")
                plan = backup.plan_restore(snapshot_id)
                entry["files"] = len(plan["files"])
                entry["bytes"] = plan["total_bytes"]
            except BackupError as error:
                entry["error"] = f"{type(error).__name__}: {error}"
            graphs.append(entry)
        new_epoch = self._next_epoch() if not any("error" in g for g in graphs) else None
        return {
            "checkpoint_id": point.checkpoint_id,
            "point_time": point.timestamp.isoformat(),
            "role": status["role"],
            "epoch": status["epoch"],
            "new_epoch": new_epoch,
            "graphs": graphs,
            "ready": status["acting_as"] != "primary" and not any("error" in g for g in graphs),
        }

    # -- switchover -----------------------------------------------------------------------

    async def aswitchover(self, candidate: str) -> dict[str, Any]:
        """Hand the primary role to ``candidate`` (an instance replication target) with nothing
        lost: see :mod:`lightrag.recovery.switchover`. Returns the report."""
        from .switchover import aswitchover

        if not self._failover.acquire(blocking=False):
            raise FailoverRunningError("a failover or switchover is already running on this instance")
        try:
            return await aswitchover(self, candidate)
        finally:
            self._failover.release()

    switchover = on_loop(aswitchover)

    async def apromote(self, checkpoint_id: str, from_epoch: int) -> dict[str, Any]:
        """The candidate's half of a switchover (``POST /recovery/promote``)."""
        from .switchover import apromote

        return await apromote(self, checkpoint_id, from_epoch)

    def instance_now(self) -> dict[str, Any]:
        """The role this instance acts as now, with its epoch and lease (see :mod:`.roles`)."""
        from .roles import instance_status

        return instance_status(self.catalog, self.lease)

    def _next_epoch(self) -> int:
        """One above every epoch this instance has seen: its own, the one that fenced it, and
        those its replication targets report."""
        seen = [instance_epoch(self.catalog)]
        fenced = fencing_state(self.catalog)
        if fenced is not None:
            seen.append(int(fenced.get("epoch") or 0))
        if self.replication is not None:
            for target in self.replication.targets():
                if target.kind != "instance" or not target.enabled:
                    continue
                try:
                    seen.append(int(self.replication.peer(target).info().get("epoch") or 0))
                except (BackupError, ValueError, TypeError):
                    continue  # unreachable (likely the lost site): its epoch cannot be above ours
        return max(seen) + 1

    async def ainitiate_failover(self, recovery_point_id: str) -> bool:
        """Make this instance the primary, serving the state of the recovery point: see the
        module documentation. Returns whether every graph was restored and validated; the
        report is :attr:`last_report` (and in the catalog)."""
        report = await self.afailover(recovery_point_id)
        return bool(report["ok"])

    initiate_failover = on_loop(ainitiate_failover)

    async def afailover(self, recovery_point_id: str, *, epoch: Optional[int] = None) -> dict[str, Any]:
        """:meth:`ainitiate_failover`, returning its report. ``epoch``: the epoch to take (the
        lease keeper passes the one it took the lease with); by default one above every epoch
        seen, and with a failover lease the lease is taken first (refused while another
        instance holds it)."""
        if not self._failover.acquire(blocking=False):
            raise FailoverRunningError("a failover is already running on this instance")
        try:
            via_lease = epoch is None and self.lease is not None
            if via_lease:
                if (await asyncio.to_thread(self.instance_now))["acting_as"] == "primary":
                    raise AlreadyPrimaryError("this instance is the primary: fail over on a standby")
                await self.aget_recovery_point(recovery_point_id)  # an unknown point takes no lease
                epoch = await self.lease.atake_for_failover()
            try:
                report = await self._failover_run(recovery_point_id, epoch)
            except BaseException:
                if via_lease:
                    await self.lease.afailover_done(False)
                raise
            if via_lease:
                await self.lease.afailover_done(promoted(report))
            return report
        finally:
            self._failover.release()

    async def _failover_run(self, recovery_point_id: str, given_epoch: Optional[int] = None) -> dict[str, Any]:
        started, clock = _now(), time.perf_counter()
        point = await self.aget_recovery_point(recovery_point_id)
        plan = await asyncio.to_thread(self._plan, point)
        if plan["role"] == "primary" and self.instance_now()["acting_as"] == "primary":
            raise AlreadyPrimaryError(
                f"this instance is the primary (epoch {plan['epoch']}): fail over on a standby, or restore "
                "the recovery point's snapshots here (lightrag-backup restore)")
        broken = [g for g in plan["graphs"] if "error" in g]
        if broken:
            raise InvalidInputError("the failover cannot start: " + "; ".join(f"{g['graph_id']}: {g['error']}"
                                                                             for g in broken))
        report: dict[str, Any] = {"kind": "failover", "event_id": str(uuid.uuid4()), "checkpoint_id": point.checkpoint_id,
                                  "started_at": _iso(started), "plan": plan, "actions": [],
                                  "rpo_seconds": round((started - point.timestamp).total_seconds(), 3)}
        logger.warning("failover to recovery point %s (%s) started", point.checkpoint_id, ", ".join(point.graphs))

        def act(action: str, graph_id: Optional[str], began: float, **detail: Any) -> None:
            entry = {"action": action, "graph_id": graph_id, "at": _iso(),
                     "took_ms": round((time.perf_counter() - began) * 1000, 1), **detail}
            report["actions"].append(entry)
            logger.info("failover: %s%s (%.0f ms)", action, f" {graph_id}" if graph_id else "", entry["took_ms"])

        ok = True
        hashes: dict[str, str] = {}  # graph id -> the data hash of its files once restored
        async with self._holding(list(point.graphs), "failover"):
            # The standby stops applying what it receives into these graphs meanwhile: the lock
            # it takes per graph is held here.
            for graph_id, snapshot_id in sorted(point.snapshots.items()):
                began = time.perf_counter()
                backup = await asyncio.to_thread(self._live_location, graph_id, create=True)
                expected = point.snapshot_details.get(graph_id, {}).get("data_hash")
                description = f"state after failover to recovery point {point.checkpoint_id}"
                try:
                    if await asyncio.to_thread(self._applied, graph_id) == snapshot_id:
                        # Warm: this standby applied the point's snapshot already. Its files
                        # are read once (the adopting snapshot below) instead of rewritten; a
                        # folder changed since is restored after all.
                        adopted = await backup.acreate_snapshot(description, ["failover"], adopt=True)
                        if await _holds(backup, snapshot_id, expected, adopted.data_hash):
                            hashes[graph_id] = adopted.data_hash
                            act("adopt", graph_id, began, snapshot_id=adopted.snapshot_id, warm=True)
                            continue
                        began = time.perf_counter()
                    await backup.arestore_snapshot(snapshot_id)
                    safety = (backup.last_restore or {}).get("safety_snapshot")
                    act("restore", graph_id, began, snapshot_id=snapshot_id, target=str(backup.graph_dir),
                        live_instance=backup.rag is not None,
                        safety_snapshot=safety["snapshot_id"] if safety else None)
                    # This instance owns the graph from now on: its first snapshot here (same
                    # data, so only a manifest) makes its folder the graph's source, so its own
                    # scheduled and continuous backups go on from it.
                    began = time.perf_counter()
                    adopted = await backup.acreate_snapshot(description, ["failover"], adopt=True)
                    hashes[graph_id] = adopted.data_hash
                    act("adopt", graph_id, began, snapshot_id=adopted.snapshot_id)
                except BackupError as error:
                    ok = False
                    act("restore", graph_id, began, snapshot_id=snapshot_id, error=f"{type(error).__name__}: {error}")
            if ok:
                began = time.perf_counter()
                before = instance_epoch(self.catalog)
                if given_epoch is not None:
                    epoch = max(int(given_epoch), before + 1)
                else:
                    epoch = max(await asyncio.to_thread(self._next_epoch), before + 1)
                await asyncio.to_thread(set_instance_epoch, self.catalog, epoch)
                await asyncio.to_thread(set_instance_role, self.catalog, "primary")
                act("promote", None, began, epoch_before=before, epoch=epoch)
                report["epoch"] = {"before": before, "after": epoch}
        restored_at = time.perf_counter()
        validation = await self._validate_live(point, hashes) if ok else {"ok": False, "graphs": {}}
        report["validation"] = validation
        ok = ok and bool(validation["ok"])
        report.update(ok=ok, finished_at=_iso(), rto_seconds=round(time.perf_counter() - clock, 3),
                      restore_seconds=round(restored_at - clock, 3))
        if ok:
            logger.warning("failover to %s done: this instance is the primary (epoch %s), RTO %.2f s",
                           point.checkpoint_id, report["epoch"]["after"], report["rto_seconds"])
            self._promoted()
        else:
            logger.error("failover to %s did not complete: see the report", point.checkpoint_id)
        await asyncio.to_thread(self.keep_report, report)
        return report

    def _applied(self, graph_id: str) -> Optional[str]:
        """The snapshot this standby last applied into the graph without error, if any."""
        last = last_applied(self.catalog, graph_id) or {}
        return None if last.get("error") else last.get("snapshot_id")

    async def avalidate_recovery(self) -> bool:
        """After a failover: every graph of its point is healthy, its files hash to the point's
        snapshot, and a smoke query answers on each (through the running instance when there
        is one). :attr:`last_report` holds the details."""
        events = await asyncio.to_thread(self.catalog.recovery_events, "failover", 1)
        if not events:
            raise InvalidInputError("no failover has run on this instance: nothing to validate")
        point = await self.aget_recovery_point(events[0]["checkpoint_id"])
        validation = await self._validate_live(point)
        self.last_report = {"kind": "validation", "checkpoint_id": point.checkpoint_id, **validation}
        return bool(validation["ok"])

    validate_recovery = on_loop(avalidate_recovery)

    async def _validate_live(self, point: RecoveryPoint, hashes: Optional[dict[str, str]] = None) -> dict[str, Any]:
        """Each graph of the point as it is served now: healthy, hashing to the point's
        snapshot (``hashes``: what the failover's adopting snapshots found, else a snapshot
        now, which stores nothing new for unchanged data), and answering a smoke query."""
        graphs: dict[str, Any] = {}
        for graph_id in sorted(point.graphs):
            backup = await asyncio.to_thread(self._live_location, graph_id, create=False)
            async with backup.consistent_view() as folder:
                health = await asyncio.to_thread(check_folder, graph_id, folder,
                                                 "live" if backup.rag is not None else "folder")
            expected = point.snapshot_details.get(graph_id, {}).get("data_hash")
            current = (hashes or {}).get(graph_id)
            if current is None:
                current = (await backup.acreate_snapshot("validation after recovery", ["recovery-validation"],
                                                         skip_if_unchanged=True)).data_hash
            if expected and not await _holds(backup, point.snapshots[graph_id], expected, current):
                health.add(Problem(FAILED, str(backup.graph_dir), "file", None,
                                   f"the data of {graph_id} does not hash to recovery point {point.checkpoint_id}'s "
                                   f"snapshot {point.snapshots[graph_id]} (they changed since, or the restore "
                                   "did not finish)"))
            smoke = await smoke_query(graph_id, rag=backup.rag) if backup.rag is not None else folder_smoke(health)
            if not smoke["ok"]:
                health.add(Problem(FAILED, str(backup.graph_dir), "file", None,
                                   f"the smoke query did not answer: {smoke['detail']}"))
            await asyncio.to_thread(self.validator.record, health)
            graphs[graph_id] = {**health.to_dict(), "data_hash": current, "expected_data_hash": expected,
                                "smoke_query": smoke}
        return {"ok": all(g["status"] == HEALTHY for g in graphs.values()), "graphs": graphs}

    # -- drills ---------------------------------------------------------------------------

    async def arun_drill(self, recovery_point_id: str = "latest") -> dict[str, Any]:
        """Restore a recovery point into a scratch location, validate it, run smoke queries,
        record the measured RTO, clean up. Nothing live is touched. Returns the report."""
        point = await self.aget_recovery_point(recovery_point_id)
        started, clock = _now(), time.perf_counter()
        scratch = Path(tempfile.mkdtemp(prefix="lightrag-drill-", dir=scratch_root()))
        report: dict[str, Any] = {"kind": "drill", "event_id": str(uuid.uuid4()), "checkpoint_id": point.checkpoint_id,
                                  "started_at": _iso(started), "scratch": str(scratch), "actions": [], "graphs": {}}
        try:
            for graph_id, snapshot_id in sorted(point.snapshots.items()):
                backup = self.manager.graph_view(graph_id)
                folder = scratch / graph_id
                began = time.perf_counter()
                try:
                    await backup.arestore_snapshot(snapshot_id, target_dir=folder, safety_snapshot=False)
                except BackupError as error:
                    report["graphs"][graph_id] = {"status": FAILED, "problems": [
                        {"severity": FAILED, "file": "repository", "object_kind": "snapshot", "object": snapshot_id,
                         "message": f"cannot be restored: {error}"}]}
                    continue
                restore_ms = (time.perf_counter() - began) * 1000
                snapshot = await backup.aget_snapshot(snapshot_id)
                health = await asyncio.to_thread(check_folder, graph_id, folder, f"snapshot {snapshot_id}",
                                                 snapshot.metadata)
                smoke = folder_smoke(health)
                if not smoke["ok"]:
                    health.add(Problem(FAILED, str(folder), "file", None,
                                       f"the smoke query did not answer: {smoke['detail']}"))
                report["actions"].append({"action": "restore", "graph_id": graph_id, "snapshot_id": snapshot_id,
                                          "took_ms": round(restore_ms, 1), "bytes": snapshot.size_bytes})
                report["graphs"][graph_id] = {**health.to_dict(), "smoke_query": smoke,
                                              "restore_ms": round(restore_ms, 1)}
        finally:
            await asyncio.to_thread(shutil.rmtree, scratch, True)
        statuses = [g["status"] for g in report["graphs"].values()]
        report.update(ok=worst(statuses) == HEALTHY, finished_at=_iso(),
                      rto_seconds=round(time.perf_counter() - clock, 3),
                      rpo_seconds=round((started - point.timestamp).total_seconds(), 3),
                      bytes=sum(a.get("bytes", 0) for a in report["actions"]))
        logger.info("drill of recovery point %s: %s, RTO %.2f s", point.checkpoint_id,
                    "healthy" if report["ok"] else worst(statuses), report["rto_seconds"])
        await asyncio.to_thread(self.keep_report, report)
        return report

    run_drill = on_loop(arun_drill)

    def keep_report(self, report: dict[str, Any]) -> None:
        """Record a failover or drill in the catalog and write its JSON and Markdown beside
        the catalog (``recovery-reports/``)."""
        self.last_report = report
        folder = Path(self.catalog.path).parent / "recovery-reports"
        name = f"{report['started_at'][:19].replace(':', '')}-{report['kind']}-{report['event_id'][:8]}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{name}.json").write_text(json.dumps(report, indent=2, default=str))
            (folder / f"{name}.md").write_text(render_markdown(report))
            report["files"] = [str(folder / f"{name}.json"), str(folder / f"{name}.md")]
        except OSError as error:
            logger.warning("cannot write the %s report into %s: %s", report["kind"], folder, error)
        self.catalog.record_recovery_event({**report, "report": report})

    # -- status ---------------------------------------------------------------------------

    async def aget_recovery_status(self) -> dict[str, Any]:
        """Role, epoch, and per graph: newest snapshot, newest validated recovery point, the
        newest snapshot each standby confirmed, RPO now (now minus the newest state a standby
        holds, or the newest snapshot without standbys: an upper bound of what would be lost),
        the last drill's RTO and the last health check; overall status against the goals."""
        return await asyncio.to_thread(self._status)

    get_recovery_status = on_loop(aget_recovery_status)

    def _status(self) -> dict[str, Any]:
        now = _now()
        # In a server, what the repository and the catalog hold is kept while nothing changed
        # (see lightrag.backup.view); the ages and RPOs are computed from it now: a scrape of
        # /metrics reads nothing from the store and, whatever the history, little else.
        points, drills, failovers, switchovers, facts = self.manager.viewed(
            ("recovery facts",), self._status_facts, shared=True)
        validated = [p for p in points if p.validated]
        graphs: dict[str, Any] = {}
        statuses: list[str] = []
        for graph_id, fact in facts.items():
            standbys = {name: {"newest_confirmed_snapshot": standby["snapshot"],
                               "lag_seconds": (0.0 if standby["holds_newest"] or standby["newest"] is None
                                               else round((now - standby["newest"]).total_seconds(), 3)),
                               "last_error": standby["last_error"]}
                        for name, standby in fact["standbys"].items()}
            confirmed_times = [t["time"] for t in fact["standbys"].values() if t["time"] is not None]
            if standbys:
                rpo = (now - max(confirmed_times)).total_seconds() if confirmed_times else None
            else:
                rpo = (now - fact["newest_time"]).total_seconds() if fact["newest_time"] else None
            health = fact["health"]
            if health is not None:
                statuses.append(health["status"])
            graphs[graph_id] = {
                "registered": fact["registered"],
                "newest_snapshot": fact["newest_snapshot"],
                "newest_validated_recovery_point": fact["point"],
                "standbys": standbys,
                "rpo_seconds": round(rpo, 3) if rpo is not None else None,
                "last_health_check": ({"status": health["status"], "checked_at": health["checked_at"],
                                       "problems": len(health["problems"])} if health else None),
            }
        instance = self.instance_now()
        last_drill = drills[0] if drills else None
        rpos = [g["rpo_seconds"] for g in graphs.values() if g["rpo_seconds"] is not None]
        overall = worst(statuses) if statuses else "unknown"
        return RecoveryStatusReport({
            "role": instance["role"], "epoch": instance["epoch"], "acting_as": instance["acting_as"],
            "fenced": instance["fenced"],
            "status": overall,
            "recovery_points": len(points),
            "newest_recovery_point": points[0].to_dict() if points else None,
            "newest_validated_recovery_point": validated[0].checkpoint_id if validated else None,
            "last_drill": ({"checkpoint_id": last_drill["checkpoint_id"], "at": last_drill["started_at"],
                            "ok": last_drill["ok"], "rto_seconds": last_drill["rto_seconds"]} if last_drill else None),
            "last_failover": ({"checkpoint_id": failovers[0]["checkpoint_id"], "at": failovers[0]["started_at"],
                               "ok": failovers[0]["ok"], "rto_seconds": failovers[0]["rto_seconds"],
                               "rpo_seconds": failovers[0]["rpo_seconds"]} if failovers else None),
            "lease": self.lease.status() if self.lease is not None else {"configured": False},
            "instances": self.lease.instances() if self.lease is not None else [],
            "primary": instance["primary"],
            "last_switchover": ({"at": switchovers[0]["started_at"], "ok": switchovers[0]["ok"],
                                 "took_seconds": switchovers[0]["rto_seconds"],
                                 "candidate": (switchovers[0]["report"] or {}).get("candidate")}
                                if switchovers else None),
            "rto_seconds": last_drill["rto_seconds"] if last_drill else None,
            "rpo_seconds": max(rpos) if rpos else None,
            "goals": dict(GOALS),
            "graphs": graphs,
        })

    def _status_facts(self) -> "tuple[Any, ...]":
        """What the recovery status is computed from that changes only with the repository or
        the catalog: recovery points, the last drill, failover and switchover, and per graph
        its newest snapshot, newest validated point, health check and what each standby
        confirmed (with the snapshot's time, for the RPO)."""
        points = tuple(self.list_recovery_points())
        validated = [p for p in points if p.validated]
        registered = set(self.manager.graph_ids)
        facts: dict[str, Any] = {}
        for graph_id in sorted(registered | set(self.manager.storage.list_graphs())):
            listed = self.manager.snapshot_objects(graph_id)
            newest, by_id = _restorable(listed)
            standbys: dict[str, Any] = {}
            if self.replication is not None:
                for name, target in self.replication.get_replication_status(graph_id)["targets"].items():
                    last = target.get("last_replicated_snapshot")
                    held = by_id.get(last) if last else None
                    # The lag runs from the newest snapshot of all, as the replication status says.
                    standbys[name] = {"snapshot": last, "time": held.timestamp if held is not None else None,
                                      "newest": listed[-1].timestamp if listed else None,
                                      "holds_newest": target.get("holds_newest"), "last_error": target.get("last_error")}
            point = next((p for p in validated if graph_id in p.graphs), None)
            facts[graph_id] = {
                "registered": graph_id in registered,
                "newest_time": newest.timestamp if newest else None,
                "newest_snapshot": ({"snapshot_id": newest.snapshot_id, "time": newest.timestamp.isoformat()}
                                    if newest else None),
                "point": {"checkpoint_id": point.checkpoint_id, "time": point.timestamp.isoformat()} if point else None,
                "standbys": standbys,
                "health": self.catalog.last_health(graph_id),
            }
        return (points, self.catalog.recovery_events("drill", 1), self.catalog.recovery_events("failover", 1),
                self.catalog.recovery_events("switchover", 1), facts)


def _restorable(snapshots: "Sequence[BackupSnapshot]") -> "tuple[Optional[BackupSnapshot], dict[str, BackupSnapshot]]":
    """The newest of a graph's snapshots (oldest first) but safety ones, and all of them by id."""
    kept = [s for s in snapshots if "pre-restore" not in s.tags]
    return (kept[-1] if kept else None), {s.snapshot_id: s for s in kept}


def _point_ref(checkpoint_id: str) -> str:
    if not isinstance(checkpoint_id, str) or not checkpoint_id.strip():
        raise InvalidInputError("a recovery point id is a UUID, a unique prefix of one, or 'latest'")
    return checkpoint_id.strip()


def render_markdown(report: dict[str, Any]) -> str:
    """A failover or drill report as Markdown (for a ticket or a postmortem)."""
    kind = report.get("kind", "report")
    lines = [f"# {kind.capitalize()} to recovery point {report.get('checkpoint_id')}", "",
             f"- Started: {report.get('started_at')}", f"- Finished: {report.get('finished_at')}",
             f"- Result: {'OK' if report.get('ok') else 'FAILED'}",
             f"- Measured RTO: {report.get('rto_seconds')} s",
             f"- Data loss window (RPO at {kind}): {report.get('rpo_seconds')} s"]
    if report.get("epoch"):
        lines.append(f"- Fencing epoch: {report['epoch']['before']} -> {report['epoch']['after']}")
    plan = report.get("plan")
    if plan:
        lines += ["", "## Plan", "", "| graph | snapshot | into | replaces |", "|---|---|---|---|"]
        for graph in plan["graphs"]:
            lines.append(f"| {graph['graph_id']} | {graph['snapshot_id']} | {graph.get('target', '')} | "
                         f"{graph.get('replaces', graph.get('error', ''))} |")
    lines += ["", "## Actions", "", "| at | action | graph | took (ms) | detail |", "|---|---|---|---|---|"]
    for action in report.get("actions", []):
        detail = ", ".join(f"{k}={v}" for k, v in action.items() if k not in ("at", "action", "graph_id", "took_ms"))
        lines.append(f"| {action.get('at', '')} | {action['action']} | {action.get('graph_id') or ''} | "
                     f"{action['took_ms']} | {detail} |")
    graphs = (report.get("validation") or {}).get("graphs") or report.get("graphs") or {}
    if graphs:
        lines += ["", "## Validation", "", "| graph | status | problems | smoke query |", "|---|---|---|---|"]
        for graph_id, result in sorted(graphs.items()):
            problems = "; ".join(p["message"] for p in result.get("problems", [])[:3]) or "none"
            smoke = result.get("smoke_query") or {}
            lines.append(f"| {graph_id} | {result.get('status')} | {problems} | "
                         f"{'answers' if smoke.get('ok') else smoke.get('detail', '')} |")
    return "\n".join(lines) + "\n"


_MANAGERS: "dict[int, DisasterRecoveryManager]" = {}


def recovery_manager_for(manager: "BackupManager", **options: Any) -> DisasterRecoveryManager:
    """The one :class:`DisasterRecoveryManager` of a backup manager in this process (the
    routes and the scheduler share it); ``options`` given later (``graphs_dir``,
    ``replication``) update it."""
    existing = _MANAGERS.get(id(manager))
    if existing is None or existing.manager is not manager:
        existing = _MANAGERS[id(manager)] = DisasterRecoveryManager(manager, **options)
        return existing
    if options.get("graphs_dir") is not None:
        existing.graphs_dir = Path(options["graphs_dir"]).expanduser().absolute()
    if options.get("replication") is not None:
        existing.replication = existing.validator.replication = options["replication"]
    return existing


__all__ = ["GOALS", "DisasterRecoveryManager", "recovery_manager_for", "render_markdown"]


async def _holds(backup: GraphBackup, snapshot_id: str, expected_hash: Optional[str], current_hash: Optional[str]) -> bool:
    """Whether the graph holds what snapshot ``snapshot_id`` holds: the same files (data hash),
    or, for a database-backed snapshot, the same content wherever it is stored now (a records
    restore re-stamps write times, and a standby may keep the graph in another backend)."""
    if expected_hash and current_hash == expected_hash:
        return True
    return await backup.aholds_snapshot(snapshot_id)
