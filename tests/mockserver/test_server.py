"""The mock server's endpoint over HTTP: contract answers, sources, seeds, replay, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientPayloadError, ClientResponse, ClientSession
from aiohttp.test_utils import TestServer
from conftest import HEADERS, Client, ClientFactory, decode_stream

from koala import build_payload, encode_payload
from koala.api_key import ApiKey
from mockserver import FaultSpecError, MockConfig, create_app, journal
from mockserver.cassettes.cassette import Cassette, Chunk, Interaction, write_cassette
from mockserver.config import CASSETTES_ENV_VAR, DEFAULT_CASSETTE_DIR
from mockserver.wire.streams import encode_stream
from mockserver.wire.synthetic import synthetic_tokens

MESSAGES = [{"role": "user", "content": "Hello koala"}]
PAYLOAD = build_payload("gpt-4o-mini", MESSAGES)


async def client_for(aiohttp_client: ClientFactory, **config: Any) -> Client:
    config.setdefault("cassette_dir", None)
    return await aiohttp_client(create_app(MockConfig(**config)))


@pytest.fixture
async def client(aiohttp_client: ClientFactory) -> Client:
    return await client_for(aiohttp_client)


async def post(client: Client, body: Any = PAYLOAD, **headers: str) -> tuple[int, Any, Any]:
    """Status, decoded body (values of a stream, else JSON or text) and response headers."""
    data = body if isinstance(body, bytes) else encode_payload(body)
    sent = {**HEADERS, **{k.replace("_", "-"): v for k, v in headers.items()}}
    async with client.post("/api/gpt/", data=data, headers=sent) as response:
        raw = await response.read()
        return response.status, _decoded(response.content_type, raw), response.headers


def _decoded(content_type: str, raw: bytes) -> Any:
    if content_type == "text/event-stream":
        return decode_stream(raw)
    if content_type == "application/json":
        return json.loads(raw)
    return raw.decode()


async def test_synthetic_answer_quotes_the_request(client: Client) -> None:
    status, values, headers = await post(client)
    assert status == 200
    assert headers["Content-Type"].startswith("text/event-stream")
    assert values == synthetic_tokens(PAYLOAD)
    assert '"Hello koala"' in "".join(values)


async def test_path_without_trailing_slash_is_the_same_endpoint(client: Client) -> None:
    async with client.post("/api/gpt", data=encode_payload(PAYLOAD), headers=HEADERS) as response:
        assert response.status == 200
    assert journal(client.app).last().path == "/api/gpt"


async def test_chat_page_is_html(client: Client) -> None:
    async with client.get("/chat") as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        assert "/api/gpt/" in await response.text()


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_wrong_method_is_a_json_405(client: Client, method: str) -> None:
    async with client.request(method, "/api/gpt/") as response:
        assert response.status == 405
        assert "POST" in response.headers["Allow"]
        error = await response.json()
    assert method in error["error"] and error["status"] == 405


async def test_unknown_path_is_a_json_404(client: Client) -> None:
    async with client.post("/api/chat") as response:
        assert response.status == 404
        assert "/api/chat" in (await response.json())["error"]


async def test_unrouted_requests_are_journaled_outside_the_admin_api(client: Client) -> None:
    for method, path in [("POST", "/api/chat"), ("POST", "/chat"), ("GET", "/__admin/nope")]:
        async with client.request(method, path) as response:
            assert response.content_type == "application/json"
    entries = journal(client.app).entries()
    assert [(e.method, e.path, e.status) for e in entries] == [
        ("POST", "/api/chat", 404),
        ("POST", "/chat", 405),
    ]
    assert all(e.served_by == {"source": "error"} and e.ending == "eof" for e in entries)
    async with client.head("/chat") as response:
        assert response.status == 200  # GET routes answer HEAD too


async def test_malformed_json_is_a_400_naming_the_position(client: Client) -> None:
    status, error, _ = await post(client, b'{"input": "x",')
    assert status == 400
    assert error["problems"][0]["field"] == "body"
    assert "char" in error["problems"][0]["got"]


@pytest.mark.parametrize(
    ("change", "field", "expected"),
    [
        ({"input": 1}, "input", "a string"),
        ({"inputHistory": "x"}, "inputHistory", "a list of strings"),
        ({"outputHistory": ["ok", None]}, "outputHistory[1]", "a string"),
        ({"model": None}, "model", "a string"),
        ({"realTimeData": "yes"}, "realTimeData", "a boolean"),
    ],
)
async def test_schema_violation_is_a_422_naming_the_field(
    client: Client, change: dict[str, Any], field: str, expected: str
) -> None:
    status, error, _ = await post(client, {**PAYLOAD, **change})
    assert status == 422
    assert [(p["field"], p["expected"]) for p in error["problems"]] == [(field, expected)]


async def test_missing_field_is_a_422(client: Client) -> None:
    body = {k: v for k, v in PAYLOAD.items() if k != "model"}
    status, error, _ = await post(client, body)
    assert status == 422
    assert error["problems"][0]["field"] == "model"
    assert "missing" in error["problems"][0]["got"]


async def test_header_deviations_are_warnings(client: Client) -> None:
    status, _, _ = await post(client, **{"Visitor-ID": "NOT-VALID", "Accept": "*/*"})
    assert status == 200
    warnings = journal(client.app).last().verdict["warnings"]  # type: ignore[index]
    assert {w["field"] for w in warnings} == {"header Visitor-ID", "header Accept"}


async def test_strict_mode_turns_header_deviations_into_422(aiohttp_client: ClientFactory) -> None:
    client = await client_for(aiohttp_client, strict=True)
    status, error, _ = await post(client, **{"Visitor-ID": "short"})
    assert status == 422
    assert error["problems"][0]["field"] == "header Visitor-ID"
    ok_status, _, _ = await post(client)
    assert ok_status == 200


async def test_oversized_body_is_a_json_413(aiohttp_client: ClientFactory) -> None:
    client = await client_for(aiohttp_client, max_body_size=100)
    status, error, _ = await post(client, {**PAYLOAD, "input": "x" * 200})
    assert status == 413
    assert error["limit"] == 100

    async def chunks() -> Any:  # no Content-Length: the limit holds while reading
        for _ in range(10):
            yield b"x" * 50

    async with client.post("/api/gpt/", data=chunks(), headers=HEADERS) as response:
        assert response.status == 413
        assert (await response.json())["status"] == 413


async def raw_post(client: Client, extra_headers: bytes, body: bytes) -> tuple[int, bytes]:
    """One request written at once over TCP (so the whole body is buffered when it is read)."""
    head = "".join(f"{name}: {value}\r\n" for name, value in HEADERS.items()).encode()
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        b"POST /api/gpt/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        + head
        + extra_headers
        + b"\r\n"
        + body
    )
    response = await reader.read()
    writer.close()
    status_line, _, rest = response.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def _chunked(data: bytes, size: int = 7) -> bytes:
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


async def test_a_buffered_chunked_or_gzip_body_is_read_decoded(client: Client) -> None:
    body = encode_payload(PAYLOAD)
    status, _ = await raw_post(client, b"Transfer-Encoding: chunked\r\n", _chunked(body))
    assert status == 200
    assert journal(client.app).last().body == PAYLOAD
    packed = gzip.compress(body)
    extra = b"Content-Encoding: gzip\r\nContent-Length: %d\r\n" % len(packed)
    status, _ = await raw_post(client, extra, packed)
    assert status == 200
    assert journal(client.app).last().body == PAYLOAD
    assert journal(client.app).last().body_size == len(body)


async def test_a_buffered_body_over_the_limit_is_a_json_413(aiohttp_client: ClientFactory) -> None:
    client = await client_for(aiohttp_client, max_body_size=100)
    big = encode_payload({**PAYLOAD, "input": "x" * 200})
    status, answer = await raw_post(client, b"Transfer-Encoding: chunked\r\n", _chunked(big))
    assert status == 413
    packed = gzip.compress(big)  # small on the wire, too large once decompressed
    assert len(packed) < 100
    extra = b"Content-Encoding: gzip\r\nContent-Length: %d\r\n" % len(packed)
    status, answer = await raw_post(client, extra, packed)
    assert status == 413
    assert json.loads(answer)["limit"] == 100


async def test_unknown_fault_header_is_a_400_listing_the_faults(client: Client) -> None:
    status, error, _ = await post(client, **{"X-Koala-Mock-Fault": "meteor"})
    assert status == 400
    assert "meteor" in error["error"] and "rate_limit" in error["faults"]
    status, error, _ = await post(client, **{"X-Koala-Mock-Fault": "truncate;events=many"})
    assert status == 400
    assert "events" in error["error"]


async def test_seed_header_is_echoed_and_reproducible(client: Client) -> None:
    bodies = []
    for seed in ("12345", "12345", "999"):
        async with client.post(
            "/api/gpt/",
            data=encode_payload(PAYLOAD),
            headers={**HEADERS, "X-Koala-Mock-Seed": seed},
        ) as response:
            assert response.headers["X-Koala-Mock-Seed"] == seed
            bodies.append(await response.read())
    assert bodies[0] == bodies[1]
    for body in bodies:
        assert decode_stream(body) == synthetic_tokens(PAYLOAD)
    assert journal(client.app).last().seed == 999


async def test_bad_seed_header_is_a_400(client: Client) -> None:
    status, error, _ = await post(client, **{"X-Koala-Mock-Seed": "-3"})
    assert status == 400 and "X-Koala-Mock-Seed" in error["error"]


async def test_default_fault_applies_to_every_request(aiohttp_client: ClientFactory) -> None:
    client = await client_for(aiohttp_client, default_fault="rate_limit;retry_after=9")
    for _ in range(2):
        status, _, headers = await post(client)
        assert status == 429 and headers["Retry-After"] == "9"


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="auto, replay, synthetic, fuzz"):
        MockConfig(mode="record")
    with pytest.raises(FaultSpecError, match="unknown fault 'nope'"):
        MockConfig(default_fault="nope")
    with pytest.raises(ValueError, match="speed"):
        MockConfig(speed=-1)


def test_cassette_dir_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CASSETTES_ENV_VAR, "/tmp/elsewhere")
    assert MockConfig().cassette_dir == Path("/tmp/elsewhere")
    monkeypatch.delenv(CASSETTES_ENV_VAR)
    assert MockConfig().cassette_dir == DEFAULT_CASSETTE_DIR


def test_configs_compare_by_every_field_and_cannot_grow_new_ones() -> None:
    # MockConfig's __init__, __eq__ and __repr__ are written out (no dataclass): each field
    # given by position or keyword lands where its name says, and takes part in equality.
    assert MockConfig() == MockConfig() and MockConfig(None, "replay") == MockConfig(
        cassette_dir=None, mode="replay"
    )
    changed: dict[str, Any] = {
        "cassette_dir": None,
        "mode": "synthetic",
        "seed": 3,
        "strict": True,
        "latency": 0.5,
        "speed": 2.0,
        "default_fault": "rate_limit",
        "max_body_size": 10,
        "max_cassette_size": 10,
        "admin_token": "token",
        "keepalive_timeout": 1.0,
        "journal_max_bytes": 2 * 1024 * 1024,
        "max_generated_bytes": 10,
        "scrub": False,
        "keep_headers": ("X-A",),
        "keep_query": ("q",),
        "api_key": ApiKey("k" * 24),
    }
    for name, value in changed.items():
        config = MockConfig(**{name: value})
        assert getattr(config, name) is value or getattr(config, name) == value, name
        assert config != MockConfig() and MockConfig() != config, name
    recording = MockConfig(record_upstream="http://127.0.0.1:1/", record_dir=Path("r"))
    assert recording.record_dir == Path("r") and recording != MockConfig()
    assert MockConfig(record_mode="once") != MockConfig()
    assert MockConfig() != object() and MockConfig().__eq__(object()) is NotImplemented
    shown = repr(MockConfig(mode="fuzz", admin_token="hidden-token"))
    assert shown.startswith("MockConfig(cassette_dir=") and "mode='fuzz'" in shown
    assert "hidden-token" not in shown and "admin_token" not in shown and "api_key" not in shown
    with pytest.raises(AttributeError):
        MockConfig().sped = 2.0  # type: ignore[attr-defined]  # a typo is not a new setting
    with pytest.raises(TypeError):
        hash(MockConfig())


async def test_latency_paces_events_and_keeps_values(aiohttp_client: ClientFactory) -> None:
    client = await client_for(aiohttp_client, latency=0.002)
    status, values, _ = await post(client)
    assert status == 200 and values == synthetic_tokens(PAYLOAD)
    assert journal(client.app).last().events_sent == len(values)


async def test_a_bug_in_the_server_is_a_json_500_and_it_keeps_serving(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(payload: Any) -> list[str]:
        raise RuntimeError("synthetic answer exploded")

    monkeypatch.setattr("mockserver.server.endpoint.synthetic_tokens", broken)
    status, error, _ = await post(client)
    assert status == 500
    assert "RuntimeError: synthetic answer exploded" in error["error"]
    monkeypatch.undo()
    status, _, _ = await post(client)
    assert status == 200


@pytest.fixture
async def server(aiohttp_server: Any) -> TestServer:
    """The mock on a port of its own, for the tests that stop it under a client."""
    started: TestServer = await aiohttp_server(create_app(MockConfig(cassette_dir=None)))
    return started


@contextlib.asynccontextmanager
async def streaming(server: TestServer, fault: str) -> AsyncIterator[ClientResponse]:
    """A request with ``fault`` to ``server``, its answer's headers read and its body not yet."""
    headers = {**HEADERS, "X-Koala-Mock-Fault": fault}
    async with ClientSession() as session:
        response = await session.post(
            server.make_url("/api/gpt/"), data=encode_payload(PAYLOAD), headers=headers
        )
        try:
            yield response
        finally:
            response.close()


