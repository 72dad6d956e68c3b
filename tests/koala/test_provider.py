"""The Koala provider over real TCP: a local aiohttp server on 127.0.0.1 plays the API."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import sys
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from koala_servers import API_PATH, Handler, app_for, server_in_thread, sse_handler

from koala import (
    BotDetectedError,
    CloudflareError,
    EventTooLargeError,
    InvalidMessagesError,
    InvalidOptionError,
    Koala,
    KoalaConnectionError,
    KoalaError,
    KoalaTimeoutError,
    MalformedEventError,
    MissingDependencyError,
    RateLimitError,
    ResponseStatusError,
    UnexpectedContentTypeError,
    build_headers,
    build_payload,
    encode_payload,
)
from koala.provider import ENDPOINT_ENV_VAR
from mockserver.testing.strategies import message_lists

MESSAGES = [{"role": "user", "content": "Hi"}]
Serve = Callable[[Handler], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start a server for a handler on 127.0.0.1 (free port); returns its API URL."""
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> str:
        runner = web.AppRunner(app_for(handler), shutdown_timeout=0.2)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}{API_PATH}"

    yield start
    for runner in runners:
        await runner.cleanup()


async def collect(url: str, messages: Any = MESSAGES, **kwargs: Any) -> list[Any]:
    return [
        chunk
        async for chunk in Koala.create_async_generator("", messages, api_endpoint=url, **kwargs)
    ]


async def collect_until_error(url: str, **kwargs: Any) -> tuple[list[Any], BaseException]:
    chunks: list[Any] = []
    try:
        async for chunk in Koala.create_async_generator("", MESSAGES, api_endpoint=url, **kwargs):
            chunks.append(chunk)
    except BaseException as error:
        return chunks, error
    raise AssertionError(f"no error; yielded {chunks!r}")


def reply(status: int, body: str | bytes, content_type: str, **headers: str) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        await request.read()
        raw = body.encode() if isinstance(body, str) else body
        return web.Response(status=status, body=raw, content_type=content_type, headers=headers)

    return handle


# ---------------------------------------------------------------- the happy path and the wire


async def test_streams_tokens(serve: Serve) -> None:
    url = await serve(sse_handler(b'data: "Hello"\n\n', b'data: " world"\n\n', b'data: "!"\n\n'))
    assert await collect(url) == ["Hello", " world", "!"]


async def test_non_string_values_come_through_as_json(serve: Serve) -> None:
    url = await serve(sse_handler(b'data: {"a": [1, null]}\n\ndata: 3\n\n'))
    assert await collect(url) == [{"a": [1, None]}, 3]


async def test_wire_headers_and_body(serve: Serve) -> None:
    seen: list[tuple[list[tuple[bytes, bytes]], bytes]] = []

    async def record(request: web.Request) -> web.StreamResponse:
        seen.append((list(request.raw_headers), await request.read()))
        return await sse_handler(b'data: "ok"\n\n')(request)

    url = await serve(record)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hé"}]
    visitor = "abcdefghij0123456789"
    assert await collect(url, messages, visitor_id=visitor, real_time_data=True) == ["ok"]
    ((raw_headers, body),) = seen
    names = [name.decode() for name, _ in raw_headers]
    provider = build_headers(visitor, real_time_data=True)
    assert names == ["Host", *provider, "Content-Length", "Content-Type"]
    values = dict((name.decode(), value.decode()) for name, value in raw_headers)
    assert {name: values[name] for name in provider} == provider
    assert values["Content-Type"] == "application/json"
    assert values["Content-Length"] == str(len(body))
    assert body == encode_payload(build_payload("gpt-4o-mini", messages))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message_lists(parts=True))
def test_any_conversation_reaches_the_server_as_built(messages: list[dict[str, Any]]) -> None:
    bodies: list[bytes] = []

    async def record(request: web.Request) -> web.StreamResponse:
        bodies.append(await request.read())
        return await sse_handler(b'data: "ok"\n\n')(request)

    with server_in_thread(record) as url:
        assert asyncio.run(collect(url, messages)) == ["ok"]
    assert bodies == [encode_payload(build_payload(None, messages))]


# ---------------------------------------------------------------- status codes


