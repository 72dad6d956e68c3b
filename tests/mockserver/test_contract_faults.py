"""The Koala provider against the mock server over real TCP, for every fault and for fuzz seeds.

Decisions the tests pin down (and the README states):
- ``truncate`` (also ``mid_event=true``) and ``disconnect`` end in :class:`KoalaConnectionError`:
  the body ends before HTTP says it is complete, so the provider never sees a clean end of
  stream and never tries to parse a half event. The events before the cut are yielded first.
- ``stall`` ends in :class:`KoalaTimeoutError` once ``read_timeout`` passes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from conftest import decode_stream
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from koala import (
    BotDetectedError,
    CloudflareError,
    EventTooLargeError,
    InvalidEncodingError,
    Koala,
    KoalaConnectionError,
    KoalaError,
    KoalaTimeoutError,
    MalformedEventError,
    RateLimitError,
    ResponseStatusError,
    UnexpectedContentTypeError,
    build_payload,
)
from mockserver import FAULTS, MockConfig, create_app, journal, parse_fault_spec, queue_fault
from mockserver.cassettes.cassette import Cassette, load_cassette_dir
from mockserver.config import DEFAULT_CASSETTE_DIR
from mockserver.server.state import CONFIG
from mockserver.wire.synthetic import synthetic_tokens

MESSAGES = [{"role": "user", "content": "Tell me about koalas"}]
PAYLOAD = build_payload("gpt-4o-mini", MESSAGES)
ANSWER = synthetic_tokens(PAYLOAD)
ServerFactory = Callable[..., Awaitable[TestServer]]


@pytest.fixture
async def server(aiohttp_server: ServerFactory) -> TestServer:
    return await aiohttp_server(create_app(MockConfig(cassette_dir=None)))


def endpoint(server: TestServer) -> str:
    return str(server.make_url("/api/gpt/"))


async def collect(agen: AsyncIterator[Any], into: list[Any]) -> list[Any]:
    async for value in agen:
        into.append(value)
    return into


async def ask(
    server: TestServer, fault: str | None = None, messages: Any = MESSAGES, **kwargs: Any
) -> tuple[list[Any], BaseException | None]:
    """What the provider yields, and the error it raised (None when it finished)."""
    if fault is not None:
        journal(server.app).clear()
        spec = parse_fault_spec(fault)
        queue_fault(server.app, spec.name, **spec.params)
    received: list[Any] = []
    kwargs.setdefault("read_timeout", 10)
    kwargs.setdefault("timeout", 30)
    agen = Koala.create_async_generator(
        "gpt-4o-mini", messages, api_endpoint=endpoint(server), **kwargs
    )
    try:
        await collect(agen, received)
    except KoalaError as exc:
        return received, exc
    return received, None


STATUS_FAULTS: list[tuple[str, type[KoalaError], int]] = [
    ("rate_limit", RateLimitError, 429),
    ("payment_required", RateLimitError, 402),
    ("cloudflare", CloudflareError, 403),
    ("cloudflare_503", CloudflareError, 503),
    ("bot_detected", BotDetectedError, 403),
    ("server_error", ResponseStatusError, 500),
]


@pytest.mark.parametrize(("fault", "error", "status"), STATUS_FAULTS)
async def test_status_faults_raise_the_documented_error(
    server: TestServer, fault: str, error: type[KoalaError], status: int
) -> None:
    received, exc = await ask(server, fault)
    assert received == []
    assert type(exc) is error
    assert isinstance(exc, ResponseStatusError) and exc.status == status
    assert journal(server.app).last().fault == fault


async def test_rate_limit_carries_retry_after(server: TestServer) -> None:
    _, exc = await ask(server, "rate_limit;retry_after=7")
    assert isinstance(exc, RateLimitError) and exc.retry_after == 7.0


async def test_server_error_status_parameter(server: TestServer) -> None:
    _, exc = await ask(server, "server_error;status=502")
    assert isinstance(exc, ResponseStatusError) and exc.status == 502


RECOVERING_FAULTS = [
    "done_marker",
    "bom",
    "crlf",
    "cr",
    "keepalive_comments",
    "keepalive_comments;every=3",
    "split_writes",
    "split_writes;size=7",
    "slow_first_byte;delay=0.05",
    "huge_event;size=1000",
]


@pytest.mark.parametrize("fault", RECOVERING_FAULTS)
async def test_recoverable_faults_yield_the_full_answer(server: TestServer, fault: str) -> None:
    received, exc = await ask(server, fault)
    assert exc is None
    assert received == journal(server.app).last().values
    if not fault.startswith("huge_event"):
        assert received == ANSWER


async def test_json_reply_is_the_whole_answer_in_one_chunk(server: TestServer) -> None:
    received, exc = await ask(server, "json_reply")
    assert exc is None
    assert received == ["".join(ANSWER)]


async def test_huge_event_of_600000_characters_parses(server: TestServer) -> None:
    received, exc = await ask(server, "huge_event")
    assert exc is None
    assert received[1] == "x" * 600_000
    assert [received[0], *received[2:]] == ANSWER


async def test_huge_event_above_max_event_size_raises(server: TestServer) -> None:
    received, exc = await ask(server, "huge_event;size=200000", max_event_size=100_000)
    assert isinstance(exc, EventTooLargeError)
    assert received == ANSWER[:1]


@pytest.mark.parametrize(
    ("fault", "error", "good_events"),
    [
        ("malformed_json", MalformedEventError, 1),
        ("malformed_json;after=3", MalformedEventError, 3),
        ("invalid_utf8", InvalidEncodingError, 1),
        ("invalid_utf8;after=0", InvalidEncodingError, 0),
    ],
)
async def test_bad_events_raise_after_the_good_ones(
    server: TestServer, fault: str, error: type[KoalaError], good_events: int
) -> None:
    received, exc = await ask(server, fault)
    assert type(exc) is error
    assert received == ANSWER[:good_events] == journal(server.app).last().values


@pytest.mark.parametrize("fault", ["html_200", "wrong_content_type"])
async def test_wrong_content_is_refused(server: TestServer, fault: str) -> None:
    received, exc = await ask(server, fault)
    assert isinstance(exc, UnexpectedContentTypeError)
    assert received == []


@pytest.mark.parametrize(
    ("fault", "events"),
    [
        ("truncate", 2),
        ("truncate;events=0", 0),
        ("truncate;events=4;mid_event=true", 4),
        ("disconnect", 2),
        ("disconnect;events=5", 5),
    ],
)
async def test_broken_connections_raise_connection_error(
    server: TestServer, fault: str, events: int
) -> None:
    received, exc = await ask(server, fault)
    assert isinstance(exc, KoalaConnectionError)
    assert received == ANSWER[:events]
    entry = journal(server.app).last()
    assert entry.events_sent == events
    assert entry.ending in ("close", "abort")


async def test_stall_ends_in_a_timeout(server: TestServer) -> None:
    received, exc = await ask(server, "stall;after=2;seconds=30", read_timeout=0.2)
    assert isinstance(exc, KoalaTimeoutError)
    assert received == ANSWER[:2]


async def test_slow_first_byte_beyond_the_timeout_is_a_timeout(server: TestServer) -> None:
    _, exc = await ask(server, "slow_first_byte;delay=5", read_timeout=0.1)
    assert isinstance(exc, KoalaTimeoutError)


def test_every_fault_in_the_catalogue_is_tested_here() -> None:
    tested = {f for f, _, _ in STATUS_FAULTS}
    tested |= {f.split(";")[0] for f in RECOVERING_FAULTS}
    tested |= {
        "json_reply",
        "huge_event",
        "malformed_json",
        "invalid_utf8",
        "html_200",
        "wrong_content_type",
    }
    tested |= {"truncate", "disconnect", "stall", "slow_first_byte"}
    assert tested == set(FAULTS)


# ----------------------------------------------------------------------------- fuzzing

# Lone surrogates included: JSON carries them as \u escapes, and the server must too.
texts = st.text(st.characters(exclude_categories=()), min_size=1, max_size=60)


@pytest.fixture
async def fuzz_server(aiohttp_server: ServerFactory) -> TestServer:
    return await aiohttp_server(create_app(MockConfig(cassette_dir=None, mode="fuzz")))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**63 - 1), text=texts)
async def test_fuzzed_streams_keep_their_values(
    fuzz_server: TestServer, seed: int, text: str
) -> None:
    # The provider sends no extra headers, so the seed is the server's (fuzz mode, fixed seed).
    fuzz_server.app[CONFIG].seed = seed
    messages = [{"role": "user", "content": text}]
    received, exc = await ask(fuzz_server, messages=messages)
    assert exc is None
    expected = synthetic_tokens(build_payload("gpt-4o-mini", messages))
    assert received == expected
    entry = journal(fuzz_server.app).last()
    assert entry.seed == seed
    assert entry.values == expected


async def test_fuzz_mode_picks_a_seed_per_request_and_echoes_it(fuzz_server: TestServer) -> None:
    for _ in range(3):
        received, exc = await ask(fuzz_server)
        assert exc is None and received == ANSWER
    seeds = [e.seed for e in journal(fuzz_server.app).api_requests()]
    assert None not in seeds and len(set(seeds)) == 3


SHIPPED_STREAMS = [
    c
    for c in load_cassette_dir(DEFAULT_CASSETTE_DIR)[0]
    if c.interactions[0].status == 200
    and "text/event-stream" in (c.interactions[0].response_header("Content-Type") or "")
]


@pytest.mark.parametrize("cassette", SHIPPED_STREAMS, ids=lambda c: c.name)
async def test_fuzzed_replays_of_shipped_cassettes_keep_their_values(
    aiohttp_server: ServerFactory, cassette: Cassette
) -> None:
    config = MockConfig(cassette_dir=DEFAULT_CASSETTE_DIR, mode="fuzz")
    server = await aiohttp_server(create_app(config))
    recorded = decode_stream(cassette.interactions[0].body)
    for seed in range(4):
        config.seed = seed
        received, exc = await ask(server, messages=cassette.provenance["messages"])
        assert exc is None and received == recorded
        assert journal(server.app).last().served_by["cassette"] == cassette.name


# ----------------------------------------------------------------------------- end to end

roles = st.sampled_from(["user", "assistant", "system", "developer"])
messages_strategy = st.lists(
    st.fixed_dictionaries({"role": roles, "content": texts}), min_size=1, max_size=6
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(messages=messages_strategy)
async def test_every_request_the_provider_builds_passes_the_contract(
    server: TestServer, messages: list[dict[str, str]]
) -> None:
    received, exc = await ask(server, messages=messages)
    assert exc is None
    entry = journal(server.app).last()
    assert entry.verdict is not None
    assert entry.verdict["ok"] and entry.verdict["warnings"] == []
    assert entry.body == build_payload("gpt-4o-mini", messages)
    assert received == synthetic_tokens(entry.body)
