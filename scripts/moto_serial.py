"""moto's S3 server with its requests handled one at a time (run with moto's own Python).

moto checks a conditional PUT (``If-None-Match: *``, ``If-Match``) and then writes, with no lock
between the two, so two concurrent conditional writes can both succeed: seen here when two of
eight writers "won" the same lease slot while the machine was loaded (tests/backends.rs,
lease_swaps_have_one_winner). Real S3 makes the check and the write one step. Running every
request under one lock gives the tests that atomicity; connections stay concurrent and kept
alive.

    python moto_serial.py HOST PORT
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Callable, Iterable

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


class Serialised:
    """A WSGI app that runs the wrapped one, body included, under one lock."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self.lock:
            body = self.app(environ, start_response)
            try:
                return [b"".join(body)]
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()


def main() -> None:
    import os

    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, Serialised(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
