"""The Phase 5A design's replication endpoints, as a router the app factory mounts beside the backup one
(``lightrag.backup.app.ROUTERS``). JSON fields use the Phase 5A design's column names; API keys are
never returned (``***``). Replicating runs as a job, like a snapshot: ``202`` with a
``job_id``, or ``?wait=true``."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Callable, Optional

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field


from lightrag.backup.http.errors import HTTPError
from lightrag.backup.http.jobs import Job, JobRunner
from lightrag.backup.types import GRAPH_ID_PATTERN, SNAPSHOT_ID_PATTERN

from .apply import StandbyApplier
from .continuous import CONTINUOUS_ENV, CONTINUOUS_SETTINGS
from .switches import GraphSwitch
from lightrag.backup.instance import instance_role

from .graph_replication import ReplicationManager
from .receive_api import create_receive_router
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


class SwitchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool


class ReplicateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    snapshot_id: Optional[str] = Field(None, pattern=SNAPSHOT_ID_PATTERN, max_length=64)
    targets: Optional[list[str]] = Field(None, max_length=32)


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

    router.include_router(create_receive_router(manager, applier))

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


__all__ = ["ALLOWED_DIRS_ENV", "confine_folder_target", "create_replication_router"]
