"""The backup routes: the Phase 5A design's backup endpoints as a FastAPI router.

Only the routes live here; the jobs, errors, auth and the app that mounts every router are the
shared HTTP layer in :mod:`lightrag.backup.http`. Mount :func:`create_backup_router` into any
FastAPI app (LightRAG's own server included), or run the standalone app
(``lightrag-backup serve``). Long operations (snapshot, restore, verify) run as jobs: the
``POST`` answers ``202`` with a ``job_id`` and a ``status_url`` to poll; ``?wait=true``
answers when the job is done. Errors are JSON ``{"error": {"kind", "message"}}``: 404 for an
unknown graph, snapshot, job or route, 409 when an operation already runs on the graph or the
graph is busy, 413 for a body over 1 MiB, 422 for bad input, 401/403 for a missing or wrong
``X-API-Key``.

Needs ``fastapi`` (``pip install 'lightrag-backup[server]'``).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any, Callable, Optional, Union

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from .http.errors import HTTPError
from .types import GRAPH_ID_PATTERN, SNAPSHOT_ID_PATTERN
from .http.errors import install_error_handlers as _install_error_handlers
from .http.jobs import Job, JobRunner, jobs_router

if TYPE_CHECKING:
    from .manager import BackupManager



GraphId = PathParam(..., pattern=GRAPH_ID_PATTERN, max_length=128, description="the graph's id")
SnapshotId = PathParam(..., pattern=SNAPSHOT_ID_PATTERN, max_length=64, description="a snapshot id, a unique prefix of one, or latest")


class SnapshotRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: Optional[str] = Field(None, max_length=4096)
    tags: list[str] = Field(default_factory=list, max_length=32)


class RestoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    safety_snapshot: bool = Field(True, description="keep the replaced state as a snapshot tagged pre-restore")
    documents: Optional[list[Annotated[str, Field(min_length=1, max_length=1000)]]] = Field(
        None, min_length=1, max_length=1000,
        description="restore only these documents (ids or file paths) into the graph as it is now, with their "
                    "chunks, vectors, LLM cache, entities and relations",
    )
    entities: Optional[list[Annotated[str, Field(min_length=1, max_length=1000)]]] = Field(
        None, min_length=1, max_length=1000,
        description="put only these entities (deleted or edited by hand) back as the snapshot holds them, with "
                    "their relations",
    )
    replace: bool = Field(False, description="with documents or entities: replace the graph's current version")
    dry_run: bool = Field(False, description="with documents or entities: answer the plan, change nothing")


class VerifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    read_data: bool = True
    read_data_subset: Optional[float] = Field(None, gt=0, le=1)


class RetentionModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keep_last: Optional[int] = Field(None, ge=0, le=100000)
    keep_hourly: Optional[int] = Field(None, ge=0, le=100000)
    keep_daily: Optional[int] = Field(None, ge=0, le=100000)
    keep_weekly: Optional[int] = Field(None, ge=0, le=100000)
    keep_monthly: Optional[int] = Field(None, ge=0, le=100000)
    keep_yearly: Optional[int] = Field(None, ge=0, le=100000)
    keep_within: Optional[str] = Field(None, max_length=32, description="a duration such as 30d, 12h, 2w")
    retention_days: Optional[float] = Field(None, ge=0, le=100000)
    keep_tags: list[str] = Field(default_factory=list, max_length=32)


class RetentionRequest(RetentionModel):
    graph_id: Optional[str] = Field(None, pattern=GRAPH_ID_PATTERN, max_length=128,
                                    description="only this graph (default: every graph)")
    dry_run: bool = Field(False, description="the plan only: remove nothing")


class ShredRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    confirm: str = Field(..., max_length=128,
                         description="the graph id again: shredding erases every snapshot of the graph for good")


class PruneRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grace_seconds: float = Field(3600, ge=0, le=10**8, description="how long marked data waits before deletion")
    repack_threshold: float = Field(0.25, ge=0, le=1)
    dry_run: bool = False


#: The lock key of repository-wide jobs (forget across graphs, prune): no graph id starts with '('.
REPOSITORY_JOB = "(repository)"


class ScheduleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    graph_id: str = Field(..., pattern=GRAPH_ID_PATTERN, max_length=128)
    interval: Union[float, str] = Field(
        ..., description="hours as a number, text such as 6h / 30m / 1d, or a cron expression such as '0 3 * * *'"
    )
    retention: Optional[RetentionModel] = None


def create_backup_router(
    manager: "BackupManager",
    *,
    dependencies: Optional[list[Any]] = None,
    resolve_graph: Optional[Callable[[str], None]] = None,
    runner: Optional[JobRunner] = None,
) -> APIRouter:
    """The backup endpoints over ``manager``. ``dependencies`` guard every route (LightRAG's
    auth dependency when mounted into its server). ``resolve_graph(graph_id)`` may register a
    graph on first use (the standalone server's folder of graphs). ``runner`` is the app's
    shared job runner; without one the router brings its own, with ``/backup/jobs/{id}``.
    Call :func:`install_error_handlers` on the app as well."""
    router = APIRouter(prefix="/backup", tags=["backup"], dependencies=dependencies or [])
    if runner is None:
        runner = JobRunner(manager.locks)
        router.include_router(jobs_router(runner, prefix="/jobs"))
    router.jobs = runner  # type: ignore[attr-defined]

    def graph(graph_id: str) -> Any:
        if resolve_graph is not None:
            resolve_graph(graph_id)
        return manager.get_graph(graph_id)

    def known(graph_id: str) -> Any:
        """A registered graph, or one that only has snapshots in the repository."""
        if resolve_graph is not None:
            resolve_graph(graph_id)
        return manager.known_graph(graph_id)

    answer = runner.answer

    @router.get("/health", summary="Liveness and what this server serves")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "repository": manager.storage.url,
            "graphs": manager.graph_ids,
            "scheduler_running": manager.scheduler.running,
            "jobs_running": len(runner.running),
        }

    @router.post("/graphs/{graph_id}/snapshots", status_code=202, summary="Create a snapshot now")
    async def create_snapshot(
        request: Request,
        graph_id: str = GraphId,
        body: Optional[SnapshotRequest] = None,
        wait: bool = Query(False, description="answer when the snapshot is committed"),
    ) -> JSONResponse:
        backup = graph(graph_id)
        body = body or SnapshotRequest.model_validate({})

        async def work(job: Job) -> Any:
            snapshot = await backup.acreate_snapshot(body.description, body.tags, progress=job.progress)
            return snapshot.to_dict()

        return await answer(request, runner.start("snapshot", graph_id, work), wait)

    @router.get("/graphs/{graph_id}/snapshots", summary="List a graph's snapshots, oldest first")
    async def list_snapshots(graph_id: str = GraphId) -> list[dict[str, Any]]:
        backup = known(graph_id)

        def listing() -> list[dict[str, Any]]:
            listed = [s.to_dict() for s in backup.list_snapshots()]
            # A damaged manifest hides nothing else: the rest are listed, it is flagged (as the
            # CLI's `list --json` does); `verify` names the damage, `delete` or `repair` resolves it.
            unreadable = manager.storage.unreadable_snapshots(graph_id)
            return listed + [dict(u, unreadable=True) for u in unreadable]

        return await asyncio.to_thread(manager.viewed, ("snapshots", graph_id), listing)

    @router.get("/graphs/{graph_id}/snapshots/{snapshot_id}", summary="A snapshot with its files")
    async def get_snapshot(graph_id: str = GraphId, snapshot_id: str = SnapshotId) -> dict[str, Any]:
        snapshot = await known(graph_id).aget_snapshot(snapshot_id)
        return snapshot.to_dict() | {"files": [vars(f) for f in snapshot.files]}

    @router.get("/graphs/{graph_id}/diff", summary="What changed in a graph between two snapshots, or since one")
    async def diff(
        graph_id: str = GraphId,
        from_snapshot: str = Query(..., alias="from", min_length=1, max_length=100,
                                   description="a snapshot id, a unique prefix of one, latest, or a recovery point id"),
        to: str = Query("live", min_length=1, max_length=100,
                        description="another snapshot (or recovery point), or live: the graph as it is now"),
        offset: int = Query(0, ge=0, description="first item of each list"),
        limit: int = Query(100, ge=0, le=10000, description="items per list (counts are whole)"),
    ) -> dict[str, Any]:
        backup = graph(graph_id) if to == "live" else known(graph_id)
        found = await backup.adiff(from_snapshot, to)
        return found.paged(offset, limit)

    @router.get("/graphs/{graph_id}/deleted",
                summary="Documents earlier snapshots hold and the graph no longer does, each with its newest snapshot")
    async def deleted_documents(graph_id: str = GraphId) -> list[dict[str, Any]]:
        return await known(graph_id).adeleted_documents()

    @router.delete("/graphs/{graph_id}/snapshots/{snapshot_id}", summary="Delete a snapshot (a prune frees its data)")
    async def delete_snapshot(graph_id: str = GraphId, snapshot_id: str = SnapshotId) -> dict[str, Any]:
        backup = known(graph_id)
        full_id = (await backup.aget_snapshot(snapshot_id)).snapshot_id
        with manager.locks.hold(graph_id, "delete"):
            await backup.adelete_snapshot(full_id)
        return {"deleted": full_id, "graph_id": graph_id}

    @router.post("/graphs/{graph_id}/snapshots/{snapshot_id}/restore", status_code=202,
                 summary="Restore the graph from a snapshot, in place")
    async def restore_snapshot(
        request: Request,
        graph_id: str = GraphId,
        snapshot_id: str = SnapshotId,
        body: Optional[RestoreRequest] = None,
        wait: bool = Query(False, description="answer when the restore is done"),
    ) -> JSONResponse:
        backup = graph(graph_id)
        full_id = (await backup.aget_snapshot(snapshot_id)).snapshot_id
        body = body or RestoreRequest.model_validate({})

        if body.documents is not None and body.entities is not None:
            raise HTTPError(422, "invalid_input", "restore documents or entities, one at a time")
        if body.documents is None and body.entities is None and (body.replace or body.dry_run):
            raise HTTPError(422, "invalid_input",
                            "replace and dry_run apply to a restore of documents or entities: name them")

        async def work(job: Job) -> Any:
            # Always in place: into the graph's own folder, or its live LightRAG instance.
            if body.documents is not None or body.entities is not None:
                restore_some = backup.arestore_documents if body.documents is not None else backup.arestore_entities
                return await restore_some(full_id, body.documents or body.entities, replace=body.replace,
                                          dry_run=body.dry_run, safety_snapshot=body.safety_snapshot,
                                          progress=job.progress)
            await backup.arestore_snapshot(full_id, safety_snapshot=body.safety_snapshot, progress=job.progress)
            return backup.last_restore

        return await answer(request, runner.start("restore", graph_id, work), wait)

    @router.post("/graphs/{graph_id}/snapshots/{snapshot_id}/verify", status_code=202,
                 summary="Verify a snapshot (reading all its data by default)")
    async def verify_snapshot(
        request: Request,
        graph_id: str = GraphId,
        snapshot_id: str = SnapshotId,
        body: Optional[VerifyRequest] = None,
        wait: bool = Query(False, description="answer when the verification is done"),
    ) -> JSONResponse:
        backup = known(graph_id)
        full_id = (await backup.aget_snapshot(snapshot_id)).snapshot_id
        body = body or VerifyRequest.model_validate({})

        async def work(job: Job) -> Any:
            report = await backup.averify_snapshot(
                full_id, body.read_data, read_data_subset=body.read_data_subset, progress=job.progress
            )
            return report.to_dict()

        return await answer(request, runner.start("verify", graph_id, work), wait)

    @router.post("/graphs/{graph_id}/shred",
                 summary="Shred a graph: delete its key, so that no snapshot of it can be read again, anywhere")
    async def shred(body: ShredRequest, graph_id: str = GraphId) -> dict[str, Any]:
        return await manager.ashred_graph(graph_id, confirm=body.confirm)

    @router.get("/shredded", summary="The shredded graphs: when, where, by whom")
    async def shredded() -> list[dict[str, Any]]:
        return await asyncio.to_thread(manager.shredded_graphs)

    @router.post("/schedule", summary="Create or update a graph's backup schedule")
    async def set_schedule(body: ScheduleRequest) -> dict[str, Any]:
        graph(body.graph_id)
        retention = None
        if body.retention is not None:
            retention = {k: v for k, v in body.retention.model_dump().items() if v not in (None, [])}
        manager.schedule_backup(body.graph_id, body.interval, retention=retention or None)
        schedule = manager.get_schedule(body.graph_id)
        assert schedule is not None
        return schedule

    @router.get("/schedule/{graph_id}", summary="A graph's schedule: next and last run, last result")
    async def get_schedule(graph_id: str = GraphId) -> dict[str, Any]:
        schedule = manager.get_schedule(graph_id)
        if schedule is None:
            raise HTTPError(404, "schedule_not_found", f"graph {graph_id!r} has no schedule")
        return schedule

    @router.get("/stats", summary="Per graph and overall storage statistics")
    async def stats() -> dict[str, Any]:
        return await asyncio.to_thread(manager.get_backup_stats)

    @router.get("/graphs", summary="Every graph: its newest snapshot, schedule and last verify")
    async def graphs() -> list[dict[str, Any]]:
        return await asyncio.to_thread(manager.graphs_overview)

    @router.post("/retention", status_code=202, summary="Forget the snapshots a retention policy does not keep")
    async def apply_retention(
        request: Request,
        body: RetentionRequest,
        wait: bool = Query(False, description="answer when the retention run is done"),
    ) -> JSONResponse:
        rules = {k: v for k, v in body.model_dump(exclude={"graph_id", "dry_run"}).items() if v not in (None, [])}
        if not rules:
            raise HTTPError(422, "invalid_input", "say what to keep: keep_last, keep_daily, ..., keep_within or keep_tags")
        if body.graph_id is not None:
            known(body.graph_id)

        async def work(job: Job) -> Any:
            return await manager.aapply_retention(rules, graph_id=body.graph_id, dry_run=body.dry_run)

        key = body.graph_id or REPOSITORY_JOB
        return await answer(request, runner.start("retention", key, work), wait)

    @router.post("/repair", status_code=202, summary="Heal damaged data from the graphs' current files")
    async def repair(
        request: Request,
        dry_run: bool = Query(False, description="find and report the damage, change nothing"),
        wait: bool = Query(False, description="answer when the repair is done"),
    ) -> JSONResponse:
        async def work(job: Job) -> Any:
            return await manager.arepair(dry_run=dry_run, progress=job.progress)

        return await answer(request, runner.start("repair", REPOSITORY_JOB, work), wait)

    @router.post("/prune", status_code=202, summary="Free data no snapshot references (two phases, grace period)")
    async def prune(
        request: Request,
        body: Optional[PruneRequest] = None,
        wait: bool = Query(False, description="answer when the prune is done"),
    ) -> JSONResponse:
        body = body or PruneRequest.model_validate({})

        async def work(job: Job) -> Any:
            return await manager.aprune(body.grace_seconds, dry_run=body.dry_run,
                                        repack_threshold=body.repack_threshold, progress=job.progress)

        return await answer(request, runner.start("prune", REPOSITORY_JOB, work), wait)

    return router


def install_error_handlers(app: Any) -> None:
    """The uniform JSON errors: see :func:`lightrag.backup.http.errors.install_error_handlers`."""
    _install_error_handlers(app)


__all__ = [
    "GRAPH_ID_PATTERN",
    "SNAPSHOT_ID_PATTERN",
    "create_backup_router",
    "install_error_handlers",
]
