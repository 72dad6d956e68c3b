"""Small client fixes: absurd Retry-After values, timeout messages without a limit."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web

from koala import Koala
from koala.errors import EventTooLargeError, KoalaTimeoutError
from koala.provider import _seconds
from koala.response import retry_after_seconds, status_error


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("5", 5.0),
        ("0", 0.0),
        ("31536000", 31536000.0),  # one year: still taken
        ("31536001", None),
        ("9" * 400, None),  # float() gives inf
        ("1e999", None),
        (None, None),
    ],
)
def test_retry_after_is_none_when_absurd(value: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(value) == seconds


def test_a_rate_limit_with_an_absurd_retry_after_has_none() -> None:
    error = status_error(429, {"Retry-After": "9" * 400}, "slow down")
    assert error is not None and getattr(error, "retry_after", "missing") is None
    assert "inf" not in str(error)


def test_timeout_limits_read_well() -> None:
    assert _seconds(None) == "none"
    assert _seconds(30.0) == "30 s"
    assert _seconds(0.5) == "0.5 s"


@pytest.mark.parametrize(
    ("timeout", "read_timeout", "limits"),
    [
        (None, 0.2, "(total: none, between chunks: 0.2 s)"),
        (0.2, None, "(total: 0.2 s, between chunks: none)"),
    ],
)
async def test_a_timeout_message_names_its_limits_and_none_reads_well(
    aiohttp_server: Any, timeout: float | None, read_timeout: float | None, limits: str
) -> None:
    release = asyncio.Event()

    async def stall(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await asyncio.wait_for(release.wait(), 10)
        return response

    app = web.Application()
    app.router.add_post("/api/gpt/", stall)
    server = await aiohttp_server(app)
    url = str(server.make_url("/api/gpt/"))
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(KoalaTimeoutError) as caught:
        async for _ in Koala.create_async_generator(
            "", messages, api_endpoint=url, timeout=timeout, read_timeout=read_timeout
        ):
            pass
    release.set()
    assert str(caught.value).endswith(f"within the timeout {limits}")
    assert "Nones" not in str(caught.value)


async def test_a_json_reply_over_max_event_size_is_event_too_large(aiohttp_server: Any) -> None:
    async def reply(request: web.Request) -> web.Response:
        return web.json_response({"output": "x" * 5000})

    app = web.Application()
    app.router.add_post("/api/gpt/", reply)
    server = await aiohttp_server(app)
    url = str(server.make_url("/api/gpt/"))
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(EventTooLargeError, match="JSON reply is larger than max_event_size"):
        async for _ in Koala.create_async_generator(
            "gpt-4o-mini", messages, api_endpoint=url, max_event_size=1000, json_reply=True
        ):
            pass
    got = [
        c
        async for c in Koala.create_async_generator(
            "gpt-4o-mini", messages, api_endpoint=url, max_event_size=10_000, json_reply=True
        )
    ]
    assert got == ["x" * 5000]
