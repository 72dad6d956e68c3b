"""The access log's buffer: lines wait together, and none is lost when the app shuts down."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import ClientSession
from conftest import HEADERS

from koala import build_payload, encode_payload
from mockserver import MockConfig, create_app
from mockserver.server.access_log import LineBuffer, flush_access_log, install_access_log
from mockserver.testing.embedded import start_server

BODY = encode_payload(build_payload("gpt-4o-mini", [{"role": "user", "content": "hi"}]))


async def test_lines_wait_for_the_timer_then_go_out_in_one_write(
    capsys: pytest.CaptureFixture[str],
) -> None:
    buffer = LineBuffer(interval=0.05)
    buffer.add("one")
    buffer.add("two")
    assert capsys.readouterr().err == ""
    assert len(buffer) == 2
    for _ in range(200):  # bounded: the timer fires after 0.05 s
        await asyncio.sleep(0.01)
        if not len(buffer):
            break
    assert capsys.readouterr().err == "one\ntwo\n"


async def test_a_full_buffer_is_written_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    buffer = LineBuffer(interval=3600, max_lines=3)
    for line in ("a", "b"):
        buffer.add(line)
    assert capsys.readouterr().err == ""
    buffer.add("c")
    assert capsys.readouterr().err == "a\nb\nc\n"
    assert len(buffer) == 0


def test_without_a_running_loop_a_line_is_written_at_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    LineBuffer(interval=3600).add("alone")
    assert capsys.readouterr().err == "alone\n"


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_app_cleanup_writes_every_buffered_line(
    log_format: str, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(MockConfig(cassette_dir=None, mode="synthetic", speed=0))
    buffer = LineBuffer(interval=3600)
    logger = install_access_log(app, log_format, buffer)
    runner, address = await start_server(app, access_log_class=logger)
    try:
        async with ClientSession() as session:
            for _ in range(5):
                async with session.post(
                    address.api_endpoint, data=BODY, headers=HEADERS
                ) as response:
                    assert response.status == 200
                    await response.read()
        await asyncio.sleep(0.01)  # aiohttp logs after the response is written
        assert "/api/gpt/" not in capsys.readouterr().err
        assert len(buffer) == 5
    finally:
        await runner.cleanup()
    err = capsys.readouterr().err
    assert err.count("/api/gpt/") == 5
    assert len(buffer) == 0


def test_flush_without_an_access_log_is_a_no_op() -> None:
    flush_access_log(create_app(MockConfig(cassette_dir=None)))
