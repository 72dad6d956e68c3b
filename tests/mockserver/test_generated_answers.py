"""Large fault answers are made while they are sent, a bounded chunk at a time, and send exactly
the bytes the eager version built; the server bounds the bytes generated at once (JSON 503)."""

from __future__ import annotations

import asyncio
import tracemalloc
from typing import Any

import pytest
from aiohttp import ClientSession
from conftest import HEADERS, Client
from hypothesis import given
from hypothesis import strategies as st

from koala import build_payload, encode_payload
from mockserver import MockConfig, create_app, journal, parse_fault_spec
from mockserver.cli.main import _config_from_args, build_parser
from mockserver.config import DEFAULT_MAX_GENERATED_BYTES
from mockserver.server.generation_budget import GenerationBudget
from mockserver.wire.generated import (
    CHUNK_SIZE,
    JoinedWrites,
    RepeatedFill,
    SlicedBody,
    ValuesWithLongText,
    Write,
)
from mockserver.wire.huge_event import huge_event_plan
from mockserver.wire.plan import ResponsePlan, event_stream_plan, rechunk
from mockserver.wire.streams import WireFormat

BODY = encode_payload(build_payload("gpt-4o-mini", [{"role": "user", "content": "Hi koala"}]))
VALUES = st.lists(st.text(max_size=20), max_size=5)


def eager_huge_event(values: list[Any], size: int, delay: float) -> ResponsePlan:
    """The huge_event answer as it was built before: the whole text, then the whole body."""
    return event_stream_plan([*values[:1], "x" * size, *values[1:]], WireFormat(), delay)


def schedule(plan: ResponsePlan) -> list[tuple[int, float]]:
    """(body offset, delay) of every write with a delay: when each byte is due."""
    out, offset = [], 0
    for write in plan.writes:
        if write.delay:
            out.append((offset, write.delay))
        offset += len(write.data)
    return out


@given(
    values=VALUES,
    size=st.one_of(st.integers(1, 300), st.integers(CHUNK_SIZE - 10, 3 * CHUNK_SIZE + 10)),
    delay=st.sampled_from([0.0, 0.25]),
)
def test_huge_event_sends_the_bytes_of_the_eager_version(
    values: list[str], size: int, delay: float
) -> None:
    lazy, eager = huge_event_plan(values, size, delay), eager_huge_event(values, size, delay)
    assert lazy.body == eager.body
    assert lazy.body_size == lazy.generated_size == len(eager.body)
    assert lazy.event_ends == eager.event_ends
    assert lazy.values == eager.values and list(lazy.values or ()) == eager.values
    assert schedule(lazy) == schedule(eager)
    # The huge event goes out in chunks; the other events (a few bytes each) as they were.
    assert all(len(w.data) <= CHUNK_SIZE for w in lazy.writes)


def test_the_fault_builds_its_plan_from_the_lazy_version() -> None:
    answer = ["One", " two", " three"]
    plan = parse_fault_spec("huge_event;size=100000").plan(answer, delay=0.5)
    assert plan.body == eager_huge_event(answer, 100_000, 0.5).body
    assert plan.generated_size == len(plan.body) and not plan.coalescible()
    assert len(plan.values or ()) == 4


@given(
    prefix=st.binary(max_size=20),
    count=st.integers(0, 500),
    suffix=st.binary(max_size=20),
    chunk=st.integers(1, 64),
)
def test_repeated_fill_is_its_bytes_in_chunks(
    prefix: bytes, count: int, suffix: bytes, chunk: int
) -> None:
    writes = RepeatedFill(prefix, b"x", count, suffix, delay=0.5, chunk_size=chunk)
    data = [w.data for w in writes]
    assert b"".join(data) == prefix + b"x" * count + suffix == b"".join(w.data for w in writes[:])
    assert writes.size == len(prefix) + count + len(suffix)
    assert all(len(piece) == chunk for piece in data[:-1]) and all(data)
    assert [w.delay for w in writes] == ([0.5] + [0.0] * len(data))[: len(data)]
    if data:
        assert writes[-1] == writes[len(writes) - 1]
    with pytest.raises(IndexError):
        writes[len(writes)]


