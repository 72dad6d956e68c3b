"""Recording cassettes from an upstream: the exact bytes, chunk boundaries and arrival times.

Two entry points:

- :func:`record_conversation` (``koala-mock record``): sends the request the ``Koala`` provider
  would send (same headers and body, from :mod:`koala.request`) and records the answer.
- :func:`proxy_and_record` (``koala-mock serve --record``): forwards a client's request, streams the
  answer back to the client as it arrives, and records it.

Decisions:

- The body is read with ``response.content.iter_any()``: every chunk as the network delivers it,
  timed with ``time.monotonic()`` from the moment the response headers arrived.
- A non-2xx answer (a 429, a Cloudflare page) is recorded: it is what the upstream says, and
  replaying it is how the provider's error handling is tested.
- A stream that breaks off (disconnect, timeout, Ctrl-C, cancellation) is not recorded: a
  cassette is always a complete answer. No file and no temporary file is left behind.
- A compressed answer is recorded decoded, without ``Content-Encoding`` (as vcrpy's
  ``decode_compressed_response`` does), so both vcrpy and the mock server replay it as it is.
  Hop-by-hop headers and ``Content-Length`` are dropped too: they describe one transfer.
"""

from __future__ import annotations

import asyncio
import datetime
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from koala.errors import ModelNotSupportedError, StreamError
from koala.provider import DEFAULT_READ_TIMEOUT, DEFAULT_TIMEOUT, Koala
from koala.request import build_headers, build_payload, encode_payload
from koala.response import parse_media_type
from koala.sse import EventStreamDecoder
from mockserver.cassettes.cassette import (
    Cassette,
    CassetteError,
    CassetteExistsError,
    Chunk,
    Interaction,
    first_header,
    parse_json,
    write_cassette,
)
from mockserver.cassettes.scrub import scrub_cassette, scrub_uri
from mockserver.config import DEFAULT_RECORD_DIR
from mockserver.errors import MockServerError
from mockserver.server.journal import JournalEntry, decode_json_body
from mockserver.wire.contract import check_request
from mockserver.wire.http_headers import HOP_BY_HOP_HEADERS, TRANSFER_HEADERS
from mockserver.wire.plan import MAX_STORED_BYTES

if TYPE_CHECKING:
    from mockserver.config import MockConfig

RECORDER = "koala-mock record 0.1.0"
#: Response headers not recorded (they describe one transfer, not the answer).
UNRECORDED_RESPONSE_HEADERS = HOP_BY_HOP_HEADERS | TRANSFER_HEADERS
#: Request headers not forwarded by the proxy (aiohttp sets them for the upstream).
UNFORWARDED_REQUEST_HEADERS = (HOP_BY_HOP_HEADERS - {"te"}) | {"host", "content-length"}


class _ClientGone(Exception):
    """The proxy's client disconnected while the answer was being streamed to it."""


ChunkSink = Callable[[bytes], Awaitable[None]]


def check_upstream_url(url: str) -> str:
    """``url`` if it is an absolute http(s) URL, else ValueError naming the problem."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"--upstream {url!r}: expected an http:// or https:// URL with a host")
    return url


class RecordingError(MockServerError):
    """Recording failed; nothing was written."""


class UpstreamUnreachableError(RecordingError):
    """The upstream did not answer at all (refused, DNS failure, timeout before the headers)."""

    #: What it means for the command, after the problem in the message.
    consequence = "nothing was recorded"

    def __init__(self, url: str, cause: BaseException) -> None:
        self.url = url
        self.cause = cause
        detail = str(cause) or type(cause).__name__
        self.problem = f"the upstream {url} did not answer ({type(cause).__name__}: {detail})"
        super().__init__(f"{self.problem}; {self.consequence}")


class StreamInterruptedError(RecordingError):
    """The upstream's answer broke off before it was complete."""

    def __init__(self, url: str, received: int, cause: BaseException) -> None:
        self.url = url
        self.received = received
        detail = str(cause) or type(cause).__name__
        self.problem = (
            f"the answer from {url} broke off after {received} bytes "
            f"({type(cause).__name__}: {detail})"
        )
        super().__init__(f"{self.problem}; nothing was recorded")


