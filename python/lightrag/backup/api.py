"""The REST API: the seed's backup endpoints as a FastAPI router.

Mount :func:`create_backup_router` into any FastAPI app (LightRAG's own server included), or run
:func:`create_app` standalone (``lightrag-backup serve``). Long operations (snapshot, restore,
verify) run as jobs: the ``POST`` answers ``202`` with a ``job_id`` and a ``status_url`` to
poll; ``?wait=true`` answers when the job is done. Errors are JSON ``{"error": {"kind",
"message"}}`` (FastAPI's own validation errors keep their ``detail`` list): 404 for an
unknown graph, snapshot or job, 409 when an operation already runs on the graph or the graph
is busy, 422 for bad input, 401/403 for a missing or wrong ``X-API-Key``.

Needs ``fastapi`` (``pip install 'lightrag-backup[server]'``).
"""

from __future__ import annotations

import asyncio
import hmac
import os
import time
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional, Union

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, Field

from .errors import (
    BackupError,
    GraphBusyError,
    GraphDirNotFoundError,
    GraphNotFoundError,
    IntegrityError,
    InvalidInputError,
    RepositoryConflictError,
    SnapshotNotFoundError,
    StorageBackendError,
)

if TYPE_CHECKING:
    from .manager import BackupManager

GRAPH_ID_PATTERN = r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,127}$"
SNAPSHOT_ID_PATTERN = r"^[0-9a-fA-F][0-9a-fA-F\-]{0,63}$"
JOB_ID_PATTERN = r"^[0-9a-f]{32}$"
MAX_JOBS = 1000

GraphId = PathParam(..., pattern=GRAPH_ID_PATTERN, max_length=128, description="the graph's id")
SnapshotId = PathParam(..., pattern=SNAPSHOT_ID_PATTERN, max_length=64, description="a snapshot id or a unique prefix of one")


class SnapshotRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: Optional[str] = Field(None, max_length=4096)
    tags: list[str] = Field(default_factory=list, max_length=32)


class RestoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    safety_snapshot: bool = Field(True, description="keep the replaced state as a snapshot tagged pre-restore")


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


class ScheduleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    graph_id: str = Field(..., pattern=GRAPH_ID_PATTERN, max_length=128)
    interval: Union[float, str] = Field(
        ..., description="hours as a number, text such as 6h / 30m / 1d, or a cron expression such as '0 3 * * *'"
    )
    retention: Optional[RetentionModel] = None


_STATUS: list[tuple[type[BaseException], int]] = [
    (GraphNotFoundError, 404),
    (SnapshotNotFoundError, 404),
    (GraphDirNotFoundError, 404),
    (InvalidInputError, 422),
    (GraphBusyError, 409),
    (RepositoryConflictError, 409),
    (IntegrityError, 500),
    (StorageBackendError, 503),
]


def status_of(error: BackupError) -> int:
    for cls, status in _STATUS:
        if isinstance(error, cls):
            return status
    return 500


def error_body(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"kind": kind, "message": message}}


class JobConflict(Exception):
    def __init__(self, graph_id: str, job_id: str) -> None:
        super().__init__(f"an operation is already running on graph {graph_id!r} (job {job_id})")
        self.job_id = job_id


class Job:
    """One long operation: its state, progress, result or error."""

    def __init__(self, kind: str, graph_id: str) -> None:
        self.job_id = uuid.uuid4().hex
        self.kind = kind
        self.graph_id = graph_id
        self.state = "queued"
        self.phase = ""
        self.done = 0
        self.total = 0
        self.result: Any = None
        self.error: Optional[dict[str, Any]] = None
        self.status_code = 200
        self.created_at = time.time()
        self.finished_at: Optional[float] = None
        self.task: Optional["asyncio.Task[None]"] = None

    def progress(self, phase: str, done: int, total: int) -> None:
        self.phase, self.done, self.total = phase, done, total

    def view(self, prefix: str) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "kind": self.kind,
            "graph_id": self.graph_id,
            "state": self.state,
            "progress": {"phase": self.phase, "done": self.done, "total": self.total,
                         "fraction": (self.done / self.total) if self.total else (1.0 if self.state == "succeeded" else 0.0)},
            "result": self.result,
            "error": self.error,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "status_url": f"{prefix}/backup/jobs/{self.job_id}",
        }


