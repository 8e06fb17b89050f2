"""The Phase 5A design's replication module: :class:`ReplicationManager` for every graph and target,
:class:`GraphReplicator` for one graph, :class:`ReplicationLog` rows and
:class:`ReplicationStatus`.

Every attempt (one snapshot to one target) is one row in the catalog's ``replication_logs``;
retryable failures (timeouts, throttling, 5xx) are retried with exponential backoff and
jitter, others fail at once. Targets live in the catalog, and without their secrets in the
repository's settings, so a rebuilt catalog lists them again.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any, Optional, Union

from lightrag.backup import _native
from lightrag.backup.environment import env_number
from lightrag.backup.errors import BackupError, InvalidInputError
from lightrag.backup.twins import on_thread
from lightrag.backup.instance import fencing_state, instance_epoch, instance_role
from lightrag.backup.types import ProgressCallback, check_snapshot_id, validate_graph_id

from .errors import TargetExistsError, TargetNotFoundError
from .links import InstanceLink, RepositoryLink, TargetLink
from .peer import Peer
from .targets import ReplicationTarget

log = logging.getLogger("lightrag.replication")

if TYPE_CHECKING:
    from lightrag.backup.manager import BackupManager

#: Settings kind under which targets (without secrets) are kept in the repository.
TARGET_SETTINGS = "replication-targets"


class ReplicationStatus(str, Enum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    #: The graph's shred arrived at the target (its key, snapshots and claim deleted there).
    SHREDDED = "shredded"


@dataclass(frozen=True)
class ReplicationLog:
    """One attempt to replicate one snapshot to one target (a ``replication_logs`` row)."""

    log_id: str
    backup_id: str
    target_id: str
    graph_id: str
    status: ReplicationStatus
    error_message: Optional[str]
    attempted_at: str
    completed_at: Optional[str]
    data_hash: Optional[str]
    bytes_sent: Optional[int] = None
    chunks_sent: Optional[int] = None
    duration_ms: Optional[int] = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "ReplicationLog":
        fields: dict[str, Any] = {k: row.get(k) for k in cls.__dataclass_fields__}
        fields["status"] = ReplicationStatus(row["status"])
        return cls(**fields)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _max_targets() -> int:
    raw = os.environ.get("LIGHTRAG_REPLICATION_MAX_TARGETS", "5")
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInputError(f"LIGHTRAG_REPLICATION_MAX_TARGETS={raw!r} is not a number") from None
    return max(value, 0)


class ReplicationManager:
    """Replication of every graph of a :class:`~lightrag.backup.BackupManager` to its targets.

    Built on the engine's ``_native.ReplicationManager``, which plans and moves the chunks.
    ``retries`` and ``backoff`` shape the retries of failures worth retrying; ``timeout`` is
    how long one request to an instance target may take (default
    ``LIGHTRAG_REPLICATION_TIMEOUT_SECONDS``, else 120): a target that stops answering is
    retried after it."""

    def __init__(self, backup_manager: "BackupManager", *, retries: int = 3, backoff: float = 0.5,
                 timeout: Optional[float] = None) -> None:
        self.backup = backup_manager
        self.catalog = backup_manager.catalog
        self.retries = max(int(retries), 0)
        self.backoff = float(backoff)
        self.timeout = float(timeout) if timeout is not None else env_number("LIGHTRAG_REPLICATION_TIMEOUT_SECONDS", 120.0, low=1, high=3600)
        self._engine = _native.ReplicationManager(backup_manager.storage.engine)
        self._open: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"ReplicationManager({self.backup.storage!r}, targets={[t.name for t in self.targets()]})"

    # -- targets --------------------------------------------------------------------------

    def register_target(self, target: ReplicationTarget) -> bool:
        """Add a target (or update the one with the same ``target_id``). Returns ``True``.

        Raises :class:`TargetExistsError` for another target's name, and
        :class:`InvalidInputError` past ``LIGHTRAG_REPLICATION_MAX_TARGETS`` (default 5) or for
        an instance target (over HTTP), which this version cannot replicate to yet."""
        if not isinstance(target, ReplicationTarget):
            raise InvalidInputError("register_target takes a ReplicationTarget")
        target.tls_context()  # a CA file that is missing or not PEM is refused now, naming it
        existing = self.targets()
        for other in existing:
            if other.name == target.name and other.target_id != target.target_id:
                raise TargetExistsError(f"a target named {target.name!r} exists already (target {other.target_id})")
        if target.target_id not in {t.target_id for t in existing} and len(existing) >= _max_targets():
            raise InvalidInputError(
                f"{len(existing)} targets are registered, the most LIGHTRAG_REPLICATION_MAX_TARGETS allows"
            )
        row = target.to_dict(secrets=True)
        self.catalog.upsert_target(row)
        # In the repository too, so a rebuilt catalog lists the target again: not its secrets.
        kept = target.to_dict(secrets=False)
        if kept["api_key"] == "***":
            kept["api_key"] = None
        kept["options"] = {k: v for k, v in target.options.items() if kept["options"].get(k) != "***"}
        self.backup.storage.engine.put_setting_op(TARGET_SETTINGS, target.target_id, json.dumps(kept)).run()
        self._open.pop(target.target_id, None)
        return True

    def targets(self) -> list[ReplicationTarget]:
        return [ReplicationTarget.from_row(row) for row in self.catalog.targets()]

    def get_target(self, name_or_id: str) -> ReplicationTarget:
        for target in self.targets():
            if name_or_id in (target.name, target.target_id):
                return target
        raise TargetNotFoundError(f"no replication target {name_or_id!r}")

    def remove_target(self, name_or_id: str) -> bool:
        target = self.get_target(name_or_id)
        self.catalog.remove_target(target.target_id)
        self.backup.storage.engine.put_setting_op(TARGET_SETTINGS, target.target_id, None).run()
        self._open.pop(target.target_id, None)
        return True

    def restore_targets(self) -> int:
        """Bring back the targets kept in the repository (after a catalog rebuild). Their
        secrets were never stored there: keys given as ``env:`` references work at once,
        others must be set again. Returns how many came back."""
        saved = json.loads(self.backup.storage.engine.settings_op(TARGET_SETTINGS).run())
        known = {t.target_id for t in self.targets()}
        restored = 0
        for target_id, row in saved.items():
            if target_id in known:
                continue
            self.catalog.upsert_target(dict(row, target_id=target_id))
            restored += 1
        return restored

    # -- this instance's role and fencing epoch ----------------------------------------------

    @property
    def role(self) -> str:
        """``primary`` (the default) or ``standby``: kept in the catalog; the first start takes
        ``LIGHTRAG_RECOVERY_ROLE``, later changes come from failover or switchover only."""
        return instance_role(self.catalog)

    @property
    def epoch(self) -> int:
        """This instance's fencing epoch (only grows)."""
        return instance_epoch(self.catalog)

    def _repository(self, target: ReplicationTarget, *, create_location: bool = False) -> Any:
        repo = self._open.get(target.target_id)
        if repo is None:
            url = target.base_url
            if target.scheme == "file":
                url = url[len("file://"):]
            password = None
            if not self.backup.storage.encrypted:
                # An encrypted target of an unencrypted repository: copies re-encrypt into it,
                # which its own password opens (the same sources as any repository's).
                from lightrag.backup.passwords import resolve_password

                password = resolve_password(self.backup.storage.password_source)
            repo = self._engine.open_target(url, _string_options(target.options), create_location, password)
            self._open[target.target_id] = repo
        return repo

    def check_target_health(self, target: Union[ReplicationTarget, str]) -> dict[str, Any]:
        """Whether ``target`` can take this repository's snapshots now: reachable, credentials
        accepted, compatible. Returns ``{target_id, healthy, latency_ms, error, ...}`` and keeps
        it as the target's last health result."""
        target = self.get_target(target) if isinstance(target, str) else target
        started = time.perf_counter()
        health: dict[str, Any] = {"target_id": target.target_id, "name": target.name, "kind": target.kind}
        try:
            config, shown = self.link(target).config()
            health.update(shown)
            ours = self.backup.storage.config
            def chunking(c: dict[str, Any]) -> tuple[Any, ...]:
                return c["chunker"], c.get("matrix_chunker"), c.get("matrix_rows_per_chunk", 0)

            reencrypts = config.get("encrypted") and not ours.get("encrypted")
            if chunking(config) != chunking(ours) and not reencrypts:
                raise InvalidInputError("it chunks files with other parameters, so nothing would deduplicate")
            health.update(healthy=True, error=None, format_version=config["format_version"],
                          repository_id=config["repository_id"])
        except BackupError as error:
            health.update(healthy=False, error=f"{type(error).__name__}: {error}")
        health["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
        health["checked_at"] = _now()
        self.catalog.record_target_health(target.target_id, health)
        return health

    def peer(self, target: ReplicationTarget) -> Peer:
        """An instance target, asked with this instance's epoch (see :mod:`.peer`)."""
        return Peer(target, epoch=self.epoch, timeout=self.timeout)

    def link(self, target: ReplicationTarget) -> TargetLink:
        """How this instance reaches ``target`` (see :mod:`.links`)."""
        if target.kind == "instance":
            return InstanceLink(target, self._engine, epoch=self.epoch, timeout=self.timeout, retries=self.retries)
        return RepositoryLink(target, self._engine, lambda: self._repository(target))

    def verify_on_target(self, target: Union[ReplicationTarget, str], graph_id: str,
                         snapshot_id: str) -> dict[str, Any]:
        """Have the target read back its copy of a snapshot whole (every chunk it needs,
        hash-checked there): ``{target_id, snapshot_id, present, ok, data_hash, errors}``.
        An instance target verifies in its own process; a repository target is read from
        here."""
        target = self.get_target(target) if isinstance(target, str) else target
        validate_graph_id(graph_id)
        check_snapshot_id(snapshot_id)
        outcome: dict[str, Any] = {"target_id": target.target_id, "target": target.name, "graph_id": graph_id,
                                   "snapshot_id": snapshot_id}
        try:
            outcome.update(self.link(target).verify(graph_id, snapshot_id))
        except BackupError as error:
            outcome.update(present=None, ok=False, data_hash=None, errors=[f"{type(error).__name__}: {error}"])
        return outcome

    averify_on_target = on_thread(verify_on_target)

    # -- replication ----------------------------------------------------------------------

    def replicate_graph(
        self,
        graph_id: str,
        snapshot_id: Optional[str] = None,
        *,
        targets: Optional[list[str]] = None,
        progress: Optional[ProgressCallback] = None,
        dry_run: bool = False,
    ) -> dict[str, dict[str, Any]]:
        """Copy ``graph_id``'s snapshots (every one a target lacks, or only ``snapshot_id``)
        to every enabled target that takes the graph (or the named ``targets``). Returns per
        target name: ``status`` (completed / failed), ``snapshots`` (each with its status,
        bytes and chunks sent, and the target's ``data_hash``), ``bytes_sent``,
        ``chunks_sent``, ``duration_ms`` and ``error``. Failures are reported, not raised."""
        validate_graph_id(graph_id)
        return {target.name: self._push(target, graph_id, snapshot_id, progress, dry_run)
                for target in self._chosen(graph_id, targets)}

    areplicate_graph = on_thread(replicate_graph)

    def replicate_all_graphs(self, snapshot_id: Optional[str] = None) -> dict[str, bool]:
        """Replicate every graph of the repository; per graph, ``True`` when every target that
        takes it now holds its snapshots with matching data hashes."""
        results = {}
        shredded = [g["graph_id"] for g in self.backup.shredded_graphs()]
        for graph_id in sorted(set(self.backup.storage.list_graphs()) | set(shredded)):
            outcome = self.replicate_graph(graph_id, snapshot_id if snapshot_id else None)
            results[graph_id] = all(r["status"] == ReplicationStatus.COMPLETED.value for r in outcome.values())
        return results

    areplicate_all_graphs = on_thread(replicate_all_graphs)

    def handle_replication_failure(self, graph_id: str, target: Union[ReplicationTarget, str]) -> bool:
        """Retry a graph's replication to ``target`` now (with backoff); after it still fails,
        the target is marked unhealthy until a health check passes. Returns whether it
        succeeded."""
        target = self.get_target(target) if isinstance(target, str) else target
        outcome = self._push(target, graph_id, None, None, False)
        if outcome["status"] != ReplicationStatus.COMPLETED.value:
            self.catalog.record_target_health(target.target_id, {
                "target_id": target.target_id, "healthy": False, "error": outcome["error"], "checked_at": _now()})
            return False
        return True

    def _chosen(self, graph_id: str, names: Optional[list[str]]) -> list[ReplicationTarget]:
        if names:
            return [self.get_target(name) for name in names]
        return [t for t in self.targets() if t.takes(graph_id)]

    def _push(
        self,
        target: ReplicationTarget,
        graph_id: str,
        snapshot_id: Optional[str],
        progress: Optional[ProgressCallback],
        dry_run: bool,
    ) -> dict[str, Any]:
        started = time.perf_counter()
        error: Optional[BackupError] = None
        report: Optional[dict[str, Any]] = None
        delivered = self.catalog.replication_logs(graph_id, target_id=target.target_id,
                                                  status=ReplicationStatus.SHREDDED.value)
        if delivered:
            # A shredded graph id takes no new snapshots: once its shred arrived, nothing is left to send.
            return {"target_id": target.target_id, "status": ReplicationStatus.COMPLETED.value, "snapshots": [],
                    "bytes_sent": 0, "chunks_sent": 0, "duration_ms": 0, "error": None, "dry_run": dry_run,
                    "diverged": [], "shredded": delivered[0]["completed_at"]}
        # What this source sent the target before: not the target's own, even when forgotten here.
        sent = [(row["backup_id"], row["data_hash"] or "") for row in self.catalog.replication_logs(
            graph_id, target_id=target.target_id, status=ReplicationStatus.COMPLETED.value)]
        link = self.link(target)
        fenced = fencing_state(self.catalog)
        message = None
        if fenced is not None and not dry_run:
            # Failed over: another instance is the primary now. Pushing would only be refused
            # (and must never win): nothing is sent until failover or switchover makes this
            # instance primary again with a higher epoch.
            message = (f"this instance was fenced: {fenced['by']} has epoch {fenced['epoch']} (this one "
                       f"{self.epoch}) since {fenced['at']}; it is no longer the primary and pushes nothing")
        elif not dry_run:
            message = link.refusal(self.role)
        if message is not None:
            self.catalog.record_replication(
                backup_id=snapshot_id or "", target_id=target.target_id, graph_id=graph_id,
                status=ReplicationStatus.FAILED.value, error_message=f"PushRefusedError: {message}",
                attempted_at=_now(), completed_at=_now())
            return {"target_id": target.target_id, "status": ReplicationStatus.FAILED.value, "snapshots": [],
                    "bytes_sent": 0, "chunks_sent": 0, "duration_ms": 0, "error": f"PushRefusedError: {message}",
                    "kind": "push_refused"}
        policy = target.conflict_policy if dry_run else link.conflict_policy()
        for attempt in range(self.retries + 1):
            attempted_at = _now()
            try:
                ids = [snapshot_id] if snapshot_id else None
                report = json.loads(link.transfer_op(graph_id, ids, dry_run, progress, policy, sent).run())
                error = None
                break
            except BackupError as failure:
                error = failure
                if getattr(failure, "refusal", None) == "fenced":
                    # A target with a higher epoch: this instance was failed over. Keep that epoch.
                    self._record_fencing(link, str(failure))
                if not dry_run:
                    self.catalog.record_replication(
                        backup_id=snapshot_id or "", target_id=target.target_id, graph_id=graph_id,
                        status=ReplicationStatus.FAILED.value, error_message=f"{type(failure).__name__}: {failure}",
                        attempted_at=attempted_at, completed_at=_now())
                self._open.pop(target.target_id, None)
                if not failure.retryable or attempt == self.retries or link.retried_by_engine:
                    break
                time.sleep(self.backoff * (2 ** attempt) * (0.5 + random.random()))
        duration = int((time.perf_counter() - started) * 1000)
        if error is not None or report is None:
            return {"target_id": target.target_id, "status": ReplicationStatus.FAILED.value, "snapshots": [],
                    "bytes_sent": 0, "chunks_sent": 0, "duration_ms": duration,
                    "error": f"{type(error).__name__}: {error}" if error else "no result", "kind": getattr(error, "kind", None)}
        if report.get("shredded"):
            if not dry_run:
                self.catalog.record_replication(
                    backup_id="", target_id=target.target_id, graph_id=graph_id,
                    status=ReplicationStatus.SHREDDED.value, attempted_at=_now(), completed_at=_now(),
                    duration_ms=report["duration_ms"])
                log.warning("replication: the shred of graph %s reached %s", graph_id, target.name)
            return {"target_id": target.target_id, "status": ReplicationStatus.COMPLETED.value, "snapshots": [],
                    "bytes_sent": 0, "chunks_sent": 0, "duration_ms": duration, "error": None, "dry_run": dry_run,
                    "diverged": [], "shredded": report["shredded"]}
        if not dry_run:
            for copied in report["snapshots"]:
                if copied["status"] == "present":
                    continue
                self.catalog.record_replication(
                    backup_id=copied["snapshot_id"], target_id=target.target_id, graph_id=graph_id,
                    status=ReplicationStatus.COMPLETED.value, data_hash=copied["data_hash"], attempted_at=_now(),
                    completed_at=_now(), bytes_sent=copied["bytes_sent"], chunks_sent=copied["chunks_sent"],
                    duration_ms=report["duration_ms"])
        return {"target_id": target.target_id, "status": ReplicationStatus.COMPLETED.value,
                "snapshots": report["snapshots"], "bytes_sent": report["bytes_sent"],
                "chunks_sent": report["chunks_sent"], "duration_ms": duration, "error": None, "dry_run": dry_run,
                "diverged": report["diverged"]}

    def _record_fencing(self, link: TargetLink, message: str) -> None:
        """Remember that a target fenced this instance, with its epoch (asked for; at least
        one above ours when it cannot be asked)."""
        epoch = max(self.epoch + 1, link.epoch() or 0)
        self.catalog.set_state("fenced", json.dumps({"by": link.target.name, "epoch": epoch, "at": _now(),
                                                     "message": message}))
        log.warning("replication: %s has epoch %d, above this instance's %d: this instance is no longer the "
                    "primary and stops pushing", link.target.name, epoch, self.epoch)

    # -- status and metrics ---------------------------------------------------------------

    def logs(self, graph_id: Optional[str] = None, *, target: Optional[str] = None, status: Optional[str] = None,
             limit: Optional[int] = 100) -> list[ReplicationLog]:
        """Replication attempts, newest first."""
        target_id = self.get_target(target).target_id if target else None
        rows = self.catalog.replication_logs(graph_id, target_id=target_id, status=status, limit=limit,
                                             newest_first=True)
        return [ReplicationLog.from_row(row) for row in rows]

    def get_replication_status(self, graph_id: str) -> dict[str, Any]:
        """Per target: the last replicated snapshot, whether the target holds the graph's
        newest snapshot, the lag in seconds, and the last error."""
        validate_graph_id(graph_id)
        # Kept in a server while nothing changed (see lightrag.backup.view), as /recovery/status does.
        snapshots = self.backup.snapshot_objects(graph_id)
        newest = snapshots[-1] if snapshots else None
        status: dict[str, Any] = ReplicationStatusReport(
            graph_id=graph_id, newest_snapshot=newest.snapshot_id if newest else None, targets={})
        for target in self.targets():
            if not target.takes(graph_id):
                continue
            rows = self.catalog.replication_logs(graph_id, target_id=target.target_id, newest_first=True, limit=200)
            done = [r for r in rows if r["status"] == ReplicationStatus.COMPLETED.value]
            shred = next((r for r in rows if r["status"] == ReplicationStatus.SHREDDED.value), None)
            failed = [r for r in rows if r["status"] == ReplicationStatus.FAILED.value]
            replicated = {r["backup_id"] for r in done}
            holds_newest = newest is not None and newest.snapshot_id in replicated
            lag = 0.0
            if newest is not None and not holds_newest:
                lag = (datetime.now(timezone.utc) - newest.timestamp).total_seconds()
            last_error = failed[0] if failed and (not done or failed[0]["attempted_at"] > done[0]["attempted_at"]) else None
            status["targets"][target.name] = {
                "target_id": target.target_id,
                "last_replicated_snapshot": done[0]["backup_id"] if done else None,
                "last_success": done[0]["completed_at"] if done else None,
                "holds_newest": holds_newest,
                "lag_seconds": round(lag, 3),
                "last_error": last_error["error_message"] if last_error else None,
                # When the graph's shred arrived there (None: not shredded, or not yet arrived).
                "shred_arrived_at": shred["completed_at"] if shred else None,
            }
        shredded = next((g for g in self.backup.shredded_graphs() if g["graph_id"] == graph_id), None)
        if shredded is not None:
            status["shredded_at"] = shredded["shredded_at"]
        return status

    def get_replication_metrics(self) -> dict[str, Any]:
        """Per target and graph: attempts, successes, failures, bytes sent, last success, lag
        in seconds, and latency p50/p95 (ms)."""
        metrics: dict[str, Any] = {}
        for target in self.targets():
            per_graph: dict[str, Any] = {}
            for row in self.catalog.replication_logs(target_id=target.target_id):
                graph = per_graph.setdefault(row["graph_id"], {"attempts": 0, "successes": 0, "failures": 0,
                                                               "bytes_sent": 0, "last_success": None, "_durations": []})
                if row["status"] == ReplicationStatus.SHREDDED.value:
                    graph["shred_arrived_at"] = row["completed_at"]
                    continue
                graph["attempts"] += 1
                if row["status"] == ReplicationStatus.COMPLETED.value:
                    graph["successes"] += 1
                    graph["bytes_sent"] += row["bytes_sent"] or 0
                    graph["last_success"] = max(filter(None, [graph["last_success"], row["completed_at"]]))
                    if row["duration_ms"] is not None:
                        graph["_durations"].append(row["duration_ms"])
                else:
                    graph["failures"] += 1
            for graph_id, graph in per_graph.items():
                durations = sorted(graph.pop("_durations"))
                graph["latency_p50_ms"] = _percentile(durations, 0.5)
                graph["latency_p95_ms"] = _percentile(durations, 0.95)
                graph["lag_seconds"] = self.get_replication_status(graph_id)["targets"].get(target.name, {}).get(
                    "lag_seconds")
            metrics[target.name] = {"target_id": target.target_id, "graphs": per_graph,
                                    "last_health": next((t["last_health"] for t in self.catalog.targets()
                                                         if t["target_id"] == target.target_id), None)}
        return metrics

    # -- async twins (each runs its method on a thread: they wait on the network and disks) --

    aregister_target = on_thread(register_target)

    acheck_target_health = on_thread(check_target_health)

    ahandle_replication_failure = on_thread(handle_replication_failure)

    aget_replication_status = on_thread(get_replication_status)

    aget_replication_metrics = on_thread(get_replication_metrics)


class ReplicationStatusReport(dict):  # type: ignore[type-arg]
    """A graph's replication status (a plain dict) that renders as a table per target in a
    notebook."""

    def _repr_html_(self) -> str:
        from lightrag.backup.display import html_table

        rows = [(name, (t.get("last_replicated_snapshot") or "-")[:8], "yes" if t.get("holds_newest") else "no",
                 f"{t.get('lag_seconds', 0):.1f} s", t.get("last_success") or "-", t.get("last_error") or "")
                for name, t in (self.get("targets") or {}).items()]
        return html_table(("target", "last replicated", "holds newest", "lag", "last success", "last error"), rows,
                          f"replication of {self.get('graph_id')}: newest snapshot "
                          f"{(self.get('newest_snapshot') or '-')[:8]}")


def _percentile(values: list[int], share: float) -> Optional[float]:
    if not values:
        return None
    return float(values[min(len(values) - 1, int(round(share * (len(values) - 1))))])


def _string_options(options: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in (options or {}).items()}


class GraphReplicator:
    """Replication of one graph (the Phase 5A design's class), over a :class:`ReplicationManager` or a
    :class:`~lightrag.backup.BackupManager`."""

    def __init__(self, graph_id: str, manager: Union[ReplicationManager, "BackupManager"]) -> None:
        self.graph_id = validate_graph_id(graph_id)
        self.manager = manager if isinstance(manager, ReplicationManager) else ReplicationManager(manager)
        #: Per target, the outcome of the last :meth:`replicate_snapshot`.
        self.last_result: dict[str, dict[str, Any]] = {}

    def add_target(self, target: ReplicationTarget) -> bool:
        """Register ``target`` with the manager (see :meth:`ReplicationManager.register_target`)."""
        return self.manager.register_target(target)

    def replicate_snapshot(self, snapshot_id: Optional[str] = None) -> bool:
        """Replicate one snapshot (the newest by default) to every target that takes the
        graph; ``True`` only when every one confirmed the same data hash."""
        snapshot = self.manager.backup.snapshots_of(self.graph_id).get_snapshot(snapshot_id or "latest")
        self.last_result = self.manager.replicate_graph(self.graph_id, snapshot.snapshot_id)
        if not self.last_result:
            return False
        return all(
            result["status"] == ReplicationStatus.COMPLETED.value
            and all(s["data_hash"] == snapshot.data_hash for s in result["snapshots"])
            for result in self.last_result.values()
        )

    areplicate_snapshot = on_thread(replicate_snapshot)

    def check_target_health(self, target: Union[ReplicationTarget, str]) -> bool:
        """Whether ``target`` can take this graph's snapshots now (see
        :meth:`ReplicationManager.check_target_health`)."""
        return bool(self.manager.check_target_health(target)["healthy"])

    def get_replication_status(self) -> dict[str, Any]:
        """This graph's replication status per target (see :meth:`ReplicationManager.get_replication_status`)."""
        return self.manager.get_replication_status(self.graph_id)

    aadd_target = on_thread(add_target)

    acheck_target_health = on_thread(check_target_health)

    aget_replication_status = on_thread(get_replication_status)


__all__ = ["GraphReplicator", "ReplicationLog", "ReplicationManager", "ReplicationStatus"]
