"""The app factory: the one place that mounts every router, for the standalone server
(:func:`create_app`, ``lightrag-backup serve``) and for LightRAG's own server
(:func:`mount_routers`, used by ``lightrag-backup-server``).

Routers are listed in :data:`ROUTERS`; the replication and recovery routers join that list
beside the backup one, each a function ``(manager, runner, dependencies, resolve_graph) ->
APIRouter``. Every router shares the app's job runner, its error handlers and its lock set.
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Optional

from .errors import InvalidInputError
from .http.auth import guard
from .http.errors import install_error_handlers
from .http.jobs import JobRunner, jobs_router

if TYPE_CHECKING:
    from fastapi import APIRouter, FastAPI

    from .manager import BackupManager

RouterFactory = Callable[["BackupManager", JobRunner, list[Any], Optional[Callable[[str], None]]], "APIRouter"]


def _backup_router(manager: "BackupManager", runner: JobRunner, dependencies: list[Any],
                   resolve_graph: Optional[Callable[[str], None]]) -> "APIRouter":
    from .api import create_backup_router

    return create_backup_router(manager, dependencies=dependencies, resolve_graph=resolve_graph, runner=runner)


def _replication_router(manager: "BackupManager", runner: JobRunner, dependencies: list[Any],
                        resolve_graph: Optional[Callable[[str], None]]) -> "APIRouter":
    # The app factory is one of the three places allowed to import every package.
    from lightrag.replication.api import create_replication_router

    return create_replication_router(manager, runner=runner, dependencies=dependencies, resolve_graph=resolve_graph)


def _recovery_router(manager: "BackupManager", runner: JobRunner, dependencies: list[Any],
                     resolve_graph: Optional[Callable[[str], None]]) -> "APIRouter":
    from lightrag.recovery.api import create_recovery_router

    return create_recovery_router(manager, runner=runner, dependencies=dependencies, resolve_graph=resolve_graph)


def _metrics_router(manager: "BackupManager", runner: JobRunner, dependencies: list[Any],
                    resolve_graph: Optional[Callable[[str], None]]) -> "APIRouter":
    from lightrag.recovery import recovery_manager_for
    from lightrag.recovery.metrics import recovery_families
    from lightrag.replication.metrics import replication_families

    from .http.metrics import MetricsRegistry, backup_families, metrics_router

    recovery = recovery_manager_for(manager)
    registry = MetricsRegistry()
    registry.add_source("backup", lambda: backup_families(manager))
    # The recovery manager's replication manager is the one the services push with.
    registry.add_source("replication", lambda: replication_families(recovery.replication))
    registry.add_source("recovery", lambda: recovery_families(recovery))
    return metrics_router(registry, dependencies)


def _ui_router(manager: "BackupManager", runner: JobRunner, dependencies: list[Any],
               resolve_graph: Optional[Callable[[str], None]]) -> "APIRouter":
    from .http.ui import ui_router

    return ui_router()


#: Every router an app serves.
ROUTERS: list[RouterFactory] = [_backup_router, _replication_router, _recovery_router, _metrics_router, _ui_router]


def mount_routers(
    app: Any,
    manager: "BackupManager",
    *,
    dependencies: list[Any],
    resolve_graph: Optional[Callable[[str], None]] = None,
    run_scheduler: bool = True,
    only_under: "Optional[str | tuple[str, ...]]" = None,
) -> JobRunner:
    """Mount every router on ``app`` behind ``dependencies``, with the shared job runner, the
    uniform errors (only under ``only_under`` when given) and a lifespan that starts the
    scheduler after the app's own startup and, at shutdown, stops it and lets running jobs
    finish before the app's own shutdown."""
    runner = JobRunner(manager.locks)
    install_error_handlers(app, only_under=only_under)
    app.include_router(jobs_router(runner, dependencies=dependencies))
    for factory in ROUTERS:
        app.include_router(factory(manager, runner, dependencies, resolve_graph))

    outer = app.router.lifespan_context
    services = _replication_services(manager)
    if manager.view is None:
        from .view import RepositoryView, refresh_seconds_from_env

        manager.view = RepositoryView(manager.storage, manager.catalog, refresh_seconds_from_env())
    view = manager.view

    @asynccontextmanager
    async def lifespan(inner_app: Any) -> AsyncIterator[Any]:
        async with outer(inner_app) as state:
            await view.start()
            if run_scheduler:
                await manager.start_scheduler()
            for service in services:
                await service.start()
            try:
                yield state
            finally:
                await view.stop()
                await manager.stop_scheduler()
                await runner.drain()
                for service in reversed(services):
                    await service.stop()  # after the last backups: their pushes run first

    app.router.lifespan_context = lifespan
    app.state.backup_manager = manager
    app.state.job_runner = runner
    app.state.continuous = services[-1]
    return runner


#: Separates a working dir's name from its workspace in a served graph id (`team--docs`).
WORKSPACE_SEPARATOR = "--"


def _holds_graph_files(folder: Path) -> bool:
    from . import _native

    return any(entry.is_file() and _native.is_graph_file(entry.name) for entry in folder.iterdir())