class JobRunner:
    """Runs jobs on the server's event loop, one at a time per graph."""

    def __init__(self) -> None:
        self.jobs: "OrderedDict[str, Job]" = OrderedDict()
        self.active: dict[str, Job] = {}

    def start(self, kind: str, graph_id: str, work: Callable[[Job], Awaitable[Any]]) -> Job:
        running = self.active.get(graph_id)
        if running is not None:
            raise JobConflict(graph_id, running.job_id)
        job = Job(kind, graph_id)
        self.active[graph_id] = job
        self.jobs[job.job_id] = job
        while len(self.jobs) > MAX_JOBS:
            oldest_id, oldest = next(iter(self.jobs.items()))
            if oldest.state in ("queued", "running"):
                break
            del self.jobs[oldest_id]

        async def run() -> None:
            job.state = "running"
            try:
                job.result = await work(job)
                job.state = "succeeded"
            except BackupError as error:
                job.state, job.status_code = "failed", status_of(error)
                job.error = {"kind": error.kind, "message": str(error)}
            except Exception as error:  # noqa: BLE001 - reported to the client, never swallowed
                job.state, job.status_code = "failed", 500
                job.error = {"kind": "internal", "message": f"{type(error).__name__}: {error}"}
            finally:
                job.finished_at = time.time()
                self.active.pop(graph_id, None)

        job.task = asyncio.get_running_loop().create_task(run())
        return job

    async def drain(self) -> None:
        """Wait for every running job (at shutdown: a snapshot or restore is never cut off)."""
        tasks = [job.task for job in self.active.values() if job.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


def api_key_dependency(api_key: Optional[str]) -> Callable[..., Awaitable[None]]:
    """``X-API-Key`` checked in constant time; no key configured means no check."""
    header = APIKeyHeader(name="X-API-Key", auto_error=False)

    async def check(key: Optional[str] = Depends(header)) -> None:
        if not api_key:
            return
        if key is None:
            raise _HTTPError(401, "unauthorized", "missing X-API-Key header")
        if not hmac.compare_digest(key.encode(), api_key.encode()):
            raise _HTTPError(403, "forbidden", "wrong API key")

    return check


class _HTTPError(Exception):
    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


def install_error_handlers(app: FastAPI) -> None:
    """JSON bodies for lightrag-backup's errors (needed once per app)."""

    @app.exception_handler(BackupError)
    async def backup_error(_request: Request, error: BackupError) -> JSONResponse:
        return JSONResponse(error_body(error.kind, str(error)), status_code=status_of(error))

    @app.exception_handler(JobConflict)
    async def job_conflict(_request: Request, error: JobConflict) -> JSONResponse:
        body = error_body("operation_running", str(error))
        body["error"]["job_id"] = error.job_id
        return JSONResponse(body, status_code=409)

    @app.exception_handler(_HTTPError)
    async def http_error(_request: Request, error: _HTTPError) -> JSONResponse:
        return JSONResponse(error_body(error.kind, error.message), status_code=error.status)


def create_backup_router(
    manager: "BackupManager",
    *,
    dependencies: Optional[list[Any]] = None,
    resolve_graph: Optional[Callable[[str], None]] = None,
) -> APIRouter:
    """The backup endpoints over ``manager``. ``dependencies`` guard every route (LightRAG's
    auth dependency when mounted into its server). ``resolve_graph(graph_id)`` may register a
    graph on first use (the standalone server's folder of graphs). Call
    :func:`install_error_handlers` on the app as well."""
    router = APIRouter(prefix="/backup", tags=["backup"], dependencies=dependencies or [])
    runner = JobRunner()
    router.jobs = runner  # type: ignore[attr-defined]

    def graph(graph_id: str) -> Any:
        if resolve_graph is not None:
            resolve_graph(graph_id)
        return manager.get_graph(graph_id)

    def known(graph_id: str) -> Any:
        """A registered graph, or one that only has snapshots in the repository."""
        try:
            return graph(graph_id)
        except GraphNotFoundError:
            if graph_id in manager.storage.list_graphs():
                return manager._backup_of(graph_id)
            raise

    def prefix(request: Request) -> str:
        return request.scope.get("root_path", "")

    async def answer(request: Request, job: Job, wait: bool) -> JSONResponse:
        if wait:
            assert job.task is not None
            await asyncio.shield(job.task)
            if job.state == "failed":
                assert job.error is not None
                return JSONResponse({"error": job.error, "job": job.view(prefix(request))}, status_code=job.status_code)
            return JSONResponse(job.view(prefix(request)), status_code=200)
        return JSONResponse(job.view(prefix(request)), status_code=202,
                            headers={"Location": job.view(prefix(request))["status_url"]})

    @router.get("/health", summary="Liveness and what this server serves")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "repository": manager.storage.url,
            "graphs": manager.graph_ids,
            "scheduler_running": manager.scheduler.running,
            "jobs_running": len(runner.active),
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
        return [s.to_dict() for s in await known(graph_id).alist_snapshots()]

    @router.get("/graphs/{graph_id}/snapshots/{snapshot_id}", summary="A snapshot with its files")
    async def get_snapshot(graph_id: str = GraphId, snapshot_id: str = SnapshotId) -> dict[str, Any]:
        snapshot = await known(graph_id).aget_snapshot(snapshot_id)
        return snapshot.to_dict() | {"files": [vars(f) for f in snapshot.files]}

    @router.delete("/graphs/{graph_id}/snapshots/{snapshot_id}", summary="Delete a snapshot (a prune frees its data)")
    async def delete_snapshot(graph_id: str = GraphId, snapshot_id: str = SnapshotId) -> dict[str, Any]:
        backup = known(graph_id)
        full_id = (await backup.aget_snapshot(snapshot_id)).snapshot_id
        if graph_id in runner.active:
            raise JobConflict(graph_id, runner.active[graph_id].job_id)
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

        async def work(job: Job) -> Any:
            # Always in place: into the graph's own folder, or its live LightRAG instance.
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

    @router.get("/jobs/{job_id}", summary="A job's state, progress, result or error")
    async def get_job(request: Request, job_id: str = PathParam(..., pattern=JOB_ID_PATTERN)) -> dict[str, Any]:
        job = runner.jobs.get(job_id)
        if job is None:
            raise _HTTPError(404, "job_not_found", f"no job {job_id}")
        return job.view(prefix(request))

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
            raise _HTTPError(404, "schedule_not_found", f"graph {graph_id!r} has no schedule")
        return schedule

    @router.get("/stats", summary="Per graph and overall storage statistics")
    async def stats() -> dict[str, Any]:
        return await asyncio.to_thread(manager.get_backup_stats)

    return router


def create_app(
    manager: "BackupManager",
    *,
    api_key: Optional[str] = None,
    graphs_dir: Optional[Path] = None,
    run_scheduler: bool = True,
) -> FastAPI:
    """A standalone server over ``manager``. With ``graphs_dir``, every subfolder is a graph
    (its name the graph id), registered when first asked for; restores go back into it.
    ``api_key`` defaults to ``LIGHTRAG_API_KEY``."""
    from contextlib import asynccontextmanager

    key = api_key if api_key is not None else os.environ.get("LIGHTRAG_API_KEY")

    def resolve(graph_id: str) -> None:
        if graphs_dir is None or graph_id in manager.graph_ids:
            return
        folder = graphs_dir / graph_id
        if folder.is_dir():
            manager.register_graph(graph_id, folder)

    if graphs_dir is not None:
        for child in sorted(graphs_dir.iterdir()):
            if child.is_dir() and not child.name.startswith("."):
                try:
                    manager.register_graph(child.name, child)
                except InvalidInputError:
                    continue  # not a valid graph id: not served

    router = create_backup_router(manager, dependencies=[Depends(api_key_dependency(key))], resolve_graph=resolve)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> Any:
        if run_scheduler:
            await manager.start_scheduler()
        try:
            yield
        finally:
            await manager.stop_scheduler()
            await router.jobs.drain()  # type: ignore[attr-defined]

    app = FastAPI(title="lightrag-backup", version=_version(), lifespan=lifespan)
    install_error_handlers(app)

    @app.get("/health", tags=["health"], summary="Liveness probe (no key needed)")
    async def liveness() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(router)
    return app


def _version() -> str:
    from . import __version__

    return __version__


__all__ = [
    "GRAPH_ID_PATTERN",
    "SNAPSHOT_ID_PATTERN",
    "api_key_dependency",
    "create_app",
    "create_backup_router",
    "install_error_handlers",
    "status_of",
]
