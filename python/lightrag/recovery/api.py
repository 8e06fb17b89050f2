"""The recovery routes: the Phase 5A design's six endpoints under ``/recovery`` (fields use the Phase 5A design's
column names) and the role endpoints a load balancer checks.

- ``POST /recovery/checkpoint`` ``{graphs?, description?, created_by?}`` -> ``201`` the point;
  ``GET /recovery/checkpoints`` (newest first), ``GET``/``DELETE /recovery/checkpoints/{id}``.
- ``POST /recovery/checkpoints/{id}/validate`` and ``.../drill`` -> a job (``?wait=true``);
  ``POST /recovery/checkpoints/{id}/failover`` -> a job whose result is the failover report,
  or with ``?dry_run=true`` the plan at once. A failover while another runs is ``409``.
- ``GET /recovery/status``; ``POST /recovery/health-check`` (every graph validated now).
- ``POST /recovery/switchover {candidate}`` -> a job: the planned change of primary (RPO 0,
  :mod:`lightrag.recovery.switchover`); ``POST /recovery/promote`` is the candidate's half,
  called by the primary; ``GET /recovery/lease`` the failover lease as this instance sees it.
- ``GET /primary`` answers 200 only on a primary that nobody fenced, 503 elsewhere;
  ``GET /standby`` 200 only on a standby. Both carry ``{role, epoch, fenced, acting_as}``,
  answer ``HEAD`` too, and need no key (they say nothing secret, and a health checker rarely
  carries one), as Patroni's REST API offers them (usable as an HAProxy ``httpchk``).

Unknown ids are 404, bad input 422, never a 5xx.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from lightrag.backup.http.jobs import Job, JobRunner
from lightrag.backup.types import GRAPH_ID_PATTERN
from lightrag.replication.peer import ROUTES

from .roles import instance_status

if TYPE_CHECKING:
    from lightrag.backup.manager import BackupManager

#: A recovery point id, a unique prefix of one, or ``latest``.
CHECKPOINT_REF_PATTERN = r"^(latest|[0-9a-fA-F][0-9a-fA-F\-]{0,35})$"

#: Jobs hold a lock key that no graph id can take (graph ids never start with '.').
_RECOVERY_JOBS = ".recovery"
_FAILOVER_JOB = ".failover"


class CheckpointRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    graphs: Optional[list[str]] = Field(None, max_length=10000,
                                        description="graph ids (default: every graph this instance serves)")
    description: Optional[str] = Field(None, max_length=4096)
    created_by: Optional[str] = Field(None, max_length=256)

    def checked_graphs(self) -> Optional[list[str]]:
        import re

        from lightrag.backup.errors import InvalidInputError

        for graph_id in self.graphs or []:
            if not re.fullmatch(GRAPH_ID_PATTERN, graph_id) or len(graph_id) > 128:
                raise InvalidInputError(f"graph id {graph_id[:80]!r} is not valid")
        return self.graphs


class SwitchoverRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    candidate: str = Field(..., min_length=1, max_length=256,
                           description="the name or id of the instance replication target to hand over to")


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checkpoint_id: str = Field(..., pattern=CHECKPOINT_REF_PATTERN)
    from_epoch: int = Field(..., ge=0, le=2**53)
    from_: Optional[str] = Field(None, alias="from", max_length=256)


CheckpointId = Path(..., pattern=CHECKPOINT_REF_PATTERN, description="a recovery point id, unique prefix, or latest")


def create_recovery_router(
    manager: "BackupManager",
    *,
    runner: JobRunner,
    dependencies: Optional[list[Any]] = None,
    resolve_graph: Optional[Callable[[str], None]] = None,
) -> APIRouter:
    """The recovery endpoints over ``manager`` (its :func:`recovery_manager_for`)."""
    import asyncio

    from .disaster_recovery import recovery_manager_for

    recovery = recovery_manager_for(manager)
    router = APIRouter(tags=["recovery"])
    guarded = APIRouter(prefix="/recovery", tags=["recovery"], dependencies=dependencies or [])

    async def answer(wanted: str) -> JSONResponse:
        status = await asyncio.to_thread(instance_status, manager.catalog, recovery.lease)
        return JSONResponse(status, status_code=200 if status["acting_as"] == wanted else 503)

    @router.api_route("/primary", methods=["GET", "HEAD"], summary="200 on the primary, 503 elsewhere (no key)")
    async def primary() -> JSONResponse:
        return await answer("primary")

    @router.api_route("/standby", methods=["GET", "HEAD"], summary="200 on a standby, 503 elsewhere (no key)")
    async def standby() -> JSONResponse:
        return await answer("standby")

    @guarded.post("/checkpoint", status_code=201, summary="Take a recovery point: one snapshot per graph, together")
    async def checkpoint(body: Optional[CheckpointRequest] = None) -> dict[str, Any]:
        body = body or CheckpointRequest.model_validate({})  # no body: every graph, no description
        graphs = body.checked_graphs()
        if graphs is not None and resolve_graph is not None:
            for graph_id in graphs:
                resolve_graph(graph_id)
        point = await recovery.acreate_recovery_point(graphs, body.description, body.created_by)
        return point.to_dict()

    @guarded.get("/checkpoints", summary="Every recovery point, newest first")
    async def checkpoints() -> list[dict[str, Any]]:
        return [p.to_dict() for p in await recovery.alist_recovery_points()]

    @guarded.get("/checkpoints/{checkpoint_id}", summary="One recovery point")
    async def get_checkpoint(checkpoint_id: str = CheckpointId) -> dict[str, Any]:
        return (await recovery.aget_recovery_point(checkpoint_id)).to_dict()

    @guarded.delete("/checkpoints/{checkpoint_id}", summary="Delete a recovery point (its snapshots are released)")
    async def delete_checkpoint(checkpoint_id: str = CheckpointId) -> dict[str, Any]:
        point = await recovery.aget_recovery_point(checkpoint_id)
        await recovery.adelete_recovery_point(point.checkpoint_id)
        return {"checkpoint_id": point.checkpoint_id, "deleted": True}

    async def point_job(request: Request, checkpoint_id: str, wait: bool, kind: str, lock: str,
                        run: Callable[[str], Awaitable[dict[str, Any]]]) -> JSONResponse:
        """``run(full point id)`` as a job holding ``lock`` (an unknown point is 404 first)."""
        point = await recovery.aget_recovery_point(checkpoint_id)

        async def work(job: Job) -> dict[str, Any]:
            return await run(point.checkpoint_id)

        return await runner.answer(request, runner.start(kind, lock, work), wait)

    @guarded.post("/checkpoints/{checkpoint_id}/validate",
                  summary="Validate a recovery point: each snapshot restored to scratch and checked as LightRAG reads it")
    async def validate(request: Request, checkpoint_id: str = CheckpointId,
                       wait: bool = Query(False, description="answer when the validation is done")) -> JSONResponse:
        return await point_job(request, checkpoint_id, wait, "validate-recovery-point", _RECOVERY_JOBS,
                               recovery.avalidate_recovery_point)

    @guarded.post("/checkpoints/{checkpoint_id}/drill",
                  summary="A recovery drill: the point restored to scratch, validated, queried; RTO measured")
    async def drill(request: Request, checkpoint_id: str = CheckpointId,
                    wait: bool = Query(False, description="answer when the drill is done")) -> JSONResponse:
        return await point_job(request, checkpoint_id, wait, "drill", _RECOVERY_JOBS, recovery.arun_drill)

    @guarded.post("/checkpoints/{checkpoint_id}/failover",
                  summary="Fail over to a recovery point: this standby restores it into its live graphs and becomes primary")
    async def failover(request: Request, checkpoint_id: str = CheckpointId,
                       dry_run: bool = Query(False, description="return the plan only"),
                       wait: bool = Query(False, description="answer when the failover is done")) -> JSONResponse:
        point = await recovery.aget_recovery_point(checkpoint_id)
        if resolve_graph is not None:
            for graph_id in point.graphs:
                resolve_graph(graph_id)
        if dry_run:
            return JSONResponse(await recovery.aplan_failover(point.checkpoint_id))
        return await point_job(request, point.checkpoint_id, wait, "failover", _FAILOVER_JOB, recovery.afailover)

    @guarded.post("/switchover", summary="Hand the primary role to a standby with nothing lost (RPO 0)")
    async def switchover(request: Request, body: SwitchoverRequest,
                         wait: bool = Query(False, description="answer when the switchover is done")) -> JSONResponse:
        async def work(job: Job) -> dict[str, Any]:
            return await recovery.aswitchover(body.candidate)

        return await runner.answer(request, runner.start("switchover", _FAILOVER_JOB, work), wait)

    @guarded.post(ROUTES["promote"].removeprefix("/recovery"), summary="A switchover's candidate: take the handed-over lease and the final point "
                                      "(called by the primary)")
    async def promote(body: PromoteRequest) -> dict[str, Any]:
        return await recovery.apromote(body.checkpoint_id, body.from_epoch)

    @guarded.get("/lease", summary="The failover lease as this instance sees it")
    async def lease() -> dict[str, Any]:
        return recovery.lease.status() if recovery.lease is not None else {"configured": False}

    @guarded.get("/status", summary="Role, epoch, and per graph: newest snapshot and point, standbys, RPO, RTO, health")
    async def status() -> dict[str, Any]:
        return await recovery.aget_recovery_status()

    @guarded.post("/health-check", summary="Validate every graph this instance serves, now")
    async def health_check() -> dict[str, Any]:
        results = await recovery.validator.avalidate_all_graphs()
        from .points import worst

        return {"status": worst([r.status for r in results.values()]),
                "graphs": {g: r.to_dict() for g, r in results.items()}}

    router.include_router(guarded)
    return router


__all__ = ["create_recovery_router"]
