"""The decoder's fast paths report exactly what its line-by-line path reports.

A differential test: the same generated streams, cut into the same chunks, go through the real
decoder and through one whose fast path is switched off. Every ``feed``/``close`` must return
the same values (``1`` is not ``1.0`` is not ``True``) or raise the same error class with the
same event number and message, whatever mixture of fast-path events and doubtful lines the
stream holds.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from koala.errors import StreamError
from koala.sse import EventStreamDecoder
from mockserver.testing.strategies import chunkings, json_values, tokens


class LineByLineDecoder(EventStreamDecoder):
    """The decoder with its fast path off: every line goes through ``_read_lines``."""

    def _read_simple_events(self, block: bytes, out: list[Any]) -> int:
        return 0


class LongLineDecoder(EventStreamDecoder):
    """The real decoder taking every line for a long one: each event goes through
    ``_read_long_event`` (the path of lines too long for the patterns), none through the runs."""

    long_line = 0


class LineCountingDecoder(EventStreamDecoder):
    """The real decoder, counting the lines that its slow path had to read."""

    slow_lines: int = 0

    def _read_lines(self, lines: list[bytes], out: list[Any]) -> None:
        self.slow_lines += len(lines)
        super()._read_lines(lines, out)


def outcomes(decoder: EventStreamDecoder, chunks: list[bytes]) -> list[Any]:
    """What each call returned (values as JSON text) up to and including the first error."""
    seen: list[Any] = []
    try:
        for chunk in chunks:
            seen.append(json.dumps(decoder.feed(chunk)))
        seen.append(json.dumps(decoder.close()))
    except StreamError as error:
        seen.append((type(error).__name__, error.event_number, str(error)))
    return seen


def one_line(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


#: Data that a fast path could take for something it is not: the line-by-line path decides.
DOUBTFUL_DATA = st.sampled_from(
    [b"[DONE]", b" [DONE]", b"[DONE] ", b"", b" ", b"1 2", b'{"a": 1},{"b": 2}', b'{"a": [{"b": 1}',
     b'{"c": 2}]}', b" {}", b"{} ", b"{", b"tru", b"NaN", b"-Infinity", b"1e400", b'"\xff"',
     b"\xe2\x82", b'"\xed\xa0\x80"', b'"bad \\x escape"', b'"tab\there"', b'"\\ud800"',
     b"[" * 3000 + b"]" * 3000, b'"' + b"x" * 300 + b'"',
     b'{"k": "' + "é€😀".encode() + b'"}', b"\xef\xbb\xbf1"]
)  # fmt: skip
OTHER_LINES = st.sampled_from(
    [b": comment", b"event: delta", b"id: 7", b"retry: 10", b"data:[DONE]", b"data:{}", b"data",
     b"data:  2", b"unknown: field", b"id: \xff"]
)  # fmt: skip


@st.composite
def events(draw: st.DrawFn) -> bytes:
    """One event, most often of a shape a fast path takes, sometimes one it must not."""
    ending = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    kind = draw(st.sampled_from(["string", "value", "value", "doubtful", "other", "multi"]))
    if kind == "string":
        lines = [b"data: " + one_line(draw(tokens()))]
    elif kind == "value":
        lines = [b"data: " + one_line(draw(json_values(max_leaves=4)))]
    elif kind == "doubtful":
        lines = [b"data: " + draw(DOUBTFUL_DATA)]
    elif kind == "other":
        lines = [draw(OTHER_LINES)]
    else:
        lines = [b"data: " + one_line(v) for v in draw(st.lists(json_values(2), max_size=3))]
    return ending.join([*lines, b"", b""])


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    body = b"".join(draw(st.lists(events(), max_size=12)))
    if draw(st.booleans()):
        body = b"\xef\xbb\xbf" + body
    if draw(st.booleans()):
        body = body[: draw(st.integers(0, len(body)))]  # cut anywhere, mid-event too
    return body


@given(streams(), st.sampled_from([4 * 1024 * 1024, 200, 40]), st.data())
def test_fast_paths_report_what_the_line_by_line_path_reports(
    body: bytes, max_event_size: int, data: st.DataObject
) -> None:
    chunks = data.draw(chunkings(body))
    slow = outcomes(LineByLineDecoder(max_event_size=max_event_size), chunks)
    assert outcomes(EventStreamDecoder(max_event_size=max_event_size), chunks) == slow
    assert outcomes(LongLineDecoder(max_event_size=max_event_size), chunks) == slow


@given(
    st.lists(st.one_of(tokens(), json_values(max_leaves=4)), min_size=1, max_size=30),
    st.sampled_from([b"\n", b"\r\n"]),
)
def test_one_line_events_take_the_fast_path(values: list[Any], ending: bytes) -> None:
    """Not a vacuous comparison: streams of one-line events skip the line-by-line path."""
    body = b"".join(b"data: " + one_line(v) + ending + ending for v in values)
    decoder = LineCountingDecoder()
    assert decoder.feed(body) == json.loads(json.dumps(values))
    assert decoder.slow_lines == 0
    assert decoder.events_dispatched == len(values)


def test_the_event_after_a_fast_run_is_numbered_like_the_line_by_line_path_numbers_it() -> None:
    body = b'data: {"a": 1}\r\n\r\ndata: "b"\r\n\r\ndata: {"a": 1},{"b": 2}\r\n\r\n'
    for decoder in (EventStreamDecoder(), LineByLineDecoder()):
        assert decoder.feed(body) == [{"a": 1}, "b"]
        try:
            decoder.close()
        except StreamError as error:
            assert (type(error).__name__, error.event_number) == ("MalformedEventError", 3)
        else:  # pragma: no cover - the assertion above is what is tested
            raise AssertionError("the third event is not JSON")


LONG = EventStreamDecoder.long_line
#: Events around and above the long-line threshold, among short ones, in both line endings.
LONG_LINE_EVENTS = (
    b'data: "' + b"x" * (LONG - 9) + b'"\n\n',  # just short of long: the patterns read it
    b'data: "' + b"y" * (LONG + 1) + b'"\n\n',
    b'data: "' + b"z" * (3 * LONG) + b'"\r\n\r\n',
    b'data: {"k": "' + "é".encode() * LONG + b'"}\n\n',
    b'data: "' + b"w" * (2 * LONG) + b'" \n\n',  # white space after the value: doubtful
    b'data: "' + b"w" * (2 * LONG) + b'" 2\r\n\r\n',  # two values: MalformedEventError
    b"data: [DONE]" + b" " * (2 * LONG) + b"\n\n",  # ends the stream
    b'data: "' + b"v" * (2 * LONG) + b'\\x"\n\n',  # a bad escape: MalformedEventError
    b'data: "' + b"u" * (2 * LONG) + b'"\ndata: "' + b"t" * LONG + b'"\n\n',  # two data lines
    b'data: "' + b"s" * (2 * LONG) + b'"\r\r',  # CR line ends: the line-by-line path
    b'data: "' + b"r" * (2 * LONG) + b'\xff"\n\n',  # bad UTF-8 at the end of a long line
    b'data: "short"\n\n',
)


@given(
    st.lists(st.sampled_from(LONG_LINE_EVENTS), min_size=1, max_size=6),
    st.sampled_from([4093, 65536, 3 * LONG + 5, 1 << 30]),
    st.sampled_from([4 * 1024 * 1024, 2 * LONG]),
)
def test_long_lines_decode_as_the_line_by_line_path_decodes_them(
    events: list[bytes], chunk_size: int, max_event_size: int
) -> None:
    body = b"".join(events)
    chunks = [body[i : i + chunk_size] for i in range(0, len(body), chunk_size)]
    slow = outcomes(LineByLineDecoder(max_event_size=max_event_size), chunks)
    assert outcomes(EventStreamDecoder(max_event_size=max_event_size), chunks) == slow
    assert outcomes(LongLineDecoder(max_event_size=max_event_size), chunks) == slow


def test_a_long_line_takes_the_long_line_path() -> None:
    """Not vacuous: a long one-line event skips the line-by-line path, in LF and CRLF."""
    value = "x" * (3 * LONG)
    for ending in (b"\n", b"\r\n"):
        body = b"data: " + one_line(value) + ending * 2 + b'data: "next"' + ending * 2
        decoder = LineCountingDecoder()
        chunks = [body[i : i + 4096] for i in range(0, len(body), 4096)]
        assert [v for chunk in chunks for v in decoder.feed(chunk)] == [value, "next"]
        assert decoder.slow_lines == 0