def test_a_chunk_of_fill_is_one_shared_object() -> None:
    writes = RepeatedFill(b"[", b"x", 10 * CHUNK_SIZE, b"]")
    assert writes[3].data is writes[4].data and len(writes[3].data) == CHUNK_SIZE


@given(body=st.binary(max_size=300), size=st.integers(1, 40), delay=st.sampled_from([0.0, 0.1]))
def test_split_writes_sends_the_pieces_the_eager_version_built(
    body: bytes, size: int, delay: float
) -> None:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    eager = rechunk(ResponsePlan(writes=(Write(body),)), pieces, delay)
    lazy = SlicedBody(body, size, delay)
    assert list(lazy) == list(eager.writes) == list(lazy[:])
    assert lazy.size == len(body)


@pytest.mark.parametrize("spec", ["split_writes;size=1", "split_writes;size=7;delay=0.5"])
def test_the_split_writes_fault_keeps_its_writes_and_its_60_second_bound(spec: str) -> None:
    answer = ["One", " two", " three"]
    plan = parse_fault_spec(spec).plan(answer)
    full = event_stream_plan(answer).body
    size = parse_fault_spec(spec).params["size"]
    assert [w.data for w in plan.writes] == [full[i : i + size] for i in range(0, len(full), size)]
    assert sum(w.delay for w in plan.writes) <= 60
    json_plan = parse_fault_spec(spec).plan(answer, json=True)
    assert b"".join(w.data for w in json_plan.writes) == b'{"output": "One two three"}'


def test_joined_writes_index_across_parts() -> None:
    joined = JoinedWrites((Write(b"a"),), (), SlicedBody(b"bcdef", 2), (Write(b"g", 1.0),))
    assert [w.data for w in joined] == [b"a", b"bc", b"de", b"f", b"g"]
    assert [joined[i].data for i in range(len(joined))] == [w.data for w in joined]
    assert joined.size == 7 and joined[-1].delay == 1.0


def test_lazy_values_read_like_a_list() -> None:
    values = ValuesWithLongText(["a"], "x", 3, ["b", "c"])
    assert values == ["a", "xxx", "b", "c"] and values[-1] == "c" and values[1:3] == ["xxx", "b"]
    assert values != ["a", "xx", "b", "c"] and values != "axxxbc"
    with pytest.raises(IndexError):
        values[4]


def test_sending_a_64_mib_event_never_holds_it() -> None:
    size = 64 * 1024 * 1024
    tracemalloc.start()
    try:
        plan = parse_fault_spec(f"huge_event;size={size}").plan(["One", " two"])
        sent = sum(len(w.data) for w in plan.writes)  # what the sender does: one write at a time
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sent == plan.generated_size > size
    assert peak < 4 * CHUNK_SIZE + 100_000  # the eager version held more than 3 * 64 MiB


# ----------------------------------------------------------------------------- the server's bound


def test_the_budget_takes_and_gives_back() -> None:
    budget = GenerationBudget(100)
    assert budget.reserve(100) and not budget.reserve(1)
    budget.release(100)
    assert budget.reserve(1) and budget.to_json() == {"limit": 100, "in_use": 1}


def test_the_bound_is_a_flag_and_a_config_field_with_a_default() -> None:
    parse = build_parser().parse_args
    assert _config_from_args(parse(["serve"])).max_generated_bytes == DEFAULT_MAX_GENERATED_BYTES
    assert DEFAULT_MAX_GENERATED_BYTES >= 2 * 64 * 1024 * 1024  # a largest huge_event fits
    flags = ["serve", "--max-generated-bytes", "1000"]
    assert _config_from_args(parse(flags)).max_generated_bytes == 1000
    with pytest.raises(SystemExit):
        parse(["serve", "--max-generated-bytes", "0"])
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="max_generated_bytes"):
            MockConfig(cassette_dir=None, max_generated_bytes=bad)  # type: ignore[arg-type]


def fault_headers(spec: str) -> dict[str, str]:
    return {**HEADERS, "X-Koala-Mock-Fault": spec}


async def generated_in_use(client: Client) -> int:
    async with client.get("/__admin/health") as response:
        return int((await response.json())["generated_bytes"]["in_use"])


