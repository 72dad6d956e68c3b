"""A stub's headers go out in the answer's head: a value aiohttp cannot send (a control
character) or a header the server sets itself (framing, the connection) is refused when the stub
is added, with a JSON 400 naming it. Should a head ever fail to go out anyway, the client gets
a JSON 500, the log one line, and the journal says so (not "200 eof")."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import pytest
from aiohttp import ClientPayloadError
from conftest import HEADERS, Client, ClientFactory

from koala import build_payload
from koala import encode_payload as encode
from mockserver import MockConfig, create_app, journal
from mockserver.server.state import STUBS
from mockserver.wire.stubs import Stub, StubError, parse_stub

CONTROL_VALUES = ["a\x01b", "a\x7fb", "a\x0bb", "a\x1bb", "a\rb", "a\nb", "a\x00b", "a\x1fb"]
SERVER_HEADERS = [
    "Transfer-Encoding",
    "content-length",
    "Connection",
    "Keep-Alive",
    "TE",
    "Trailer",
    "Upgrade",
    "Proxy-Connection",
]
PAYLOAD = encode(build_payload("gpt-4o-mini", [{"role": "user", "content": "Hello"}]))


@pytest.fixture
async def client(aiohttp_client: ClientFactory) -> Client:
    return await aiohttp_client(create_app(MockConfig(cassette_dir=None, speed=0)))


async def add(client: Client, stub: dict[str, Any]) -> tuple[int, str, Any]:
    async with client.post("/__admin/stubs", json=stub) as response:
        return response.status, response.content_type, await response.json()


async def ask(client: Client) -> tuple[int, str, bytes]:
    async with client.post("/api/gpt/", data=PAYLOAD, headers=HEADERS) as response:
        body = b""
        with contextlib.suppress(ClientPayloadError):
            body = await response.read()
        return response.status, response.content_type, body


@pytest.mark.parametrize("value", CONTROL_VALUES)
async def test_a_control_character_in_a_stub_header_is_a_json_400(
    client: Client, value: str
) -> None:
    status, content_type, answer = await add(client, {"text": "hi", "headers": {"X-A": value}})
    assert (status, content_type) == (400, "application/json")
    assert "'X-A'" in answer["error"] and repr(value[1]) in answer["error"]
    assert "control character" in answer["error"]
    assert (await ask(client))[0] == 200  # nothing was added: the server still answers


@pytest.mark.parametrize("name", SERVER_HEADERS)
async def test_a_header_the_server_sets_is_refused_in_a_stub(client: Client, name: str) -> None:
    status, content_type, answer = await add(client, {"text": "hi", "headers": {name: "chunked"}})
    assert (status, content_type) == (400, "application/json")
    assert repr(name) in answer["error"] and "set by the server" in answer["error"]


@pytest.mark.parametrize("name", ["X A", "X:A", "", "Ä", "X\x01"])
def test_a_stub_header_name_must_be_a_token(name: str) -> None:
    with pytest.raises(StubError, match="is not a header name"):
        parse_stub({"text": "hi", "headers": {name: "v"}})


def test_tabs_and_ordinary_headers_still_pass() -> None:
    stub = parse_stub({"text": "x", "headers": {"X-A": "a\tb", "Content-Type": "text/x"}})
    assert stub.headers == [("X-A", "a\tb"), ("Content-Type", "text/x")]


@pytest.mark.parametrize("tokens", [None, ["a", "b"]])  # one write, and a streamed answer
async def test_a_head_that_cannot_be_sent_is_a_logged_json_500(
    aiohttp_client: ClientFactory, caplog: pytest.LogCaptureFixture, tokens: list[str] | None
) -> None:
    # Past every check: as if one let a bad value through.
    config = MockConfig(cassette_dir=None, speed=0 if tokens is None else 1000)
    app = create_app(config)
    stub = Stub(tokens=tokens, text=None if tokens else "hi", headers=[("X-A", "a\x01b")])
    app[STUBS].add(stub)
    client = await aiohttp_client(app)
    with caplog.at_level(logging.DEBUG):
        status, content_type, body = await ask(client)
    assert (status, content_type) == (500, "application/json")
    assert b"could not be sent" in body
    entry = journal(app).entries()[-1]
    assert (entry.status, entry.ending) == (500, "server_bug")
    bugs = [r for r in caplog.records if "could not be sent" in r.getMessage()]
    assert len(bugs) == 1 and bugs[0].exc_info is None
    assert not [r for r in caplog.records if r.exc_info]  # no traceback anywhere
    assert (await ask(client))[0] == 500  # and the server goes on answering
