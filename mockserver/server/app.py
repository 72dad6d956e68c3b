"""``create_app(config)``: the mock Koala server as an aiohttp application.

Cheap to create (no disk access: cassettes load on first use), so tests can start one per test.
"""

from __future__ import annotations

from aiohttp import web

from koala.request import API_PATH
from mockserver.config import MockConfig
from mockserver.server.admin import add_admin_routes
from mockserver.server.admin_guard import admin_route
from mockserver.server.endpoint import ChatEndpoint
from mockserver.server.events import add_event_hub
from mockserver.server.http_errors import (
    Handler,
    JournaledHandler,
    add_fallback_route,
    journaled,
)
from mockserver.server.journal import JournalEntry
from mockserver.server.state import STREAMS, add_state, journal
from mockserver.server.ui import add_ui_routes

__all__ = ["CHAT_PAGE", "chat_page", "create_app"]

CHAT_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Koala chat (mock)</title></head>
<body><h1>Koala chat</h1>
<p>This is the Koala mock server's stand-in for https://koala.sh/chat, the page the provider
names as its Referer. The API is <code>POST /api/gpt/</code>; the admin API is under
<code>/__admin/</code> (try <a href="/__admin/health">/__admin/health</a>, or the live journal
at <a href="/__admin/ui">/__admin/ui</a>).</p>
</body></html>
"""


async def chat_page(request: web.Request, entry: JournalEntry) -> web.Response:
    return web.Response(text=CHAT_PAGE, content_type="text/html")


async def _end_open_streams(app: web.Application) -> None:
    app[STREAMS].close_all()


def _admin_catch_all(handler: Handler) -> Handler:
    return admin_route(handler, check_content_type=False)


def create_app(config: MockConfig | None = None) -> web.Application:
    """The mock server. ``config`` defaults to :class:`MockConfig` ()."""
    config = config if config is not None else MockConfig()
    # The body is decoded by the app (request_body.py), which bounds and reports what aiohttp's
    # decompression did not.
    app = web.Application(
        client_max_size=config.max_body_size,
        handler_args={
            "auto_decompress": False,
            "keepalive_timeout": config.keepalive_timeout,
            # How long a connection whose body was refused unread is drained before it is
            # closed (aiohttp's default, 10 s, holds a descriptor per refused upload).
            "lingering_time": 2.0,
        },
    )
    add_state(app, config)
    entries = journal(app)
    add_event_hub(app)
    chat: JournaledHandler
    if config.record_upstream:
        # Late: the proxy brings the upstream client and the cassette writer, which replay
        # never needs (``serve`` starts sooner without them).
        from mockserver.server.proxy import RecordingProxy

        chat = RecordingProxy(app)
    else:
        chat = ChatEndpoint(app)
    api = journaled(entries, chat)
    page = journaled(entries, chat_page)
    app.router.add_post(API_PATH, api)
    app.router.add_post(API_PATH.rstrip("/"), api)
    app.router.add_get("/chat", page)
    app.router.add_get("/", page)
    add_admin_routes(app, admin_route)
    add_ui_routes(app)
    add_fallback_route(app, entries, _admin_catch_all)  # last: it answers what no other route does
    app.on_shutdown.append(_end_open_streams)
    return app
