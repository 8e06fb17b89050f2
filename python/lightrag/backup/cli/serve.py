"""The ``serve`` command: the standalone REST server over a folder of graphs."""

from __future__ import annotations

import argparse
from typing import Any

from ._common import ProgressBar, Wanted, add_command, manager, storage


def register(commands: Any, wanted: Wanted) -> None:
    sub = add_command(commands, "serve", "a REST server over a folder of graphs (needs the [server] extra)", serve,
                      defined=wanted("serve"))
    if wanted("serve"):
        sub.add_argument("--graphs-dir", required=True, help="each subfolder is a graph; its name is the graph id")
        sub.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        sub.add_argument("--port", type=int, default=9721, help="port (default 9721)")
        sub.add_argument("--api-key", default=None, help="required X-API-Key (default: $LIGHTRAG_API_KEY; none: open)")
        sub.add_argument("--no-scheduler", action="store_true", help="do not run the schedules in this server")


def serve(args: argparse.Namespace, bar: ProgressBar) -> int:
    from pathlib import Path

    from ..errors import InvalidInputError

    graphs_dir = Path(args.graphs_dir).expanduser().absolute()
    if not graphs_dir.is_dir():
        raise InvalidInputError(f"--graphs-dir {graphs_dir} is not a folder")
    try:
        import uvicorn

        from ..http.app import create_app
    except ImportError as error:
        raise InvalidInputError(f"serve needs FastAPI and uvicorn: pip install 'lightrag-backup[server]' ({error})") from None
    store = storage(args)
    app = create_app(manager(args, store), api_key=args.api_key, graphs_dir=graphs_dir, run_scheduler=not args.no_scheduler)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
