"""What an answer means, from its status, headers and the start of its body. Pure: no I/O.

Two questions every reader of a koala.sh answer asks (the provider, the recorder, ``verify``,
the cassette library): *what kind of content is this?* (:func:`parse_media_type`) and *is it an
error, and which?* (:func:`status_error`). The rules are docs/PROTOCOL.md's status handling:

- 429 and 402 are rate limits (:class:`RateLimitError`, with ``Retry-After`` when it is a
  number of seconds);
- a 403 or 503 carrying Cloudflare's challenge page is :class:`CloudflareError`;
- a 403 carrying the "Unable to load site" page is :class:`BotDetectedError`;
- a 401 is :class:`AuthenticationError` (the keyed API refused the key);
- any other non-2xx status is :class:`ResponseStatusError`; a 2xx is no error.

A JSON error body's ``message`` (else ``error``) string becomes the error's ``message`` and part
of its text: the keyed API's clients read errors there (:func:`error_message`).

>>> parse_media_type('Text/Event-Stream; charset="UTF-8"')
MediaType(essence='text/event-stream', charset='utf-8')
>>> status_error(429, {"Retry-After": "5"}, "slow down").retry_after
5.0
>>> status_error(200, {}, "") is None
True
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Literal, NamedTuple

from .errors import (
    AuthenticationError,
    BotDetectedError,
    CloudflareError,
    RateLimitError,
    ResponseStatusError,
)

__all__ = [
    "EVENT_STREAM",
    "JSON",
    "ErrorPage",
    "MediaType",
    "body_ends_at_close",
    "error_message",
    "error_page",
    "json_text_unfinished",
    "parse_media_type",
    "retry_after_seconds",
    "status_error",
]

EVENT_STREAM = "text/event-stream"
JSON = "application/json"

#: Markers of Cloudflare's "checking your browser" page (its title, its waiting box).
CLOUDFLARE_MARKERS = ("<title>Just a moment...</title>", '<div id="cf-please-wait">')
#: The marker of the page koala.sh shows a client it takes for a bot.
BOT_MARKER = "<p>Unable to load site</p>"
RATE_LIMIT_STATUSES = frozenset({429, 402})

#: The kinds of error page the markers tell apart.
ErrorPage = Literal["cloudflare", "bot"]

_SECONDS = re.compile(r"\s*\d+(\.\d+)?\s*")
#: A whole JSON string (its escapes included), whose brackets and quotes are not structure.
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


class MediaType(NamedTuple):
    """A Content-Type value reduced to what a reader decides on, both lowercased.

    ``essence`` is ``type/subtype`` (``""`` when there is no Content-Type), ``charset`` the
    charset parameter without quotes (``""`` when absent).
    """

    essence: str
    charset: str

    @property
    def is_event_stream(self) -> bool:
        return self.essence == EVENT_STREAM

    @property
    def is_json(self) -> bool:
        return self.essence == JSON


def parse_media_type(content_type: str | None) -> MediaType:
    """The media type of a Content-Type header value (the one parser of the project).

    >>> parse_media_type(None)
    MediaType(essence='', charset='')
    >>> parse_media_type("application/json;charset=utf-8").is_json
    True
    """
    if not content_type:
        return MediaType("", "")
    essence, _, params = content_type.partition(";")
    charset = ""
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    return MediaType(essence.strip().lower(), charset)


def error_page(body: str | bytes) -> ErrorPage | None:
    """Which error page ``body`` (or its start) is, by its markers; None for any other body.

    >>> error_page(b"<html><title>Just a moment...</title>")
    'cloudflare'
    """
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    if any(marker in text for marker in CLOUDFLARE_MARKERS):
        return "cloudflare"
    if BOT_MARKER in text:
        return "bot"
    return None


#: The longest Retry-After taken as given (one year); a larger value reads as None.
MAX_RETRY_AFTER = 365 * 24 * 3600.0


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After in seconds when it is a number (an HTTP date is left to the caller)."""
    if value is None or not _SECONDS.fullmatch(value):
        return None
    seconds = float(value)
    # A year or more (or a float that overflowed to inf) is no advice a caller can follow.
    return seconds if seconds <= MAX_RETRY_AFTER else None


def body_ends_at_close(headers: Mapping[str, str]) -> bool:
    """True when the body is delimited by the connection's close: no ``Content-Length`` and no
    chunked ``Transfer-Encoding`` (RFC 9112, section 6.3), so a cut looks like the body's end.

    >>> body_ends_at_close({"Content-Type": "text/event-stream"})
    True
    >>> body_ends_at_close({"transfer-encoding": "gzip, chunked"})
    False
    """
    if _header(headers, "Content-Length") is not None:
        return False
    codings = _header(headers, "Transfer-Encoding") or ""
    return codings.rsplit(",", 1)[-1].strip(" \t").lower() != "chunked"


def json_text_unfinished(body: bytes) -> bool:
    """True when ``body`` stops inside a JSON text: nothing but whitespace, an open string, or
    more ``{``/``[`` opened than closed. Every cut of a JSON object before its ``}`` is such a
    body; one that closes all it opens is finished, valid or not.

    >>> json_text_unfinished(b'{"output": "hel')
    True
    >>> json_text_unfinished(b'{"output": "{["}'), json_text_unfinished(b"{'output': x}")
    (False, False)
    """
    structure = _JSON_STRING.sub(b"", body)
    if b'"' in structure:  # a quote that no whole string accounts for: one still open
        return True
    opened = structure.count(b"{") + structure.count(b"[")
    closed = structure.count(b"}") + structure.count(b"]")
    return opened > closed or not body.strip()


def status_error(
    status: int, headers: Mapping[str, str], body: str | bytes
) -> ResponseStatusError | None:
    """The typed error an answer with ``status`` stands for, or None for a 2xx.

    ``headers`` may be any mapping (looked up case-insensitively); ``body`` is the answer's
    start (the error keeps an excerpt of it).
    """
    if 200 <= status < 300:
        return None
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    message = error_message(text)
    if status in RATE_LIMIT_STATUSES:
        retry_after = retry_after_seconds(_header(headers, "Retry-After"))
        return RateLimitError(status, text, retry_after, message)
    page = error_page(text) if status in (403, 503) else None
    if page == "cloudflare":
        return CloudflareError(status, text)
    if page == "bot" and status == 403:
        return BotDetectedError(status, text)
    if status == 401:
        return AuthenticationError(status, text, message=message)
    return ResponseStatusError(status, text, message=message)


def error_message(body: str) -> str | None:
    """The ``message`` (else ``error``) string of a JSON error body, else None.

    >>> error_message('{"message": "Invalid API key"}')
    'Invalid API key'
    >>> error_message("<html>") is None
    True
    """
    if not body.lstrip().startswith("{"):
        return None
    try:
        reply = json.loads(body)
    except (ValueError, RecursionError):  # also a body cut off mid-way
        return None
    if not isinstance(reply, dict):
        return None
    for name in ("message", "error"):
        value = reply.get(name)
        if isinstance(value, str) and value.strip():
            return value
    return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)
