"""The baseline of ``bench_startup.py``: a bare aiohttp app with one POST handler.

It imports only what it serves with (aiohttp.web), binds 127.0.0.1 on a free port, prints
``PORT <n>`` and serves until it is terminated. ``serve_until_killed`` is shared with the other
bench servers that need nothing but aiohttp.
"""

import asyncio
from collections.abc import Callable

from aiohttp import web


async def serve_until_killed(
    app: web.Application, announce: Callable[[int], str], *, access_log: bool = True
) -> None:
    """Serve ``app`` on 127.0.0.1 (a free port), print ``announce(port)``, wait forever."""
    runner = web.AppRunner(app) if access_log else web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(announce(runner.addresses[0][1]), flush=True)
    await asyncio.Event().wait()


async def answer(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=b'data: "ok"\n\n', content_type="text/event-stream")


if __name__ == "__main__":
    bare = web.Application()
    bare.router.add_post("/api/gpt/", answer)
    asyncio.run(serve_until_killed(bare, "PORT {}".format))
