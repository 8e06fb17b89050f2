"""The Phase 5A design's replication endpoints, as a router the app factory mounts beside the backup one
(``lightrag.backup.app.ROUTERS``). JSON fields use the Phase 5A design's column names; API keys are
never returned (``***``). Replicating runs as a job, like a snapshot: ``202`` with a
``job_id``, or ``?wait=true``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Optional

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field


from lightrag.backup.errors import IntegrityError, SnapshotNotFoundError
from lightrag.backup.http.errors import HTTPError
from lightrag.backup.http.jobs import Job, JobRunner
from lightrag.backup.types import GRAPH_ID_PATTERN, SNAPSHOT_ID_PATTERN

from .apply import StandbyApplier
from .continuous import CONTINUOUS_ENV, CONTINUOUS_SETTINGS
from .switches import GraphSwitch
from .graph_replication import (
    ReplicationManager,
    fencing_state,
    instance_epoch,
    instance_name,
    instance_role,
    rewind_allowed,
    set_instance_epoch,
)
from .targets import CONFLICT_POLICIES, ReplicationTarget

if TYPE_CHECKING:
    from lightrag.backup.manager import BackupManager

log = logging.getLogger("lightrag.replication")

TARGET_ID_PATTERN = r"^[0-9a-f]{32}$"
GraphId = PathParam(..., pattern=GRAPH_ID_PATTERN, max_length=128, description="the graph's id")
TargetId = PathParam(..., pattern=TARGET_ID_PATTERN, description="the target's id")


class TargetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., pattern=r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,63}$")
    base_url: str = Field(..., min_length=1, max_length=2048)
    api_key: Optional[str] = Field(None, max_length=4096)
    enabled: bool = True
    graphs: Optional[list[str]] = Field(None, max_length=1000)
    conflict_policy: str = Field("reject", pattern="^(" + "|".join(CONFLICT_POLICIES) + ")$")
    ca_file: Optional[str] = Field(None, max_length=4096)
    options: dict[str, str] = Field(default_factory=dict, max_length=64)


class WantRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    chunks: list[str] = Field(..., max_length=10_000)


class SwitchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool


class ReplicateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    snapshot_id: Optional[str] = Field(None, pattern=SNAPSHOT_ID_PATTERN, max_length=64)
    targets: Optional[list[str]] = Field(None, max_length=32)


#: The largest fencing epoch: the catalog keeps it as a SQLite integer (signed 64 bits), the
#: engine as u64. A peer cannot push an epoch past it (and so fence every normal primary).
MAX_EPOCH = 2**63 - 1


def parse_epoch(raw: str) -> int:
    """An ``X-Source-Epoch`` header as an epoch: decimal digits only, within ``MAX_EPOCH``;
    anything else is a 422 and nothing is recorded."""
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or int(text) > MAX_EPOCH:
        raise HTTPError(422, "invalid_input", f"X-Source-Epoch must be an integer from 0 to {MAX_EPOCH}")
    return int(text)


#: The folders (``os.pathsep``-separated) inside which ``file://`` (and plain path) targets may
#: be registered over REST. Unset: none. The CLI, run by the operator, may name any folder.
ALLOWED_DIRS_ENV = "LIGHTRAG_REPLICATION_ALLOWED_DIRS"


def confine_folder_target(target: ReplicationTarget) -> None:
    """Refuse (422) a folder target registered over REST outside the folders the operator
    allowed: a key holder must not make the server create a repository in any folder it can
    write (``~/.ssh``, a web root ...)."""
    import os

    folder = target.local_folder()
    if folder is None:
        return
    allowed = [os.path.realpath(os.path.expanduser(d)) for d in os.environ.get(ALLOWED_DIRS_ENV, "").split(os.pathsep)
               if d.strip()]
    if not any(folder == root or folder.startswith(root.rstrip(os.sep) + os.sep) for root in allowed):
        raise HTTPError(422, "invalid_input",
                        f"a folder target is accepted over REST only inside the folders {ALLOWED_DIRS_ENV} names "
                        f"({'none set' if not allowed else ', '.join(allowed)}); register it with the CLI "
                        "(`lightrag-backup replication add`) or set the variable")


class ReceiveGate:
    """Bounds the receive work a standby does at once, whoever pushes: ``running`` requests
    work (each reads its body only once its turn comes), ``waiting`` more wait for a turn, and
    any beyond that are refused with 503 and ``Retry-After`` (a pushing primary retries).

    Memory: a request holds its body (at most ``MAX_PUSH_BYTES``, 64 MiB) and what it inflates
    (a chunk at most the repository's largest chunk, 1 MiB; a manifest or recovery point at most
    256 times its body plus 1 MiB, and never over 256 MiB): with two at work, the standby's
    receive side stays within a few hundred MiB under any flood of pushes, and within tens of
    MiB for real ones (packs of 16 MiB, manifests of a few MiB)."""

    def __init__(self, running: int = 2, waiting: int = 16) -> None:
        self._slots = asyncio.Semaphore(running)
        self._limit = running + waiting
        self._admitted = 0

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        if self._admitted >= self._limit:
            raise HTTPError(503, "busy", "this standby is receiving as much as it takes at once; retry shortly",
                            headers={"Retry-After": "1"})
        self._admitted += 1
        try:
            async with self._slots:
                yield
        finally:
            self._admitted -= 1


def create_replication_router(
    manager: "BackupManager",
    *,
    runner: JobRunner,
    dependencies: Optional[list[Any]] = None,
    resolve_graph: Optional[Callable[[str], None]] = None,
) -> APIRouter:
    """The replication endpoints over ``manager``'s repository and catalog."""
    router = APIRouter(prefix="/replication", tags=["replication"], dependencies=dependencies or [])
    replication = ReplicationManager(manager)
    applier = StandbyApplier(manager, resolve_graph)

    def known(graph_id: str) -> None:
        if resolve_graph is not None:
            resolve_graph(graph_id)
        manager.known_graph(graph_id)

    def target_view(target: ReplicationTarget) -> dict[str, Any]:
        view = target.to_dict()
        view["last_health"] = next((row["last_health"] for row in manager.catalog.targets()
                                    if row["target_id"] == target.target_id), None)
        return view

    @router.post("/targets", status_code=201, summary="Register a replication target")
    async def register_target(request: Request, body: TargetRequest) -> dict[str, Any]:
        target = ReplicationTarget(**body.model_dump())
        confine_folder_target(target)
        # It also writes the target into the repository's settings: off the event loop.
        await asyncio.to_thread(replication.register_target, target)
        # A running replicator brings the new target up to date now, not at its next catch-up.
        watcher = getattr(request.app.state, "continuous", None)
        replicator = watcher.auto_replicator if watcher is not None else None
        if replicator is not None and target.enabled:
            graphs = await asyncio.to_thread(manager.storage.list_graphs)
            replicator.notify_graphs([g for g in sorted(set(graphs) | set(manager.graph_ids)) if target.takes(g)])
        return target_view(target)

    @router.get("/targets", summary="Replication targets, with their last health result")
    async def list_targets() -> list[dict[str, Any]]:
        return [target_view(t) for t in replication.targets()]

    @router.post("/targets/{target_id}/health", summary="Check that a target can take snapshots now")
    async def target_health(target_id: str = TargetId) -> dict[str, Any]:
        target = replication.get_target(target_id)
        return await asyncio.to_thread(replication.check_target_health, target)

    @router.delete("/targets/{target_id}", summary="Forget a target (its copies stay where they are)")
    async def remove_target(target_id: str = TargetId) -> dict[str, Any]:
        await asyncio.to_thread(replication.remove_target, target_id)
        return {"removed": target_id}

    @router.post("/graphs/{graph_id}/replicate", status_code=202, summary="Replicate a graph's snapshots now")
    async def replicate(
        request: Request,
        graph_id: str = GraphId,
        body: Optional[ReplicateRequest] = None,
        wait: bool = Query(False, description="answer when every target is done"),
    ) -> JSONResponse:
        known(graph_id)
        body = body or ReplicateRequest.model_validate({})
        for name in body.targets or []:
            replication.get_target(name)

        async def work(job: Job) -> Any:
            return await replication.areplicate_graph(graph_id, body.snapshot_id, targets=body.targets,
                                                      progress=job.progress)

        # Its own lock key (graph ids hold no ':'): replicating reads committed snapshots only,
        # so it runs beside a backup of the graph, but never twice at once.
        return await runner.answer(request, runner.start("replicate", f"{graph_id}:replicate", work), wait)

    @router.get("/metrics", summary="Per target and graph: attempts, successes, failures, bytes sent, lag, latency")
    async def replication_metrics() -> dict[str, Any]:
        return await asyncio.to_thread(replication.get_replication_metrics)

    @router.get("/graphs/{graph_id}/status", summary="Per target: last replicated snapshot, lag, last error")
    async def status(graph_id: str = GraphId) -> dict[str, Any]:
        known(graph_id)
        return await asyncio.to_thread(replication.get_replication_status, graph_id)

    @router.get("/graphs/{graph_id}/apply", summary="Whether this standby applies the graph's replicated snapshots")
    async def apply_status(graph_id: str = GraphId) -> dict[str, Any]:
        return await asyncio.to_thread(applier.status, graph_id)

    @router.put("/graphs/{graph_id}/apply", summary="Apply (or stop applying) replicated snapshots into the served graph")
    async def set_apply(body: SwitchRequest, graph_id: str = GraphId) -> dict[str, Any]:
        status = await asyncio.to_thread(applier.set_enabled, graph_id, body.enabled)
        if body.enabled and instance_role(manager.catalog) == "standby":
            applier.committed(graph_id)  # catch up with what was received before
        return status

    continuous_switch = GraphSwitch(manager.storage, CONTINUOUS_SETTINGS, CONTINUOUS_ENV)

    def continuous_view(request: Request, graph_id: str) -> dict[str, Any]:
        watcher = getattr(request.app.state, "continuous", None)
        watching = watcher.status(graph_id)[graph_id] if watcher is not None else None
        return {"graph_id": graph_id, "enabled": continuous_switch.enabled(graph_id), "watcher": watching}

    @router.get("/graphs/{graph_id}/continuous", summary="Whether the graph replicates continuously, and how it goes")
    async def continuous_status(request: Request, graph_id: str = GraphId) -> dict[str, Any]:
        known(graph_id)
        return await asyncio.to_thread(continuous_view, request, graph_id)

    @router.put("/graphs/{graph_id}/continuous",
                summary="Replicate the graph continuously: each change snapshotted and pushed within seconds")
    async def set_continuous(request: Request, body: SwitchRequest, graph_id: str = GraphId) -> dict[str, Any]:
        known(graph_id)
        await asyncio.to_thread(continuous_switch.set, graph_id, body.enabled)
        watcher = getattr(request.app.state, "continuous", None)
        if watcher is not None:
            watcher.refresh()
        return await asyncio.to_thread(continuous_view, request, graph_id)

    # -- the receiving side: what a primary pushes to this instance ---------------------------

    async def fencing(request: Request) -> None:
        """Refuse a push from a lower epoch (whatever this instance's role), then one to a
        primary: a misconfigured pair never writes into a live graph's repository."""
        source_epoch = parse_epoch(request.headers.get("x-source-epoch", "0"))
        own = instance_epoch(manager.catalog)
        if source_epoch < own:
            raise HTTPError(409, "fenced", f"this instance has epoch {own}, the push comes from epoch {source_epoch}: "
                                           "the source is no longer the primary", epoch=own)
        if instance_role(manager.catalog) != "standby":
            raise HTTPError(409, "target_is_primary", "this instance is a primary: it takes no pushes (set it up as "
                                                      "a standby: LIGHTRAG_RECOVERY_ROLE=standby or --role standby)")
        if source_epoch > own:
            # A primary with a higher epoch (a failover happened): this standby follows it,
            # and from now on refuses the primary it replaced.
            await asyncio.to_thread(set_instance_epoch, manager.catalog, source_epoch)
            log.warning("replication: a primary with epoch %d pushes here (this standby had %d): following it, "
                        "pushes from lower epochs are refused from now on", source_epoch, own)

    receive = APIRouter(prefix="/receive", dependencies=[Depends(fencing)])

    @router.get("/receive/info", summary="What this instance is (for a primary about to push)")
    async def receive_info() -> dict[str, Any]:
        config = manager.storage.config
        from lightrag.backup import __version__

        return {"format_version": config["format_version"], "chunker": config["chunker"],
                "matrix_chunker": config["matrix_chunker"],
                "matrix_rows_per_chunk": config.get("matrix_rows_per_chunk", 0),
                "repository_id": config["repository_id"],
                "key_fingerprint": config.get("key_fingerprint"),
                "role": instance_role(manager.catalog), "epoch": instance_epoch(manager.catalog),
                "fenced": fencing_state(manager.catalog), "version": __version__,
                "instance": instance_name(manager.catalog), "rewind": rewind_allowed(manager.catalog) is not None}

    @receive.get("/graphs/{graph_id}/snapshots", summary="The snapshots this instance has of a graph")
    async def receive_list(graph_id: str = GraphId) -> dict[str, Any]:
        import json

        # id, time, tags and data hash of each: what the source plans a push (and its
        # conflict check) with.
        return dict(json.loads(await manager.storage._repo.receive_listing_op(graph_id).start()))

    @receive.post("/graphs/{graph_id}/want", summary="Which of these chunks this instance lacks")
    async def receive_want(body: WantRequest, graph_id: str = GraphId) -> dict[str, Any]:
        import json

        return dict(json.loads(await manager.storage._repo.missing_chunks_op(body.chunks).start()))

    # Packs, manifests and recovery points are taken two at a time (one per core checking
    # chunks), each body read only once its turn comes: a source pushing several in flight
    # waits on TCP, and what the standby holds stays bounded however many arrive (see
    # ReceiveGate).
    gate = ReceiveGate()

    @receive.post("/packs", summary="A pack of chunks: every one is checked before any is stored")
    async def receive_pack(request: Request) -> dict[str, Any]:
        import json

        async with gate.turn():
            data = await request.body()
            if not data:
                raise HTTPError(422, "invalid_input", "a pack is sent as the request body")
            try:
                return dict(json.loads(await manager.storage._repo.receive_pack_op(data).start()))
            except IntegrityError as error:  # what the client sent is damaged: its fault, not ours
                raise HTTPError(422, "integrity", str(error)) from None

    @receive.post("/graphs/{graph_id}/key", summary="A graph's own key, before its chunks")
    async def receive_graph_key(request: Request, graph_id: str = GraphId) -> dict[str, Any]:
        import json

        data = await request.body()
        if not data or len(data) > 1 << 16:
            raise HTTPError(422, "invalid_input", "a graph key object (at most 64 KiB) is sent as the request body")
        return dict(json.loads(await manager.storage._repo.receive_graph_key_op(graph_id, data).start()))

    @receive.post("/graphs/{graph_id}/shred", summary="A shred of a graph: its key and snapshots are deleted here")
    async def receive_shred(request: Request, graph_id: str = GraphId) -> dict[str, Any]:
        import json

        data = await request.body()
        if not data or len(data) > 1 << 16:
            raise HTTPError(422, "invalid_input", "a shred record (at most 64 KiB) is sent as the request body")
        async with manager.locks.wait_hold(graph_id, "shred"):
            result = dict(json.loads(await manager.storage._repo.receive_shred_op(graph_id, data).start()))
        if result["snapshots_deleted"]:
            manager.catalog.forget_snapshots(list(result["snapshots_deleted"]))
        await asyncio.to_thread(manager._after_shred, graph_id, dict(result))
        log.warning("graph %s: shredded by the primary (%s); %d snapshot(s) deleted here", graph_id,
                    result["shredded_at"], len(result["snapshots_deleted"]))
        return result

    commits: dict[str, Any] = {}

    @receive.post("/graphs/{graph_id}/snapshots", summary="Commit a pushed snapshot (its manifest, last)")
    async def receive_snapshot(
        request: Request,
        graph_id: str = GraphId,
        expected_head: str = Query(..., pattern=r"^(none|" + SNAPSHOT_ID_PATTERN.strip("^$") + ")$",
                                   description="the graph's newest snapshot here as the push planned ('none')"),
        diverged: str = Query("", max_length=37 * 1000, pattern=r"^[0-9a-f\-,]*$",
                              description="this instance's snapshots the push marks diverged (source_wins)"),
    ) -> dict[str, Any]:
        import json

        # One commit of a graph at a time here: the head check and the commit go together.
        lock = commits.setdefault(graph_id, asyncio.Lock())
        async with lock, gate.turn():  # a commit waiting for its graph holds no receive turn
            data = await request.body()
            try:
                result = dict(json.loads(await manager.storage._repo.receive_snapshot_op(
                    graph_id, data, None if expected_head == "none" else expected_head,
                    [d for d in diverged.split(",") if d]).start()))
            except IntegrityError as error:  # chunks it needs were not pushed: nothing committed
                raise HTTPError(422, "integrity", str(error)) from None
        if result["status"] == "conflict":
            raise HTTPError(409, "conflict", result["message"])
        if result["diverged"]:
            log.warning("graph %s: a push replaced this instance's own newest snapshot(s); kept as diverged: %s",
                        graph_id, ", ".join(f"{d['snapshot_id']} -> {d['diverged_as']}" for d in result["diverged"]))
            # Their ids changed: the catalog follows the repository.
            await asyncio.to_thread(manager.rebuild_catalog_of, graph_id)
        # The standby's catalog lists what it received (the repository is the truth either way).
        snapshot = await manager._backup_of(graph_id).aget_snapshot(result["snapshot_id"])
        manager.catalog.record_snapshot(snapshot)
        if result["status"] == "committed" or result["diverged"]:
            applier.committed(graph_id)  # the head changed; after this answer: a push never waits for it
        return result

    @receive.post("/graphs/{graph_id}/snapshots/{snapshot_id}/verify",
                  summary="Read back this instance's copy of a snapshot whole (for the primary's validation)")
    async def receive_verify(graph_id: str = GraphId,
                             snapshot_id: str = PathParam(..., pattern=SNAPSHOT_ID_PATTERN)) -> dict[str, Any]:
        backup = manager._backup_of(graph_id)
        try:
            snapshot = await backup.aget_snapshot(snapshot_id)
        except SnapshotNotFoundError:
            return {"snapshot_id": snapshot_id, "present": False, "ok": False, "data_hash": None,
                    "errors": [f"this instance has no snapshot {snapshot_id} of {graph_id}"]}
        report = await backup.averify_snapshot(snapshot_id, read_data=True)
        return {"snapshot_id": snapshot_id, "present": True, "ok": report.ok, "data_hash": snapshot.data_hash,
                "errors": list(report.errors)}

    @receive.get("/recovery-points", summary="The ids of the recovery points this instance has")
    async def receive_point_ids() -> dict[str, Any]:
        import json

        return dict(json.loads(await manager.storage._repo.recovery().point_ids_op().start()))

    @receive.post("/recovery-points", summary="A recovery point, stored once every snapshot it names is here")
    async def receive_point(request: Request) -> dict[str, Any]:
        import json

        async with gate.turn():
            data = await request.body()
            if not data:
                raise HTTPError(422, "invalid_input", "a recovery point is sent as the request body")
            try:
                result = dict(json.loads(await manager.storage._repo.recovery().receive_point_op(data).start()))
            except IntegrityError as error:
                raise HTTPError(422, "integrity", str(error)) from None
        if result["status"] == "stored":
            log.info("received recovery point %s", result["checkpoint_id"])
            await asyncio.to_thread(manager.refresh_recovery_points)
        return result

    router.include_router(receive)

    @router.get("/logs", summary="Replication attempts, newest first")
    async def logs(
        graph_id: Optional[str] = Query(None, pattern=GRAPH_ID_PATTERN, max_length=128),
        target_id: Optional[str] = Query(None, pattern=TARGET_ID_PATTERN),
        status: Optional[str] = Query(None, pattern="^(completed|failed|pending|in_progress)$"),
        limit: int = Query(100, ge=1, le=10000),
    ) -> list[dict[str, Any]]:
        rows = manager.catalog.replication_logs(graph_id, target_id=target_id, status=status, limit=limit,
                                                newest_first=True)
        return rows

    return router


__all__ = ["ALLOWED_DIRS_ENV", "MAX_EPOCH", "ReceiveGate", "confine_folder_target", "create_replication_router",
           "parse_epoch"]