@dataclass
class Capture:
    """One request as sent and the complete answer as it arrived."""

    method: str
    url: str
    request_headers: dict[str, list[str]]
    request_body: bytes
    status: int
    reason: str
    response_headers: dict[str, list[str]]
    chunks: list[Chunk] = field(default_factory=list)
    #: Seconds from the response headers to the end of the body.
    duration: float = 0.0

    @property
    def body(self) -> bytes:
        return b"".join(chunk.data for chunk in self.chunks)

    def interaction(self) -> Interaction:
        return Interaction(
            method=self.method,
            uri=self.url,
            request_headers=self.request_headers,
            request_body=self.request_body,
            status=self.status,
            reason=self.reason,
            response_headers=self.response_headers,
            body=self.body,
            chunks=list(self.chunks) or [Chunk(0.0, b"")],
        )


def multi_headers(
    headers: Any, dropped: frozenset[str] | set[str] = frozenset()
) -> dict[str, list[str]]:
    """A multidict (or mapping) as ``{name: [values]}``, without the ``dropped`` names."""
    out: dict[str, list[str]] = {}
    for name, value in headers.items():
        if name.lower() not in dropped:
            out.setdefault(str(name), []).append(str(value))
    return out


async def send_and_capture(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    headers: Mapping[str, str] | Sequence[tuple[str, str]],
    body: bytes,
    on_chunk: ChunkSink | None = None,
    on_headers: Callable[[Capture], Awaitable[None]] | None = None,
) -> Capture:
    """Send one request and read the whole answer, chunk by chunk, timing each chunk.

    ``on_headers`` is awaited once the status and headers are known, ``on_chunk`` with every chunk
    as it arrives (the proxy writes them to its client there).
    """
    try:
        response_cm = session.request(method, url, headers=headers, data=body)
        response = await response_cm.__aenter__()
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        # Refused, DNS, TLS, timeout, or an answer that is not HTTP: no usable answer at all.
        raise UpstreamUnreachableError(url, exc) from exc
    received = 0
    try:
        started = time.monotonic()
        capture = Capture(
            method=method,
            url=url,
            request_headers=multi_headers(response.request_info.headers),
            request_body=body,
            status=response.status,
            reason=response.reason or "",
            response_headers=multi_headers(response.headers, UNRECORDED_RESPONSE_HEADERS),
        )
        if on_headers is not None:
            await on_headers(capture)
        try:
            async for data in response.content.iter_any():
                capture.chunks.append(Chunk(time.monotonic() - started, data))
                received += len(data)
                if on_chunk is not None:
                    await on_chunk(data)
        except aiohttp.ClientError as exc:  # payload errors, resets, bad encodings
            raise StreamInterruptedError(url, received, exc) from exc
        except asyncio.TimeoutError as exc:
            raise StreamInterruptedError(url, received, exc) from exc
        capture.duration = time.monotonic() - started
        return capture
    finally:
        await response_cm.__aexit__(None, None, None)


# ----------------------------------------------------------------------------- summaries


@dataclass
class StreamSummary:
    """What a recorded body holds, as :class:`koala.sse.EventStreamDecoder` reads it."""

    values: list[Any]
    #: The decoder's error when the body is not a valid event stream ("" when it is).
    error: str = ""


def decode_body(chunks: Sequence[Chunk]) -> StreamSummary:
    decoder = EventStreamDecoder()
    values: list[Any] = []
    try:
        for chunk in chunks:
            values.extend(decoder.feed(chunk.data))
        values.extend(decoder.close())
    except StreamError as exc:
        return StreamSummary(values, str(exc))
    return StreamSummary(values)


