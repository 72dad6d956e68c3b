"""Error answers (fault status pages and the server's own JSON errors) are logged and journaled
with the bytes actually sent, and ``server_error`` names its own status (502 Bad Gateway)."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import ClientSession
from conftest import HEADERS

from koala import build_payload, encode_payload
from mockserver import MockConfig, create_app, journal
from mockserver.server.access_log import LineBuffer, install_access_log
from mockserver.testing.embedded import start_server

BODY = encode_payload(build_payload("gpt-4o-mini", [{"role": "user", "content": "hi"}]))
ERROR_ANSWERS = [
    ({"X-Koala-Mock-Fault": "server_error;status=502"}, 502),
    ({"X-Koala-Mock-Fault": "server_error"}, 500),
    ({"X-Koala-Mock-Fault": "rate_limit;retry_after=3"}, 429),
    ({"X-Koala-Mock-Fault": "cloudflare"}, 403),
    ({"X-Koala-Mock-Fault": "no_such_fault"}, 400),
    ({"X-Koala-Mock-Fault": "bom", "Accept": "application/json"}, 400),
]


async def test_error_answers_are_logged_and_journaled_with_their_bytes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = create_app(MockConfig(cassette_dir=None, mode="synthetic", speed=0))
    logger = install_access_log(app, "json", LineBuffer(interval=3600))
    runner, address = await start_server(app, access_log_class=logger)
    sizes = []
    try:
        async with ClientSession() as session:
            for extra, status in ERROR_ANSWERS:
                async with session.post(
                    address.api_endpoint, data=BODY, headers={**HEADERS, **extra}
                ) as response:
                    assert response.status == status
                    body = await response.read()
                assert body
                entry = journal(app).last()
                assert (entry.status, entry.bytes_sent, entry.ending) == (status, len(body), "eof")
                sizes.append((status, len(body)))
        await asyncio.sleep(0.01)  # aiohttp logs after the response is written
    finally:
        await runner.cleanup()  # flushes the log lines
    records = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    logged = [(r["status"], r["bytes"]) for r in records if r["path"] == "/api/gpt/"]
    assert logged == sizes


async def test_server_error_502_says_bad_gateway_in_its_status_line_and_body() -> None:
    app = create_app(MockConfig(cassette_dir=None, mode="synthetic", speed=0))
    runner, address = await start_server(app)
    try:
        async with (
            ClientSession() as session,
            session.post(
                address.api_endpoint,
                data=BODY,
                headers={**HEADERS, "X-Koala-Mock-Fault": "server_error;status=502"},
            ) as response,
        ):
            assert (response.status, response.reason) == (502, "Bad Gateway")
            text = await response.text()
    finally:
        await runner.cleanup()
    assert text == "502 Bad Gateway (mock fault: server_error)"
    assert "Internal Server Error" not in text
