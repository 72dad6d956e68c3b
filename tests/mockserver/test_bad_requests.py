"""Whatever a client sends: a 2xx or a 4xx JSON error, never a 5xx, and the server lives on."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from conftest import HEADERS, Client, ClientFactory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from koala import build_payload, encode_payload
from mockserver import MockConfig, create_app

PAYLOAD = build_payload("gpt-4o-mini", [{"role": "user", "content": "still there?"}])
NETWORK = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
async def client(aiohttp_client: ClientFactory) -> Client:
    return await aiohttp_client(create_app(MockConfig(cassette_dir=None, max_body_size=4096)))


async def assert_still_serving(client: Client) -> None:
    async with client.post("/api/gpt/", data=encode_payload(PAYLOAD), headers=HEADERS) as response:
        assert response.status == 200
        assert b"there?" in await response.read()


async def assert_json_4xx_or_ok(response: Any) -> None:
    assert response.status < 500
    if response.status >= 400:
        assert response.content_type == "application/json"
        error = await response.json()
        assert isinstance(error["error"], str) and error["status"] == response.status
    else:
        await response.read()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=12), c, max_size=5),
    max_leaves=12,
)
payload_like = st.fixed_dictionaries(
    {},
    optional={
        "input": json_values,
        "inputHistory": json_values,
        "outputHistory": json_values,
        "model": json_values,
        "realTimeData": json_values,
    },
)
token = st.text("abcdefghijklmnopqrstuvwxyz-0123456789", min_size=1, max_size=20)
header_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)


@NETWORK
@given(body=st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
async def test_arbitrary_bodies(client: Client, body: bytes) -> None:
    async with client.post("/api/gpt/", data=body, headers=HEADERS) as response:
        await assert_json_4xx_or_ok(response)
        assert response.status == expected_status(body)


def expected_status(raw: bytes) -> int:
    """413 over the body limit, 400 unless UTF-8 JSON, 422 unless a valid payload, else 200."""
    if len(raw) > 4096:
        return 413
    try:
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        return 400
    if not isinstance(body, dict):
        return 422
    return 422 if expected_problem_fields(body) else 200


def expected_problem_fields(body: dict[str, Any]) -> list[str]:
    """The fields the contract must name for ``body``: an oracle written from docs/PROTOCOL.md,
    independent of mockserver.wire.contract."""
    fields: list[str] = []
    for name in ("input", "inputHistory", "outputHistory", "model"):
        value = body.get(name)
        if name in ("input", "model"):
            if not isinstance(value, str):
                fields.append(name)
        elif not isinstance(value, list):
            fields.append(name)
        else:
            fields += [f"{name}[{i}]" for i, item in enumerate(value) if not isinstance(item, str)]
    if "realTimeData" in body and not isinstance(body["realTimeData"], bool):
        fields.append("realTimeData")
    return fields


@NETWORK
@given(body=payload_like)
async def test_payload_shaped_bodies(client: Client, body: dict[str, Any]) -> None:
    async with client.post(
        "/api/gpt/", data=json.dumps(body).encode(), headers=HEADERS
    ) as response:
        await assert_json_4xx_or_ok(response)
        expected = expected_problem_fields(body)
        if len(json.dumps(body).encode()) > 4096:
            assert response.status == 413
        elif expected:
            assert response.status == 422
            error = await response.json()
            assert [problem["field"] for problem in error["problems"]] == expected
        else:
            assert response.status == 200


@NETWORK
@given(
    headers=st.dictionaries(
        st.sampled_from(
            ["X-Koala-Mock-Fault", "X-Koala-Mock-Seed", "Visitor-ID", "Content-Type", "TE"]
        )
        # aiohttp's client refuses to send framing headers it cannot honour.
        | token.filter(lambda name: name.lower() not in {"content-length", "transfer-encoding"}),
        header_values,
        max_size=5,
    )
)
async def test_arbitrary_headers(client: Client, headers: dict[str, str]) -> None:
    if "stall" in headers.get("X-Koala-Mock-Fault", "") or "slow" in headers.get(
        "X-Koala-Mock-Fault", ""
    ):
        return  # valid waiting faults are tested elsewhere
    sent = {**HEADERS, **headers}
    async with client.post("/api/gpt/", data=encode_payload(PAYLOAD), headers=sent) as response:
        assert response.status < 500


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"])
async def test_wrong_methods(client: Client, method: str) -> None:
    async with client.request(method, "/api/gpt/", data=b"{}") as response:
        assert response.status == 405
        if method != "HEAD":
            assert (await response.json())["status"] == 405
    await assert_still_serving(client)


@pytest.mark.parametrize(
    "raw",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32),  # a TLS hello
        b"GARBAGE\r\n\r\n",
        b"POST /api/gpt/ HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"POST /api/gpt/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST /api/gpt/ HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{",
        b"POST /api/gpt/ HTTP/1.1\r\n" + b"X-Long: " + b"a" * 20000 + b"\r\n\r\n",
        b"\r\n\r\n\r\n",
    ],
)
async def test_raw_bytes(client: Client, raw: bytes) -> None:
    server = client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(raw)
    writer.write_eof()  # e.g. a body that ends short of its Content-Length
    status_line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    if status_line:  # aiohttp may also just close the connection
        assert re.match(rb"HTTP/1\.[01] 4\d\d ", status_line), status_line
    await assert_still_serving(client)


@NETWORK
@given(raw=st.binary(min_size=1, max_size=200))
async def test_raw_bytes_fuzzed(client: Client, raw: bytes) -> None:
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(raw + b"\r\n\r\n")
    writer.write_eof()
    status_line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    assert not re.match(rb"HTTP/1\.[01] 5", status_line), status_line


async def test_the_server_serves_after_all_that(client: Client) -> None:
    for body in (b"", b"{", b"[]", b"\xff" * 10, b"{}" * 3000):
        async with client.post("/api/gpt/", data=body, headers=HEADERS) as response:
            await assert_json_4xx_or_ok(response)
    await assert_still_serving(client)
