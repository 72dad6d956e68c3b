"""The mock server replays a cassette over TCP with its bytes, chunk boundaries and timing."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from conftest import decode_stream

from koala import Koala, build_headers
from mockserver import MockConfig, create_app
from mockserver.cassettes.cassette import Interaction, load_cassette

CASSETTES = Path(__file__).resolve().parents[2] / "cassettes"


def boundaries(chunks: list[bytes]) -> set[int]:
    """Where one chunk ends and the next begins, as offsets into the body."""
    ends, position = set(), 0
    for chunk in chunks[:-1]:
        position += len(chunk)
        ends.add(position)
    return ends


async def receive(server: TestServer, interaction: Interaction) -> tuple[list[bytes], float]:
    """The body's chunks as the client read them, and the seconds from sending to the last.

    Measured from the request, not from the first chunk: the server schedules every chunk at
    its start plus the recorded offset, so a first chunk that a loaded machine delivers late
    shortens first-to-last but can never bring the last chunk before its deadline.
    """
    chunks: list[bytes] = []
    sent = last = time.monotonic()
    async with (
        aiohttp.ClientSession(headers=build_headers()) as session,
        session.post(
            server.make_url("/api/gpt/"),
            data=interaction.request_body,
            headers={"Content-Type": "application/json"},
        ) as response,
    ):
        async for chunk in response.content.iter_any():
            last = time.monotonic()
            chunks.append(chunk)
    return chunks, last - sent


@pytest.mark.parametrize("speed", [1.0, 4.0])
async def test_unicode_cassette_keeps_its_chunks_and_timing(speed: float) -> None:
    interaction = load_cassette(CASSETTES / "unicode_emoji.yaml").interactions[0]
    recorded = [chunk.data for chunk in interaction.chunks]
    # The cassette is here to carry chunks that end inside a multi-byte character.
    assert any(_splits_a_character(interaction.body, end) for end in boundaries(recorded))

    async with TestServer(create_app(MockConfig(mode="replay", speed=speed))) as server:
        received, seconds = await receive(server, interaction)
        provider_values = await Koala.create_async(
            "", _messages_of(interaction), api_endpoint=str(server.make_url("/api/gpt/"))
        )

    assert b"".join(received) == interaction.body
    # TCP may merge writes that arrive together, but never cuts where the recording did not.
    assert boundaries(received) <= boundaries(recorded)
    assert seconds >= interaction.chunks[-1].at / speed
    expected = decode_stream(interaction.body)
    assert provider_values == "".join(v for v in expected if isinstance(v, str))


def _splits_a_character(body: bytes, end: int) -> bool:
    try:
        body[:end].decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _messages_of(interaction: Interaction) -> list[dict[str, str]]:
    """The one-user-message conversation the cassette's request was built from."""
    body = interaction.request_json()
    assert isinstance(body, dict) and not body["inputHistory"] and not body["outputHistory"]
    return [{"role": "user", "content": body["input"]}]
