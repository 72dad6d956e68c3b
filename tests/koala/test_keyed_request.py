"""What the provider sends with an API key or for the JSON reply, byte for byte, and what it does
with the answers and errors of the keyed API."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web
from koala_servers import app_for, serve_fixture

from koala import (
    ApiKey,
    AuthenticationError,
    InvalidOptionError,
    Koala,
    RateLimitError,
    ResponseStatusError,
    build_headers,
    build_payload,
    encode_payload,
)

__all__ = ["serve_fixture"]
KEY = "sk-unit-1234567890"
MESSAGES = [{"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1"}]
MESSAGES = [*MESSAGES, {"role": "user", "content": "u2"}]


class Capture:
    """A server that records each request and answers with the given status, type and body."""

    def __init__(self, body: bytes = b'{"output": "whole"}', status: int = 200) -> None:
        self.body, self.status = body, status
        self.requests: list[tuple[list[tuple[str, str]], bytes]] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((list(request.headers.items()), await request.read()))
        kind = "application/json" if self.body.startswith(b"{") else "text/event-stream"
        return web.Response(status=self.status, body=self.body, content_type=kind)


async def ask(serve: Any, capture: Capture, model: Any = "", **options: Any) -> list[Any]:
    url = await serve(app_for(capture.handle))
    return [
        c async for c in Koala.create_async_generator(model, MESSAGES, api_endpoint=url, **options)
    ]


async def test_the_keyed_shape_sends_the_key_and_nothing_of_the_browser(serve: Any) -> None:
    capture = Capture()
    assert await ask(serve, capture, "gpt-4.1", api_key=KEY, json_reply=True) == ["whole"]
    [(headers, body)] = capture.requests
    names = [name for name, _ in headers]
    assert dict(headers)["Authorization"] == f"Bearer {KEY}"
    assert dict(headers)["Accept"] == "application/json"
    assert "Visitor-ID" not in names and "Referer" not in names and "Origin" not in names
    assert json.loads(body) == {
        "input": "u2",
        "inputHistory": ["u1"],
        "outputHistory": ["a1"],
        "model": "gpt-4.1",
        "realTimeData": False,
    }


async def test_the_key_comes_from_the_environment_and_the_argument_wins(
    serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KOALA_API_KEY", "sk-from-env")
    capture = Capture()
    await ask(serve, capture)
    await ask(serve, capture, api_key=ApiKey(KEY), real_time_data=True)
    assert [dict(h)["Authorization"] for h, _ in capture.requests] == [
        "Bearer sk-from-env",
        f"Bearer {KEY}",
    ]
    assert json.loads(capture.requests[1][1])["realTimeData"] is True


async def test_without_a_key_the_request_is_the_originals_byte_for_byte(
    serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KOALA_API_KEY", raising=False)
    capture = Capture(b'data: "x"\n\n')
    visitor = "abcdefghij0123456789"
    models = ("", None, "gpt-5.1", "anything at all")
    for model in models:
        assert await ask(serve, capture, model, visitor_id=visitor) == ["x"]
    for (headers, body), model in zip(capture.requests, models, strict=True):
        sent = {name: value for name, value in headers if name not in ("Host", "Content-Length")}
        assert sent == {**build_headers(visitor), "Content-Type": "application/json"}
        assert body == encode_payload(build_payload(model, MESSAGES))


async def test_json_reply_in_the_browser_shape_changes_only_accept(serve: Any) -> None:
    capture = Capture()
    assert await ask(serve, capture, json_reply=True, visitor_id="abcdefghij0123456789") == [
        "whole"
    ]
    headers = dict(capture.requests[0][0])
    expected = build_headers("abcdefghij0123456789", json_reply=True)
    assert {k: headers[k] for k in expected} == expected
    assert expected["Accept"] == "application/json"


@pytest.mark.parametrize(
    ("status", "body", "error", "text"),
    [
        (401, b'{"message": "Invalid API key"}', AuthenticationError, "Invalid API key"),
        (429, b'{"message": "Slow down"}', RateLimitError, "Rate limit reached: Slow down"),
        (500, b'{"error": "boom", "code": 7}', ResponseStatusError, "boom"),
        (400, b'{"message": ""}', ResponseStatusError, '{"message": ""}'),
        (502, b"<html>bad gateway</html>", ResponseStatusError, "<html>bad gateway</html>"),
    ],
)
async def test_a_json_error_bodys_message_is_part_of_the_typed_error(
    serve: Any, status: int, body: bytes, error: type[Exception], text: str
) -> None:
    with pytest.raises(error) as raised:
        await ask(serve, Capture(body, status), api_key=KEY)
    assert str(raised.value) == f"Response {status}: {text}"
    assert type(raised.value) is error


@pytest.mark.parametrize("bad", ["", "has space", "line\nbreak", "tab\there", "ключ"])
async def test_a_key_that_cannot_be_sent_is_refused_before_any_request(
    serve: Any, bad: str
) -> None:
    capture = Capture()
    with pytest.raises(InvalidOptionError) as raised:
        await ask(serve, capture, api_key=bad)
    assert capture.requests == []
    if len(bad) > 3:
        assert bad not in str(raised.value)


async def test_a_visitor_id_with_a_key_is_refused(serve: Any) -> None:
    with pytest.raises(InvalidOptionError, match="visitor_id belongs to the browser shape"):
        await ask(serve, Capture(), api_key=KEY, visitor_id="abcdefghij0123456789")


def test_an_api_key_never_shows_itself() -> None:
    key = ApiKey(KEY)
    assert str(key) == repr(key) == "ApiKey(***)"
    assert f"{key}" == "ApiKey(***)" and KEY not in f"{[key]!r}"
    assert key.bearer() == f"Bearer {KEY}"
    assert key == ApiKey(KEY) and key != ApiKey("sk-other")
