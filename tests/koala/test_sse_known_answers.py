"""Decoder cases held to exact answers: BOM handling across chunks, comments that are not UTF-8,
the byte offset of an encoding error, and the WHATWG fields' initial values."""

from __future__ import annotations

import pytest

from koala.errors import InvalidEncodingError, MalformedEventError
from koala.sse import BOM, EventStreamDecoder


def decode(*chunks: bytes) -> list[object]:
    decoder = EventStreamDecoder()
    values: list[object] = []
    for chunk in chunks:
        values += decoder.feed(chunk)
    return values + decoder.close()


@pytest.mark.parametrize(
    "chunks",
    [
        (BOM + b'data: "a"\n\n',),
        (b"\xef", b'\xbb\xbfdata: "a"\n\n'),
        (b"\xef\xbb", b'\xbfdata: "a"\n\n'),
        (b"\xef", b"\xbb", b"\xbf", b'data: "a"\n\n'),
        (BOM, b'data: "a"\n\n'),
        (BOM + b'data: "a"',),
    ],
)
def test_one_leading_bom_is_dropped_however_it_is_split(chunks: tuple[bytes, ...]) -> None:
    assert decode(*chunks) == ["a"]


def test_a_bom_at_the_start_of_a_later_chunk_is_not_dropped_again() -> None:
    # Only the stream's first bytes may be a BOM: later, it is part of a line ("\ufeffdata" is an
    # unknown field name, which WHATWG ignores).
    assert decode(b'data: "a"\n\n', BOM + b'data: "b"\n\n', b'data: "c"\n\n') == ["a", "c"]


def test_a_second_bom_right_after_the_first_is_kept() -> None:
    assert decode(BOM + BOM + b'data: "a"\n\ndata: "b"\n\n') == ["b"]


@pytest.mark.parametrize("partial", [b"\xef", b"\xef\xbb"])
def test_a_stream_that_is_only_part_of_a_bom_closes_with_nothing(partial: bytes) -> None:
    decoder = EventStreamDecoder()
    assert decoder.feed(partial) == []
    assert decoder.close() == []


def test_a_partial_bom_that_turns_out_not_to_be_one_is_kept_as_data() -> None:
    assert decode(b"\xef", b'X: 1\ndata: "a"\n\n') == ["a"]
    with pytest.raises(InvalidEncodingError):
        decode(b"\xef", b"\n", b'data: "\xef"\n\n')


@pytest.mark.parametrize(
    "comment", [b": \xff\xfe", b":\xc3", b": ok \xe2\x82", b":" + b"\x80" * 100]
)
def test_a_comment_that_is_not_utf8_is_ignored(comment: bytes) -> None:
    assert decode(b'data: "a"\n\n' + comment + b'\n\ndata: "b"\n\n') == ["a", "b"]


@pytest.mark.parametrize(
    ("line", "offset"),
    [
        (b'data: "ab\xff"', 9),
        (b'data: "\xff"', 7),
        (b"data:\xff", 5),
        (b'data: "\xc3"', 7),
        (b"event: \xff", 7),
        (b"event:\xff", 6),
        (b"id: ab\xff", 6),
        (b"retry: 1\xff", 8),
    ],
)
def test_invalid_utf8_names_the_byte_offset_in_its_line(line: bytes, offset: int) -> None:
    with pytest.raises(InvalidEncodingError) as caught:
        decode(b'data: "ok"\n\n' + line + b"\n\n")
    assert caught.value.event_number == 2
    assert caught.value.problem == f"invalid UTF-8 at byte {offset}"
    assert str(caught.value).startswith(f"event 2: invalid UTF-8 at byte {offset}: ")


def test_the_whatwg_fields_start_empty_and_keep_the_last_value() -> None:
    decoder = EventStreamDecoder()
    assert (decoder.event_type, decoder.last_event_id, decoder.retry) == ("", "", None)
    assert decoder.events_dispatched == 0 and decoder.done is False
    decoder.feed(b'event: first\nid: 7\nretry: 150\ndata: "a"\n\n')
    assert (decoder.event_type, decoder.last_event_id, decoder.retry) == ("first", "7", 150)
    decoder.feed(b'event:second\ndata: "b"\n\n')
    assert (decoder.event_type, decoder.last_event_id, decoder.retry) == ("second", "7", 150)
    assert decoder.events_dispatched == 2


def test_a_malformed_event_names_its_number_and_line() -> None:
    with pytest.raises(MalformedEventError) as caught:
        decode(b'data: "a"\n\ndata: "b"\n\ndata: nope\n\n')
    assert (caught.value.event_number, caught.value.problem) == (3, "data is not JSON")
    assert caught.value.line_excerpt == "data: nope"
    assert str(caught.value) == "event 3: data is not JSON: 'data: nope'"