def describe(capture: Capture, path: Path | None) -> str:
    """The one-paragraph summary ``koala-mock record`` prints."""
    content_type = first_header(capture.response_headers, "content-type") or "no content type"
    lines = [f"status:   {capture.status} {capture.reason}".rstrip()]
    lines.append(f"type:     {content_type}")
    if parse_media_type(content_type).is_event_stream:
        summary = decode_body(capture.chunks)
        events = f"{len(summary.values)}"
        if summary.error:
            events += f" (then a decoding error: {summary.error})"
        lines.append(f"events:   {events}")
    size = len(capture.body)
    lines.append(f"bytes:    {size} in {len(capture.chunks)} chunks")
    lines.append(f"duration: {capture.duration:.3f} s")
    if path is not None:
        lines.append(f"file:     {path}")
    if not 200 <= capture.status < 300:
        lines.append(
            "note:     a non-2xx answer; recorded as it is (replay raises the typed error)"
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------- koala-mock record


def provenance(upstream: str, scrubbed: bool) -> dict[str, Any]:
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    return {
        "source": "recorded",
        "recorded_at": now.isoformat().replace("+00:00", "Z"),
        "upstream": scrub_uri(upstream),
        "recorder": RECORDER,
        "client": "koala.Koala request building (koala.request.build_headers/build_payload)",
        "scrubbed": scrubbed,
        "aiohttp": aiohttp.__version__,
    }


def resolve_model(model: str | None) -> tuple[str, bool]:
    """The model name to send and whether the provider knows it.

    Aliases resolve as the provider resolves them (``Koala.get_model``); a name the provider
    does not list is sent as given (the original sent any model), with ``False``.
    """
    try:
        return Koala.get_model(model), True
    except ModelNotSupportedError:
        return str(model), False


def provider_request(
    model: str | None, messages: Sequence[Mapping[str, Any]], visitor_id: str | None = None
) -> tuple[dict[str, str], bytes]:
    """The headers and body the ``Koala`` provider sends for ``messages``.

    The provider posts with ``json=``, which makes aiohttp add ``Content-Type: application/json``;
    posting bytes needs that header explicitly.
    """
    body = encode_payload(build_payload(resolve_model(model)[0], messages))
    headers = build_headers(visitor_id)
    headers["Content-Type"] = "application/json"
    return headers, body


async def record_conversation(
    messages: Sequence[Mapping[str, Any]],
    out: Path,
    *,
    model: str | None = None,
    upstream: str | None = None,
    force: bool = False,
    scrub: bool = True,
    description: str = "",
    timeout: float | None = DEFAULT_TIMEOUT,
    read_timeout: float | None = DEFAULT_READ_TIMEOUT,
) -> Capture:
    """Record the answer to ``messages`` from ``upstream`` (default: ``Koala.api_endpoint``, the
    live API) into the cassette ``out``.

    Raises :class:`RecordingError` (nothing written), :class:`CassetteExistsError` (checked before
    any network I/O), or :class:`koala.InvalidMessagesError` for bad messages.
    """
    if out.exists() and not force:
        raise CassetteExistsError(out, "already exists; use --force to overwrite it")
    upstream = upstream or Koala.api_endpoint
    headers, body = provider_request(model, messages)
    client_timeout = aiohttp.ClientTimeout(total=timeout, sock_read=read_timeout)
    async with aiohttp.ClientSession(timeout=client_timeout) as session:
        capture = await send_and_capture(session, "POST", upstream, headers, body)
    cassette = Cassette(
        name=out.stem,
        path=out,
        interactions=[capture.interaction()],
        provenance=provenance(upstream, scrub),
        description=description,
    )
    if scrub:
        cassette = scrub_cassette(cassette)
    # A file thread keeps the loop responsive; the write is atomic whatever happens to us.
    await asyncio.get_running_loop().run_in_executor(
        None, lambda: write_cassette(out, cassette, force=force)
    )
    return capture


# ----------------------------------------------------------------------------- recording proxy


def upstream_url(upstream: str, path_qs: str) -> str:
    """The upstream's scheme and host with the client's path and query."""
    parts = urlsplit(upstream)
    return f"{parts.scheme}://{parts.netloc}{path_qs}"


def slug(text: str, limit: int = 40) -> str:
    """A file-name-safe slug of ``text`` (``interaction`` when nothing is left)."""
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:limit].rstrip("-") or "interaction"


def _slug_for(body: bytes) -> str:
    payload = parse_json(body)
    text = payload.get("input") if isinstance(payload, dict) else None
    return slug(text if isinstance(text, str) else "")


def save_numbered(directory: Path, base: str, cassette: Cassette) -> Path:
    """Write ``cassette`` as ``directory/base-NNN.yaml`` with the first free number; never
    overwrites (a file that appears meanwhile moves us on to the next number)."""
    number = 1
    while True:
        path = directory / f"{base}-{number:03d}.yaml"
        if not path.exists():
            try:
                write_cassette(path, cassette)
                return path
            except CassetteExistsError:
                pass
        number += 1


