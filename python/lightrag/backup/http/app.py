"""Where the app factory was: it is :mod:`lightrag.backup.app` now, beside the servers (so the
HTTP layer every router shares sits below the routers, and only the factory above them).
``from lightrag.backup.http.app import mount_routers`` keeps working: names are looked up in
:mod:`lightrag.backup.app` when first asked for, so importing this package loads no router."""

from __future__ import annotations

from typing import Any

__all__ = ["ROUTERS", "create_app", "graphs_dir_resolver", "mount_routers"]


def __getattr__(name: str) -> Any:
    import importlib

    return getattr(importlib.import_module("lightrag.backup.app"), name)
