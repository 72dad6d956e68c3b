"""JSON error answers, and the middleware that guarantees them.

Every error the server gives is ``{"error": <what went wrong>, "status": <code>, ...details}``.
The middleware turns aiohttp's own HTTP errors (404, 405, ...) into that shape, and any
unexpected exception into a JSON 500 that names the bug: the server never dies on a request.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from aiohttp import web

from .journal import JournalEntry
from .state import JOURNAL

log = logging.getLogger("mockserver")
ADMIN_PREFIX = "/__admin"
#: The journal entry of the request being handled (set by the middleware; a context variable
#: rather than request storage, whose typed keys need a newer aiohttp).
CURRENT_ENTRY: ContextVar[JournalEntry | None] = ContextVar("koala_mock_entry", default=None)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_error(
    status: int, message: str, headers: dict[str, str] | None = None, **details: Any
) -> web.Response:
    return web.json_response(
        {"error": message, "status": status, **details}, status=status, headers=headers
    )


@web.middleware
async def journal_and_json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Journal every non-admin request; answer every failure with a JSON error."""
    entry = None
    if not request.path.startswith(ADMIN_PREFIX):
        entry = request.app[JOURNAL].start(request.method, request.path, request.headers)
    token = CURRENT_ENTRY.set(entry)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        detail = _http_error_detail(request, exc)
        response = json_error(exc.status, detail, headers)
        if entry is not None:
            entry.served_by = {"source": "error"}
    except Exception as exc:  # a bug in the mock server: report it, keep serving
        log.exception("mock server bug while answering %s %s", request.method, request.path)
        response = json_error(
            500,
            f"mock server bug: {type(exc).__name__}: {exc}",
            exception=type(exc).__name__,
            hint="please report this with the request that caused it",
        )
        if entry is not None:
            entry.served_by = {"source": "bug"}
    finally:
        CURRENT_ENTRY.reset(token)
    if entry is not None:
        if entry.status is None:
            entry.status = response.status
        if entry.ending is None and not response.prepared:
            entry.finish("eof")
    return response


def _http_error_detail(request: web.Request, exc: web.HTTPException) -> str:
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return f"method {request.method} is not allowed on {request.path}; allowed: {allowed}"
    if isinstance(exc, web.HTTPNotFound):
        return f"no such endpoint: {request.path} (the chat API is POST /api/gpt/)"
    return exc.reason
