"""The provider against the mock in both shapes and both answer forms, over TCP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from koala import (
    AuthenticationError,
    Koala,
    KoalaConnectionError,
    KoalaTimeoutError,
    RateLimitError,
    ResponseStatusError,
)
from mockserver.cli.main import main as cli_main
from mockserver.config import MockConfig, bundled_cassette_dir
from mockserver.testing.embedded import KoalaMock

KEY = "sk-e2e-5f0c1d2e3a4b"
HELLO = [{"role": "user", "content": "Hello"}]
GREETING = "Hello! How can I help you today?"
SHAPES = {"browser": {}, "keyed": {"api_key": KEY}}
FORMS = {"stream": False, "json": True}


@pytest.fixture(scope="module")
def replay() -> Iterator[KoalaMock]:
    with KoalaMock(MockConfig(cassette_dir=bundled_cassette_dir(), mode="replay", speed=0)) as mock:
        yield mock


@pytest.fixture(scope="module")
def keyed_only() -> Iterator[KoalaMock]:
    """A mock that requires KEY of keyed requests; synthetic answers."""
    with KoalaMock(MockConfig(cassette_dir=None, mode="synthetic", api_key=KEY)) as mock:
        yield mock


async def chunks(
    mock: KoalaMock, model: str = "", messages: Any = HELLO, **options: Any
) -> list[Any]:
    generator = Koala.create_async_generator(
        model, messages, api_endpoint=mock.api_endpoint, **options
    )
    return [chunk async for chunk in generator]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("form", FORMS)
async def test_a_cassette_answers_both_shapes_in_both_forms(
    replay: KoalaMock, shape: str, form: str
) -> None:
    replay.reset()
    got = await chunks(replay, **SHAPES[shape], json_reply=FORMS[form])
    assert "".join(got) == GREETING
    if form == "json":
        assert got == [GREETING]  # yielded once
    else:
        assert len(got) > 1
    [entry] = replay.requests
    assert entry["shape"] == shape
    assert entry["verdict"]["ok"] is True and entry["verdict"]["shape"] == shape
    assert entry["served_by"]["cassette"] == "greeting"
    assert entry["served_by"].get("form") == ("json" if form == "json" else None)
    assert entry["values"] == ([GREETING] if form == "json" else got)


@pytest.mark.parametrize("form", FORMS)
async def test_the_hand_made_keyed_cassette_answers_both_forms(
    replay: KoalaMock, form: str
) -> None:
    messages = [{"role": "user", "content": "What is a koala?"}]
    got = await chunks(replay, "gpt-4.1-mini", messages, api_key=KEY, json_reply=FORMS[form])
    assert got == [
        "A koala is a tree-dwelling marsupial from Australia that eats eucalyptus leaves."
    ]
    assert replay.requests[-1]["served_by"]["cassette"] == "keyed_json_reply"


async def test_the_keyed_cassette_matches_the_browser_shape_too(replay: KoalaMock) -> None:
    messages = [{"role": "user", "content": "What is a koala?"}]
    got = await chunks(replay, "gpt-4.1-mini", messages)
    assert "".join(got).startswith("A koala is")


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("form", FORMS)
async def test_an_unknown_model_goes_through_as_given(shape: str, form: str) -> None:
    with KoalaMock(MockConfig(cassette_dir=None, mode="synthetic")) as mock:
        got = await chunks(mock, "my-own-model", **SHAPES[shape], json_reply=FORMS[form])
        [entry] = mock.requests
    assert "model my-own-model" in "".join(got)
    assert entry["body"]["model"] == "my-own-model"
    assert entry["verdict"]["warnings"] == []


def test_an_unknown_model_is_recorded_then_replayed(tmp_path: Path) -> None:
    with KoalaMock(MockConfig(cassette_dir=None, mode="synthetic")) as upstream:
        out = tmp_path / "my_model.yaml"
        argv = ["record", "--prompt", "Hi", "--upstream", upstream.api_endpoint, "--out", str(out)]
        assert cli_main([*argv, "--model", "my-own-model"]) == 0
    with KoalaMock(MockConfig(cassette_dir=tmp_path, mode="replay", speed=0)) as mock:
        got = list(
            Koala.create_completion(
                "my-own-model", [{"role": "user", "content": "Hi"}], api_endpoint=mock.api_endpoint
            )
        )
        assert mock.requests[-1]["served_by"]["cassette"] == "my_model"
    assert "model my-own-model" in "".join(got)


# ---------------------------------------------------------------- the key


async def test_the_right_key_is_served_and_the_browser_shape_needs_none(
    keyed_only: KoalaMock,
) -> None:
    assert "".join(await chunks(keyed_only, api_key=KEY)).startswith('You said "Hello"')
    assert "".join(await chunks(keyed_only)).startswith('You said "Hello"')


@pytest.mark.parametrize("form", FORMS)
async def test_a_wrong_key_is_an_authentication_error_with_the_servers_message(
    keyed_only: KoalaMock, form: str
) -> None:
    with pytest.raises(AuthenticationError) as raised:
        await chunks(keyed_only, api_key="sk-not-the-one", json_reply=FORMS[form])
    error = raised.value
    assert error.status == 401
    assert error.message is not None and "the API key is missing or not valid" in error.message
    assert "another key" in str(error)
    assert "sk-not-the-one" not in str(error) + repr(error) + error.body_excerpt
    assert KEY not in str(error) + repr(error) + error.body_excerpt


async def test_the_key_comes_from_the_environment(
    keyed_only: KoalaMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KOALA_API_KEY", KEY)
    await chunks(keyed_only)
    assert keyed_only.requests[-1]["shape"] == "keyed"
    assert keyed_only.requests[-1]["headers"]["Authorization"] == "Bearer SCRUBBED"
    monkeypatch.setenv("KOALA_API_KEY", "sk-wrong-from-env")
    with pytest.raises(AuthenticationError):
        await chunks(keyed_only)


# ---------------------------------------------------------------- faults on JSON answers


@pytest.fixture
def synthetic() -> Iterator[KoalaMock]:
    with KoalaMock(MockConfig(cassette_dir=None, mode="synthetic")) as mock:
        yield mock


@pytest.mark.parametrize("shape", SHAPES)
async def test_json_sensible_faults_apply_to_json_answers(synthetic: KoalaMock, shape: str) -> None:
    options = {**SHAPES[shape], "json_reply": True}
    synthetic.fault("rate_limit", retry_after=7)
    with pytest.raises(RateLimitError) as limited:
        await chunks(synthetic, **options)
    assert limited.value.retry_after == 7 and limited.value.message == "Rate limit reached"
    synthetic.fault("server_error", status=503)
    with pytest.raises(ResponseStatusError) as failed:
        await chunks(synthetic, **options)
    assert failed.value.status == 503
    synthetic.fault("truncate")
    with pytest.raises(KoalaConnectionError):
        await chunks(synthetic, **options)
    synthetic.fault("stall", seconds=5)
    with pytest.raises(KoalaTimeoutError):
        await chunks(synthetic, **options, read_timeout=0.3)
    synthetic.fault("slow_first_byte", delay=0.2)
    assert len(await chunks(synthetic, **options)) == 1
    truncated = synthetic.requests[2]
    assert truncated["ending"] == "close" and truncated["values"] == []
    assert [entry["fault"].split(";")[0] for entry in synthetic.requests] == [
        "rate_limit",
        "server_error",
        "truncate",
        "stall",
        "slow_first_byte",
    ]


@pytest.mark.parametrize("name", ["crlf", "bom", "done_marker", "keepalive_comments"])
async def test_a_stream_only_fault_on_a_json_request_is_a_400_saying_so(
    synthetic: KoalaMock, name: str
) -> None:
    synthetic.fault(name)
    with pytest.raises(ResponseStatusError) as raised:
        await chunks(synthetic, api_key=KEY, json_reply=True)
    assert raised.value.status == 400
    assert f"fault {name!r} is about the event stream only" in str(raised.value)
    # The same fault on a stream request is served as usual.
    synthetic.fault(name)
    assert "".join(await chunks(synthetic, api_key=KEY)).startswith("You said")
