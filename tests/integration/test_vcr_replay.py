"""Every shipped cassette replays through vcrpy and through the mock server: same values."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from conftest import decode_stream

from koala import CloudflareError, Koala, RateLimitError
from koala.request import build_keyed_payload, build_payload, encode_payload, is_visitor_id
from koala.testing import bundled_cassette_dir, koala_vcr, matching_form, vcr_config
from mockserver.cassettes.cassette import Cassette, dump_cassette, load_cassette_dir
from mockserver.cassettes.handmade import CASSETTE_DIR, SPECS, build
from mockserver.config import MockConfig
from mockserver.server.app import create_app

SHIPPED, SHIPPED_ERRORS = load_cassette_dir(CASSETTE_DIR)
ANSWER = "A koala is a tree-dwelling marsupial from Australia that eats eucalyptus leaves."
BY_NAME = {c.name: c for c in SHIPPED}
STREAMS = [
    c
    for c in SHIPPED
    if c.interactions[0].status == 200
    and "text/event-stream" in (c.interactions[0].response_header("Content-Type") or "")
]
KEYED = [c for c in SHIPPED if c.interactions[0].request_header("Authorization")]


def messages_of(cassette: Cassette) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = cassette.provenance["messages"]
    return messages


async def provider_values(messages: list[dict[str, Any]], **kwargs: Any) -> list[Any]:
    return [v async for v in Koala.create_async_generator("gpt-4o-mini", messages, **kwargs)]


# ----------------------------------------------------------------------------- the shipped set


def test_the_shipped_set_is_complete_and_loads() -> None:
    assert SHIPPED_ERRORS == []
    assert set(BY_NAME) == {spec.name for spec in SPECS}
    assert len(SHIPPED) >= 8


@pytest.mark.parametrize("cassette", SHIPPED, ids=lambda c: c.name)
def test_shipped_cassettes_are_reproducible_and_say_they_are_hand_made(cassette: Cassette) -> None:
    spec = next(s for s in SPECS if s.name == cassette.name)
    assert cassette.path is not None
    assert cassette.path.read_text(encoding="utf-8") == dump_cassette(build(spec))
    assert "hand-made" in cassette.provenance["source"]
    assert cassette.description
    interaction = cassette.interactions[0]
    if cassette in KEYED:  # as keyed clients send it: matches the provider's keyed request
        assert interaction.request_header("Authorization") == "Bearer SCRUBBED"
        assert interaction.request_header("Visitor-ID") is None
        sent = build_keyed_payload(spec.model, messages_of(cassette))
        assert matching_form(interaction.request_json()) == matching_form(sent)
        return
    expected_body = encode_payload(build_payload("gpt-4o-mini", messages_of(cassette)))
    assert interaction.request_body == expected_body
    assert is_visitor_id(interaction.request_header("Visitor-ID") or "")


def test_the_keyed_cassette_is_the_keyed_shape_with_a_json_reply() -> None:
    [cassette] = KEYED
    interaction = cassette.interactions[0]
    assert set(interaction.request_json()) == {"input", "realTimeData", "model"}
    assert interaction.request_header("Accept") == "application/json"
    assert "keyed" in cassette.provenance["shape"]
    assert json.loads(interaction.body) == {"output": ANSWER}


@pytest.mark.parametrize("json_reply", [True, False])
async def test_vcrpy_replays_the_keyed_cassette_for_the_keyed_provider(json_reply: bool) -> None:
    [cassette] = KEYED
    with koala_vcr(str(CASSETTE_DIR)).use_cassette(f"{cassette.name}.yaml") as used:
        values = [
            v
            async for v in Koala.create_async_generator(
                "gpt-4.1-mini", messages_of(cassette), api_key="sk-any", json_reply=json_reply
            )
        ]
    assert values == [ANSWER]
    assert used.play_count == 1


def test_unicode_cassette_splits_characters_across_chunks() -> None:
    chunks = BY_NAME["unicode_emoji"].interactions[0].chunks
    split = [c for c in chunks[1:] if 0x80 <= c.data[0] < 0xC0]  # starts with a continuation byte
    assert len(split) >= 3


def test_long_cassette_has_hundreds_of_events_20_to_40_ms_apart() -> None:
    interaction = BY_NAME["long_answer"].interactions[0]
    assert len(decode_stream(interaction.body)) >= 300
    gaps = [b.at - a.at for a, b in zip(interaction.chunks, interaction.chunks[1:], strict=False)]
    assert all(0.0199 <= gap <= 0.0401 for gap in gaps)


def test_system_prompt_cassette_uses_the_original_mapping() -> None:
    body = BY_NAME["system_prompt"].interactions[0].request_json()
    assert body["input"] == "What colour is the sky? Answer in one word."


def test_non_string_cassette_holds_each_json_type() -> None:
    values = decode_stream(BY_NAME["non_string_values"].interactions[0].body)
    kinds = {type(v) for v in values}
    assert {str, int, float, bool, type(None), dict, list} <= kinds


# ----------------------------------------------------------------------------- vcrpy


@pytest.mark.parametrize("cassette", STREAMS, ids=lambda c: c.name)
async def test_vcrpy_replays_every_stream_cassette_through_the_provider(cassette: Cassette) -> None:
    with koala_vcr(str(CASSETTE_DIR)).use_cassette(f"{cassette.name}.yaml") as used:
        values = await provider_values(messages_of(cassette))
    assert values == decode_stream(cassette.interactions[0].body)
    assert used.play_count == 1


async def test_vcrpy_replays_the_429_as_a_rate_limit_error() -> None:
    cassette = BY_NAME["rate_limited_429"]
    with (
        koala_vcr(str(CASSETTE_DIR)).use_cassette("rate_limited_429.yaml"),
        pytest.raises(RateLimitError) as caught,
    ):
        await provider_values(messages_of(cassette))
    assert caught.value.status == 429
    assert caught.value.retry_after == 30


async def test_vcrpy_replays_the_cloudflare_page_as_a_cloudflare_error() -> None:
    with (
        koala_vcr(str(CASSETTE_DIR)).use_cassette("cloudflare_403.yaml"),
        pytest.raises(CloudflareError) as caught,
    ):
        await provider_values(messages_of(BY_NAME["cloudflare_403"]))
    assert caught.value.status == 403


async def test_vcrpy_refuses_a_request_that_is_not_in_the_cassette() -> None:
    from vcr.errors import CannotOverwriteExistingCassetteException

    with (
        koala_vcr(str(CASSETTE_DIR)).use_cassette("greeting.yaml"),
        pytest.raises(CannotOverwriteExistingCassetteException),
    ):
        await provider_values([{"role": "user", "content": "Something else"}])


def test_vcr_config_defaults_and_overrides() -> None:
    config = vcr_config(record_mode="once")
    assert config["record_mode"] == "once"
    # No record_mode by default, so pytest-recording's --record-mode is not overridden...
    assert "record_mode" not in vcr_config()
    assert vcr_config()["match_on"] == ("method", "path", "json_body")
    # ...while koala_vcr never records unless asked.
    assert koala_vcr().record_mode == "none"
    assert koala_vcr(record_mode="once").record_mode == "once"


def test_koala_vcr_finds_the_bundled_cassettes_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert Path(koala_vcr().cassette_library_dir) == Path(CASSETTE_DIR)
    assert bundled_cassette_dir() == Path(CASSETTE_DIR)


def test_bundled_cassette_dir_in_an_installed_tree(tmp_path: Path) -> None:
    assert bundled_cassette_dir(tmp_path) == tmp_path / "mockserver" / "bundled_cassettes"


async def test_koala_vcr_replays_a_bundled_cassette_from_another_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cassette = BY_NAME["greeting"]
    with koala_vcr().use_cassette("greeting.yaml") as used:
        values = await provider_values(messages_of(cassette))
    assert values == decode_stream(cassette.interactions[0].body)
    assert used.play_count == 1


# ----------------------------------------------------------------------------- the mock server


@pytest.fixture
async def replay_server() -> AsyncIterator[TestServer]:
    config = MockConfig(cassette_dir=CASSETTE_DIR, mode="replay", speed=0)
    async with TestServer(create_app(config), host="127.0.0.1") as server:
        yield server


@pytest.mark.parametrize("cassette", STREAMS, ids=lambda c: c.name)
async def test_mock_server_and_vcrpy_replays_agree(
    cassette: Cassette, replay_server: TestServer
) -> None:
    endpoint = str(replay_server.make_url("/api/gpt/"))
    from_server = await provider_values(messages_of(cassette), api_endpoint=endpoint)
    with koala_vcr(str(CASSETTE_DIR)).use_cassette(f"{cassette.name}.yaml"):
        from_vcr = await provider_values(messages_of(cassette))
    assert from_server == from_vcr == decode_stream(cassette.interactions[0].body)


@pytest.mark.parametrize("cassette", SHIPPED, ids=lambda c: c.name)
async def test_mock_server_sends_the_recorded_bytes(
    cassette: Cassette, replay_server: TestServer
) -> None:
    interaction = cassette.interactions[0]
    headers = {k: v[0] for k, v in interaction.request_headers.items() if k != "Content-Length"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            replay_server.make_url("/api/gpt/"), data=interaction.request_body, headers=headers
        ) as response,
    ):
        body = b"".join([chunk async for chunk in response.content.iter_any()])
        assert response.status == interaction.status
    assert body == interaction.body


def test_cassette_dir_constant_points_at_the_repository() -> None:
    assert Path(CASSETTE_DIR).name == "cassettes"
    assert (Path(CASSETTE_DIR) / "README.md").exists()
