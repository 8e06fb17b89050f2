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


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (a host name may resolve anywhere: it is not)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def auth_mode(host: str, key: Optional[str], no_auth: bool, *, accounts: bool = False,
              program: str = "lightrag-backup serve", no_auth_flag: str = "--no-auth") -> str:
    """How a server guards the backup, replication and recovery routes: by API key (or
    LightRAG's accounts), or not at all, which is allowed on a loopback address only, unless
    ``no_auth`` (the operator's explicit ``--no-auth``) says so, with a warning.

    Raises :class:`InvalidInputError` for an open server on any other address."""
    import sys

    from ..errors import InvalidInputError

    if key:
        return "X-API-Key required"
    if accounts:
        return "LightRAG accounts (AUTH_ACCOUNTS)"
    if is_loopback(host):
        return "none (loopback only: set LIGHTRAG_API_KEY or --api-key before listening elsewhere)"
    if not no_auth:
        raise InvalidInputError(
            f"refusing to serve on {host} without an API key: anyone who reaches it could restore over and delete "
            "your graphs' backups and push into them. Set LIGHTRAG_API_KEY (or --api-key / --key), listen on "
            f"127.0.0.1, or pass {no_auth_flag} on a network you trust"
        )
    print(f"{program}: WARNING: no API key on {host}: anyone who reaches this server can restore and "
          f"delete ({no_auth_flag})", file=sys.stderr, flush=True)
    return f"NONE ({no_auth_flag})"


def constant_time_auth(api_key: Optional[str], lightrag_dependency: Callable[..., Awaitable[Any]]) -> Any:
    """LightRAG's auth dependency (API key, accounts' tokens, whitelist), with the API key
    compared in constant time: a request carrying ``X-API-Key`` is judged here (LightRAG
    compares with ``==``, whose timing tells how much of a guess was right); any other goes
    to LightRAG's own check without the header."""
    from fastapi import Request, Response, Security
    from fastapi.security import APIKeyHeader, OAuth2PasswordBearer

    header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API Key Authentication")
    oauth2 = OAuth2PasswordBearer(tokenUrl="login", auto_error=False, description="OAuth2 Password Authentication")

    async def check(request: Request, response: Response, token: Optional[str] = Security(oauth2),
                    key: Optional[str] = Security(header)) -> None:
        if api_key and key is not None:
            if not hmac.compare_digest(key.encode(), api_key.encode()):
                raise HTTPError(403, "forbidden", "wrong API key")
            return
        await lightrag_dependency(request, response, token, None)

    # FastAPI reads the parameters' types from the annotations, which this module's
    # postponed annotations leave as names it cannot resolve (fastapi is imported lazily here).
    check.__annotations__ = {"request": Request, "response": Response, "token": Optional[str],
                             "key": Optional[str], "return": None}
    return check


__all__ = ["api_key_dependency", "auth_mode", "constant_time_auth", "guard", "is_loopback"]
