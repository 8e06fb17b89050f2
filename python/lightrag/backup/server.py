"""``lightrag-backup-server``: LightRAG's own API server with the backup endpoints mounted.

It takes the same arguments and environment as ``lightrag-server`` and serves everything that
one serves, plus ``/backup/...``, guarded by LightRAG's own auth (``X-API-Key`` against
``LIGHTRAG_API_KEY``/``--key``, or a JWT from ``/login``). The server's live ``LightRAG``
instance is registered as a graph, so snapshots taken here are the consistent online kind
and a restore reloads the running instance.

LightRAG has no hook for extra routers, so :func:`main` wraps
``lightrag.api.lightrag_server.create_app`` (the function both its uvicorn and gunicorn entry
points call), finds the instance in the app's route closures, and mounts the router behind
the auth dependency LightRAG's own routers use. Programs that build LightRAG's app
themselves call :func:`mount_backup` on it.

Backup settings (environment, or the ``--backup-*`` options, which are taken out of the
command line before LightRAG parses it):

* ``LIGHTRAG_BACKUP_STORAGE_PATH`` / ``--backup-repo``: the repository, a path or URL
  (``s3://``, ``az://``, ...; ``LIGHTRAG_BACKUP_S3_BUCKET`` works too). Default:
  ``lightrag_backups`` next to the working dir.
* ``--backup-repo-option KEY=VALUE``: object-store options, as ``lightrag-backup -o``.
* ``LIGHTRAG_BACKUP_GRAPH_ID`` / ``--backup-graph-id``: the graph's id. Default: the
  workspace, or ``default``.
* ``LIGHTRAG_BACKUP_CATALOG_PATH`` / ``--backup-catalog``: the SQLite catalog.
* ``--backup-no-scheduler``: do not run the schedules in this server.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any, Optional

from .errors import BackupError, InvalidInputError
from .manager import BackupManager
from .storage import default_location, parse_repo_options, storage_from_url

_BACKUP_ARGS = argparse.ArgumentParser(prog="lightrag-backup-server", add_help=False)
_BACKUP_ARGS.add_argument("--backup-repo", metavar="PATH|URL", help="the backup repository (default: "
                          "$LIGHTRAG_BACKUP_STORAGE_PATH, else lightrag_backups next to the working dir)")
_BACKUP_ARGS.add_argument("--backup-repo-option", action="append", default=[], metavar="KEY=VALUE",
                          help="an object-store option (repeatable)")
_BACKUP_ARGS.add_argument("--backup-graph-id", metavar="ID",
                          help="this server's graph id (default: $LIGHTRAG_BACKUP_GRAPH_ID, else the workspace or 'default')")
_BACKUP_ARGS.add_argument("--backup-catalog", metavar="PATH", help="the SQLite catalog (default: $LIGHTRAG_BACKUP_CATALOG_PATH)")
_BACKUP_ARGS.add_argument("--backup-no-scheduler", action="store_true", help="do not run backup schedules in this server")
_BACKUP_ARGS.add_argument("--backup-no-auth", action="store_true",
                          help="serve the backup, replication and recovery routes without an API key or accounts on "
                               "a non-loopback address (LightRAG listens on 0.0.0.0 by default): anyone who reaches "
                               "it can restore, delete and push; refused without this flag")
_BACKUP_ARGS.add_argument("--backup-role", "--role", dest="backup_role", choices=("primary", "standby"),
                          help="this instance's role, kept in the catalog (default: the catalog's, else "
                               "$LIGHTRAG_RECOVERY_ROLE, else primary); only a standby takes pushes")


def find_lightrag(app: Any) -> Any:
    """The ``LightRAG`` instance LightRAG's ``create_app`` built (it is a local variable there,
    reachable from the closures of the route endpoints)."""
    from lightrag.lightrag import LightRAG

    for route in getattr(app, "routes", []):
        endpoint = getattr(route, "endpoint", None)
        for cell in getattr(endpoint, "__closure__", None) or ():
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            if isinstance(value, LightRAG):
                return value
    raise InvalidInputError("no LightRAG instance found in this app's routes; pass rag= explicitly")


def default_graph_id(rag: Any) -> str:
    return os.environ.get("LIGHTRAG_BACKUP_GRAPH_ID") or getattr(rag, "workspace", "") or "default"


def default_repository(rag: Any) -> str:
    return default_location() or str(Path(rag.working_dir).resolve().parent / "lightrag_backups")


def mount_backup(
    app: Any,
    rag: Any = None,
    *,
    manager: Optional[BackupManager] = None,
    graph_id: Optional[str] = None,
    api_key: Optional[str] = None,
    run_scheduler: bool = True,
) -> BackupManager:
    """Mount the backup endpoints into LightRAG's FastAPI ``app`` and register its live
    instance (found in the app when ``rag`` is not given) as ``graph_id``.

    The routes are guarded by LightRAG's auth dependency for ``api_key`` (default
    ``LIGHTRAG_API_KEY``). The scheduler starts after LightRAG's startup and stops, with any
    running backup job finished, before LightRAG finalises its storages."""
    from fastapi import Depends
    from lightrag.api.utils_api import get_combined_auth_dependency

    from .app import mount_routers
    from .http.auth import constant_time_auth

    rag = rag if rag is not None else find_lightrag(app)
    if manager is None:
        manager = BackupManager(storage_from_url(default_repository(rag), create=True))
    graph_id = graph_id or default_graph_id(rag)
    manager.register_graph(graph_id, rag=rag)
    key = api_key if api_key is not None else os.environ.get("LIGHTRAG_API_KEY")
    # LightRAG's own routes keep LightRAG's error bodies and upload sizes: ours apply to ours.
    auth = constant_time_auth(key, get_combined_auth_dependency(key))
    mount_routers(app, manager, dependencies=[Depends(auth)],
                  run_scheduler=run_scheduler,
                  only_under=("/backup", "/replication", "/recovery", "/primary", "/standby", "/metrics"))
    guard_writes(app, manager)
    allow_pushes_through_body_limit(app)
    return manager


def allow_pushes_through_body_limit(app: Any) -> None:
    """LightRAG caps every request body (``MAX_REQUEST_BODY_BYTES``, 1 MiB by default), which
    would refuse every pack a primary pushes to this standby. Under ``/replication/receive/``
    the cap becomes ours (``MAX_PUSH_BYTES``, enforced by our error handlers too); LightRAG's
    own limits stay as they are everywhere else."""
    from starlette.middleware import Middleware

    from .http.errors import MAX_PUSH_BYTES, PUSH_PATH

    try:
        from lightrag.api.body_limit_middleware import BodyLimitMiddleware
        from lightrag.api.utils_api import get_route_path
    except ImportError:  # an older LightRAG without the middleware
        return

    class PushAwareBodyLimit(BodyLimitMiddleware):  # type: ignore[misc]
        def _limit_for(self, scope: dict[str, Any]) -> int:
            if get_route_path(scope, self._api_prefix).startswith(PUSH_PATH):
                return MAX_PUSH_BYTES
            return int(super()._limit_for(scope))

    for index, entry in enumerate(list(app.user_middleware)):
        if entry.cls is BodyLimitMiddleware:
            app.user_middleware[index] = Middleware(PushAwareBodyLimit, *entry.args, **entry.kwargs)


#: LightRAG's routes that only read although they are POSTs.
_READING_POSTS = frozenset({"/documents/paginated"})


def is_lightrag_write(method: str, path: str) -> bool:
    """Whether a request to LightRAG's own routes changes the graph: every non-GET under
    ``/documents`` and ``/graph`` (upload, insert, scan, delete, clear, entity and relation
    edits), except the few POSTs that only read. Queries (``/query``, the Ollama API) read."""
    if method in ("GET", "HEAD", "OPTIONS") or path in _READING_POSTS:
        return False
    return path == "/documents" or path.startswith(("/documents/", "/graph/"))


def guard_writes(app: Any, manager: BackupManager) -> None:
    """LightRAG's write routes answer 503 with a JSON error while this instance does not act
    as the primary: ``read_only_standby`` on a standby (or a demoted or fenced primary), naming
    the primary when the lease says who it is; ``switchover_in_progress`` while a switchover
    holds writes back. Reads and queries keep working; after a promotion writes are accepted
    at once."""
    import asyncio

    from fastapi.responses import JSONResponse

    from lightrag.recovery import instance_status, recovery_manager_for

    recovery = recovery_manager_for(manager)

    @app.middleware("http")
    async def read_only_unless_primary(request: Any, call_next: Any) -> Any:
        if not is_lightrag_write(request.method, request.url.path):
            return await call_next(request)
        # Counted from before the first check until LightRAG answered (by then it reserved its
        # enqueue slot): a switchover's drain waits for every write that got past the checks.
        def frozen() -> Any:
            return JSONResponse({"error": {"kind": "switchover_in_progress", "message": f"{recovery.writes_frozen}: "
                                           "writes are refused until it is done; retry against the new primary"}},
                                status_code=503, headers={"Retry-After": "2"})

        recovery.writes_in_flight += 1
        try:
            if recovery.writes_frozen:
                return frozen()
            status = await asyncio.to_thread(instance_status, manager.catalog, recovery.lease)
            if recovery.writes_frozen:
                return frozen()
            if status["acting_as"] == "primary":
                return await call_next(request)
        finally:
            recovery.writes_in_flight -= 1
        primary = status.get("primary")
        where = (f"the primary is {primary['name']}" + (f" at {primary['url']}" if primary.get("url") else "")
                 if primary else "write to the primary")
        return JSONResponse({"error": {"kind": "read_only_standby", "role": status["role"],
                                       "acting_as": status["acting_as"], "epoch": status["epoch"], "primary": primary,
                                       "message": f"this instance is not the primary ({status['acting_as']}): it "
                                                  f"serves reads and queries only; {where}"}},
                            status_code=503)


def split_arguments(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Our ``--backup-*`` options, and the rest for LightRAG's parser."""
    ours, rest = _BACKUP_ARGS.parse_known_args(argv)
    stray = [arg for arg in rest if re.match(r"^--backup[-_]", arg)]
    if stray:
        raise InvalidInputError(f"unknown option {stray[0]} (see lightrag-backup-server --help)")
    return ours, rest


