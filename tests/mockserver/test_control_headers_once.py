"""The mock's own request headers (``X-Koala-Mock-Fault``, ``X-Koala-Mock-Seed``) given twice
are a JSON 400 naming the header: which one was meant cannot be known. The admin guard refuses a
request with two ``Host`` or two ``Origin`` headers (403): it checks one, the other could be
foreign. (aiohttp's parser already answers a second ``Host`` with a 400; the guard does not rely
on that.)"""

from __future__ import annotations

import asyncio

import pytest
from conftest import HEADERS, Client
from multidict import CIMultiDict

from koala import build_payload, encode_payload
from mockserver import journal

BODY = encode_payload(build_payload("gpt-4o-mini", [{"role": "user", "content": "Hello"}]))


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("X-Koala-Mock-Fault", ["rate_limit;retry_after=1", "server_error;status=502"]),
        ("X-Koala-Mock-Fault", ["rate_limit", "rate_limit"]),
        ("x-koala-mock-seed", ["1", "2"]),
    ],
)
async def test_a_control_header_given_twice_is_a_json_400(
    client: Client, name: str, values: list[str]
) -> None:
    headers = CIMultiDict(HEADERS)
    for value in values:
        headers.add(name, value)
    async with client.post("/api/gpt/", data=BODY, headers=headers) as response:
        assert (response.status, response.content_type) == (400, "application/json")
        answer = await response.json()
    assert name.lower() in answer["error"].lower() and "given 2 times" in answer["error"]
    assert answer["values"] == values
    entry = journal(client.app).entries()[-1]  # type: ignore[arg-type]
    assert entry.status == 400


async def test_one_of_each_still_works(client: Client) -> None:
    headers = {**HEADERS, "X-Koala-Mock-Fault": "rate_limit", "X-Koala-Mock-Seed": "3"}
    async with client.post("/api/gpt/", data=BODY, headers=headers) as response:
        assert response.status == 429


@pytest.mark.parametrize("name", ["Host", "Origin"])
async def test_two_hosts_or_origins_on_the_admin_api_are_a_403(client: Client, name: str) -> None:
    own = f"127.0.0.1:{client.port}"
    if name == "Host":  # the own one first: the guard used to read only that one
        lines = f"Host: {own}\r\nHost: evil.example\r\n"
    else:
        lines = f"Host: {own}\r\nOrigin: http://{own}\r\nOrigin: http://evil.example\r\n"
    # A raw request: aiohttp's client sends one Host whatever it is given.
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(f"GET /__admin/requests HTTP/1.1\r\n{lines}Connection: close\r\n\r\n".encode())
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    if name == "Host" and head.split(b" ")[1] == b"400":
        return  # aiohttp's parser (3.10 on) refuses a second Host before the guard runs
    assert head.startswith(b"HTTP/1.1 403") and b"application/json" in head
    assert f"2 {name} headers".encode() in body
