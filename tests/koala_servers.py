"""Small local aiohttp servers for the provider tests (127.0.0.1, free ports)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: ``await serve(app)`` starts ``app`` on a free 127.0.0.1 port and returns its API URL.
Serve = Callable[[web.Application], Awaitable[str]]
API_PATH = "/api/gpt/"


def sse_handler(
    *events: bytes, pause: float = 0.0, headers: Mapping[str, str] | None = None
) -> Handler:
    """A handler that streams the given raw event bytes, one write each (with ``headers`` added
    to the answer's Content-Type)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        await request.read()
        sent = {"Content-Type": "text/event-stream", **(headers or {})}
        response = web.StreamResponse(headers=sent)
        await response.prepare(request)
        for event in events:
            await response.write(event)
            if pause:
                await asyncio.sleep(pause)
        await response.write_eof()
        return response

    return handle


def app_for(handler: Handler) -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


@contextmanager
def server_in_thread(handler: Handler) -> Iterator[str]:
    """Run ``handler`` on a loop of its own in another thread; yield the API URL."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app_for(handler), shutdown_timeout=0.5)
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> str:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}{API_PATH}"

    url = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=10)
    try:
        yield url
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@pytest.fixture(name="serve")
async def serve_fixture() -> AsyncIterator[Serve]:
    """``serve``: start aiohttp applications on the test's loop (free ports), all closed after
    the test. A test module gets it with ``from koala_servers import serve_fixture``."""
    servers: list[TestServer] = []

    async def start(app: web.Application) -> str:
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return str(server.make_url(API_PATH))

    yield start
    for server in servers:
        await server.close()
