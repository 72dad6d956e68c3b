"""Read a request body: bounded, decoded by its ``Content-Encoding``, or a JSON error saying why.

The app turns off aiohttp's own decompression (``auto_decompress=False``): a body that does not
decode made aiohttp raise from deep inside its parser (a 500 and tracebacks), and what it
inflated was bounded only after the fact. Here the raw bytes are read up to the body limit
(413 past it), then each coding is undone with an output bound of the same limit, so a small
"zip bomb" is a 413 too. ``gzip``/``x-gzip``, ``deflate`` (zlib or raw), ``br`` and ``identity``
are understood; any other coding is a 415 naming it, a body that does not decode a 400 naming
the coding. A client that hangs up before its body is complete is :class:`ClientGone`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import brotli
from aiohttp import hdrs, web

from mockserver.server.http_errors import json_error
from mockserver.server.journal import JournalEntry

__all__ = [
    "SUPPORTED_ENCODINGS",
    "BodyRejected",
    "ClientGone",
    "client_gone",
    "content_codings",
    "decode",
    "read_body",
    "too_large",
]

SUPPORTED_ENCODINGS = ("gzip", "x-gzip", "deflate", "br", "identity")
_CONTENT_ENCODING = hdrs.CONTENT_ENCODING
#: Decoders feed the input in pieces of this size, checking the output bound after each.
_INPUT_PIECE = 64 * 1024


class BodyRejected(Exception):
    """The body cannot be taken: ``response`` is the JSON error that says why."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


class ClientGone(Exception):
    """The client closed the connection before its request body was complete."""


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, decoded; :class:`BodyRejected` (400/413/415) or :class:`ClientGone`."""
    codings = content_codings(request)
    declared = request.content_length
    if declared is not None and declared > limit:
        raise BodyRejected(too_large(limit))
    content = request.content
    if content.is_eof():
        # The whole body is buffered already (the usual case: a small body came with its head):
        # taken at once, with no read loop and no coroutine (a few microseconds per request on
        # the chat API's hot path).
        raw = content.read_nowait()
        if len(raw) > limit:
            raise BodyRejected(too_large(limit))
    else:
        raw = await _read_raw(request, limit)
    for coding in reversed(codings):
        raw = decode(raw, coding, limit)
    return raw


def content_codings(request: web.Request) -> list[str]:
    """The codings applied to the body, in the order applied (``identity`` left out)."""
    codings: list[str] = []
    headers = request.headers
    if _CONTENT_ENCODING not in headers:  # the usual case: one lookup
        return codings
    for header in headers.getall(_CONTENT_ENCODING):
        for item in header.split(","):
            coding = item.strip().lower()
            if coding and coding != "identity":
                if coding not in SUPPORTED_ENCODINGS:
                    raise BodyRejected(
                        json_error(
                            415,
                            f"Content-Encoding {item.strip()!r} is not supported "
                            f"(supported: {', '.join(SUPPORTED_ENCODINGS)})",
                            supported=list(SUPPORTED_ENCODINGS),
                        )
                    )
                codings.append(coding)
    return codings


async def _read_raw(request: web.Request, limit: int) -> bytes:
    """The raw body as it arrives, in a read loop."""
    content = request.content
    pieces: list[bytes] = []
    size = 0
    try:
        while True:
            piece = await content.readany()
            if not piece:
                break
            size += len(piece)
            if size > limit:
                raise BodyRejected(too_large(limit))
            pieces.append(piece)
    except (ConnectionError, EOFError) as exc:
        raise ClientGone(str(exc)) from None
    except Exception as exc:  # aiohttp's payload errors (an incomplete body, a bad chunk)
        if _connection_lost(request):
            raise ClientGone(str(exc)) from None
        raise BodyRejected(
            json_error(400, f"the request body could not be read: {_first_line(exc)}")
        ) from None
    if _connection_lost(request) and not content.is_eof():
        raise ClientGone("the connection closed before the body was complete")
    return b"".join(pieces)


def client_gone(entry: JournalEntry | None) -> web.Response:
    """Journal a client gone mid-body; the response to return (it never reaches the client)."""
    if entry is not None:
        entry.finish_disconnected()
    return web.Response(status=400)


def _connection_lost(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def decode(data: bytes, coding: str, limit: int) -> bytes:
    """``data`` with ``coding`` undone: at most ``limit`` bytes, else a 413."""
    decoder = _DECODERS[coding]
    try:
        return decoder(data, limit)
    except BodyRejected:
        raise
    except Exception as exc:  # zlib.error, brotli.error: the bytes are not in that coding
        raise BodyRejected(
            json_error(
                400,
                f"the request body does not decode as Content-Encoding {coding}: "
                f"{_first_line(exc)}",
                encoding=coding,
            )
        ) from None


def _zlib_decode(wbits: int) -> Callable[[bytes, int], bytes]:
    def decode(data: bytes, limit: int) -> bytes:
        out = bytearray()
        rest = data
        while True:  # gzip allows several members, one after another
            decoder = zlib.decompressobj(wbits)
            pending = rest
            while pending:
                out += decoder.decompress(pending, limit + 1 - len(out))
                if len(out) > limit:
                    raise BodyRejected(too_large(limit, decoded=True))
                pending = decoder.unconsumed_tail
            if not decoder.eof:
                raise ValueError("the compressed data ends too early")
            rest = decoder.unused_data
            if not rest or wbits != _GZIP:
                break
        if rest:
            raise ValueError(f"{len(rest)} bytes after the end of the compressed data")
        return bytes(out)

    return decode


_GZIP = 16 + zlib.MAX_WBITS
_gzip = _zlib_decode(_GZIP)
_zlib = _zlib_decode(zlib.MAX_WBITS)
_raw_deflate = _zlib_decode(-zlib.MAX_WBITS)


def _deflate(data: bytes, limit: int) -> bytes:
    """RFC 9110's deflate is zlib-wrapped; some clients send raw deflate: take both."""
    try:
        return _zlib(data, limit)
    except zlib.error:
        return _raw_deflate(data, limit)


def _brotli(data: bytes, limit: int) -> bytes:
    decoder = brotli.Decompressor()
    out = bytearray()
    for start in range(0, len(data), _INPUT_PIECE):
        piece = data[start : start + _INPUT_PIECE]
        out += decoder.process(piece, output_buffer_limit=limit + 1 - len(out))
        while len(out) <= limit and not decoder.can_accept_more_data():
            out += decoder.process(b"", output_buffer_limit=limit + 1 - len(out))
        if len(out) > limit:
            raise BodyRejected(too_large(limit, decoded=True))
    if not decoder.is_finished():
        raise ValueError("the compressed data ends too early")
    return bytes(out)


_DECODERS: dict[str, Callable[[bytes, int], bytes]] = {
    "gzip": _gzip,
    "x-gzip": _gzip,
    "deflate": _deflate,
    "br": _brotli,
}


def too_large(limit: int, decoded: bool = False) -> web.Response:
    what = "decompressed request body" if decoded else "request body"
    return json_error(413, f"{what} larger than {limit} bytes", limit=limit)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return " ".join(lines)[:200] or type(exc).__name__