async def test_429_is_a_rate_limit_error_with_retry_after(serve: Serve) -> None:
    url = await serve(reply(429, "slow down", "text/plain", **{"Retry-After": "7"}))
    _, error = await collect_until_error(url)
    assert isinstance(error, RateLimitError)
    assert (error.status, error.retry_after) == (429, 7.0)
    assert "429" in str(error)
    assert "Retry-After: 7" in str(error)


@pytest.mark.parametrize("retry_after", [None, "Wed, 21 Oct 2026 07:28:00 GMT"])
async def test_429_without_a_numeric_retry_after(serve: Serve, retry_after: str | None) -> None:
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    url = await serve(reply(429, "slow down", "text/plain", **headers))
    _, error = await collect_until_error(url)
    assert isinstance(error, RateLimitError)
    assert error.retry_after is None


async def test_402_is_a_rate_limit_error(serve: Serve) -> None:
    url = await serve(reply(402, "pay", "text/plain"))
    _, error = await collect_until_error(url)
    assert isinstance(error, RateLimitError)
    assert error.status == 402


CLOUDFLARE_PAGE = "<html><head><title>Just a moment...</title></head><body>" + "x" * 5000
CLOUDFLARE_WAIT = '<html><body><div id="cf-please-wait">checking</div></body></html>'


@pytest.mark.parametrize(
    ("status", "page"), [(403, CLOUDFLARE_PAGE), (503, CLOUDFLARE_PAGE), (403, CLOUDFLARE_WAIT)]
)
async def test_cloudflare_challenge_is_a_cloudflare_error(
    serve: Serve, status: int, page: str
) -> None:
    url = await serve(reply(status, page, "text/html"))
    _, error = await collect_until_error(url)
    assert isinstance(error, CloudflareError)
    assert isinstance(error, ResponseStatusError)
    assert error.status == status
    assert "Cloudflare" in str(error)
    assert len(str(error)) < 300


async def test_unable_to_load_site_is_bot_detected(serve: Serve) -> None:
    url = await serve(reply(403, "<html><p>Unable to load site</p></html>", "text/html"))
    _, error = await collect_until_error(url)
    assert isinstance(error, BotDetectedError)
    assert error.status == 403


async def test_other_statuses_name_the_status_and_a_shortened_body(serve: Serve) -> None:
    page = "<html><body>Internal trouble " + "y" * 100_000 + "</body></html>"
    url = await serve(reply(500, page, "text/html"))
    _, error = await collect_until_error(url)
    assert type(error) is ResponseStatusError
    assert error.status == 500
    assert str(error).startswith("Response 500: <html><body>Internal trouble")
    assert len(str(error)) < 300


async def test_a_plain_403_is_a_status_error(serve: Serve) -> None:
    url = await serve(reply(403, "forbidden", "text/plain"))
    _, error = await collect_until_error(url)
    assert type(error) is ResponseStatusError
    assert "forbidden" in str(error)


# ---------------------------------------------------------------- content types


async def test_200_html_names_the_content_type(serve: Serve) -> None:
    url = await serve(reply(200, "<html>challenge " + "z" * 50_000, "text/html"))
    _, error = await collect_until_error(url)
    assert isinstance(error, UnexpectedContentTypeError)
    assert "text/html" in error.content_type
    assert "text/html" in str(error)
    assert "<html>challenge" in str(error)
    assert len(str(error)) < 400


async def test_json_output_reply_yields_its_text(serve: Serve) -> None:
    url = await serve(reply(200, json.dumps({"output": "hi"}), "application/json"))
    assert await collect(url) == ["hi"]


@pytest.mark.parametrize(
    "body", ['{"error": "nope"}', '{"output": 3}', "[1, 2]", "not json", "[" * 100_000]
)
async def test_other_json_is_an_unexpected_content_type(serve: Serve, body: str) -> None:
    url = await serve(reply(200, body, "application/json"))
    _, error = await collect_until_error(url)
    assert isinstance(error, UnexpectedContentTypeError)
    assert "application/json" in str(error)


async def test_unexpected_content_type_names_what_was_asked_for(serve: Serve) -> None:
    url = await serve(reply(200, "<html>hi", "text/html"))
    for json_reply, expected in ((False, "text/event-stream"), (True, "application/json")):
        _, error = await collect_until_error(url, json_reply=json_reply)
        assert isinstance(error, UnexpectedContentTypeError)
        assert error.expected == expected
        assert str(error).startswith(f"expected {expected}, got text/html")