def main(argv: Optional[list[str]] = None) -> None:
    """Run LightRAG's server (``lightrag-server``) with the backup endpoints mounted."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "-h" in argv or "--help" in argv:
        _BACKUP_ARGS.print_help()
        print("\nEverything else is lightrag-server's:\n")
    try:
        options, rest = split_arguments(argv)
        repo_options = parse_repo_options(options.backup_repo_option)
    except InvalidInputError as error:
        print(f"lightrag-backup-server: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    # LightRAG parses sys.argv when its server module is imported: only its own arguments stay.
    sys.argv = [sys.argv[0], *rest]
    try:
        from lightrag.api import lightrag_server
    except ImportError as error:
        print(f"lightrag-backup-server needs LightRAG's API server: pip install 'lightrag-hku[api]' ({error})",
              file=sys.stderr)
        raise SystemExit(2) from None
    lightrag_create_app = lightrag_server.create_app

    def create_app(args: Any) -> Any:
        app = lightrag_create_app(args)
        rag = find_lightrag(app)
        # Where this instance answers, named in the failover lease (a wildcard host is no address).
        host = getattr(args, "host", "127.0.0.1")
        os.environ.setdefault("LIGHTRAG_RECOVERY_ADVERTISE_URL", f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:"
                              f"{getattr(args, 'port', 9621)}")
        try:
            from .http.auth import auth_mode

            key = os.environ.get("LIGHTRAG_API_KEY") or getattr(args, "key", None)
            accounts = bool(os.environ.get("AUTH_ACCOUNTS") or getattr(args, "auth_accounts", None))
            auth_mode(host, key, options.backup_no_auth, accounts=accounts, program="lightrag-backup-server",
                      no_auth_flag="--backup-no-auth")
            storage = storage_from_url(options.backup_repo or default_repository(rag), create=True, **repo_options)
            manager = BackupManager(storage, options.backup_catalog)
            if options.backup_role:
                from .instance import set_instance_role

                set_instance_role(manager.catalog, options.backup_role)
            mount_backup(app, rag, manager=manager,
                         graph_id=options.backup_graph_id,
                         api_key=key,
                         run_scheduler=not options.backup_no_scheduler)
        except BackupError as error:
            print(f"lightrag-backup-server: {type(error).__name__}: {error}", file=sys.stderr)
            raise SystemExit(2) from None
        return app

    lightrag_server.create_app = create_app
    lightrag_server.main()


__all__ = ["find_lightrag", "main", "mount_backup"]


if __name__ == "__main__":
    main()
