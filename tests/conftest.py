"""Shared test helpers and fixtures.

pytest puts this folder on ``sys.path`` (rootdir conftest, no ``__init__.py``), so test modules in
the subfolders can ``from conftest import HEADERS`` (and ``from koala_servers import ...``, the
other helper modules here). The ``client`` fixture needs no import: a mock server with no
cassettes and an aiohttp test client for it; a module that needs other settings defines its own.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientPayloadError
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, settings
from koala_servers import Serve

from koala import build_headers, build_payload, encode_payload
from koala.sse import DEFAULT_MAX_EVENT_SIZE, EventStreamDecoder
from mockserver import MockConfig, create_app
from mockserver.cassettes.parse_cache import CACHE_DIR_ENV_VAR

# CI machines and developers' laptops are shared and slow at times: a test's speed is never what
# it checks here, so no per-example deadline and no "input generation is slow" failure.
settings.register_profile(
    "koala", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("koala")


@pytest.fixture(autouse=True, scope="session")
def _parse_cache_of_this_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The cassettes' parse cache in this run's temporary directory, never the user's
    ~/.cache (servers started as processes inherit it through the environment)."""
    directory = tmp_path_factory.mktemp("parse-cache")
    before = os.environ.get(CACHE_DIR_ENV_VAR)
    os.environ[CACHE_DIR_ENV_VAR] = str(directory)
    yield directory
    if before is None:
        del os.environ[CACHE_DIR_ENV_VAR]
    else:
        os.environ[CACHE_DIR_ENV_VAR] = before


ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]
Client = TestClient[Any, Any]

VISITOR_ID = "abcdefghij0123456789"
#: What the provider sends for one fixed visitor, with the Content-Type aiohttp adds to JSON.
HEADERS = {**build_headers(VISITOR_ID), "Content-Type": "application/json"}
#: A one-message conversation, as the provider builds it.
PAYLOAD = build_payload("gpt-4o-mini", [{"role": "user", "content": "Hi"}])

# docs/PROTOCOL.md, "Request the original sends": the rows "set by provider", in wire order (the
# table has 16 rows; Host, Content-Length and Content-Type are aiohttp's, which leaves 13). The
# Visitor-ID is random (None). Written out, not taken from koala.request.build_headers: a wrong
# constant there must fail the tests that compare with this.
PROTOCOL_HEADER_ROWS: list[tuple[str, str | None]] = [
    (
        "User-Agent",
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:122.0) Gecko/20100101 Firefox/122.0",
    ),
    ("Accept", "text/event-stream"),
    ("Accept-Language", "de,en-US;q=0.7,en;q=0.3"),
    ("Accept-Encoding", "gzip, deflate, br"),
    ("Referer", "https://koala.sh/chat"),
    ("Flag-Real-Time-Data", "false"),
    ("Visitor-ID", None),
    ("Origin", "https://koala.sh"),
    ("Alt-Used", "koala.sh"),
    ("Sec-Fetch-Dest", "empty"),
    ("Sec-Fetch-Mode", "cors"),
    ("Sec-Fetch-Site", "same-origin"),
    ("TE", "trailers"),
]


def decode_stream(*chunks: bytes, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> list[Any]:
    """The values the project's decoder reads from an event stream arriving in ``chunks``."""
    decoder = EventStreamDecoder(max_event_size=max_event_size)
    values = [value for chunk in chunks for value in decoder.feed(chunk)]
    return values + decoder.close()


@pytest.fixture
async def client(aiohttp_client: ClientFactory) -> Client:
    return await aiohttp_client(create_app(MockConfig(cassette_dir=None)))


async def chat(client: Client, **headers: str) -> int:
    """POST :data:`PAYLOAD` with :data:`HEADERS` (and ``headers``), read the answer, return its
    status. A body that a fault cuts short is no error here."""
    async with client.post(
        "/api/gpt/", data=encode_payload(PAYLOAD), headers={**HEADERS, **headers}
    ) as response:
        with contextlib.suppress(ClientPayloadError):
            await response.read()
        return response.status


async def recording_proxy(
    serve: Serve, upstream: str, record_dir: Path | None, **config: Any
) -> str:
    """Start the recording proxy in front of the ``upstream`` URL, saving into ``record_dir``
    (no cassettes of its own unless ``config`` gives a ``cassette_dir``); return its API URL."""
    proxy_config = MockConfig(
        **{"cassette_dir": None, **config}, record_upstream=upstream, record_dir=record_dir
    )
    return await serve(create_app(proxy_config))
