"""A client that goes away in the middle of a stall frees what its stream held at once.

``start_server`` (what ``serve``, the demo and the pytest fixtures run) has aiohttp cancel a
handler whose client left; aiohttp's own default lets it run on until its next write fails,
which for a 30 s stall is 30 s of a held wait, journal entry in progress and open stream.
"""

from __future__ import annotations

import asyncio

from conftest import HEADERS, PAYLOAD

from koala.request import encode_payload
from mockserver import MockConfig, create_app
from mockserver.server.state import JOURNAL, STREAMS
from mockserver.testing.embedded import start_server


def _request(port: int) -> bytes:
    body = encode_payload(PAYLOAD)
    head = "".join(f"{name}: {value}\r\n" for name, value in HEADERS.items())
    return (
        f"POST /api/gpt/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{head}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def test_a_client_that_leaves_a_stall_is_journaled_and_forgotten_at_once() -> None:
    config = MockConfig(cassette_dir=None, mode="synthetic", default_fault="stall;seconds=30")
    app = create_app(config)
    runner, address = await start_server(app)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", address.port)
        writer.write(_request(address.port))
        await asyncio.wait_for(reader.readuntil(b"\n\n"), 10)  # the head and the first event
        entry = app[JOURNAL].entries()[-1]
        assert entry.ending is None and app[STREAMS].count == 1  # stalling
        writer.transport.abort()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10  # far less than the stall's 30 s
        while entry.ending is None and loop.time() < deadline:
            await asyncio.sleep(0.01)
        assert entry.ending == "client_disconnected"
        assert entry.client_disconnected
        assert app[STREAMS].count == 0
        assert not app[STREAMS]._waits  # its wait went with it
    finally:
        await runner.cleanup()
