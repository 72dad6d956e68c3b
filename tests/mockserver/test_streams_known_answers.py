"""The event-stream encoder held to exact bytes for every WireFormat choice.

Round-trip properties (decode(encode(x)) == x) hold the meaning; these hold the form, which the
mock server promises its clients (Koala's own ``data: "x"`` lines, the ``\\r`` variants a fuzzed
stream uses, the BOM and the keep-alive comments a client must survive).
"""

from __future__ import annotations

from typing import Any

import pytest

from mockserver.wire.streams import (
    BOM,
    KOALA_FORMAT,
    WireFormat,
    done_event,
    encode_event,
    encode_events,
    encode_stream,
    encode_value,
    split_at,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("Hello", '"Hello"'),
        (" é€😀", '" é€😀"'),  # non-ASCII kept as UTF-8, as koala.sh sends it
        ('a"b\\c\nd', '"a\\"b\\\\c\\nd"'),
        ("\ud800", '"\\ud800"'),  # a lone surrogate has no UTF-8 form: escaped
        ({"t": "é"}, '{"t": "é"}'),
        ([1, None, True], "[1, null, true]"),
        (2.5, "2.5"),
    ],
)
def test_a_value_is_one_line_of_json_with_utf8_kept(value: Any, text: str) -> None:
    assert encode_value(value) == text


def test_the_koala_format_is_data_space_json_and_a_blank_line() -> None:
    assert encode_event(" de") == b'data: " de"\n\n'
    assert encode_stream(["a", "é"]) == b'data: "a"\n\ndata: "\xc3\xa9"\n\n'
    assert WireFormat() == KOALA_FORMAT


@pytest.mark.parametrize(
    ("fmt", "body"),
    [
        (WireFormat(line_ending="\r\n"), b'data: "a"\r\n\r\ndata: "b"\r\n\r\n'),
        (WireFormat(line_ending="\r"), b'data: "a"\r\rdata: "b"\r\r'),
        (WireFormat(space_after_colon=False), b'data:"a"\n\ndata:"b"\n\n'),
        (WireFormat(bom=True), BOM + b'data: "a"\n\ndata: "b"\n\n'),
        (WireFormat(retry=1500), b'retry: 1500\ndata: "a"\n\ndata: "b"\n\n'),
        (WireFormat(retry=0, bom=True), BOM + b'retry: 0\ndata: "a"\n\ndata: "b"\n\n'),
        (
            WireFormat(event_name="message"),
            b'event: message\ndata: "a"\n\nevent: message\ndata: "b"\n\n',
        ),
        (WireFormat(with_ids=True), b'id: 1\ndata: "a"\n\nid: 2\ndata: "b"\n\n'),
        (
            WireFormat(with_ids=True, space_after_colon=False, event_name="m"),
            b'event:m\nid:1\ndata:"a"\n\nevent:m\nid:2\ndata:"b"\n\n',
        ),
        (WireFormat(comment_every=2), b'data: "a"\n\n: keep-alive\ndata: "b"\n\n'),
        (WireFormat(comment_every=1), b': keep-alive\ndata: "a"\n\n: keep-alive\ndata: "b"\n\n'),
        (WireFormat(final_blank_line=False), b'data: "a"\n\ndata: "b"\n'),
        (WireFormat(final_blank_line=False, line_ending="\r\n"), b'data: "a"\r\n\r\ndata: "b"\r\n'),
    ],
)
def test_each_format_choice_writes_exactly_these_bytes(fmt: WireFormat, body: bytes) -> None:
    assert encode_stream(["a", "b"], fmt) == body
    assert b"".join(encode_events(["a", "b"], fmt)) == body


def test_events_are_numbered_from_one() -> None:
    fmt = WireFormat(with_ids=True, comment_every=3)
    events = encode_events(["a", "b", "c"], fmt)
    assert events == [
        b'id: 1\ndata: "a"\n\n',
        b'id: 2\ndata: "b"\n\n',
        b': keep-alive\nid: 3\ndata: "c"\n\n',
    ]
    assert encode_event("x", fmt) == b'id: 1\ndata: "x"\n\n'


def test_the_stream_prefix_goes_with_the_first_event() -> None:
    fmt = WireFormat(bom=True, retry=10)
    assert encode_events(["a", "b"], fmt) == [BOM + b'retry: 10\ndata: "a"\n\n', b'data: "b"\n\n']


def test_an_empty_stream_is_only_its_prefix() -> None:
    assert encode_events([], KOALA_FORMAT) == []
    assert encode_events([], WireFormat(bom=True)) == [BOM]
    assert encode_events([], WireFormat(bom=True, final_blank_line=False)) == [BOM]
    assert encode_events([], WireFormat(retry=5, final_blank_line=False)) == [b"retry: 5\n"]


@pytest.mark.parametrize(
    ("fmt", "marker"),
    [
        (KOALA_FORMAT, b"data: [DONE]\n\n"),
        (WireFormat(space_after_colon=False, line_ending="\r\n"), b"data:[DONE]\r\n\r\n"),
    ],
)
def test_the_done_marker(fmt: WireFormat, marker: bytes) -> None:
    assert done_event(fmt) == marker


@pytest.mark.parametrize(
    ("cuts", "pieces"),
    [
        ([], [b"abcdef"]),
        ([2], [b"ab", b"cdef"]),
        ([4, 2, 2], [b"ab", b"cd", b"ef"]),
        ([0, 6, 7, -1], [b"abcdef"]),  # out of range: ignored
        ([1, 5], [b"a", b"bcde", b"f"]),
    ],
)
def test_split_at_cuts_at_the_offsets_and_keeps_every_byte(
    cuts: list[int], pieces: list[bytes]
) -> None:
    assert split_at(b"abcdef", cuts) == pieces


def test_split_at_on_an_empty_body() -> None:
    assert split_at(b"", [0, 1]) == []
