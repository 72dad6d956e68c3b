"""Logs a client cannot forge, JSON log lines, idle connections closed, out of descriptors
reported once a second, a second signal harmless."""

from __future__ import annotations

import asyncio
import errno
import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import HEADERS, ClientFactory

from koala import build_payload, encode_payload
from mockserver import MockConfig, create_app, journal
from mockserver.cli.console import AcceptErrorReporter, Console, JsonLogFormatter
from mockserver.cli.main import _config_from_args, build_parser
from mockserver.server.access_log import format_text
from mockserver.wire.log_text import escape

REPO = Path(__file__).resolve().parents[2]
BODY = encode_payload(build_payload("gpt-4o-mini", [{"role": "user", "content": "Hi"}]))


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("/api/gpt/", "/api/gpt/"),
        ("/a\nPOST /forged 200", "/a\\x0aPOST /forged 200"),
        ("/a\r\x1b[31mred", "/a\\x0d\\x1b[31mred"),
        ("/back\\slash", "/back\\\\slash"),
        ("/nel\x85ls\u2028", "/nel\\x85ls\\u2028"),
        ("/txt.\u202egpj", "/txt.\\u202egpj"),  # a right-to-left override reorders the line
        ("/\u2066a\u2069\u200f\u061c", "/\\u2066a\\u2069\\u200f\\u061c"),
        ("/ünïcode/日本", "/ünïcode/日本"),
    ],
)
def test_escape_keeps_one_line(text: str, escaped: str) -> None:
    assert escape(text) == escaped
    assert "\n" not in escape(text) and "\r" not in escape(text)


def test_a_text_log_line_escapes_the_path_and_the_source() -> None:
    record = {
        "method": "POST",
        "path": "/api/gpt/\nGET /__admin/ 200 admin",
        "status": 404,
        "served_by": "fault wrong_content_type;content_type=a\x1b[2Jb",
        "events": 0,
        "bytes": 10,
        "duration_ms": 1.0,
    }
    line = format_text(record)
    assert "\n" not in line and "\x1b" not in line
    assert "\\x0aGET /__admin/" in line and "\\x1b[2J" in line


async def test_error_answers_are_journaled_with_their_bytes(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(create_app(MockConfig(cassette_dir=None)))
    for data in (b"{", b"[]"):
        async with client.post("/api/gpt/", data=data, headers=HEADERS) as response:
            body = await response.read()
        entry = journal(client.app).last()
        assert entry.status == response.status and entry.status >= 400
        assert entry.bytes_sent == len(body) > 0
    async with client.get("/nowhere") as response:
        body = await response.read()
    assert journal(client.app).last().bytes_sent == len(body)


async def test_an_idle_keepalive_connection_is_closed_after_the_timeout(
    aiohttp_client: ClientFactory,
) -> None:
    client = await aiohttp_client(create_app(MockConfig(cassette_dir=None, keepalive_timeout=0.3)))
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(b"GET /__admin/health HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % client.port)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 200")
    length = int(
        next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[
            1
        ]
    )
    await reader.readexactly(length)
    # The connection stays idle: the server closes it (EOF) rather than keeping it for an hour.
    assert await asyncio.wait_for(reader.read(), 30) == b""
    writer.close()


def test_keepalive_timeout_flag_and_default() -> None:
    parse = build_parser().parse_args
    assert _config_from_args(parse(["serve"])).keepalive_timeout == 15.0
    assert (
        _config_from_args(parse(["serve", "--keepalive-timeout", "2.5"])).keepalive_timeout == 2.5
    )
    with pytest.raises(ValueError, match="keepalive_timeout"):
        MockConfig(cassette_dir=None, keepalive_timeout=0)


class _Loop:
    def __init__(self) -> None:
        self.defaults: list[dict[str, Any]] = []

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        self.defaults.append(context)


def test_out_of_descriptors_is_one_line_a_second(capsys: pytest.CaptureFixture[str]) -> None:
    reporter = AcceptErrorReporter(Console(), interval=3600)
    loop = _Loop()
    context = {
        "message": "socket.accept() out of system resource",
        "exception": OSError(errno.EMFILE, "Too many open files"),
    }
    for _ in range(50):
        reporter(loop, context)  # type: ignore[arg-type]
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "Too many open files" in err and "Traceback" not in err
    assert reporter.suppressed == 49
    reporter.interval = 0
    reporter(loop, context)  # type: ignore[arg-type]
    assert "(49 more since the last note)" in capsys.readouterr().err
    other = {"message": "something else", "exception": ValueError("x")}
    reporter(loop, other)  # type: ignore[arg-type]
    assert loop.defaults == [other]  # the rest goes to asyncio's own handler


def test_json_console_and_log_records_are_one_json_object_a_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    Console("json").warn("cassette skipped: x.yaml\nnext", file="x.yaml")
    record = json.loads(capsys.readouterr().err)
    assert record["level"] == "warning" and record["file"] == "x.yaml"
    assert record["message"].endswith("\nnext") and record["time"].endswith("Z")
    import logging

    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log_record = logging.LogRecord(
            "mockserver", logging.ERROR, __file__, 1, "bug %s", ("here",), sys.exc_info()
        )
    line = JsonLogFormatter().format(log_record)
    parsed = json.loads(line)
    assert "\n" not in line
    assert parsed["message"] == "bug here" and "RuntimeError: boom" in parsed["exception"]


def _serve(*flags: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mockserver", "serve", "--port", "0", *flags],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "PATH": "/usr/bin:/bin"},
    )


def _endpoint(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("export KOALA_API_ENDPOINT="):
            return line.strip().split("=", 1)[1]
    raise AssertionError("no endpoint printed")


def test_repeated_signals_still_exit_0_after_one_clean_shutdown() -> None:
    process = _serve("--mode", "synthetic")
    try:
        endpoint = _endpoint(process)
        # A stalled stream keeps the shutdown busy for a moment, while more signals arrive.
        request = urllib.request.Request(
            endpoint,
            data=BODY,
            headers={**HEADERS, "X-Koala-Mock-Fault": "stall;seconds=30"},
            method="POST",
        )
        opened = urllib.request.urlopen(request, timeout=30)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGTERM, signal.SIGTERM):
            process.send_signal(signum)
            time.sleep(0.05)
        _, err = process.communicate(timeout=60)
        opened.close()
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert err.count("shutting down") == 1
    assert "Traceback" not in err


def test_malformed_http_is_one_escaped_line_with_the_peer_and_no_access_line() -> None:
    import socket

    process = _serve("--mode", "synthetic")
    try:
        endpoint = _endpoint(process)
        port = int(endpoint.split(":")[2].split("/")[0])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GARB\x1bAGE /\r\n\r\n")
            sock.recv(1000)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    lines = [line for line in err.splitlines() if "malformed HTTP" in line]
    assert len(lines) == 1 and "from 127.0.0.1" in lines[0]
    assert "\x1b" not in err
    assert "UNKNOWN" not in err  # no access line for aiohttp's stand-in request
    assert "Traceback" not in err


def test_escape_returns_a_clean_line_itself() -> None:
    text = "/api/gpt/" * 3  # the fast path: no copy
    assert escape(text) is text
