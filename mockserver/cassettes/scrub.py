"""What a recorded cassette may keep: an allowlist of headers, and every removed secret's echoes.

Applied by ``koala-mock record`` and the recording proxy before a file is written (on by default;
``--no-scrub`` turns it off). Pure: no I/O.

- **Request headers**: only the Koala contract's are kept: the browser headers the provider sends
  (:func:`koala.request.build_headers`), ``Content-Type``, and the keyed API's ``Authorization``
  (the credential replaced, the scheme kept). ``Visitor-ID`` becomes a fixed placeholder of the
  same shape, so the request still passes the contract. Every other header is dropped, unless kept
  with ``--keep-header`` (:attr:`ScrubPolicy.keep_headers`), and a kept one is still scrubbed.
- **Answer headers**: only those replay and drift checks need (:data:`KEPT_RESPONSE_HEADERS`).
- **Query parameters**: every value becomes ``SCRUBBED`` unless its name is allowlisted
  (:attr:`ScrubPolicy.keep_query`); user-info in a URL is dropped. URL-valued headers
  (``Referer``, ``Origin``, ``Location``, ``Link``...) get the same treatment.
- **Echoes**: every value removed above (header values, cookie values, query values, user names
  and passwords, bearer tokens) is also replaced wherever it still appears (bodies, header values,
  the URI, the reason phrase), raw, percent-encoded or JSON-escaped, before the file is written.
  Values shorter than :data:`MIN_ECHO_LENGTH` are only removed where they stood: searching for a
  two-letter value would corrupt the recording, and such a value is no credential.

The mock's own control headers (``X-Koala-Mock-*``) are never stored, scrubbing or not.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TextIO
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlencode, urlsplit, urlunsplit

from koala.request import build_headers
from koala.testing import (
    SCRUBBED,
    VISITOR_ID_PLACEHOLDER,
    is_sensitive_name,
    scrub_headers,
    scrub_uri,
)
from mockserver.cassettes.cassette import Cassette, Chunk, Interaction
from mockserver.wire.contract import KEYED_HEADERS

__all__ = [
    "CONTRACT_REQUEST_HEADERS",
    "CONTROL_HEADER_PREFIX",
    "KEPT_RESPONSE_HEADERS",
    "MIN_ECHO_LENGTH",
    "NO_SCRUB_WARNING",
    "SCRUBBED",
    "VISITOR_ID_PLACEHOLDER",
    "ScrubPolicy",
    "is_control_header",
    "is_sensitive_name",
    "mask_url",
    "redact",
    "scrub_cassette",
    "scrub_headers",
    "scrub_interaction",
    "scrub_uri",
    "scrub_url",
    "stored_request_headers",
    "strip_control_headers",
    "unscrubbed",
    "url_secrets",
    "warn_no_scrub",
]

#: The mock's own headers (faults, seeds): never forwarded upstream, never stored.
CONTROL_HEADER_PREFIX = "x-koala-mock-"
#: Request headers of the Koala contract (lower case): what the provider sends, Content-Type,
#: and the keyed API's Authorization.
CONTRACT_REQUEST_HEADERS = frozenset(
    {name.lower() for name in build_headers()} | {name.lower() for name in KEYED_HEADERS}
)
#: Answer headers a cassette keeps, each because replay or the drift check reads it:
#: ``Content-Type`` (event stream, JSON or an HTML error page; verify compares it),
#: ``Cache-Control`` (an event stream's ``no-cache``), ``Retry-After`` (a 429's
#: ``RateLimitError.retry_after``), ``Location`` (a recorded 3xx replays as the redirect it was),
#: ``WWW-Authenticate`` (the keyed API's 401 names its scheme), ``CF-Mitigated`` (Cloudflare's
#: challenge marker), ``X-Accel-Buffering`` (tells proxies not to buffer the stream).
#: ``Content-Encoding`` and ``Content-Length`` are not kept: the body is stored decoded.
KEPT_RESPONSE_HEADERS = frozenset(
    {
        "content-type",
        "cache-control",
        "retry-after",
        "location",
        "www-authenticate",
        "cf-mitigated",
        "x-accel-buffering",
    }
)
#: Request headers that describe the transfer (not secrets, not stored).
_TRANSFER_REQUEST_HEADERS = frozenset(
    {"host", "content-length", "connection", "keep-alive", "transfer-encoding", "upgrade", "expect"}
)
_URL_HEADERS = frozenset({"location", "content-location", "referer", "origin"})
_CHALLENGE_HEADERS = frozenset({"www-authenticate", "proxy-authenticate"})
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization"})
_COOKIE_HEADERS = frozenset({"cookie", "set-cookie", "set-cookie2"})
_VISITOR_HEADER = "visitor-id"
#: The shortest removed value that is also searched for elsewhere (see the module docstring).
MIN_ECHO_LENGTH = 6
_URL_IN_HEADER = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s<>\"',;]+")

NO_SCRUB_WARNING = (
    "warning: scrubbing is OFF (--no-scrub): every header, cookie, API key, session token and "
    "the Visitor-ID will be written to the cassette as they are. Do not commit or share it."
)


@dataclass(frozen=True)
class ScrubPolicy:
    """What a cassette keeps beyond the contract's headers."""

    #: Extra header names (requests and answers) to keep; their values are still scrubbed.
    keep_headers: frozenset[str] = frozenset()
    #: Query parameter names whose values are kept.
    keep_query: frozenset[str] = frozenset()

    @classmethod
    def of(cls, keep_headers: Iterable[str] = (), keep_query: Iterable[str] = ()) -> ScrubPolicy:
        return cls(frozenset(h.lower() for h in keep_headers), frozenset(keep_query))


