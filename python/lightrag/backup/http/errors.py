"""Every error the server sends has one shape, ``{"error": {"kind", "message"}}``: our own
exceptions (their class says the status: ``BackupError.http_status``), FastAPI's validation
errors (422), unknown routes (404) and methods (405), and bodies over the size limit (413).

Messages never echo a request's input at length: a validation error names the field and what
is wrong with it, not the value sent.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from ..errors import BackupError, OperationRunningError

#: The largest request body accepted (bodies here are small JSON objects) ...
MAX_BODY_BYTES = 1024 * 1024
#: ... except what a primary pushes to a standby (packs of 16 MiB, manifests).
MAX_PUSH_BYTES = 64 * 1024 * 1024
PUSH_PATH = "/replication/receive/"
#: The longest piece of a client's input an error message repeats.
_ECHO_LIMIT = 80


class HTTPError(Exception):
    """An error with its own status and kind, raised by routes and dependencies."""

    def __init__(self, status: int, kind: str, message: str, *, headers: "dict[str, str] | None" = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.status, self.kind, self.message, self.extra = status, kind, message, extra
        self.headers = headers


def error_body(kind: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"kind": kind, "message": message, **extra}}


def status_of(error: BaseException) -> int:
    """The HTTP status of an error: its class's ``http_status``, else 500."""
    return int(getattr(error, "http_status", 500))


def body_of(error: BackupError) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if isinstance(error, OperationRunningError) and error.job_id:
        extra["job_id"] = error.job_id
    return error_body(error.kind, str(error), **extra)


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= _ECHO_LIMIT else text[:_ECHO_LIMIT] + "..."


def validation_message(errors: list[Any]) -> tuple[str, list[dict[str, str]]]:
    """A plain summary of FastAPI's validation errors, and one short entry per field."""
    details = []
    for item in errors[:20]:
        where = ".".join(str(part) for part in item.get("loc", ()) if part != "body") or "body"
        details.append({"field": _short(where), "problem": _short(item.get("msg", "invalid"))})
    summary = "; ".join(f"{d['field']}: {d['problem']}" for d in details[:5]) or "invalid request"
    return f"invalid request: {summary}", details


_KIND_OF_STATUS = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                   405: "method_not_allowed", 413: "body_too_large", 415: "unsupported_media_type"}


def install_error_handlers(app: Any, *, only_under: "str | tuple[str, ...] | None" = None) -> None:
    """Give ``app`` the uniform JSON errors (once per app) and the body size limit.

    ``only_under`` (a path prefix such as ``/backup``) keeps FastAPI's own error bodies and no
    size limit everywhere else: mounted into LightRAG's server, LightRAG's routes (and its
    web UI, which reads ``detail``; and its document uploads) stay exactly as they are."""
    from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.requests import Request

    def ours(request: Request) -> bool:
        return only_under is None or request.url.path.startswith(only_under)

    # Outside `only_under`, the app's own handlers (LightRAG has its own for validation errors)
    # or else FastAPI's answer as before.
    previous_validation = app.exception_handlers.get(RequestValidationError, request_validation_exception_handler)
    previous_http = app.exception_handlers.get(StarletteHTTPException, http_exception_handler)

    if getattr(app.state, "lightrag_backup_errors", False):
        return
    app.state.lightrag_backup_errors = True

    @app.exception_handler(BackupError)
    async def backup_error(_request: Request, error: BackupError) -> JSONResponse:
        return JSONResponse(body_of(error), status_code=status_of(error))

    @app.exception_handler(HTTPError)
    async def http_error(_request: Request, error: HTTPError) -> JSONResponse:
        return JSONResponse(error_body(error.kind, error.message, **error.extra), status_code=error.status,
                            headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> Any:
        if not ours(request):
            return await previous_validation(request, error)
        message, details = validation_message(list(error.errors()))
        return JSONResponse(error_body("invalid_input", message, details=details), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def starlette_error(request: Request, error: StarletteHTTPException) -> Any:
        if not ours(request):
            return await previous_http(request, error)
        kind = _KIND_OF_STATUS.get(error.status_code, "http_error")
        if error.status_code == 404 and error.detail == "Not Found":
            message = f"no route {_short(request.url.path)}"
        elif error.status_code == 405:
            message = f"{request.method} is not allowed on {_short(request.url.path)}"
        else:
            message = _short(error.detail)
        return JSONResponse(error_body(kind, message), status_code=error.status_code,
                            headers=getattr(error, "headers", None))

    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES, only_under=only_under)


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, by ``Content-Length`` or while the
    body streams in (ASGI middleware: nothing larger is ever buffered)."""

    def __init__(self, app: Callable[..., Awaitable[None]], limit: int = MAX_BODY_BYTES,
                 only_under: "str | tuple[str, ...] | None" = None) -> None:
        self.app, self.limit, self.only_under = app, limit, only_under

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if scope["type"] != "http" or (self.only_under and not path.startswith(self.only_under)
                                        and not path.startswith(PUSH_PATH)):
            await self.app(scope, receive, send)
            return
        limit = MAX_PUSH_BYTES if path.startswith(PUSH_PATH) else self.limit
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_large = int(value) > limit
                except ValueError:
                    too_large = False
                if too_large:
                    await self._refuse(send, limit)
                    return
        received = 0
        refused = False
        started = False

        async def limited_receive() -> dict[str, Any]:
            # Over the limit, the app is told the client left (it stops reading) and whatever
            # it answers to that is replaced by the 413.
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: dict[str, Any]) -> None:
            nonlocal started
            if refused and not started:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not refused or started:
                raise
        if refused and not started:
            await self._refuse(send, limit)

    async def _refuse(self, send: Callable[..., Any], limit: int) -> None:
        import json

        body = json.dumps(error_body("body_too_large", f"the request body is over the limit of {limit} bytes")).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


__all__ = ["HTTPError", "MAX_BODY_BYTES", "error_body", "install_error_handlers", "status_of"]