def _replication_services(manager: "BackupManager") -> list[Any]:
    """The tasks a server runs beside its routes, each with ``start()`` and ``stop()``: with
    ``LIGHTRAG_RECOVERY_LEASE_URL`` the failover lease keeper (first: a primary holds the lease
    before anything else starts), with ``LIGHTRAG_REPLICATION_ENABLED=true`` the one that pushes
    every commit to the targets (and catches up periodically), the recovery scheduler (recovery
    points and health checks on their intervals), and always the watcher of the graphs that
    replicate continuously (it does nothing until one does; last, as ``app.state.continuous``).
    Pushes go out only while the instance acts as the primary."""
    from lightrag.replication import ReplicationManager
    from lightrag.replication.auto import AutoReplicator, enabled_by_environment
    from lightrag.replication.continuous import ContinuousReplicator

    from lightrag.recovery import RecoveryScheduler, instance_status, recovery_manager_for
    from lightrag.recovery.lease import lease_keeper_for

    replication = ReplicationManager(manager)
    recovery = recovery_manager_for(manager, replication=replication)
    keeper = lease_keeper_for(recovery)

    def acting_primary() -> bool:
        return bool(instance_status(manager.catalog, keeper)["acting_as"] == "primary")

    auto = AutoReplicator(replication, gate=acting_primary) if enabled_by_environment() else None
    continuous = ContinuousReplicator(replication, auto, gate=acting_primary)

    def replicator() -> Any:
        return auto if auto is not None else continuous.auto_replicator

    def send_point(point: Any) -> None:
        # A point reaches a standby once every snapshot it names is there: pushing its graphs
        # again sends it (their snapshots are there already, or are on their way).
        if replicator() is not None:
            replicator().notify_graphs(point.graphs)

    def promoted() -> None:
        # A new primary brings the other instances up to date at once, not at the catch-up.
        if replicator() is not None:
            replicator().notify_graphs(manager.graph_ids)

    recovery.add_point_listener(send_point)
    recovery.add_promotion_listener(promoted)
    # The recovery scheduler first: it stops before the replicators, so its last point is pushed.
    return [*([keeper] if keeper is not None else []), *([auto] if auto is not None else []),
            RecoveryScheduler(recovery), continuous]


def graphs_dir_resolver(manager: "BackupManager", graphs_dir: Path) -> Callable[[str], None]:
    """Register the graphs of ``graphs_dir`` now and, for folders that appear later, when first
    asked for. A subfolder holding LightRAG files is a graph named after it; a subfolder
    holding workspaces (LightRAG's ``working_dir/<workspace>``) gives one graph per workspace,
    named ``<folder>--<workspace>``."""

    def register(folder: Path) -> None:
        try:
            if _holds_graph_files(folder) or not any(p.is_dir() for p in folder.iterdir()):
                manager.register_graph(folder.name, folder)
                return
            for workspace in sorted(folder.iterdir()):
                if workspace.is_dir() and not workspace.name.startswith(".") and _holds_graph_files(workspace):
                    manager.register_graph(f"{folder.name}{WORKSPACE_SEPARATOR}{workspace.name}", folder, workspace.name)
        except (InvalidInputError, OSError):
            return  # not a valid graph id, or unreadable: not served

    def resolve(graph_id: str) -> None:
        if graph_id in manager.graph_ids:
            return
        folder_name = graph_id.split(WORKSPACE_SEPARATOR, 1)[0]
        folder = graphs_dir / folder_name
        if folder_name and not folder_name.startswith(".") and folder.is_dir():
            register(folder)

    for child in sorted(graphs_dir.iterdir()):
        if child.is_dir() and not child.name.startswith("."):
            register(child)
    return resolve


def create_app(
    manager: "BackupManager",
    *,
    api_key: Optional[str] = None,
    graphs_dir: Optional[Path] = None,
    run_scheduler: bool = True,
) -> "FastAPI":
    """A standalone server over ``manager``. With ``graphs_dir``, every subfolder is a graph
    (its name the graph id), registered when first asked for; restores go back into it.
    ``api_key`` defaults to ``LIGHTRAG_API_KEY``. ``/docs`` is served from the installed
    package (no CDN), so it works offline."""
    from fastapi import FastAPI

    key = api_key if api_key is not None else os.environ.get("LIGHTRAG_API_KEY")
    resolve = graphs_dir_resolver(manager, graphs_dir) if graphs_dir is not None else None
    if graphs_dir is not None:
        from lightrag.recovery import recovery_manager_for

        # A failover restores a graph this instance does not serve yet into its own folder.
        recovery_manager_for(manager, graphs_dir=graphs_dir)
    app = FastAPI(title="lightrag-backup", version=_version(), docs_url=None, redoc_url=None)
    _offline_docs(app)

    @app.get("/health", tags=["health"], summary="Liveness probe (no key needed)")
    async def liveness() -> dict[str, str]:
        return {"status": "ok"}

    mount_routers(app, manager, dependencies=guard(key), resolve_graph=resolve, run_scheduler=run_scheduler)
    return app


def _offline_docs(app: Any) -> None:
    """Swagger UI at ``/docs`` from the ``swagger-ui-bundle`` package's files."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse

    try:
        from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]
    except ImportError:
        swagger_ui_path = None
    if swagger_ui_path is None:

        @app.get("/docs", include_in_schema=False)
        async def no_docs() -> HTMLResponse:
            return HTMLResponse("<p>The API documentation needs the swagger-ui-bundle package: "
                                "pip install 'lightrag-backup[server]'. The schema is at /openapi.json.</p>")
        return
    from fastapi.staticfiles import StaticFiles

    app.mount("/docs-assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="lightrag-backup API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )


def _version() -> str:
    from . import __version__

    return __version__


__all__ = ["ROUTERS", "create_app", "graphs_dir_resolver", "mount_routers"]
