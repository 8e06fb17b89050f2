"""The recovery routes. For now the role endpoints a load balancer checks (as Patroni offers
them, usable as an HAProxy ``httpchk``): ``GET /primary`` answers 200 only on a primary that
nobody fenced, 503 elsewhere; ``GET /standby`` answers 200 only on a standby. Both carry
``{role, epoch, fenced, acting_as}``, answer ``HEAD`` too, and need no key (they say nothing
secret, and a health checker rarely carries one)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from lightrag.backup.http.jobs import JobRunner

from .roles import instance_status

if TYPE_CHECKING:
    from lightrag.backup.manager import BackupManager


def create_recovery_router(
    manager: "BackupManager",
    *,
    runner: JobRunner,
    dependencies: Optional[list[Any]] = None,
    resolve_graph: Optional[Callable[[str], None]] = None,
) -> APIRouter:
    """The recovery endpoints over ``manager``'s catalog."""
    import asyncio

    router = APIRouter(tags=["recovery"])

    async def answer(wanted: str) -> JSONResponse:
        status = await asyncio.to_thread(instance_status, manager.catalog)
        return JSONResponse(status, status_code=200 if status["acting_as"] == wanted else 503)

    @router.api_route("/primary", methods=["GET", "HEAD"], summary="200 on the primary, 503 elsewhere (no key)")
    async def primary() -> JSONResponse:
        return await answer("primary")

    @router.api_route("/standby", methods=["GET", "HEAD"], summary="200 on a standby, 503 elsewhere (no key)")
    async def standby() -> JSONResponse:
        return await answer("standby")

    return router


__all__ = ["create_recovery_router"]
