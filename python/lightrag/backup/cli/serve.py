"""The ``serve`` command: the standalone REST server over a folder of graphs."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ._common import WITH_MANAGER, ProgressBar, Wanted, add_command, api_key_of, api_key_options, manager, storage


def register(commands: Any, wanted: Wanted) -> None:
    sub = add_command(commands, "serve", "a REST server over a folder of graphs (needs the [server] extra)", serve,
                      defined=wanted("serve"))
    if wanted("serve"):
        sub.add_argument("--graphs-dir", required=True, help="each subfolder is a graph; its name is the graph id")
        sub.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        sub.add_argument("--port", type=int, default=9721, help="port (default 9721)")
        api_key_options(sub, "the X-API-Key this server requires")
        sub.add_argument("--no-auth", action="store_true",
                         help="serve without an API key on a non-loopback address (anyone who reaches it can "
                              "restore and delete): only on a network you trust")
        sub.add_argument("--no-scheduler", action="store_true", help="do not run the schedules in this server")
        sub.add_argument("--ssl-certfile", default=None,
                         help="serve HTTPS with this PEM certificate (chain); needs --ssl-keyfile")
        sub.add_argument("--ssl-keyfile", default=None, help="the PEM private key of --ssl-certfile")
        sub.add_argument("--role", choices=("primary", "standby"),
                         help="this instance's role, kept in the catalog (default: the catalog's, else "
                              "$LIGHTRAG_RECOVERY_ROLE, else primary); only a standby takes pushes")


def serve(args: argparse.Namespace, bar: ProgressBar) -> int:
    from pathlib import Path

    from ..errors import InvalidInputError

    graphs_dir = Path(args.graphs_dir).expanduser().absolute()
    if not graphs_dir.is_dir():
        raise InvalidInputError(f"--graphs-dir {graphs_dir} is not a folder")
    try:
        import uvicorn

        from ..app import create_app
    except ImportError as error:
        raise InvalidInputError(f"serve needs FastAPI and uvicorn: pip install 'lightrag-backup[server]' ({error})") from None
    tls = tls_files(args.ssl_certfile, args.ssl_keyfile)
    key = api_key_of(args)
    auth = auth_mode(args.host, key, args.no_auth)
    store = storage(args, then=WITH_MANAGER)
    owner = manager(args, store)
    from ..instance import instance_epoch, instance_role, set_instance_role

    if args.role:
        set_instance_role(owner.catalog, args.role)
    role, epoch = instance_role(owner.catalog), instance_epoch(owner.catalog)
    host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    os.environ.setdefault("LIGHTRAG_RECOVERY_ADVERTISE_URL", f"{'https' if tls else 'http'}://{host}:{args.port}")
    app = create_app(owner, api_key=key, graphs_dir=graphs_dir, run_scheduler=not args.no_scheduler)
    graphs = owner.graph_ids
    print(f"lightrag-backup serve: {'https' if tls else 'http'}://{args.host}:{args.port}  repository {store.url}  "
          f"graphs ({len(graphs)}): {', '.join(graphs) or 'none yet'}  auth: {auth}  role: {role} (epoch {epoch})",
          file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", ssl_certfile=tls.get("certfile"),
                ssl_keyfile=tls.get("keyfile"))
    return 0


def tls_files(certfile: "str | None", keyfile: "str | None") -> dict[str, str]:
    """uvicorn's TLS arguments, both files checked first (a server that would answer plain
    HTTP where HTTPS was asked for is refused before it listens)."""
    from pathlib import Path

    from ..errors import InvalidInputError

    if certfile is None and keyfile is None:
        return {}
    if certfile is None or keyfile is None:
        raise InvalidInputError("HTTPS needs both --ssl-certfile and --ssl-keyfile")
    for name, value in (("--ssl-certfile", certfile), ("--ssl-keyfile", keyfile)):
        if not Path(value).is_file():
            raise InvalidInputError(f"{name} {value} is not a file")
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile)
    except (ssl.SSLError, OSError) as error:
        raise InvalidInputError(f"cannot use {certfile} with {keyfile}: {error}") from None
    return {"certfile": certfile, "keyfile": keyfile}


def auth_mode(host: str, key: "str | None", no_auth: bool) -> str:
    """How the server guards its routes (see :func:`lightrag.backup.http.auth.auth_mode`)."""
    from ..http.auth import auth_mode as rule

    return rule(host, key, no_auth, program="lightrag-backup serve")
