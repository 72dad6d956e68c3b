"""The one client that talks to an upstream, for ``record``, the recording proxy and ``verify``.

- **One session per run**: :class:`UpstreamClient` opens one ``aiohttp.ClientSession`` and every
  request of the run shares it (and its connection pool).
- **Timeouts**: :class:`Timeouts`, the provider's by default (the whole answer; each chunk).
- **Never follows a redirect**: a 3xx is an answer like any other, recorded and passed on as it
  is, so credentials never go to another origin.
- **Header policy** (:func:`sendable_headers`): hop-by-hop headers, ``Host``, ``Content-Length``
  and the mock's own ``X-Koala-Mock-*`` headers are never sent; aiohttp adds no header of its own
  that the caller did not send (no default ``User-Agent`` or ``Accept``).
- **The upstream URL** (:class:`UpstreamURL`): its query string is kept; its user-info is never
  put on the wire as part of the URL, but sent as basic auth when the request carries no
  ``Authorization`` of its own; it is printed masked (:func:`mockserver.cassettes.scrub.mask_url`).

The body is read with ``response.content.iter_any()``: every chunk as the network delivers it,
timed with ``time.monotonic()`` from the moment the response headers arrived. A compressed answer
is decoded (``Content-Encoding`` and the other transfer headers are not part of the capture).
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import aiohttp

from koala.provider import DEFAULT_READ_TIMEOUT, DEFAULT_TIMEOUT
from mockserver.cassettes.cassette import Chunk, Exchange, Interaction
from mockserver.cassettes.scrub import is_control_header, mask_url, redact, url_secrets
from mockserver.errors import MockServerError
from mockserver.wire.http_headers import HOP_BY_HOP_HEADERS, TRANSFER_HEADERS

__all__ = [
    "MAX_ANSWER_BYTES",
    "AnswerTooLargeError",
    "Capture",
    "RecordingError",
    "StreamInterruptedError",
    "Timeouts",
    "UpstreamClient",
    "UpstreamURL",
    "UpstreamUnreachableError",
    "check_upstream_url",
    "multi_headers",
    "sendable_headers",
]

#: Answer headers not captured: they describe one transfer, not the answer.
UNCAPTURED_RESPONSE_HEADERS = HOP_BY_HOP_HEADERS | TRANSFER_HEADERS
#: Request headers never sent upstream (aiohttp sets Host and Content-Length itself).
#: (The mock decodes a request body before forwarding it, so its Content-Encoding stays too.)
UNSENT_REQUEST_HEADERS = (HOP_BY_HOP_HEADERS - {"te"}) | {
    "host",
    "content-length",
    "content-encoding",
}
#: Headers aiohttp would add on its own when the caller did not send them.
_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")

#: The largest answer a capture holds (a hostile or runaway upstream must not fill the memory).
MAX_ANSWER_BYTES = 64 * 1024 * 1024

ChunkSink = Callable[[bytes], Awaitable[None]]
Headers = Mapping[str, str] | Iterable[tuple[str, str]]


class RecordingError(MockServerError):
    """Talking to the upstream failed; nothing was written."""


class UpstreamUnreachableError(RecordingError):
    """The upstream did not answer at all (refused, DNS failure, timeout before the headers)."""

    #: What it means for the command, after the problem in the message.
    consequence = "nothing was recorded"

    def __init__(self, url: str, cause: BaseException, secrets: Iterable[str] = ()) -> None:
        self.url = mask_url(url)
        self.cause = cause
        detail = redact(str(cause) or type(cause).__name__, {*secrets, *url_secrets(url)})
        self.problem = f"the upstream {self.url} did not answer ({type(cause).__name__}: {detail})"
        super().__init__(f"{self.problem}; {self.consequence}")


class StreamInterruptedError(RecordingError):
    """The upstream's answer broke off before it was complete."""

    def __init__(self, url: str, received: int, cause: BaseException) -> None:
        self.url = mask_url(url)
        self.received = received
        detail = redact(str(cause) or type(cause).__name__, url_secrets(url))
        self.problem = (
            f"the answer from {self.url} broke off after {received} bytes "
            f"({type(cause).__name__}: {detail})"
        )
        super().__init__(f"{self.problem}; nothing was recorded")


class AnswerTooLargeError(StreamInterruptedError):
    """The answer grew past what a cassette may hold; reading stopped, nothing was recorded."""

    def __init__(self, url: str, received: int, limit: int) -> None:
        super().__init__(url, received, ValueError(f"larger than the {limit:,}-byte limit"))