async def test_shutdown_ends_a_stalled_stream_at_once(server: TestServer) -> None:
    async with streaming(server, "stall;after=1;seconds=60") as response:
        await response.content.readuntil(b"\n\n")  # the first event: the stall has begun
        # A bound against a hang, not a speed assertion: the stall itself is 60 s.
        await asyncio.wait_for(server.close(), 20)
        response.close()
    entry = journal(server.app).last()
    assert entry.ending == "shutdown" and entry.events_sent == 1


# ----------------------------------------------------------------------------- replay


def interaction(
    body: bytes, request: Any = PAYLOAD, status: int = 200, timing: list[float] | None = None
) -> Interaction:
    content_type = "text/event-stream" if status == 200 else "application/json"
    cut = len(body) // 2
    chunks = (
        [Chunk(0.0, body)]
        if timing is None
        else [
            Chunk(timing[0], body[:cut]),
            Chunk(timing[1], body[cut:]),
        ]
    )
    return Interaction(
        method="POST",
        uri="https://koala.sh/api/gpt/",
        request_headers={"Content-Type": ["application/json"]},
        request_body=encode_payload(request),
        status=status,
        reason="OK" if status == 200 else "Too Many Requests",
        response_headers={
            "Content-Type": [content_type],
            "Transfer-Encoding": ["chunked"],
            "Content-Length": ["999"],  # hop-by-hop: never replayed
            "X-Recorded": ["yes"],
        },
        body=body,
        chunks=chunks,
    )