def is_control_header(name: str) -> bool:
    return name.lower().startswith(CONTROL_HEADER_PREFIX)


def strip_control_headers(headers: Mapping[str, list[str]]) -> dict[str, list[str]]:
    return {name: values for name, values in headers.items() if not is_control_header(name)}


# ----------------------------------------------------------------------------- URLs


def _scrub_url(url: str, keep_query: frozenset[str], found: set[str]) -> str:
    """``url`` without user-info and with query values replaced; what was removed goes to
    ``found``."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an invalid IPv6 literal: nothing can be kept safely
        found.add(url)
        return SCRUBBED
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        user, _, password = userinfo.partition(":")
        found.update(v for v in (user, password, unquote(user), unquote(password)) if v)
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        kept = []
        for key, value in pairs:
            if key in keep_query or not value:
                kept.append((key, value))
            else:
                found.add(value)
                kept.append((key, SCRUBBED))
        query = urlencode(kept)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def scrub_url(url: str, policy: ScrubPolicy | None = None) -> str:
    """``url`` as a cassette stores it: no user-info, query values replaced unless allowlisted."""
    return _scrub_url(url, (policy or ScrubPolicy()).keep_query, set())


def mask_url(url: str) -> str:
    """``url`` as it may be printed: user-info and every query value masked (a parameter's name
    does not tell whether its value is a credential).

    >>> mask_url("https://me:pw@koala.sh/api/gpt/?api_key=k&lang=de")
    'https://***@koala.sh/api/gpt/?api_key=***&lang=***'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<an invalid URL>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if v else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def url_secrets(url: str) -> set[str]:
    """The user-info and the query values of ``url`` (what :func:`mask_url` hides)."""
    found: set[str] = set()
    try:
        parts = urlsplit(url)
    except ValueError:
        return found
    if "@" in parts.netloc:
        user, _, password = parts.netloc.rpartition("@")[0].partition(":")
        found.update(v for v in (user, password, unquote(user), unquote(password)) if v)
    found.update(value for _, value in parse_qsl(parts.query) if value)
    return found


