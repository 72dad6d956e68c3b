"""Generated raw requests over a socket (bytes, encodings, parameters): never a 5xx, never a
traceback in the log, and app errors always JSON."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator

import pytest
from bad_requests import (
    ENCODINGS,
    GOOD_BODY,
    GOOD_HEADERS,
    Tally,
    bad_request,
    http_request,
    send_raw,
)
from conftest import Client, ClientFactory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockserver import MockConfig, create_app
from mockserver.server.parser_errors import parser_errors_as_one_line

RAW = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
async def client(aiohttp_client: ClientFactory) -> AsyncIterator[Client]:
    # As `koala-mock serve` runs it: aiohttp's parser errors as one line, not a traceback.
    with parser_errors_as_one_line(""):
        yield await aiohttp_client(create_app(MockConfig(cassette_dir=None, max_body_size=4096)))


def assert_clean(tally: Tally, caplog: pytest.LogCaptureFixture) -> None:
    assert tally.server_errors == 0, tally.examples
    assert tally.non_json_4xx == 0, tally.examples
    assert tally.accepted_stubs == 0
    noisy = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not noisy, [r.getMessage() for r in noisy]


async def send(client: Client, request: bytes) -> bytes:
    assert client.server.host is not None and client.port is not None
    return await send_raw(client.server.host, client.port, request, timeout=10)


header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)


@RAW
@given(
    method=st.sampled_from(["POST", "GET", "PUT", "DELETE", "PATCH"]),
    path=st.sampled_from(["/api/gpt/", "/api/gpt", "/__admin/faults", "/__admin/requests"])
    | st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30).map(
        lambda p: "/" + p
    ),
    encoding=st.none() | st.sampled_from(ENCODINGS) | header_text,
    fault=st.none() | header_text,
    seed=st.none() | header_text,
    content_type=st.sampled_from(["application/json", "text/plain", "", "application/jsonx"]),
    body=st.binary(max_size=200) | st.just(GOOD_BODY),
)
async def test_generated_requests_get_no_5xx_and_no_traceback(
    client: Client,
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
    encoding: str | None,
    fault: str | None,
    seed: str | None,
    content_type: str,
    body: bytes,
) -> None:
    caplog.set_level(logging.WARNING)
    headers = {**GOOD_HEADERS, "Content-Type": content_type}
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    if fault is not None and not any(w in fault for w in ("stall", "slow", "server_error", "503")):
        headers["X-Koala-Mock-Fault"] = fault
    if seed is not None:
        headers["X-Koala-Mock-Seed"] = seed
    request = http_request(method, path, headers, body, f"127.0.0.1:{client.port}")
    tally = Tally()
    tally.add(request, await send(client, request))
    assert_clean(tally, caplog)


@RAW
@given(seed=st.integers(0, 2**32))
async def test_the_bench_generator_gets_no_5xx_and_no_traceback(
    client: Client, caplog: pytest.LogCaptureFixture, seed: int
) -> None:
    caplog.set_level(logging.WARNING)
    rng = random.Random(seed)
    tally = Tally()
    for _ in range(5):
        request = bad_request(rng, f"127.0.0.1:{client.port}")
        tally.add(request, await send(client, request))
    assert_clean(tally, caplog)
    assert tally.sent == 5
