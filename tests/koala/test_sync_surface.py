"""The g4f-style surface: get_model, create_async, and the sync create_completion."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from koala_servers import Handler, server_in_thread, sse_handler

from koala import Koala, KoalaError, ModelNotSupportedError, RateLimitError

MESSAGES = [{"role": "user", "content": "Hi"}]
TOKENS = [b'data: "Hello"\n\n', b'data: {"not": "text"}\n\n', b'data: " world"\n\n']


def completion_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "Koala-completion" and t.is_alive()]


@pytest.fixture
def api() -> Iterator[str]:
    """The API URL of a server (in a thread of its own) that streams TOKENS."""
    with server_in_thread(sse_handler(*TOKENS)) as url:
        yield url


# ---------------------------------------------------------------- models


@pytest.mark.parametrize("name", ["", None])
def test_empty_model_is_the_default(name: str | None) -> None:
    assert Koala.get_model(name) == "gpt-4o-mini"


def test_known_model_and_alias() -> None:
    assert Koala.get_model("gpt-4o-mini") == "gpt-4o-mini"
    for alias, model in Koala.model_aliases.items():
        assert Koala.get_model(alias) == model


def test_models_are_the_ones_seen_in_public_clients_marked_as_observed() -> None:
    assert Koala.models_are_observed is True
    assert Koala.get_models() == [
        "gpt-4o-mini",
        "gpt-3.5-turbo",
        "gpt-4.1-mini",
        "gpt-4.1",
        "gpt-5.1",
    ]
    assert Koala.default_model in Koala.get_models()


@pytest.mark.parametrize("name", ["gpt-4o", "gpt-9-ultra", "my-model", " spaced ", "GPT-4O-MINI"])
def test_an_unknown_model_is_sent_as_given(name: str) -> None:
    assert Koala.get_model(name) == name


@pytest.mark.parametrize("bad", [5, 1.5, True, ["gpt-4o"], {"m": 1}, b"gpt-4o"])
def test_a_model_that_is_not_a_string_is_refused_with_its_type(bad: Any) -> None:
    with pytest.raises(ModelNotSupportedError) as raised:
        Koala.get_model(bad)
    assert isinstance(raised.value, ValueError)
    assert isinstance(raised.value, KoalaError)
    assert f"got {type(bad).__name__}" in str(raised.value)
    assert "gpt-4o-mini" in str(raised.value)


def test_a_model_that_is_not_a_string_fails_before_any_request() -> None:
    requests: list[str] = []

    async def count(request: web.Request) -> web.StreamResponse:
        requests.append(request.path)
        return web.Response(text="unexpected")

    with server_in_thread(count) as url, pytest.raises(ModelNotSupportedError):
        list(Koala.create_completion(42, MESSAGES, api_endpoint=url))  # type: ignore[arg-type]
    assert requests == []


# ---------------------------------------------------------------- create_async


async def test_create_async_joins_the_string_chunks(api: str) -> None:
    assert await Koala.create_async("", MESSAGES, api_endpoint=api) == "Hello world"


# ---------------------------------------------------------------- create_completion


def test_create_completion_from_plain_sync_code(api: str) -> None:
    earlier = completion_threads()  # left by other tests' unclosed generators
    chunks = list(Koala.create_completion("", MESSAGES, api_endpoint=api))
    assert chunks == ["Hello", {"not": "text"}, " world"]
    assert set(completion_threads()) - set(earlier) == set()


async def test_create_completion_inside_a_running_event_loop(api: str) -> None:
    asyncio.get_running_loop()  # this thread runs a loop; the original needed nest_asyncio
    chunks = list(Koala.create_completion("", MESSAGES, api_endpoint=api))
    assert chunks == ["Hello", {"not": "text"}, " world"]


def test_create_completion_from_a_thread_running_a_loop(api: str) -> None:
    results: list[Any] = []

    async def call_sync_api() -> None:
        results.append(list(Koala.create_completion("", MESSAGES, api_endpoint=api)))

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(call_sync_api(), loop).result(timeout=30)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
    assert results == [["Hello", {"not": "text"}, " world"]]


def test_create_completion_raises_the_typed_error() -> None:
    async def limited(request: web.Request) -> web.StreamResponse:
        return web.Response(status=429, text="slow down", headers={"Retry-After": "3"})

    with server_in_thread(limited) as url, pytest.raises(RateLimitError) as raised:
        list(Koala.create_completion("", MESSAGES, api_endpoint=url))
    assert raised.value.retry_after == 3.0


def endless() -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for _ in range(100_000):
            await response.write(b'data: "more"\n\n')
            await asyncio.sleep(0.001)
        return response

    return handle


def stalled(release: threading.Event) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: "first"\n\n')
        while not release.is_set():
            await asyncio.sleep(0.02)
        return response

    return handle


def close_in_background(generator: Iterator[Any]) -> threading.Thread:
    """Close ``generator`` from another thread, so a hang fails the test instead of blocking it."""
    closer = threading.Thread(target=generator.close, daemon=True)  # type: ignore[attr-defined]
    closer.start()
    closer.join(timeout=10)
    return closer


def test_closing_early_stops_the_worker_on_a_flowing_stream() -> None:
    with server_in_thread(endless()) as url:
        earlier = completion_threads()  # left by other tests' unclosed generators
        chunks = Koala.create_completion("", MESSAGES, api_endpoint=url)
        assert next(chunks) == "more"
        assert not close_in_background(chunks).is_alive()
        assert set(completion_threads()) - set(earlier) == set()


def test_closing_early_stops_the_worker_on_a_stalled_stream() -> None:
    release = threading.Event()
    with server_in_thread(stalled(release)) as url:
        earlier = completion_threads()  # left by other tests' unclosed generators
        chunks = Koala.create_completion(
            "", MESSAGES, api_endpoint=url, timeout=None, read_timeout=None
        )
        assert next(chunks) == "first"
        closer = close_in_background(chunks)
        stopped = not closer.is_alive() and set(completion_threads()) <= set(earlier)
        release.set()  # lets the handler (and, if close hung, the worker) finish
        closer.join(timeout=10)
    assert stopped, "closing the generator waited for the stalled stream"