def redact(text: str, secrets: Iterable[str], mask: str = "***") -> str:
    """``text`` with every occurrence of each secret (raw or percent-encoded) replaced; values
    under four characters are left (masking every "de" would garble the message)."""
    pattern = _pattern({s for s in secrets if len(s) >= 4})
    return pattern.sub(mask, text) if pattern is not None else text


# ----------------------------------------------------------------------------- header values


def _cookie_values(value: str, found: set[str]) -> str:
    parts = []
    for part in value.split(";"):
        name, equals, cookie = part.strip().partition("=")
        if not name:
            continue
        if equals:
            found.add(cookie.strip().strip('"'))
            parts.append(f"{name}={SCRUBBED}")
        else:
            found.add(name)
            parts.append(SCRUBBED)
    return "; ".join(parts)


def _credential(value: str, found: set[str]) -> str:
    scheme, space, credential = value.partition(" ")
    if not space:
        found.add(value)
        return SCRUBBED
    credential = credential.strip()
    found.add(credential)
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credential, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        user, _, password = decoded.partition(":")
        found.update(v for v in (user, password) if v)
    return f"{scheme} {SCRUBBED}"


def _scrub_value(name: str, value: str, policy: ScrubPolicy, found: set[str]) -> str:
    """The stored form of one kept header's value; removed parts go to ``found``."""
    lowered = name.lower()
    if lowered == _VISITOR_HEADER:
        found.add(value)
        return VISITOR_ID_PLACEHOLDER
    if lowered in _CREDENTIAL_HEADERS:
        return _credential(value, found)
    if lowered in _COOKIE_HEADERS:
        return _cookie_values(value.partition(";")[0] if lowered != "cookie" else value, found)
    if lowered in _CHALLENGE_HEADERS:
        # A challenge names a scheme ("Bearer"), no credential: taken for a secret, its value
        # would be scrubbed as an echo from every Authorization header ("SCRUBBED SCRUBBED").
        return value
    if is_sensitive_name(name):
        found.add(value)
        return SCRUBBED
    if lowered in _URL_HEADERS:  # may be relative: the whole value is the URL
        return _scrub_url(value, policy.keep_query, found)
    return _URL_IN_HEADER.sub(lambda m: _scrub_url(m.group(0), policy.keep_query, found), value)


def _scrub_headers(
    headers: Mapping[str, list[str]],
    kept: frozenset[str],
    policy: ScrubPolicy,
    removed: set[str],
    dropped_are_secret: bool,
) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, values in headers.items():
        lowered = name.lower()
        if is_control_header(name):
            continue
        if lowered in kept or lowered in policy.keep_headers:
            out[name] = [_scrub_value(name, v, policy, removed) for v in values]
        elif lowered in _TRANSFER_REQUEST_HEADERS:
            continue
        elif lowered in _COOKIE_HEADERS:
            for value in values:
                _cookie_values(value.partition(";")[0] if lowered != "cookie" else value, removed)
        elif dropped_are_secret or is_sensitive_name(name):
            removed.update(values)
            for value in values:  # a URL's parts and a credential's token on their own too
                _scrub_value(name, value, policy, removed)
                _credential(value, removed)
        else:  # an answer header not kept: what its URLs carry may be echoed elsewhere
            for value in values:
                _URL_IN_HEADER.sub(lambda m: _scrub_url(m.group(0), frozenset(), removed), value)
    return out


# ----------------------------------------------------------------------------- echoes


def _variants(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}