RECORDED = ["Koalas", " sleep", " 20", " hours", " 🐨"]


@pytest.fixture
def cassette_dir(tmp_path: Path) -> Path:
    other = {**PAYLOAD, "input": "rate me"}
    write_cassette(
        tmp_path / "hello.yaml",
        Cassette("hello", None, [interaction(encode_stream(RECORDED), timing=[0.0, 0.002])]),
    )
    write_cassette(
        tmp_path / "limited.yaml",
        Cassette("limited", None, [interaction(b'{"error": "slow down"}', other, status=429)]),
    )
    return tmp_path


async def test_replay_sends_the_recorded_answer(
    aiohttp_client: ClientFactory, cassette_dir: Path
) -> None:
    client = await client_for(aiohttp_client, cassette_dir=cassette_dir, speed=0)
    async with client.post("/api/gpt/", data=encode_payload(PAYLOAD), headers=HEADERS) as response:
        assert response.status == 200
        assert response.headers["X-Recorded"] == "yes"
        assert response.headers.get("Content-Length") != "999"
        assert "chunked" not in response.headers.get("Transfer-Encoding", "")
        assert await response.read() == encode_stream(RECORDED)
    entry = journal(client.app).last()
    assert entry.served_by == {"source": "cassette", "cassette": "hello", "interaction": 0}
    assert entry.values == RECORDED


