"""JSON error answers, and the handler wrappers that guarantee them.

Every error the server gives is ``{"error": <what went wrong>, "message": <the same>, "status":
<code>, ...details}`` (``message`` is where the keyed API's clients read an error).
Each route's handler is wrapped (:func:`journaled` for the API and the pages, :func:`json_errors`
for the admin API): aiohttp's own HTTP errors become that shape, and any unexpected exception a
JSON 500 that names the bug, so the server never dies on a request. A catch-all route
(:func:`add_fallback_route`) gives unknown paths and wrong methods the same JSON 404 and 405.
Wrappers rather than a middleware: a middleware costs every request a few more calls, and the
chat API's replay is meant to be nearly as cheap as a bare handler.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from aiohttp import web

from mockserver.server.journal import Journal, JournalEntry, raw_header_bytes

__all__ = [
    "ADMIN_PREFIX",
    "CURRENT_ENTRY",
    "Handler",
    "JournaledHandler",
    "RequestRejected",
    "add_fallback_route",
    "journaled",
    "json_error",
    "json_errors",
]

log = logging.getLogger("mockserver")
ADMIN_PREFIX = "/__admin"
#: The journal entry of the request being handled (None for the admin API). Set by the wrapper
#: and deliberately never reset: aiohttp runs each request in its own task and calls the access
#: logger in that task after the handler, so the log line can read it.
CURRENT_ENTRY: ContextVar[JournalEntry | None] = ContextVar("koala_mock_entry", default=None)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: A handler that records what it does in the request's journal entry.
JournaledHandler = Callable[[web.Request, JournalEntry], Awaitable[web.StreamResponse]]


class RequestRejected(Exception):
    """Raised by a journaled handler: the request gets ``response`` (a JSON error) instead of an
    answer, and the journal says an error served it."""

    def __init__(self, response: web.Response) -> None:
        self.response = response


def json_error(
    status: int, error: str, headers: dict[str, str] | None = None, **details: Any
) -> web.Response:
    """The JSON error; ``message`` defaults to ``error`` (a ``message=`` detail replaces it)."""
    return web.json_response(
        {"error": error, "message": error, "status": status, **details},
        status=status,
        headers=headers,
    )


def journaled(journal: Journal, handler: JournaledHandler) -> Handler:
    """``handler`` with a journal entry for every request and JSON errors for every failure."""

    async def handle(request: web.Request) -> web.StreamResponse:
        entry = journal.start(
            request.method,
            request.path,
            request.headers,
            header_size=raw_header_bytes(request.raw_headers),
        )
        CURRENT_ENTRY.set(entry)
        try:
            response = await handler(request, entry)
        except RequestRejected as rejected:
            response = rejected.response
            entry.served_by = entry.served_by or {"source": "error"}
        except web.HTTPException as exc:
            response = _http_error_response(request, exc)
            entry.served_by = {"source": "error"}
        except Exception as exc:  # a bug in the mock server: report it, keep serving
            response = _bug_response(request, exc)
            entry.served_by = {"source": "bug"}
        except asyncio.CancelledError:  # aiohttp cancels the handler of a client that left
            if entry.ending is None:
                entry.finish_disconnected()
            raise
        if entry.status is None and not entry.client_disconnected:
            entry.status = response.status
        if entry.ending is None and not response.prepared:
            if not entry.bytes_sent and isinstance(response, web.Response):
                body = response.body  # an error answer: the journal counts its bytes too
                if isinstance(body, (bytes, bytearray)):
                    entry.sent(len(body))
            entry.finish("eof")
        return response

    return handle


def json_errors(handler: Handler) -> Handler:
    """``handler`` answering every failure with a JSON error (no journal entry)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        CURRENT_ENTRY.set(None)
        try:
            return await handler(request)
        except web.HTTPException as exc:
            return _http_error_response(request, exc)
        except Exception as exc:  # a bug in the mock server: report it, keep serving
            return _bug_response(request, exc)

    return handle


def add_fallback_route(
    app: web.Application, journal: Journal, admin_wrap: Callable[[Handler], Handler] = json_errors
) -> None:
    """A route, added last, that answers what no other route does: JSON 404 or 405.

    Requests outside the admin API are journaled, like those to the routes that exist; those
    under it go through ``admin_wrap`` (the admin guard), like the admin routes that exist.
    """

    async def no_route_journaled(request: web.Request, entry: JournalEntry) -> web.StreamResponse:
        return await _no_route(request)

    journaled_no_route = journaled(journal, no_route_journaled)
    admin_no_route = admin_wrap(_no_route)

    async def no_route(request: web.Request) -> web.StreamResponse:
        if request.path.startswith(ADMIN_PREFIX):
            return await admin_no_route(request)
        return await journaled_no_route(request)

    app.router.add_route("*", r"/{path:[\s\S]*}", no_route)


async def _no_route(request: web.Request) -> web.StreamResponse:
    """404, or 405 with the methods the path's other routes allow (as aiohttp's router says)."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource is request.match_info.route.resource:
            continue
        _, methods = await resource.resolve(request)
        allowed |= methods
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound()


def _http_error_response(request: web.Request, exc: web.HTTPException) -> web.Response:
    if exc.status < 400:
        raise exc
    headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
    return json_error(exc.status, _http_error_detail(request, exc), headers)


def _bug_response(request: web.Request, exc: Exception) -> web.Response:
    log.exception("mock server bug while answering %s %s", request.method, request.path)
    return json_error(
        500,
        f"mock server bug: {type(exc).__name__}: {exc}",
        exception=type(exc).__name__,
        hint="please report this with the request that caused it",
    )


def _http_error_detail(request: web.Request, exc: web.HTTPException) -> str:
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return f"method {request.method} is not allowed on {request.path}; allowed: {allowed}"
    if isinstance(exc, web.HTTPNotFound):
        return f"no such endpoint: {request.path} (the chat API is POST /api/gpt/)"
    return exc.reason
