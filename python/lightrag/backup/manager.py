"""BackupManager: every graph of a deployment, one repository, one catalog, one scheduler."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Hashable, Mapping, Optional, TypeVar, Union

from .catalog import Catalog, default_catalog_path
from .errors import (
    BackupError,
    GraphDirNotFoundError,
    GraphNotFoundError,
    GraphShreddedError,
    InvalidInputError,
    OperationRunningError,
)
from .graph_backup import GraphBackup
from .snapshots import GraphSnapshots
from .twins import Prepared, engine_twins
from .locks import GraphLocks
from .retention import RetentionPolicy, as_policy, parse_duration
from .schedule import BackupScheduler, CronExpression, Interval, RunResult, next_run, parse_interval
from .storage import as_storage
from .environment import env_flag, env_number
from .types import BackupSnapshot, ProgressCallback, validate_graph_id

if TYPE_CHECKING:
    from .storage import BackupStorageBackend
    from .view import RepositoryView

T = TypeVar("T")


#: The operation name a scheduled backup holds a graph's lock under.
SCHEDULED_BACKUP = "scheduled backup"


class BackupManager:
    """Backups of every graph of a deployment, in one shared repository.

    ``storage`` is a backend, or a path or URL (``s3://...``, ``az://...``); it defaults to
    ``LIGHTRAG_BACKUP_STORAGE_PATH``, else the bucket in ``LIGHTRAG_BACKUP_S3_BUCKET``.
    ``catalog_path`` is the SQLite catalog (see :func:`~lightrag.backup.catalog.default_catalog_path`).

    With ``LIGHTRAG_BACKUP_ENABLED=true`` every registered graph is scheduled every
    ``LIGHTRAG_BACKUP_INTERVAL_HOURS`` (default 24) with retention
    ``LIGHTRAG_BACKUP_RETENTION_DAYS`` (default 30), unless it already has a schedule. The
    scheduler runs once started: ``await manager.start_scheduler()`` or ``async with manager:``.
    """

    def __init__(
        self,
        storage: "BackupStorageBackend | str | os.PathLike[str] | None" = None,
        catalog_path: "str | os.PathLike[str] | None" = None,
        *,
        scheduler_poll_seconds: float = 60.0,
        password: Any = None,
    ) -> None:
        if storage is None:
            from .storage import default_location

            storage = default_location()
            if storage is None:
                raise InvalidInputError(
                    "no repository: pass storage= or set LIGHTRAG_BACKUP_STORAGE_PATH (or LIGHTRAG_BACKUP_S3_BUCKET)"
                )
        self.storage = as_storage(storage, password)
        self.catalog = Catalog(catalog_path if catalog_path is not None else default_catalog_path(self.storage.url))
        #: Called with every snapshot a graph of this manager commits (replication listens).
        self._commit_listeners: list[Callable[[BackupSnapshot], None]] = []
        self._recorder = _NotifyingRecorder(self.catalog, self._commit_listeners)
        #: Called with the id of every graph this manager shreds (replication carries it on).
        self._shred_listeners: list[Callable[[str], None]] = []
        self._graphs: dict[str, GraphBackup] = {}
        #: One operation per graph at a time, for the scheduler, REST jobs and CLI alike.
        self.locks = GraphLocks()
        #: In a server: the answers kept while nothing changed (see :meth:`viewed`).
        self.view: "Optional[RepositoryView]" = None
        self.scheduler = BackupScheduler(self.catalog, self._scheduled_run, poll_seconds=scheduler_poll_seconds)
        #: What the last :meth:`rebuild_catalog` recreated: ``{"snapshots": n, "schedules": m}``.
        self.last_rebuild: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"BackupManager({self.storage!r}, catalog={str(self.catalog.path)!r}, graphs={self.graph_ids})"

    # -- graphs ---------------------------------------------------------------------------

    def register_graph(
        self,
        graph_id: str,
        working_dir: str | os.PathLike[str] | None = None,
        workspace: str = "",
        rag: Any = None,
    ) -> bool:
        """Register a graph by its working dir (and workspace) or its live ``LightRAG``
        instance. Returns ``True`` when newly registered, ``False`` when it already was, with
        the same location. Registering an id again for another location replaces it."""
        backup = GraphBackup(graph_id, self.storage, working_dir, workspace, rag=rag, recorder=self._recorder)
        existing = self._graphs.get(graph_id)
        if existing is not None and existing.graph_dir == backup.graph_dir and existing.rag is rag:
            return False
        self._graphs[graph_id] = backup
        self.catalog.register_graph(graph_id, str(backup.working_dir), backup.workspace)
        if env_flag("LIGHTRAG_BACKUP_ENABLED") and self.catalog.schedule(graph_id) is None:
            hours = env_number("LIGHTRAG_BACKUP_INTERVAL_HOURS", 24.0)
            days = env_number("LIGHTRAG_BACKUP_RETENTION_DAYS", 30.0)
            self.schedule_backup(graph_id, hours, retention={"retention_days": days})
        return True

    def get_graph(self, graph_id: str) -> GraphBackup:
        """The :class:`GraphBackup` of a registered graph; :class:`GraphNotFoundError` if none.

        A graph registered by working dir in an earlier run (it is in the catalog) is
        registered again from there."""
        backup = self._graphs.get(graph_id)
        if backup is not None:
            return backup
        for row in self.catalog.graphs():
            if row["graph_id"] == graph_id and row["working_dir"]:
                backup = GraphBackup(graph_id, self.storage, row["working_dir"], row["workspace"] or "", recorder=self._recorder)
                self._graphs[graph_id] = backup
                return backup
        raise GraphNotFoundError(
            f"graph {graph_id!r} is not registered (registered: {self.graph_ids or 'none'})"
        )

    def add_commit_listener(self, listener: Callable[[BackupSnapshot], None]) -> None:
        """Call ``listener(snapshot)`` after each snapshot a graph of this manager commits
        (from whichever thread committed it; a listener must not block). Replication's
        automatic pushes listen here; backup itself knows nothing of them."""
        self._commit_listeners.append(listener)

    def remove_commit_listener(self, listener: Callable[[BackupSnapshot], None]) -> None:
        if listener in self._commit_listeners:
            self._commit_listeners.remove(listener)

    def add_shred_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(graph_id)`` after each graph this manager shreds."""
        self._shred_listeners.append(listener)

    def remove_shred_listener(self, listener: Callable[[str], None]) -> None:
        if listener in self._shred_listeners:
            self._shred_listeners.remove(listener)

    # -- shred ----------------------------------------------------------------------------

    def shred_graph(self, graph_id: str, *, confirm: str) -> dict[str, Any]:
        """Shred a graph (see :meth:`GraphBackup.shred <lightrag.backup.GraphBackup.shred>`),
        holding it against any other operation; its schedule goes too (it would only fail),
        the catalog and recovery points follow, and replication carries the shred to every
        target. ``confirm`` must repeat the graph id. Returns the shred's report with
        ``schedule_removed``."""
        validate_graph_id(graph_id)
        with self.locks.hold(graph_id, "shred"):
            report = self.snapshots_of(graph_id).shred(confirm=confirm)
        return self.after_shred(graph_id, report)

    async def ashred_graph(self, graph_id: str, *, confirm: str) -> dict[str, Any]:
        """Async twin of :meth:`shred_graph`."""
        import asyncio

        validate_graph_id(graph_id)
        async with self.locks.wait_hold(graph_id, "shred"):
            report = await self.snapshots_of(graph_id).ashred(confirm=confirm)
        return await asyncio.to_thread(self.after_shred, graph_id, report)

    def after_shred(self, graph_id: str, report: dict[str, Any]) -> dict[str, Any]:
        """What follows a shred of ``graph_id`` here (taken here, or received from a primary):
        its schedule goes, recovery points are re-read, listeners (replication) are told.
        Returns ``report`` with ``schedule_removed``."""
        report["schedule_removed"] = self.unschedule_backup(graph_id)
        self.refresh_recovery_points()
        for listener in list(self._shred_listeners):
            try:
                listener(graph_id)
            except Exception:  # noqa: BLE001 - a listener never fails a shred
                import logging

                logging.getLogger("lightrag.backup.manager").exception("shred listener failed")
        return report

    def shredded_graphs(self) -> list[dict[str, Any]]:
        """The graphs shredded in the repository (``graph_id``, ``shredded_at``, ``hostname``,
        ``username``)."""
        return self.viewed(("shredded",), self.storage.shredded_graphs)

    @property
    def graph_ids(self) -> list[str]:
        return sorted(set(self._graphs) | {row["graph_id"] for row in self.catalog.graphs()})

    def known_graph(self, graph_id: str) -> GraphBackup:
        """A registered graph, or a repository-only view of one that only has snapshots (for
        listing, verifying and deleting); :class:`GraphNotFoundError` when neither."""
        try:
            return self.get_graph(graph_id)
        except GraphNotFoundError:
            if graph_id not in self.storage.list_graphs():
                shredded = next((g for g in self.storage.shredded_graphs() if g["graph_id"] == graph_id), None)
                if shredded is not None:
                    raise GraphShreddedError(
                        f"graph {graph_id!r} was shredded at {shredded['shredded_at']}: its key is deleted and its "
                        "snapshots can never be read again") from None
                raise
            return self.graph_view(graph_id)

    def graph_view(self, graph_id: str) -> GraphBackup:
        """A registered graph, or one known only by its snapshots in the repository (listed,
        verified, deleted, restored into a folder), whether it has any or not."""
        try:
            return self.get_graph(graph_id)
        except GraphNotFoundError:
            return GraphBackup.of(self.snapshots_of(graph_id))

    def snapshots_of(self, graph_id: str) -> GraphSnapshots:
        """The snapshots of graph ``graph_id`` in the repository (registered or not), told to
        this manager's catalog as they change."""
        try:
            return self.get_graph(graph_id).snapshots
        except GraphNotFoundError:
            return GraphSnapshots(graph_id, self.storage, recorder=self._recorder)

    # -- snapshots ------------------------------------------------------------------------

    def get_all_snapshots(self) -> dict[str, list[BackupSnapshot]]:
        """Snapshots of every graph in the repository and every registered graph."""
        graph_ids = sorted(set(self.storage.list_graphs()) | set(self._graphs))
        return {graph_id: self.snapshots_of(graph_id).list_snapshots() for graph_id in graph_ids}

    async def aget_all_snapshots(self) -> dict[str, list[BackupSnapshot]]:
        """Async twin of :meth:`get_all_snapshots`."""
        import asyncio

        graph_ids = sorted(set(self.storage.list_graphs()) | set(self._graphs))
        lists = await asyncio.gather(*(self.snapshots_of(g).alist_snapshots() for g in graph_ids))
        return dict(zip(graph_ids, lists))

    def rebuild_catalog(self) -> int:
        """Recreate the catalog from the repository alone: its snapshot rows, and the
        schedules (with their graphs' folders) kept in the repository's settings. Returns how
        many snapshots it lists; :attr:`last_rebuild` also says how many schedules."""
        snapshots = [s for group in self.get_all_snapshots().values() for s in group]
        self.catalog.replace_graph_snapshots(None, snapshots)
        schedules = self._restore_schedules()
        points = self.refresh_recovery_points()
        self.last_rebuild = {"snapshots": len(snapshots), "schedules": schedules, "recovery_points": points}
        return len(snapshots)

    def refresh_recovery_points(self) -> int:
        """Make the catalog's ``recovery_points`` rows the repository's recovery points (the
        points live in the repository; the table mirrors them). Returns how many."""
        points = json.loads(self.storage.engine.recovery().list_points_op().run())
        self.catalog.replace_recovery_points(points)
        return len(points)

    def rebuild_catalog_of(self, graph_id: str) -> int:
        """Make the catalog's rows of one graph those of the repository (after snapshots of
        it were re-issued, for example marked diverged by a replication push). Returns how
        many it lists."""
        validate_graph_id(graph_id)
        snapshots = self.snapshots_of(graph_id).list_snapshots()
        self.catalog.replace_graph_snapshots(graph_id, snapshots)
        return len(snapshots)

    # Schedules are configuration the catalog must not be the only keeper of: each change is
    # also written to the repository (settings/schedules/<graph>), which rebuild_catalog reads.
    _SCHEDULES = "schedules"

    def _save_schedule(self, graph_id: str) -> None:
        row = self.catalog.schedule(graph_id)
        if row is None:
            self.storage.engine.put_setting_op(self._SCHEDULES, graph_id, None).run()
            return
        graph = next((g for g in self.catalog.graphs() if g["graph_id"] == graph_id), None)
        setting = {
            "graph_id": graph_id,
            "interval_seconds": row["interval_seconds"],
            "cron": row["cron"],
            "enabled": row["enabled"],
            "retention": row["retention"],
            "working_dir": graph["working_dir"] if graph else None,
            "workspace": graph["workspace"] if graph else "",
        }
        self.storage.engine.put_setting_op(self._SCHEDULES, graph_id, json.dumps(setting)).run()

    def _restore_schedules(self) -> int:
        saved = json.loads(self.storage.engine.settings_op(self._SCHEDULES).run())
        restored = 0
        for graph_id, setting in saved.items():
            if self.catalog.schedule(graph_id) is not None:
                continue
            if setting.get("working_dir") and graph_id not in {g["graph_id"] for g in self.catalog.graphs()}:
                self.catalog.register_graph(graph_id, setting["working_dir"], setting.get("workspace") or "")
            cron = setting.get("cron")
            interval = None if cron else float(setting["interval_seconds"])
            spec: Union[float, CronExpression] = CronExpression(cron) if cron else float(setting["interval_seconds"])
            first = next_run(spec, datetime.now(timezone.utc)).isoformat()
            self.catalog.upsert_schedule(graph_id, interval, cron, setting.get("retention"), first)
            restored += 1
        return restored

    # -- retention and prune --------------------------------------------------------------

    def _apply_retention(
        self,
        policy: Union[RetentionPolicy, Mapping[str, Any], None] = None,
        *,
        graph_id: Optional[str] = None,
        dry_run: bool = False,
        **rules: Any,
    ) -> Prepared[dict[str, Any]]:
        """Forget the snapshots ``policy`` (or keyword rules such as ``keep_daily=7``) does not
        keep, in one graph or all. Returns the plan: per graph, each snapshot with ``keep`` and
        the reasons, and ``removed``. With ``dry_run`` nothing is removed."""
        return self._forget_op(policy, graph_id, dry_run, rules), lambda result: self._forgotten(json.loads(result))

    apply_retention, aapply_retention = engine_twins(_apply_retention)

    def _forget_op(self, policy: Any, graph_id: Optional[str], dry_run: bool, rules: dict[str, Any]) -> Any:
        resolved = as_policy(policy, **rules)
        if graph_id is not None:
            validate_graph_id(graph_id)
        return self.storage.engine.forget_op(graph_id, resolved.engine_json(), bool(dry_run))

    def _forgotten(self, report: dict[str, Any]) -> dict[str, Any]:
        if not report["dry_run"] and report["removed"]:
            self.catalog.forget_snapshots([snapshot_id for _, snapshot_id in report["removed"]])
        report["removed"] = [{"graph_id": g, "snapshot_id": s} for g, s in report["removed"]]
        return report

    def _cleanup_old_backups(self, retention_days: float) -> Prepared[int]:
        """Delete snapshots older than ``retention_days``, across every graph, but never a
        graph's newest snapshot. Returns how many were deleted."""
        op, forgotten = self._apply_retention(keep_within=self._days(retention_days))
        return op, lambda result: len(forgotten(result)["removed"])

    cleanup_old_backups, acleanup_old_backups = engine_twins(_cleanup_old_backups)

    @staticmethod
    def _days(retention_days: Any) -> Any:
        if isinstance(retention_days, bool) or not isinstance(retention_days, (int, float)) or retention_days < 0:
            raise InvalidInputError(f"retention_days must be a number >= 0, not {retention_days!r}")
        return parse_duration(retention_days)

    def _prune(
        self,
        grace_seconds: float = 3600,
        *,
        dry_run: bool = False,
        repack_threshold: float = 0.25,
        progress: Optional[ProgressCallback] = None,
    ) -> Prepared[dict[str, Any]]:
        """Free repository data no snapshot references, in two phases: this run marks unused
        packs and deletes those marked at least ``grace_seconds`` ago (a backup running at the
        same time never loses a chunk). ``grace_seconds=0`` deletes at once: only when no
        backup runs. Returns the report (packs marked, repacked, deleted, bytes)."""
        return self._prune_op(grace_seconds, dry_run, repack_threshold, progress), json.loads

    prune, aprune = engine_twins(_prune)

    def _compact_index(self, *, progress: Optional[ProgressCallback] = None) -> Prepared[dict[str, Any]]:
        """Merge the repository's small index objects (one per snapshot) into few large ones,
        so that opening the repository reads few objects whatever its history. Backups go on
        while it runs; it waits for no one and fails with ``RepositoryConflictError`` while a prune or
        another compaction runs. A prune compacts at its end, and a snapshot compacts on its
        own once 64 small index objects have piled up. Returns the report (index objects
        before and after, merged, written, unreadable ones left in place)."""
        return self.storage.engine.compact_op(progress), json.loads

    compact_index, acompact_index = engine_twins(_compact_index)

    def _repair(self, *, dry_run: bool = False, progress: Optional[ProgressCallback] = None) -> Prepared[dict[str, Any]]:
        """Repair the repository: read every snapshot's data back, record the damage (no
        snapshot reuses it again), copy the chunks of damaged packs that are still whole, heal
        the lost ones from the registered graphs' current files, and drop the damaged packs
        from the index (a later prune deletes them). Returns the report: each snapshot that
        needed damaged data, ``healed`` or with its ``unrestorable_files``, and ``unhealed``
        naming every snapshot that cannot be restored whole."""
        return self._repair_op(dry_run, progress), json.loads

    repair, arepair = engine_twins(_repair)

    def _repair_op(self, dry_run: bool, progress: Optional[ProgressCallback]) -> Any:
        sources = []
        for graph_id in self.graph_ids:
            backup = self.get_graph(graph_id)
            if backup.graph_dir.is_dir():
                sources.append((graph_id, str(backup.graph_dir)))
        return self.storage.engine.repair_op(bool(dry_run), sources, progress)

    def _prune_op(self, grace_seconds: Any, dry_run: bool, repack_threshold: Any, progress: Any) -> Any:
        if isinstance(grace_seconds, bool) or not isinstance(grace_seconds, (int, float)) or not 0 <= grace_seconds < 10**9:
            raise InvalidInputError(f"grace_seconds must be a number >= 0, not {grace_seconds!r}")
        if isinstance(repack_threshold, bool) or not isinstance(repack_threshold, (int, float)) or not repack_threshold >= 0:
            raise InvalidInputError(f"repack_threshold must be a number >= 0, not {repack_threshold!r}")
        return self.storage.engine.prune_op(int(grace_seconds + 0.999), float(repack_threshold), bool(dry_run), progress)

    def graphs_overview(self) -> list[dict[str, Any]]:
        """Every graph (registered, or with snapshots): where it lives, its snapshot count and
        newest snapshot, its schedule and its last verify."""
        return self.viewed(("graphs",), self._graphs_overview)

    def _graphs_overview(self) -> list[dict[str, Any]]:
        registered = {row["graph_id"]: row for row in self.catalog.graphs()}
        overview = []
        for graph_id in sorted(set(self.storage.list_graphs()) | set(self._graphs) | set(registered)):
            snapshots = self.snapshots_of(graph_id).list_snapshots()
            live = self._graphs.get(graph_id)
            row = registered.get(graph_id)
            schedule = self.catalog.schedule(graph_id)
            overview.append({
                "graph_id": graph_id,
                "registered": graph_id in self._graphs or row is not None,
                "live": live is not None and live.rag is not None,
                "working_dir": str(live.working_dir) if live else (row or {}).get("working_dir"),
                "workspace": live.workspace if live else (row or {}).get("workspace", ""),
                "snapshot_count": len(snapshots),
                "newest": snapshots[-1].to_dict() if snapshots else None,
                "schedule": _schedule_view(schedule) if schedule else None,
                "last_verify": self.catalog.last_verify(graph_id),
            })
        return overview

    # -- stats ----------------------------------------------------------------------------

    def viewed(self, key: Hashable, compute: Callable[[], T], *, shared: bool = False) -> T:
        """``compute()``, or in a server the answer kept for ``key`` while nothing it was
        computed from changed (see :mod:`lightrag.backup.view`); ``shared`` answers are the
        kept object itself, only to be read."""
        return compute() if self.view is None else self.view.answer(key, compute, shared=shared)

    def snapshot_objects(self, graph_id: str) -> "tuple[BackupSnapshot, ...]":
        """A graph's snapshots, oldest first, to be read only: in a server the kept tuple
        itself (status routes read it on every request)."""
        return self.viewed(("snapshot objects", graph_id),
                           lambda: tuple(self.snapshots_of(graph_id).list_snapshots()), shared=True)

    def get_backup_stats(self) -> dict[str, Any]:
        """Per graph and overall: snapshot count, logical bytes, stored bytes, deduplication
        and compression ratios, oldest and newest snapshot, last verify result; ``overall``
        adds the repository's size and ``storage_efficiency`` (the share of logical bytes not
        stored)."""
        return self.viewed(("stats",), self._backup_stats)

    def _backup_stats(self) -> dict[str, Any]:
        from .display import StatsReport

        overall, every = self.storage.get_graphs_stats(set(self.storage.list_graphs()) | set(self._graphs))
        graphs = {}
        for graph_id, graph_stats in every.items():
            stats = StatsReport(graph_stats)
            stats["last_verify"] = self.catalog.last_verify(graph_id)
            schedule = self.catalog.schedule(graph_id)
            stats["schedule"] = _schedule_view(schedule) if schedule else None
            graphs[graph_id] = stats
        overall["storage_efficiency"] = overall.get("space_saving", 0.0)
        return StatsReport(overall=overall, graphs=graphs)

    # -- schedules ------------------------------------------------------------------------

    def schedule_backup(
        self,
        graph_id: str,
        interval: Interval,
        *,
        retention: Union[RetentionPolicy, Mapping[str, Any], None] = None,
    ) -> bool:
        """Back ``graph_id`` up every ``interval`` (a timedelta, hours, text like ``"6h"``, or
        a cron expression such as ``"0 3 * * *"``), applying ``retention`` after each
        successful run (default: ``LIGHTRAG_BACKUP_RETENTION_DAYS`` days when set). Replaces
        an existing schedule. Returns ``True``.

        Raises :class:`GraphDirNotFoundError` when a graph registered by folder has no folder:
        a schedule that can only ever fail is refused up front."""
        validate_graph_id(graph_id)
        backup = self.get_graph(graph_id)  # must be registered
        if backup.rag is None and not backup.graph_dir.is_dir():
            raise GraphDirNotFoundError(
                f"graph {graph_id!r}: folder {str(backup.graph_dir)!r} does not exist; a schedule for it could only fail"
            )
        spec = parse_interval(interval)
        if retention is None and os.environ.get("LIGHTRAG_BACKUP_RETENTION_DAYS"):
            retention = {"retention_days": env_number("LIGHTRAG_BACKUP_RETENTION_DAYS", 30.0)}
        policy = as_policy(retention) if retention is not None else None
        first = next_run(spec, datetime.now(timezone.utc))
        if isinstance(spec, CronExpression):
            self.catalog.upsert_schedule(graph_id, None, spec.text, policy.to_dict() if policy else None, first.isoformat())
        else:
            self.catalog.upsert_schedule(graph_id, spec, None, policy.to_dict() if policy else None, first.isoformat())
        self._save_schedule(graph_id)
        self.scheduler.wake()
        return True

    def update_schedule(
        self,
        graph_id: str,
        interval: Optional[Interval] = None,
        *,
        retention: Union[RetentionPolicy, Mapping[str, Any], None] = None,
    ) -> dict[str, Any]:
        """Change only what is given of a graph's schedule: a new ``interval`` keeps the
        retention policy, a new ``retention`` keeps the interval (and the next run). A graph
        without a schedule needs an ``interval``. Returns the schedule."""
        validate_graph_id(graph_id)
        current = self.catalog.schedule(graph_id)
        if current is not None and retention is None:
            retention = current["retention"]
        if interval is not None:
            self.schedule_backup(graph_id, interval, retention=retention)
        elif current is not None:
            same = current["cron"] or f"{current['interval_seconds']}s"
            self.schedule_backup(graph_id, same, retention=retention)
            self.catalog.record_next_run(graph_id, current["next_run"])
        else:
            raise InvalidInputError(f"graph {graph_id!r} has no schedule yet: give an interval or a cron expression")
        return self._schedule_or_fail(graph_id)

    def _schedule_or_fail(self, graph_id: str) -> dict[str, Any]:
        view = self.get_schedule(graph_id)
        if view is None:
            raise GraphNotFoundError(f"graph {graph_id!r} has no schedule")
        return view

    def get_schedule(self, graph_id: str) -> Optional[dict[str, Any]]:
        """The schedule of a graph: interval or cron, retention, ``next_run``, ``last_run``,
        ``last_result`` (``created``, ``skipped``, ``failed``), ``last_error``,
        ``last_snapshot_id``; ``None`` when it has none."""
        validate_graph_id(graph_id)
        row = self.catalog.schedule(graph_id)
        return _schedule_view(row) if row else None

    def list_schedules(self) -> list[dict[str, Any]]:
        return [_schedule_view(row) for row in self.catalog.schedules()]

    def unschedule_backup(self, graph_id: str) -> bool:
        """Remove a graph's schedule. Returns whether it had one."""
        validate_graph_id(graph_id)
        removed = self.catalog.remove_schedule(graph_id)
        if removed:
            self._save_schedule(graph_id)
        self.scheduler.wake()
        return removed

    async def start_scheduler(self) -> None:
        """Start running the schedules in this process's event loop."""
        await self.scheduler.start()

    async def stop_scheduler(self) -> None:
        """Stop the scheduler; a backup already running finishes first."""
        await self.scheduler.stop()

    async def __aenter__(self) -> "BackupManager":
        await self.start_scheduler()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop_scheduler()

    async def run_scheduled_backup(self, graph_id: str) -> RunResult:
        """Run a graph's scheduled backup now, as the scheduler would (and record it)."""
        return await self.scheduler.run_now(graph_id)

    async def _scheduled_run(self, graph_id: str, schedule: Optional[dict[str, Any]]) -> RunResult:
        """One scheduled backup: it waits its turn behind any other operation on the graph
        (a REST restore, a verify), then backs up what the graph holds by then. Behind another
        scheduled backup of the graph it has nothing to add, and is skipped."""
        holder = self.locks.holder(graph_id)
        if holder is not None and holder.operation == SCHEDULED_BACKUP:
            return RunResult(graph_id, "skipped", error="a scheduled backup of this graph is already running")
        try:
            async with self.locks.wait_hold(graph_id, SCHEDULED_BACKUP, give_up=lambda: self.scheduler.stopping):
                return await self._backup_and_retain(graph_id, schedule)
        except OperationRunningError as error:  # the scheduler stopped while waiting
            return RunResult(graph_id, "skipped", error=str(error))

    async def _backup_and_retain(self, graph_id: str, schedule: Optional[dict[str, Any]]) -> RunResult:
        try:
            backup = self.get_graph(graph_id)
            snapshot = await backup.acreate_snapshot("scheduled backup", ["scheduled"], skip_if_unchanged=True)
        except BackupError as error:
            return RunResult(graph_id, "failed", error=f"{type(error).__name__}: {error}")
        result = RunResult(graph_id, "skipped" if snapshot.skipped else "created", snapshot.snapshot_id)
        retention = (schedule or {}).get("retention")
        if retention:
            try:
                report = await self.aapply_retention(retention, graph_id=graph_id)
                result.forgotten = len(report["removed"])
            except BackupError as error:
                result.error = f"retention failed: {error}"
        return result


class _NotifyingRecorder:
    """The catalog as the graphs' recorder, telling the commit listeners of each commit (not of
    safety snapshots: they hold a state the operator just replaced)."""

    def __init__(self, catalog: Catalog, listeners: list[Callable[[BackupSnapshot], None]]) -> None:
        self.catalog, self.listeners = catalog, listeners

    def record_snapshot(self, snapshot: BackupSnapshot) -> None:
        self.catalog.record_snapshot(snapshot)
        if snapshot.status.value == "completed" and "pre-restore" not in snapshot.tags:
            for listener in list(self.listeners):
                try:
                    listener(snapshot)
                except Exception:  # noqa: BLE001 - a listener never fails a commit
                    import logging

                    logging.getLogger("lightrag.backup.manager").exception("commit listener failed")

    def forget_snapshots(self, snapshot_ids: list[str]) -> None:
        self.catalog.forget_snapshots(snapshot_ids)

    def record_verify(self, graph_id: str, snapshot_id: Optional[str], ok: bool, read_data: bool,
                      errors: list[str]) -> None:
        self.catalog.record_verify(graph_id, snapshot_id, ok, read_data, errors)


def _schedule_view(row: dict[str, Any]) -> dict[str, Any]:
    view = {
        "graph_id": row["graph_id"],
        "interval_seconds": row["interval_seconds"],
        "cron": row["cron"],
        "enabled": row["enabled"],
        "retention": row["retention"],
        "next_run": row["next_run"],
        "last_run": row["last_run"],
        "last_result": row["last_result"],
        "last_error": row["last_error"],
        "last_snapshot_id": row["last_snapshot_id"],
    }
    return view


__all__ = ["BackupManager"]