def _pattern(secrets: set[str]) -> re.Pattern[str] | None:
    forms = {form for secret in secrets for form in _variants(secret) if form}
    if not forms:
        return None
    return re.compile("|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)))


def _echo_secrets(removed: set[str], public: set[str]) -> set[str]:
    """The removed values worth searching for: long enough, and not part of a value the cassette
    keeps as public (a contract header's value, a scheme such as ``Bearer``)."""
    kept = "\n".join(public)
    return {
        value
        for value in (v.strip() for v in removed)
        if len(value) >= MIN_ECHO_LENGTH and value not in kept and SCRUBBED not in value
    }


class _Echoes:
    def __init__(self, secrets: set[str]) -> None:
        self.text = _pattern(secrets)
        self.raw = re.compile(self.text.pattern.encode("utf-8")) if self.text is not None else None

    def in_text(self, value: str) -> str:
        return self.text.sub(SCRUBBED, value) if self.text is not None else value

    def in_headers(self, headers: dict[str, list[str]]) -> dict[str, list[str]]:
        return {name: [self.in_text(v) for v in values] for name, values in headers.items()}

    def in_bytes(self, data: bytes) -> bytes:
        return self.raw.sub(SCRUBBED.encode(), data) if self.raw is not None else data

    def in_chunks(self, chunks: list[Chunk]) -> list[Chunk]:
        """The chunks with echoes replaced in the joined body; each chunk boundary moves with the
        text around it (one inside a secret moves to the end of its replacement)."""
        if self.raw is None:
            return chunks
        body = b"".join(c.data for c in chunks)
        matches = list(self.raw.finditer(body))
        if not matches:
            return chunks
        new_body = self.in_bytes(body)

        def moved(offset: int) -> int:
            shift = 0
            for match in matches:
                if offset <= match.start():
                    break
                if offset < match.end():
                    return match.start() + shift + len(SCRUBBED)
                shift += len(SCRUBBED) - (match.end() - match.start())
            return offset + shift

        out, start, end = [], 0, 0
        for chunk in chunks:
            end += len(chunk.data)
            new_end = moved(end)
            out.append(Chunk(chunk.at, new_body[start:new_end]))
            start = new_end
        return out


# ----------------------------------------------------------------------------- interactions


def stored_request_headers(
    headers: Mapping[str, list[str]], policy: ScrubPolicy | None = None
) -> dict[str, list[str]]:
    """The request headers as a cassette would store them (the proxy's journal shows these)."""
    return _scrub_headers(
        headers, CONTRACT_REQUEST_HEADERS, policy or ScrubPolicy(), set(), dropped_are_secret=True
    )


def scrub_interaction(interaction: Interaction, policy: ScrubPolicy | None = None) -> Interaction:
    """A copy of ``interaction`` that keeps only allowlisted headers, scrubbed, and no echo of
    anything removed (see the module docstring)."""
    policy = policy or ScrubPolicy()
    removed: set[str] = set()
    uri = _scrub_url(interaction.uri, policy.keep_query, removed)
    request_headers = _scrub_headers(
        interaction.request_headers, CONTRACT_REQUEST_HEADERS, policy, removed, True
    )
    public = {v for values in request_headers.values() for v in values}
    response_headers = _scrub_headers(
        interaction.response_headers, KEPT_RESPONSE_HEADERS, policy, removed, False
    )
    echoes = _Echoes(_echo_secrets(removed, public))
    chunks = echoes.in_chunks(list(interaction.chunks))
    return dataclasses.replace(
        interaction,
        uri=echoes.in_text(uri),
        request_headers=echoes.in_headers(request_headers),
        request_body=echoes.in_bytes(interaction.request_body),
        reason=echoes.in_text(interaction.reason),
        response_headers=echoes.in_headers(response_headers),
        body=b"".join(c.data for c in chunks),
        chunks=chunks,
    )


def scrub_cassette(cassette: Cassette, policy: ScrubPolicy | None = None) -> Cassette:
    """A copy of ``cassette`` with every interaction scrubbed."""
    return dataclasses.replace(
        cassette, interactions=[scrub_interaction(i, policy) for i in cassette.interactions]
    )


def unscrubbed(interaction: Interaction) -> Interaction:
    """``interaction`` as ``--no-scrub`` stores it: everything but the mock's control headers."""
    return dataclasses.replace(
        interaction,
        request_headers=strip_control_headers(interaction.request_headers),
        response_headers=strip_control_headers(interaction.response_headers),
    )


def warn_no_scrub(stream: TextIO | None = None) -> None:
    print(NO_SCRUB_WARNING, file=stream or sys.stderr)