async def _save(
    request: web.Request, config: MockConfig, url: str, body: bytes, capture: Capture
) -> None:
    """Save a proxied interaction as ``<slug>-NNN.yaml``; a failure is logged, not raised."""
    cassette = Cassette(
        name=_slug_for(body),
        path=None,
        interactions=[capture.interaction()],
        provenance=provenance(url, config.scrub),
        description=f"recorded by the koala-mock recording proxy from {scrub_uri(url)}",
    )
    cassette.provenance["recorder"] = "koala-mock serve --record 0.1.0"
    cassette.provenance["client"] = request.headers.get("User-Agent", "unknown")
    if config.scrub:
        cassette = scrub_cassette(cassette)
    directory = config.record_dir or DEFAULT_RECORD_DIR
    saving = asyncio.get_running_loop().run_in_executor(
        None, save_numbered, directory, cassette.name, cassette
    )
    try:
        # Shielded: a client that goes away now must not cost the recording (the write itself
        # is atomic, in its thread, whatever happens here).
        path = await asyncio.shield(saving)
    except (CassetteError, OSError) as exc:
        request.app.logger.error("recording proxy: could not save the cassette: %s", exc)
    else:
        request.app.logger.info("recording proxy: saved %s", path)


async def proxy_and_record(
    request: web.Request, config: MockConfig, entry: JournalEntry
) -> web.StreamResponse:
    """Forward ``request`` to ``config.record_upstream``, stream the answer back as it arrives,
    and save the interaction as a cassette in ``config.record_dir`` once it is complete.

    An unreachable upstream is a 502 naming it; a stream that breaks off is passed on broken and
    not recorded. ``entry`` journals the exchange as for any other request (the contract's
    verdict is informative here: the proxy forwards whatever it gets).
    """
    if not config.record_upstream:
        raise web.HTTPInternalServerError(text="the recording proxy has no upstream configured\n")
    body = await request.read()
    url = upstream_url(config.record_upstream, request.path_qs)
    _journal_request(entry, request, body, url)
    counter = EventStreamDecoder()
    headers = [
        (name, value)
        for name, value in request.headers.items()
        if name.lower() not in UNFORWARDED_REQUEST_HEADERS
    ]
    client_response = web.StreamResponse()

    async def start(capture: Capture) -> None:
        entry.status = capture.status
        client_response.set_status(capture.status, capture.reason or None)
        for name, values in capture.response_headers.items():
            for value in values:
                client_response.headers.add(name, value)
        await client_response.prepare(request)

    async def forward(data: bytes) -> None:
        try:
            await client_response.write(data)
        except (ConnectionError, RuntimeError) as exc:  # the client went away
            raise _ClientGone from exc
        _journal_progress(entry, counter, data)

    timeout = aiohttp.ClientTimeout(total=DEFAULT_TIMEOUT, sock_read=DEFAULT_READ_TIMEOUT)
    try:
        async with aiohttp.ClientSession(timeout=timeout, auto_decompress=True) as session:
            capture = await send_and_capture(
                session, request.method, url, headers, body, on_chunk=forward, on_headers=start
            )
    except UpstreamUnreachableError as exc:
        entry.status = 502
        entry.finish("upstream_unreachable")
        return web.Response(status=502, text=f"koala-mock recording proxy: {exc}\n")
    except _ClientGone:
        entry.client_disconnected = True
        entry.finish("client_disconnected")
        return client_response  # nothing to record: the answer was not read to its end
    except StreamInterruptedError:
        entry.finish("upstream_broke_off")
        if not client_response.prepared:
            entry.status = 502
            return web.Response(status=502, text="koala-mock recording proxy: upstream broke off\n")
        # Headers are out: the only honest thing left is to break the client's stream too.
        if request.transport is not None:
            request.transport.close()
        return client_response
    if not client_response.prepared:
        await start(capture)
    entry.finish("eof")
    await _save(request, config, url, body, capture)
    # The end of the stream goes out after the save, so a client that has read the whole answer
    # can rely on the cassette being there. Every byte of the answer was forwarded already.
    await client_response.write_eof()
    return client_response


def _journal_request(entry: JournalEntry, request: web.Request, body: bytes, url: str) -> None:
    entry.body_size = len(body)
    entry.contract_verdict = check_request(request.headers, body)
    if len(body) <= MAX_STORED_BYTES:
        entry.body = decode_json_body(body)
        entry.raw_body = body if entry.body is None else b""
    entry.served_by = {"source": "upstream", "upstream": scrub_uri(url)}


def _journal_progress(entry: JournalEntry, counter: EventStreamDecoder, data: bytes) -> None:
    """Bytes and events forwarded so far (events as a client would count them, while it can)."""
    entry.bytes_sent += len(data)
    if counter.done:
        return
    try:
        counter.feed(data)
    except StreamError:
        counter.done = True  # not an event stream we can read: the count stays where it was
    entry.events_sent = counter.events_dispatched
