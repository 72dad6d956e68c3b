"""``GET /__admin/ui``: the live journal page (HTML, CSS and JavaScript shipped as package data).

The files hold no data: the page reads everything through the admin API (``/__admin/requests``,
``/__admin/events``, ``/__admin/faults``...) with the same checks as any other client. A strict
Content-Security-Policy allows only this server's own script, style and connections, so even a
value that slipped into the page as HTML could not run (the script inserts every value as text).
"""

from __future__ import annotations

import functools

from aiohttp import web

from mockserver.server.admin_guard import admin_route

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "UI_FILES",
    "UI_PATH",
    "add_ui_routes",
    "ui_asset",
    "ui_file",
    "ui_page",
]

UI_PATH = "/__admin/ui"
#: The page's files (in ``mockserver/server/ui/``) and their content types.
UI_FILES: dict[str, str] = {
    "index.html": "text/html; charset=utf-8",
    "journal.js": "text/javascript; charset=utf-8",
    "journal.css": "text/css; charset=utf-8",
}
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@functools.cache
def ui_file(name: str) -> bytes:
    """The bytes of one of :data:`UI_FILES` (KeyError for any other name)."""
    if name not in UI_FILES:
        raise KeyError(name)
    # Late: importlib.resources is a few milliseconds of imports that ``serve`` would pay at
    # start-up for a page that is seldom opened.
    from importlib import resources

    return resources.files("mockserver.server").joinpath("ui").joinpath(name).read_bytes()


def _file_response(name: str) -> web.Response:
    return web.Response(
        body=ui_file(name),
        headers={**_HEADERS, "Content-Type": UI_FILES[name]},
    )


async def ui_page(request: web.Request) -> web.Response:
    return _file_response("index.html")


async def ui_asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in UI_FILES or name == "index.html":
        raise web.HTTPNotFound()
    return _file_response(name)


def add_ui_routes(app: web.Application) -> None:
    """The page's routes: the admin guard's Host and Origin checks, but no token (see
    :func:`mockserver.server.admin_guard.admin_route`)."""
    app.router.add_get(UI_PATH, admin_route(ui_page, check_token=False))
    app.router.add_get(UI_PATH + "/{name}", admin_route(ui_asset, check_token=False))
