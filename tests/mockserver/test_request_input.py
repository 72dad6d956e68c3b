"""Request input the server must refuse clearly: bodies that do not decode, bodies cut off by a
client that left, admin parameters out of range, fault parameters a header cannot carry."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import zlib
from collections.abc import Callable
from typing import Any

import brotli
import pytest
from conftest import HEADERS, Client, ClientFactory

from koala import build_payload, encode_payload
from mockserver import MockConfig, create_app, journal
from mockserver.cli.main import main
from mockserver.wire.faults import FaultSpecError, make_fault_spec, parse_fault_spec

PAYLOAD = build_payload("gpt-4o-mini", [{"role": "user", "content": "Hello koala"}])
BODY = encode_payload(PAYLOAD)
LIMIT = 4096


def gz(data: bytes) -> bytes:
    # A fixed time in the header: the test ids below are the same in every xdist worker.
    return gzip.compress(data, mtime=0)


@pytest.fixture
async def client(aiohttp_client: ClientFactory) -> Client:
    return await aiohttp_client(create_app(MockConfig(cassette_dir=None, max_body_size=LIMIT)))


@pytest.fixture
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def assert_no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage() for r in bad]


async def post(client: Client, body: bytes, path: str = "/api/gpt/", **headers: str) -> Any:
    base = HEADERS if path.startswith("/api/") else {"Content-Type": "application/json"}
    async with client.post(path, data=body, headers={**base, **headers}) as response:
        assert response.content_type == "application/json", await response.text()
        return response.status, await response.json()


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", b"notgzip"),
        ("x-gzip", b"\x1f\x8b\x08\x00garbage"),
        ("deflate", b"not deflate at all"),
        ("br", b"notbr"),
        ("gzip", gz(BODY)[:-10]),  # cut short
        ("gzip", gz(BODY) + b"trailing junk"),
        ("gzip, br", gz(BODY)),  # br was applied last: it does not decode
    ],
)
async def test_a_body_that_does_not_decode_is_a_json_400_naming_the_encoding(
    client: Client, no_tracebacks: pytest.LogCaptureFixture, encoding: str, body: bytes
) -> None:
    for path in ("/api/gpt/", "/__admin/faults"):
        status, error = await post(client, body, path, **{"Content-Encoding": encoding})
        assert status == 400, error
        assert "Content-Encoding" in error["error"]
        assert error["encoding"] in encoding
    assert_no_tracebacks(no_tracebacks)


@pytest.mark.parametrize("encoding", ["zstd", "compress", "gzip, rot13", "x-unknown"])
async def test_an_unsupported_encoding_is_a_json_415_naming_it(
    client: Client, no_tracebacks: pytest.LogCaptureFixture, encoding: str
) -> None:
    status, error = await post(client, BODY, **{"Content-Encoding": encoding})
    assert status == 415
    assert repr(encoding.split(", ")[-1]) in error["error"] and "gzip" in error["supported"]
    assert_no_tracebacks(no_tracebacks)


@pytest.mark.parametrize(
    ("encoding", "packed"),
    [
        ("gzip", gz(BODY)),
        ("GZIP", gz(BODY)),
        ("gzip", gz(BODY[:20]) + gz(BODY[20:])),  # two members
        ("deflate", zlib.compress(BODY)),
        ("deflate", zlib.compress(BODY)[2:-4]),  # raw deflate, as some clients send
        ("br", brotli.compress(BODY)),
        ("identity", BODY),
        ("gzip, br", brotli.compress(gz(BODY))),
        ("identity, gzip", gz(BODY)),
    ],
)
async def test_supported_encodings_are_decoded(
    client: Client, encoding: str, packed: bytes
) -> None:
    async with client.post(
        "/api/gpt/", data=packed, headers={**HEADERS, "Content-Encoding": encoding}
    ) as response:
        assert response.status == 200
        await response.read()
    assert journal(client.app).last().body == PAYLOAD


@pytest.mark.parametrize(
    ("encoding", "compress"), [("gzip", gzip.compress), ("br", brotli.compress)]
)
async def test_a_decompression_bomb_is_a_413(
    client: Client, encoding: str, compress: Callable[[bytes], bytes]
) -> None:
    bomb = compress(b"{" + b" " * 3_000_000 + b"}")
    assert len(bomb) < LIMIT
    for path in ("/api/gpt/", "/__admin/faults"):
        status, error = await post(client, bomb, path, **{"Content-Encoding": encoding})
        assert status == 413 and error["limit"] == LIMIT
        assert "decompressed" in error["error"]


async def test_a_client_gone_mid_body_is_journaled_as_a_disconnect(
    client: Client, no_tracebacks: pytest.LogCaptureFixture
) -> None:
    _reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    head = (
        "POST /api/gpt/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n"
    )
    writer.write(head.encode() + BODY[:30])
    await writer.drain()
    for _ in range(200):  # until the server has started reading the body
        if len(journal(client.app)):
            break
        await asyncio.sleep(0.01)
    writer.close()
    await writer.wait_closed()
    entry = journal(client.app).last()
    for _ in range(500):
        if entry.ending is not None:
            break
        await asyncio.sleep(0.01)
    assert entry.client_disconnected is True
    assert entry.ending == "client_disconnected"
    assert entry.status is None  # nothing was answered
    assert entry.to_json()["served_by"].get("source") != "bug"
    assert_no_tracebacks(no_tracebacks)


@pytest.mark.parametrize("limit", ["²", "١٢", "9" * 5000, "-1", "1e3", " 3", "", "1000001"])
async def test_a_bad_journal_limit_is_a_json_400_naming_it(client: Client, limit: str) -> None:
    async with client.get("/__admin/requests", params={"limit": limit}) as response:
        assert response.status == 400
        error = await response.json()
    assert error["error"].startswith("limit: expected a whole number 0..1000000")
    assert len(error["error"]) < 200  # a 5,000-digit value is not echoed whole


async def test_a_good_journal_limit_keeps_the_newest(client: Client) -> None:
    for _ in range(3):
        async with client.post("/api/gpt/", data=BODY, headers=HEADERS) as response:
            await response.read()
    async with client.get("/__admin/requests", params={"limit": "2"}) as response:
        answer = await response.json()
    assert [e["number"] for e in answer["requests"]] == [2, 3]


@pytest.mark.parametrize("times", [0, -1, 10**10, 1.5, "3", None])
async def test_a_bad_times_is_a_json_400(client: Client, times: Any) -> None:
    status, error = await post(
        client, json.dumps({"fault": "rate_limit", "times": times}).encode(), "/__admin/faults"
    )
    assert status == 400 and error["error"].startswith("times: expected a whole number 1..")


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "text/plain\r\nX-Injected: 1", "a\x00b", "\x7f"])
async def test_control_characters_in_a_fault_parameter_are_refused_everywhere(
    client: Client, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(FaultSpecError, match="control character"):
        make_fault_spec("wrong_content_type", {"content_type": value})
    with pytest.raises(FaultSpecError, match="control character"):
        parse_fault_spec(f"wrong_content_type;content_type={value}")
    body = {"fault": "wrong_content_type", "params": {"content_type": value}}
    status, error = await post(client, json.dumps(body).encode(), "/__admin/faults")
    assert status == 400 and "control character" in error["error"]
    body = {"fault": f"wrong_content_type;content_type={value}"}
    status, error = await post(client, json.dumps(body).encode(), "/__admin/faults")
    assert status == 400 and "control character" in error["error"]
    async with client.get("/__admin/faults") as response:
        assert (await response.json())["queue"] == []
    assert main(["demo", "--fault", f"wrong_content_type;content_type={value}"]) == 2
    assert "control character" in capsys.readouterr().err


async def test_a_control_character_in_the_fault_header_is_a_400(client: Client) -> None:
    # aiohttp's parser refuses most control bytes itself (a plain 400); either way, a 400.
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    request = (
        b"POST /api/gpt/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"X-Koala-Mock-Fault: wrong_content_type;content_type=a\x01b\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(BODY), BODY)
    )
    writer.write(request)
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert answer.startswith((b"HTTP/1.1 400 ", b"HTTP/1.0 400 "))


def test_a_tab_is_allowed_in_a_fault_parameter() -> None:
    spec = parse_fault_spec("wrong_content_type;content_type=text/plain,\tx")
    assert spec.params["content_type"] == "text/plain,\tx"
    assert make_fault_spec("wrong_content_type", {"content_type": "a\tb"}).params[
        "content_type"
    ] == ("a\tb")


@pytest.mark.parametrize(
    ("status", "reason"), [(500, "Internal Server Error"), (502, "Bad Gateway"), (599, "")]
)
async def test_server_error_says_its_own_status(client: Client, status: int, reason: str) -> None:
    async with client.post(
        "/api/gpt/",
        data=BODY,
        headers={**HEADERS, "X-Koala-Mock-Fault": f"server_error;status={status}"},
    ) as response:
        assert response.status == status
        text = await response.text()
    assert text.startswith(f"{status} {reason or 'Server Error'} (mock fault")