@pytest.mark.parametrize("json_reply", [False, True])
async def test_a_whole_json_reply_of_another_shape_names_the_shape(
    serve: Serve, json_reply: bool
) -> None:
    url = await serve(reply(200, '{"output": 3}', "application/json"))
    _, error = await collect_until_error(url, json_reply=json_reply)
    assert isinstance(error, UnexpectedContentTypeError)
    assert str(error).startswith('expected a JSON reply {"output": "<text>"}, got application/json')
    assert "event-stream" not in str(error)


async def test_event_stream_content_type_with_charset(serve: Serve) -> None:
    url = await serve(reply(200, 'data: "a"\n\n', "text/event-stream", charset="utf-8"))
    assert await collect(url) == ["a"]


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_compressed_stream(serve: Serve, encoding: str) -> None:
    body = b'data: "Hello"\n\ndata: " world"\n\n'
    packed = gzip.compress(body) if encoding == "gzip" else zlib.compress(body)
    headers = {"Content-Encoding": encoding}
    url = await serve(reply(200, packed, "text/event-stream", **headers))
    assert await collect(url) == ["Hello", " world"]


# ---------------------------------------------------------------- stream errors


async def test_malformed_event_through_the_provider(serve: Serve) -> None:
    url = await serve(sse_handler(b'data: "a"\n\n', b"data: {broken\n\n"))
    chunks, error = await collect_until_error(url)
    assert chunks == ["a"]
    assert isinstance(error, MalformedEventError)
    assert str(error).startswith("event 2: ")


async def test_max_event_size_is_passed_to_the_decoder(serve: Serve) -> None:
    url = await serve(sse_handler(b'data: "' + b"x" * 5000 + b'"\n\n'))
    _, error = await collect_until_error(url, max_event_size=1000)
    assert isinstance(error, EventTooLargeError)


async def test_done_marker_ends_the_answer(serve: Serve) -> None:
    url = await serve(sse_handler(b'data: "a"\n\n', b"data: [DONE]\n\n", b'data: "b"\n\n'))
    assert await collect(url) == ["a"]


# ---------------------------------------------------------------- timeouts and connections


@pytest.fixture
def release() -> asyncio.Event:
    """Set at the end of a test to let stalled handlers finish."""
    return asyncio.Event()


