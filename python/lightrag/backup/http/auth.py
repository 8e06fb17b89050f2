"""The one API-key check of the standalone server (``X-API-Key``, as LightRAG's server does).
Mounted into LightRAG's own server, its auth dependency is used instead."""

from __future__ import annotations

import hmac
from typing import Any, Awaitable, Callable, Optional

from .errors import HTTPError


def api_key_dependency(api_key: Optional[str]) -> Callable[..., Awaitable[None]]:
    """``X-API-Key`` checked in constant time; no key configured means no check."""
    from fastapi import Depends
    from fastapi.security import APIKeyHeader

    header = APIKeyHeader(name="X-API-Key", auto_error=False)

    async def check(key: Optional[str] = Depends(header)) -> None:
        if not api_key:
            return
        if key is None:
            raise HTTPError(401, "unauthorized", "missing X-API-Key header")
        if not hmac.compare_digest(key.encode(), api_key.encode()):
            raise HTTPError(403, "forbidden", "wrong API key")

    return check


def guard(api_key: Optional[str]) -> list[Any]:
    """The ``dependencies=`` list that guards a router with :func:`api_key_dependency`."""
    from fastapi import Depends

    return [Depends(api_key_dependency(api_key))]


__all__ = ["api_key_dependency", "guard"]
