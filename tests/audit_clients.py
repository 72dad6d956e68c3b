"""Deliberately weak Koala clients for the audit's tests (``--client audit_clients:NAME``).

Each takes ``(api_endpoint, messages)``, as ``koala-mock audit`` calls a foreign client.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

import aiohttp

from koala import Koala, KoalaConnectionError

Messages = Sequence[Mapping[str, Any]]
READ_TIMEOUT = 0.25


async def line_by_line(api_endpoint: str, messages: Messages) -> AsyncIterator[Any]:
    """The original's parser (PROTOCOL.md): every line that starts with ``data: `` is JSON.

    No content-type check, no timeout, no handling of a broken body; a non-2xx status raises
    aiohttp's ClientResponseError.
    """
    payload = {
        "input": messages[-1]["content"],
        "inputHistory": [m["content"] for m in messages[:-1] if m["role"] == "user"],
        "outputHistory": [m["content"] for m in messages if m["role"] == "assistant"],
        "model": "gpt-4o-mini",
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(api_endpoint, json=payload) as response,
    ):
        response.raise_for_status()
        async for line in response.content:
            if line.startswith(b"data: "):
                yield json.loads(line[6:])


async def ignores_truncation(api_endpoint: str, messages: Messages) -> AsyncIterator[Any]:
    """The project's provider, except that a broken-off stream ends quietly."""
    stream = Koala.create_async_generator(
        "gpt-4o-mini", messages, api_endpoint=api_endpoint, read_timeout=READ_TIMEOUT
    )
    try:
        async for value in stream:
            yield value
    except KoalaConnectionError:
        return


def hangs_on_stall(api_endpoint: str, messages: Messages) -> AsyncIterator[Any]:
    """The project's provider with no timeout at all: it waits for a silent server for ever."""
    return Koala.create_async_generator(
        "gpt-4o-mini", messages, api_endpoint=api_endpoint, timeout=None, read_timeout=None
    )


async def whole_text(api_endpoint: str, messages: Messages) -> str:
    """An awaitable of the whole answer as one string (the provider underneath)."""
    stream = Koala.create_async_generator(
        "gpt-4o-mini", messages, api_endpoint=api_endpoint, read_timeout=READ_TIMEOUT
    )
    return "".join([value async for value in stream if isinstance(value, str)])


def blocking_iterator(api_endpoint: str, messages: Messages) -> Iterator[Any]:
    """A plain iterator that does its I/O in a thread of its own (the sync surface)."""
    return Koala.create_completion(
        "gpt-4o-mini", messages, stream=True, api_endpoint=api_endpoint, read_timeout=READ_TIMEOUT
    )


def never_ends(api_endpoint: str, messages: Messages) -> Iterator[Any]:
    """A plain iterator that never ends (nor asks the server anything)."""
    return itertools.repeat("again")
