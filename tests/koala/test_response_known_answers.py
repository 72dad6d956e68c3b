"""The answer classifier and the media-type parser held to exact answers at their edges."""

from __future__ import annotations

import pytest

from koala.errors import CloudflareError, ResponseStatusError
from koala.response import MediaType, error_message, error_page, parse_media_type, status_error


@pytest.mark.parametrize(
    ("value", "media_type"),
    [
        ("application/json;charset=UTF-8;x=y", MediaType("application/json", "utf-8")),
        ("text/event-stream; q=1; charset=utf-8", MediaType("text/event-stream", "utf-8")),
        ('text/plain; charset="ISO-8859-1"', MediaType("text/plain", "iso-8859-1")),
        ("text/plain; charset=X-Mac-Roman", MediaType("text/plain", "x-mac-roman")),
        ("text/plain; charset=a=b", MediaType("text/plain", "a=b")),
        ("text/plain; format=flowed", MediaType("text/plain", "")),
        (" Text/HTML ", MediaType("text/html", "")),
        ("", MediaType("", "")),
        (None, MediaType("", "")),
        ("text/event-stream", MediaType("text/event-stream", "")),
        ("Text/Event-Stream; Charset=UTF-8", MediaType("text/event-stream", "utf-8")),
        ('application/json; charset="utf-8"', MediaType("application/json", "utf-8")),
        ("  text/html ;foo=bar; charset=latin-1 ", MediaType("text/html", "latin-1")),
        ("application/json;", MediaType("application/json", "")),
    ],
)
def test_media_types_parse_to_essence_and_charset(value: str | None, media_type: MediaType) -> None:
    assert parse_media_type(value) == media_type


@pytest.mark.parametrize("status", [199, 300, 302, 404, 500])
def test_anything_else_is_a_status_error_quoting_the_body_as_text(status: int) -> None:
    error = status_error(status, {}, b"went wrong")
    assert isinstance(error, ResponseStatusError)
    assert (error.status, error.body_excerpt) == (status, "went wrong")
    assert str(error) == f"Response {status}: went wrong"


def test_a_body_that_is_not_utf8_is_still_classified() -> None:
    body = b"\xff\xfe<html><title>Just a moment...</title>"
    assert error_page(body) == "cloudflare"
    assert isinstance(status_error(403, {}, body), CloudflareError)
    assert isinstance(status_error(500, {}, b"\xff oops"), ResponseStatusError)


def test_a_json_error_message_is_read_with_white_space_before_it() -> None:
    assert error_message(' \n{"message": "Invalid API key"}') == "Invalid API key"
    assert error_message('{"error": "busy"}') == "busy"
    assert error_message('["message"]') is None
