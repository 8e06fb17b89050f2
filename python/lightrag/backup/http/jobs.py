"""Long operations as jobs: ``POST`` answers ``202`` with a ``job_id``, a ``status_url`` and
a ``Location`` header; ``GET /backup/jobs/{id}`` shows state and progress; ``?wait=true``
answers when the job is done. One job runner per app, shared by every router.

A job holds its graph's lock from the manager's lock set (:class:`~lightrag.backup.locks.GraphLocks`)
for as long as it runs, so a job and a scheduled backup of one graph never overlap: a second
operation on a busy graph is refused with ``409`` (kind ``operation_running``).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from typing import Any, Awaitable, Callable, Optional

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse

from ..errors import BackupError
from ..locks import GraphLocks, Holder
from .errors import HTTPError, body_of, error_body, status_of

#: Finished jobs kept for ``GET /jobs/{id}`` (the oldest are forgotten first).
MAX_JOBS = 1000
JOB_ID_PATTERN = r"^[0-9a-f]{32}$"
#: Where job status lives, under the app's root path.
JOBS_PATH = "/backup/jobs"


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

    def view(self, root_path: str) -> dict[str, Any]:
        fraction = (self.done / self.total) if self.total else (1.0 if self.state == "succeeded" else 0.0)
        return {
            "job_id": self.job_id,
            "kind": self.kind,
            "graph_id": self.graph_id,
            "state": self.state,
            "progress": {"phase": self.phase, "done": self.done, "total": self.total, "fraction": fraction},
            "result": self.result,
            "error": self.error,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "status_url": f"{root_path}{JOBS_PATH}/{self.job_id}",
        }


class JobRunner:
    """Runs jobs on the server's event loop, each holding its graph's lock."""

    def __init__(self, locks: GraphLocks) -> None:
        self.locks = locks
        self.jobs: "OrderedDict[str, Job]" = OrderedDict()
        self.running: dict[str, Job] = {}

    def start(self, kind: str, graph_id: str, work: Callable[[Job], Awaitable[Any]]) -> Job:
        """Start ``work(job)`` now; :class:`OperationRunningError` when the graph is busy."""
        job = Job(kind, graph_id)
        holder = self.locks.try_acquire(graph_id, kind, job.job_id)
        self.jobs[job.job_id] = job
        self.running[job.job_id] = job
        self._forget_old()
        job.task = asyncio.get_running_loop().create_task(self._run(job, holder, work))
        return job

    async def _run(self, job: Job, holder: Holder, work: Callable[[Job], Awaitable[Any]]) -> None:
        job.state = "running"
        try:
            job.result = await work(job)
            job.state = "succeeded"
        except BackupError as error:
            job.state, job.status_code, job.error = "failed", status_of(error), body_of(error)["error"]
        except Exception as error:  # noqa: BLE001 - reported to the client, never swallowed
            job.state, job.status_code = "failed", 500
            job.error = error_body("internal", f"{type(error).__name__}: {error}")["error"]
        finally:
            job.finished_at = time.time()
            self.locks.release(holder)
            self.running.pop(job.job_id, None)

    def _forget_old(self) -> None:
        while len(self.jobs) > MAX_JOBS:
            oldest_id, oldest = next(iter(self.jobs.items()))
            if oldest.state in ("queued", "running"):
                break
            del self.jobs[oldest_id]

    async def drain(self) -> None:
        """Wait for every running job (at shutdown: a snapshot or restore is never cut off)."""
        tasks = [job.task for job in self.running.values() if job.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def answer(self, request: Request, job: Job, wait: bool) -> JSONResponse:
        """The response to the ``POST`` that started ``job``: ``202`` now, or with ``wait``
        the finished job (``200``), or its error with the error's status."""
        root = request.scope.get("root_path", "")
        if wait:
            assert job.task is not None
            await asyncio.shield(job.task)
            if job.state == "failed":
                assert job.error is not None
                return JSONResponse({"error": job.error, "job": job.view(root)}, status_code=job.status_code)
            return JSONResponse(job.view(root), status_code=200)
        view = job.view(root)
        return JSONResponse(view, status_code=202, headers={"Location": view["status_url"]})


def jobs_router(runner: JobRunner, *, dependencies: Optional[list[Any]] = None, prefix: str = JOBS_PATH) -> APIRouter:
    """``GET /backup/jobs/{job_id}``: one router for the jobs of every router (``prefix`` is
    relative to where it is included)."""
    router = APIRouter(prefix=prefix, tags=["jobs"], dependencies=dependencies or [])

    @router.get("/{job_id}", summary="A job's state, progress, result or error")
    async def get_job(request: Request, job_id: str = PathParam(..., pattern=JOB_ID_PATTERN)) -> dict[str, Any]:
        job = runner.jobs.get(job_id)
        if job is None:
            raise HTTPError(404, "job_not_found", f"no job {job_id}")
        return job.view(request.scope.get("root_path", ""))

    return router


__all__ = ["JOB_ID_PATTERN", "Job", "JobRunner", "MAX_JOBS", "jobs_router"]