async def wait_for_release(client: Client) -> int:
    for _ in range(500):  # bounded: the server notices a closed connection at its next write
        in_use = await generated_in_use(client)
        if not in_use:
            return in_use
        await asyncio.sleep(0.01)
    return await generated_in_use(client)


@pytest.fixture
async def slow_client(aiohttp_client: Any) -> Client:
    # Events 1 s apart: a huge_event stream stays open (and holds its budget) for seconds.
    config = MockConfig(
        cassette_dir=None, mode="synthetic", latency=1.0, max_generated_bytes=150_000
    )
    return await aiohttp_client(create_app(config))


async def test_an_answer_past_the_bound_is_a_json_503_until_the_other_one_ends(
    slow_client: Client,
) -> None:
    client = slow_client
    first = await client.post(
        "/api/gpt/", data=BODY, headers=fault_headers("huge_event;size=100000")
    )
    assert first.status == 200
    await first.content.readuntil(b"\n\n")  # the first event; the huge one is a second away
    assert await generated_in_use(client) > 100_000
    async with client.post(
        "/api/gpt/", data=BODY, headers=fault_headers("huge_event;size=60000")
    ) as refused:
        assert refused.status == 503 and refused.headers["Retry-After"] == "1"
        error = await refused.json()
    assert "150,000 bytes" in error["error"] and "--max-generated-bytes" in error["error"]
    assert error["bound"] == 150_000 and error["needed"] > 60_000
    entry = journal(client.app).last()
    assert (entry.status, entry.served_by["source"], entry.ending) == (503, "error", "eof")
    assert entry.fault == "huge_event;size=60000" and entry.bytes_sent > 0
    first.close()  # the client goes away mid-stream: its bytes are given back
    assert await wait_for_release(client) == 0
    async with client.post(
        "/api/gpt/", data=BODY, headers=fault_headers("huge_event;size=60000")
    ) as served:
        assert served.status == 200


async def test_an_answer_larger_than_the_bound_itself_is_a_503_without_retry_after(
    aiohttp_client: Any,
) -> None:
    config = MockConfig(cassette_dir=None, mode="synthetic", speed=0, max_generated_bytes=1000)
    client = await aiohttp_client(create_app(config))
    async with client.post(
        "/api/gpt/", data=BODY, headers=fault_headers("huge_event;size=5000")
    ) as response:
        assert response.status == 503 and "Retry-After" not in response.headers
        error = await response.json()
    assert "more than the server's bound on bytes generated at once, 1,000 bytes" in error["error"]
    async with client.post("/api/gpt/", data=BODY, headers=HEADERS) as response:
        assert response.status == 200  # an ordinary answer is not generated: never refused
    assert await generated_in_use(client) == 0


async def test_a_completed_stream_gives_its_bytes_back_and_is_journaled_in_full(
    aiohttp_client: Any,
) -> None:
    config = MockConfig(cassette_dir=None, mode="synthetic", speed=0)
    client = await aiohttp_client(create_app(config))
    size = 3 * CHUNK_SIZE + 5
    async with client.post(
        "/api/gpt/", data=BODY, headers=fault_headers(f"huge_event;size={size}")
    ) as response:
        body = await response.read()
    entry = journal(client.app).last()
    assert body.count(b"x") == size and entry.bytes_sent == len(body)
    assert entry.ending == "eof" and entry.events_sent == entry.omitted_values
    assert await wait_for_release(client) == 0


async def test_shutdown_mid_stream_gives_the_bytes_back(aiohttp_server: Any) -> None:
    config = MockConfig(cassette_dir=None, mode="synthetic", latency=5.0)
    app = create_app(config)
    server = await aiohttp_server(app)
    async with ClientSession() as session:
        response = await session.post(
            server.make_url("/api/gpt/"), data=BODY, headers=fault_headers("huge_event;size=1000")
        )
        await response.content.readuntil(b"\n\n")
        from mockserver.server.state import STREAMS

        assert app[STREAMS].budget.in_use > 1000
        await asyncio.wait_for(server.close(), 20)
        response.close()
    assert app[STREAMS].budget.in_use == 0