async def test_replay_with_recorded_timing(
    aiohttp_client: ClientFactory, cassette_dir: Path
) -> None:
    client = await client_for(aiohttp_client, cassette_dir=cassette_dir, speed=2.0)
    status, values, _ = await post(client)
    assert status == 200 and values == RECORDED
    assert journal(client.app).last().ending == "eof"


async def test_replay_of_an_error_status(aiohttp_client: ClientFactory, cassette_dir: Path) -> None:
    client = await client_for(aiohttp_client, cassette_dir=cassette_dir, mode="replay")
    status, body, _ = await post(client, {**PAYLOAD, "input": "rate me"})
    assert status == 429 and body == {"error": "slow down"}


async def test_replay_mode_without_a_match_names_the_nearest_cassette(
    aiohttp_client: ClientFactory, cassette_dir: Path
) -> None:
    client = await client_for(aiohttp_client, cassette_dir=cassette_dir, mode="replay")
    status, error, _ = await post(client, {**PAYLOAD, "input": "Hello koalas"})
    assert status == 404
    assert error["nearest"] == "hello"
    assert any("input" in d for d in error["differences"])


async def test_auto_mode_falls_back_to_synthetic(
    aiohttp_client: ClientFactory, cassette_dir: Path
) -> None:
    client = await client_for(aiohttp_client, cassette_dir=cassette_dir)
    other = {**PAYLOAD, "input": "unrecorded"}
    status, values, _ = await post(client, other)
    assert status == 200 and values == synthetic_tokens(other)


