"""koala.response: the pure classification of an answer and the one media-type parser."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from koala.errors import BotDetectedError, CloudflareError, RateLimitError, ResponseStatusError
from koala.response import error_page, json_text_unfinished, parse_media_type, status_error

CLOUDFLARE = "<html><head><title>Just a moment...</title></head></html>"
CF_WAIT = '<body><div id="cf-please-wait">checking</div></body>'
BOT = "<html><body><p>Unable to load site</p></body></html>"


def test_event_stream_and_json_flags() -> None:
    assert parse_media_type("text/event-stream; charset=utf-8").is_event_stream
    assert not parse_media_type("text/event-stream-ish").is_event_stream
    assert parse_media_type("APPLICATION/JSON").is_json
    assert not parse_media_type("application/json-patch+json").is_json


@given(st.text())
def test_media_type_never_raises(value: str) -> None:
    parsed = parse_media_type(value)
    assert parsed.essence == parsed.essence.lower()


@pytest.mark.parametrize("body", [CLOUDFLARE, b"<title>Just a moment...</title>"])
@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_2xx_is_no_error(status: int, body: str | bytes) -> None:
    assert status_error(status, {}, body) is None


@pytest.mark.parametrize(
    ("status", "headers", "body", "error", "retry_after"),
    [
        (429, {"Retry-After": "30"}, "slow", RateLimitError, 30.0),
        (429, {"retry-after": " 1.5 "}, "slow", RateLimitError, 1.5),
        (429, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, "", RateLimitError, None),
        (402, {}, "pay", RateLimitError, None),
        (403, {}, CLOUDFLARE, CloudflareError, None),
        (503, {}, CF_WAIT, CloudflareError, None),
        (403, {}, BOT, BotDetectedError, None),
        (503, {}, BOT, ResponseStatusError, None),  # the bot page is a 403 thing only
        (500, {}, "boom", ResponseStatusError, None),
        (404, {}, CLOUDFLARE, ResponseStatusError, None),  # markers count on 403/503 only
        (302, {}, "", ResponseStatusError, None),
    ],
)
def test_status_known_answers(
    status: int,
    headers: dict[str, str],
    body: str,
    error: type[ResponseStatusError],
    retry_after: float | None,
) -> None:
    found = status_error(status, headers, body)
    assert type(found) is error
    assert found.status == status
    if isinstance(found, RateLimitError):
        assert found.retry_after == retry_after


def test_bytes_bodies_are_classified_and_excerpted() -> None:
    found = status_error(403, {}, CLOUDFLARE.encode() + b"\xff" * 300)
    assert isinstance(found, CloudflareError)
    assert error_page(BOT.encode()) == "bot"
    assert error_page(b"plain") is None
    assert len(status_error(500, {}, b"x" * 10_000).body_excerpt) <= 201  # type: ignore[union-attr]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(
    st.dictionaries(st.text(), JSON_VALUES, max_size=4) | st.lists(JSON_VALUES, max_size=4),
    st.booleans(),
    st.data(),
)
def test_every_cut_of_a_json_object_or_array_is_unfinished(
    value: object, ascii_only: bool, data: st.DataObject
) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only).encode()
    cut = data.draw(st.integers(0, len(text) - 1), label="cut")
    assert json_text_unfinished(text[:cut])
    assert not json_text_unfinished(text)
    assert not json_text_unfinished(text + b"\n")


@pytest.mark.parametrize(
    "body", [b'{"output": hello}', b"{'output': 'hi'}", b'{"a": 1}}', b"[1, 2]]", b"nope", b'""']
)
def test_a_body_that_closes_what_it_opens_is_finished(body: bytes) -> None:
    assert not json_text_unfinished(body)


@pytest.mark.parametrize("body", [b"", b" \r\n", b'{"a": "b\\', b'{"a": "\\"', b"[[1]", b'"x'])
def test_a_body_inside_a_string_or_a_bracket_is_unfinished(body: bytes) -> None:
    assert json_text_unfinished(body)