async def test_stalled_stream_is_a_timeout_error(serve: Serve, release: asyncio.Event) -> None:
    async def stall(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: "first"\n\n')
        await asyncio.wait_for(release.wait(), 30)
        return response

    url = await serve(stall)
    chunks, error = await collect_until_error(url, read_timeout=0.3)
    release.set()
    assert chunks == ["first"]
    assert isinstance(error, KoalaTimeoutError)
    assert isinstance(error, TimeoutError)
    assert "timeout" in str(error)


async def test_total_timeout_ends_a_slow_but_steady_stream(
    serve: Serve, release: asyncio.Event
) -> None:
    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        while not release.is_set():
            await response.write(b'data: "."\n\n')
            await asyncio.sleep(0.05)
        return response

    url = await serve(trickle)
    chunks, error = await collect_until_error(url, timeout=0.5, read_timeout=5)
    release.set()
    assert chunks  # the stream was flowing when the total timeout hit
    assert isinstance(error, KoalaTimeoutError)


async def test_slow_first_byte_is_a_timeout_error(serve: Serve, release: asyncio.Event) -> None:
    async def silent(request: web.Request) -> web.StreamResponse:
        await asyncio.wait_for(release.wait(), 30)
        return web.Response(text="late")

    url = await serve(silent)
    _, error = await collect_until_error(url, read_timeout=0.3)
    release.set()
    assert isinstance(error, KoalaTimeoutError)


async def test_connection_reset_mid_stream(serve: Serve) -> None:
    async def reset(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: "first"\n\n')
        await asyncio.sleep(0.05)
        assert request.transport is not None
        request.transport.abort()
        return response

    url = await serve(reset)
    chunks, error = await collect_until_error(url)
    assert chunks == ["first"]
    assert isinstance(error, KoalaConnectionError)
    assert isinstance(error, ConnectionError)


async def test_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _, error = await collect_until_error(f"http://127.0.0.1:{port}{API_PATH}")
    assert isinstance(error, KoalaConnectionError)
    assert f"127.0.0.1:{port}" in str(error)


# ---------------------------------------------------------------- endpoint, messages, proxies


def answering(token: str) -> Handler:
    return sse_handler(f"data: {json.dumps(token)}\n\n".encode())


async def test_endpoint_precedence(serve: Serve, monkeypatch: pytest.MonkeyPatch) -> None:
    kwarg_url = await serve(answering("kwarg"))
    env_url = await serve(answering("env"))
    class_url = await serve(answering("class"))
    monkeypatch.setattr(Koala, "api_endpoint", class_url)
    monkeypatch.delenv(ENDPOINT_ENV_VAR, raising=False)
    assert [c async for c in Koala.create_async_generator("", MESSAGES)] == ["class"]
    monkeypatch.setenv(ENDPOINT_ENV_VAR, env_url)
    assert [c async for c in Koala.create_async_generator("", MESSAGES)] == ["env"]
    assert await collect(kwarg_url) == ["kwarg"]


@pytest.mark.parametrize("messages", [[], [{"role": "user"}], [{"content": "x"}], "Hi"])
async def test_invalid_messages_fail_before_any_request(serve: Serve, messages: Any) -> None:
    requests: list[bytes] = []

    async def count(request: web.Request) -> web.StreamResponse:
        requests.append(await request.read())
        return web.Response(text="unexpected")

    url = await serve(count)
    with pytest.raises(InvalidMessagesError):
        await collect(url, messages)
    assert requests == []


async def test_socks_proxy_without_aiohttp_socks_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "aiohttp_socks", None)
    with pytest.raises(MissingDependencyError) as raised:
        await collect("http://127.0.0.1:9/api/gpt/", proxy="socks5://127.0.0.1:1080")
    assert "koala-harness[socks]" in str(raised.value)
    assert isinstance(raised.value, ImportError)
    assert isinstance(raised.value, KoalaError)


async def test_http_proxy_is_used(serve: Serve) -> None:
    request_targets: list[str] = []

    async def proxy(request: web.Request) -> web.StreamResponse:
        request_targets.append(f"{request.method} {request.url}")
        return await answering("via proxy")(request)

    proxy_url = await serve(proxy)
    proxy_root = proxy_url.removesuffix(API_PATH)
    # A host that does not resolve: only a proxy that forwards by absolute URI can answer.
    chunks = await collect("http://koala.invalid/api/gpt/", proxy=proxy_root)
    assert chunks == ["via proxy"]
    assert request_targets == ["POST http://koala.invalid/api/gpt/"]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("proxy", "error"),
    [
        ("socks5://127.0.0.1:{port}", KoalaConnectionError),  # nothing listens there
        ("http://127.0.0.1:{port}", KoalaConnectionError),
        ("socks5://", InvalidOptionError),
        ("socks9://x", InvalidOptionError),
    ],
)
async def test_proxy_failures_are_typed_and_name_the_proxy(
    proxy: str, error: type[KoalaError]
) -> None:
    proxy = proxy.format(port=closed_port())
    _, raised = await collect_until_error("http://127.0.0.1:9/api/gpt/", proxy=proxy)
    assert type(raised) is error
    assert "proxy" in str(raised).lower()


@pytest.mark.parametrize(
    "options",
    [
        {"timeout": "10"},
        {"timeout": -1},
        {"timeout": 0},
        {"timeout": True},
        {"read_timeout": -1},
        {"visitor_id": 123},
        {"visitor_id": "BAD"},
        {"visitor_id": "a" * 21},
        {"real_time_data": "yes"},
        {"max_event_size": 0},
        {"api_endpoint": "127.0.0.1:8765/api/gpt/"},
    ],
)
async def test_bad_options_fail_before_any_request(serve: Serve, options: dict[str, Any]) -> None:
    requests: list[bytes] = []

    async def count(request: web.Request) -> web.StreamResponse:
        requests.append(await request.read())
        return web.Response(text="unexpected")

    options = dict(options)
    name = next(iter(options))
    url = options.pop("api_endpoint", await serve(count))
    with pytest.raises(InvalidOptionError) as raised:
        await collect(url, **options)
    assert (name if name != "api_endpoint" else "endpoint") in str(raised.value)
    assert isinstance(raised.value, ValueError)
    assert requests == []


async def test_a_bad_endpoint_in_the_environment_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENDPOINT_ENV_VAR, "localhost:8765")
    with pytest.raises(InvalidOptionError, match=ENDPOINT_ENV_VAR):
        await Koala.create_async("", MESSAGES)