async def test_synthetic_mode_ignores_cassettes(
    aiohttp_client: ClientFactory, cassette_dir: Path
) -> None:
    client = await client_for(aiohttp_client, cassette_dir=cassette_dir, mode="synthetic")
    _, values, _ = await post(client)
    assert values == synthetic_tokens(PAYLOAD)


async def test_fuzzing_a_replay_keeps_the_recorded_values(
    aiohttp_client: ClientFactory, cassette_dir: Path
) -> None:
    client = await client_for(aiohttp_client, cassette_dir=cassette_dir)
    for seed in range(5):
        status, values, headers = await post(client, **{"X-Koala-Mock-Seed": str(seed)})
        assert status == 200 and values == RECORDED
        assert headers["X-Recorded"] == "yes"


async def test_faults_apply_to_replayed_answers(
    aiohttp_client: ClientFactory, cassette_dir: Path
) -> None:
    client = await client_for(aiohttp_client, cassette_dir=cassette_dir)
    status, values, _ = await post(client, **{"X-Koala-Mock-Fault": "crlf"})
    assert status == 200 and values == RECORDED
    assert journal(client.app).last().served_by["answer"] == "cassette"


async def test_a_client_that_leaves_mid_stream_is_journaled(server: TestServer) -> None:
    async with streaming(server, "split_writes;size=4;delay=0.02") as response:
        await response.content.readuntil(b"\n\n")
        response.close()  # drops the connection
    entry = journal(server.app).last()
    for _ in range(500):  # the server notices at its next write
        if entry.ending is not None:
            break
        await asyncio.sleep(0.01)
    assert entry.client_disconnected is True
    assert entry.ending == "client_disconnected"
    assert 0 < entry.bytes_sent < len(encode_stream(synthetic_tokens(PAYLOAD)))


async def test_shutdown_closes_a_stream_the_client_stopped_reading(server: TestServer) -> None:
    async with streaming(server, "huge_event;size=40000000") as response:
        await response.content.readexactly(1000)  # then stop reading: the server is blocked
        for _ in range(500):
            if journal(server.app).last().bytes_sent:
                break
            await asyncio.sleep(0.01)
        await asyncio.wait_for(server.close(), 20)  # a bound against a hang
    entry = journal(server.app).last()
    assert entry.bytes_sent < 40_000_000
    assert entry.client_disconnected or entry.ending in ("shutdown", "client_disconnected")


async def test_a_bug_after_the_headers_cuts_the_stream_and_the_server_lives_on(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(request: Any) -> None:
        raise RuntimeError("reset exploded")

    monkeypatch.setattr("mockserver.server.sender._reset_connection", broken)
    with pytest.raises(ClientPayloadError):
        await post(client, **{"X-Koala-Mock-Fault": "disconnect"})
    assert journal(client.app).last().ending == "server_bug"
    status, values, _ = await post(client)
    assert status == 200 and values == synthetic_tokens(PAYLOAD)


async def test_journaled_bodies_of_repeated_requests_are_separate_values(client: Client) -> None:
    """The contract's verdict is memoised per request shape; the journal's bodies are not."""
    for _ in range(2):
        status, _, _ = await post(client)
        assert status == 200
    first, second = journal(client.app).api_requests()[-2:]
    assert first.body == second.body == PAYLOAD
    assert first.raw_body == b"" and first.body_size == len(encode_payload(PAYLOAD))
    first.body["input"] = "changed by a test"
    assert second.body == PAYLOAD
    assert second.to_json()["body"] == PAYLOAD