def check_upstream_url(url: str) -> str:
    """``url`` if it is an absolute http(s) URL, else ValueError naming the problem (masked)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        host = None
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not host:
        raise ValueError(
            f"--upstream {mask_url(url)!r}: expected an http:// or https:// URL with a host"
        )
    return url


@dataclass(frozen=True)
class UpstreamURL:
    """An upstream endpoint: the URL to send to (no user-info), and the user-info apart."""

    url: str
    #: ``(user, password)`` from the URL's user-info, percent-decoded.
    user_info: tuple[str, str] | None = None

    @classmethod
    def parse(cls, url: str) -> UpstreamURL:
        check_upstream_url(url)
        parts = urlsplit(url)
        if "@" not in parts.netloc:
            return cls(url)
        userinfo, _, hostport = parts.netloc.rpartition("@")
        user, _, password = userinfo.partition(":")
        bare = urlunsplit((parts.scheme, hostport, parts.path, parts.query, parts.fragment))
        return cls(bare, (unquote(user), unquote(password)))

    def basic_auth(self) -> str | None:
        """The ``Authorization`` value the user-info stands for (None without user-info)."""
        if self.user_info is None:
            return None
        pair = ":".join(self.user_info).encode("utf-8")
        return "Basic " + base64.b64encode(pair).decode("ascii")

    @property
    def display(self) -> str:
        """The URL as it may be printed or stored (credential-like query values masked)."""
        return mask_url(self.url)

    def with_query(self, client_query: str) -> str:
        """The upstream URL with a client's query string appended to its own."""
        if not client_query:
            return self.url
        parts = urlsplit(self.url)
        query = f"{parts.query}&{client_query}" if parts.query else client_query
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))

    def secrets(self) -> set[str]:
        found = url_secrets(self.url)
        if self.user_info is not None:
            found.update(v for v in self.user_info if v)
        return found


@dataclass(frozen=True)
class Timeouts:
    """Seconds for the whole answer and for each chunk (None: no limit)."""

    total: float | None = DEFAULT_TIMEOUT
    read: float | None = DEFAULT_READ_TIMEOUT

    def client_timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=self.total, sock_read=self.read)


@dataclass
class Capture(Exchange):
    """One request as sent (``uri``: the URL, query included) and the complete answer as it
    arrived."""

    chunks: list[Chunk] = field(default_factory=list)
    #: Seconds from the response headers to the end of the body.
    duration: float = 0.0

    @property
    def body(self) -> bytes:
        return b"".join(chunk.data for chunk in self.chunks)

    def interaction(self) -> Interaction:
        head = {part.name: getattr(self, part.name) for part in fields(Exchange)}
        return Interaction(**head, body=self.body, chunks=list(self.chunks) or [Chunk(0.0, b"")])


def multi_headers(
    headers: Any, dropped: frozenset[str] | set[str] = frozenset()
) -> dict[str, list[str]]:
    """A multidict (or mapping) as ``{name: [values]}``, without the ``dropped`` names."""
    out: dict[str, list[str]] = {}
    for name, value in headers.items():
        if name.lower() not in dropped:
            out.setdefault(str(name), []).append(str(value))
    return out


def sendable_headers(headers: Headers) -> list[tuple[str, str]]:
    """The headers of a request as they may go upstream (see the module docstring)."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [
        (name, value)
        for name, value in items
        if name.lower() not in UNSENT_REQUEST_HEADERS and not is_control_header(name)
    ]


class UpstreamClient:
    """One session for a run: ``async with UpstreamClient() as c: await c.capture(...)``."""

    def __init__(
        self, timeouts: Timeouts | None = None, max_answer_bytes: int = MAX_ANSWER_BYTES
    ) -> None:
        self.timeouts = timeouts or Timeouts()
        #: A larger answer is not recorded (it is held in memory until it is written).
        self.max_answer_bytes = max_answer_bytes
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> UpstreamClient:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self.timeouts.client_timeout(), auto_decompress=True
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def capture(
        self,
        method: str,
        upstream: UpstreamURL,
        headers: Headers,
        body: bytes,
        *,
        query: str = "",
        on_headers: Callable[[Capture], Awaitable[None]] | None = None,
        on_chunk: ChunkSink | None = None,
    ) -> Capture:
        """Send one request and read the whole answer, chunk by chunk, timing each chunk.

        ``on_headers`` is awaited once the status and headers are known, ``on_chunk`` with every
        chunk as it arrives (the proxy writes them to its client there).
        """
        await self.start()
        assert self._session is not None
        url = upstream.with_query(query)
        sent = sendable_headers(headers)
        names = {name.lower() for name, _ in sent}
        basic_auth = upstream.basic_auth()
        if basic_auth is not None and "authorization" not in names:
            sent.append(("Authorization", basic_auth))
        skip = [name for name in _AUTO_HEADERS if name.lower() not in names]
        secrets = upstream.secrets()
        try:
            response_cm = self._session.request(
                method,
                url,
                headers=sent,
                data=body,
                allow_redirects=False,
                skip_auto_headers=skip,
            )
            response = await response_cm.__aenter__()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
            # Refused, DNS, TLS, timeout, an answer that is not HTTP, a URL aiohttp refuses.
            raise UpstreamUnreachableError(url, exc, secrets) from exc
        received = 0
        try:
            started = time.monotonic()
            capture = Capture(
                method=method,
                uri=url,
                request_headers=multi_headers(response.request_info.headers),
                request_body=body,
                status=response.status,
                reason=response.reason or "",
                response_headers=multi_headers(response.headers, UNCAPTURED_RESPONSE_HEADERS),
            )
            if on_headers is not None:
                await on_headers(capture)
            try:
                async for data in response.content.iter_any():
                    capture.chunks.append(Chunk(time.monotonic() - started, data))
                    received += len(data)
                    if received > self.max_answer_bytes:
                        raise AnswerTooLargeError(url, received, self.max_answer_bytes)
                    if on_chunk is not None:
                        await on_chunk(data)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                raise StreamInterruptedError(url, received, exc) from exc
            capture.duration = time.monotonic() - started
            return capture
        finally:
            await response_cm.__aexit__(None, None, None)
