"""Events to wire bytes: the encoder twin of :mod:`koala.sse`. Pure, no I/O.

The mock server, the fuzzer and the tests' hypothesis strategies all render streams here, so a
property test can hold ``decode(encode(values, fmt))`` equal to ``values`` for every format.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Literal, NamedTuple

__all__ = [
    "BOM",
    "KOALA_FORMAT",
    "LineEnding",
    "WireFormat",
    "done_event",
    "encode_event",
    "encode_events",
    "encode_stream",
    "encode_value",
    "split_at",
]

LineEnding = Literal["\n", "\r\n", "\r"]
BOM = b"\xef\xbb\xbf"


class WireFormat(NamedTuple):
    """How a list of values is written as an event stream. Every choice keeps the meaning.

    A named tuple (immutable, compared and hashed by its fields) rather than a frozen
    dataclass: defining a dataclass at import costs ``serve`` ten times as much.
    """

    line_ending: LineEnding = "\n"
    #: ``data: "x"`` (Koala's own form) or ``data:"x"`` (also valid SSE).
    space_after_colon: bool = True
    #: A UTF-8 byte order mark before the first line.
    bom: bool = False
    #: A ``: keep-alive`` comment line before every n-th event (0: none).
    comment_every: int = 0
    #: An ``event: <name>`` line in every event (None: none).
    event_name: str | None = None
    #: An ``id: <n>`` line in every event.
    with_ids: bool = False
    #: A ``retry: <ms>`` line at the start of the stream (None: none).
    retry: int | None = None
    #: False: the last event ends the stream without the blank line after it.
    final_blank_line: bool = True


KOALA_FORMAT = WireFormat()


def encode_value(value: Any) -> str:
    """One value as the text of a data line: JSON on one line, non-ASCII kept as UTF-8.

    Text with lone surrogates (valid in a JSON string, not in UTF-8) is written with ``\\u``
    escapes instead, the only form that carries it.
    """
    text = json.dumps(value, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value)
    return text


def encode_event(value: Any, fmt: WireFormat = KOALA_FORMAT, number: int = 1) -> bytes:
    """One event (its lines and the blank line after it) for ``value``; ``number`` is 1-based."""
    nl = fmt.line_ending
    sep = ": " if fmt.space_after_colon else ":"
    lines = []
    if fmt.comment_every and number % fmt.comment_every == 0:
        lines.append(": keep-alive")
    if fmt.event_name is not None:
        lines.append(f"event{sep}{fmt.event_name}")
    if fmt.with_ids:
        lines.append(f"id{sep}{number}")
    lines.append(f"data{sep}{encode_value(value)}")
    return (nl.join(lines) + nl + nl).encode("utf-8")


def encode_stream(values: Iterable[Any], fmt: WireFormat = KOALA_FORMAT) -> bytes:
    """The whole body for ``values``, in ``fmt``."""
    return b"".join(encode_events(values, fmt))


def encode_events(values: Iterable[Any], fmt: WireFormat = KOALA_FORMAT) -> list[bytes]:
    """The body as one byte string per event (the stream prefix goes with the first event).

    With ``final_blank_line=False`` the last event loses its blank line.
    """
    events = [encode_event(value, fmt, n) for n, value in enumerate(values, start=1)]
    prefix = (BOM if fmt.bom else b"") + (
        f"retry: {fmt.retry}{fmt.line_ending}".encode() if fmt.retry is not None else b""
    )
    if prefix:
        if events:
            events[0] = prefix + events[0]
        else:
            events = [prefix]
    if events and not fmt.final_blank_line and len(events[-1]) > len(prefix):
        events[-1] = events[-1][: -len(fmt.line_ending.encode())]
    return events


def done_event(fmt: WireFormat = KOALA_FORMAT) -> bytes:
    """The ``data: [DONE]`` end marker some OpenAI-style servers send."""
    sep = ": " if fmt.space_after_colon else ":"
    return f"data{sep}[DONE]{fmt.line_ending}{fmt.line_ending}".encode()


def split_at(body: bytes, cuts: Sequence[int]) -> list[bytes]:
    """``body`` cut at the given offsets (sorted, out-of-range ones ignored): the TCP writes."""
    pieces = []
    start = 0
    for cut in sorted(set(cuts)):
        if 0 < cut < len(body) and cut > start:
            pieces.append(body[start:cut])
            start = cut
    pieces.append(body[start:])
    return [p for p in pieces if p]
