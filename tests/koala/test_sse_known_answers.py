"""Decoder cases held to exact answers: BOM handling across chunks, comments that are not UTF-8,
the byte offset of an encoding error, and the WHATWG fields' initial values."""

from __future__ import annotations

import pytest
from conftest import decode_stream

from koala.errors import EventTooLargeError, InvalidEncodingError, MalformedEventError
from koala.sse import BOM, EventStreamDecoder


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
    assert decode_stream(*chunks) == ["a"]


def test_a_bom_at_the_start_of_a_later_chunk_is_not_dropped_again() -> None:
    # Only the stream's first bytes may be a BOM: later, it is part of a line ("\ufeffdata" is an
    # unknown field name, which WHATWG ignores).
    assert decode_stream(b'data: "a"\n\n', BOM + b'data: "b"\n\n', b'data: "c"\n\n') == ["a", "c"]


def test_a_second_bom_right_after_the_first_is_kept() -> None:
    assert decode_stream(BOM + BOM + b'data: "a"\n\ndata: "b"\n\n') == ["b"]


@pytest.mark.parametrize("partial", [b"\xef", b"\xef\xbb"])
def test_a_stream_that_is_only_part_of_a_bom_closes_with_nothing(partial: bytes) -> None:
    decoder = EventStreamDecoder()
    assert decoder.feed(partial) == []
    assert decoder.close() == []


def test_a_partial_bom_that_turns_out_not_to_be_one_is_kept_as_data() -> None:
    assert decode_stream(b"\xef", b'X: 1\ndata: "a"\n\n') == ["a"]
    with pytest.raises(InvalidEncodingError):
        decode_stream(b"\xef", b"\n", b'data: "\xef"\n\n')


@pytest.mark.parametrize(
    "comment", [b": \xff\xfe", b":\xc3", b": ok \xe2\x82", b":" + b"\x80" * 100]
)
def test_a_comment_that_is_not_utf8_is_ignored(comment: bytes) -> None:
    assert decode_stream(b'data: "a"\n\n' + comment + b'\n\ndata: "b"\n\n') == ["a", "b"]


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
        decode_stream(b'data: "ok"\n\n' + line + b"\n\n")
    assert caught.value.event_number == 2
    assert caught.value.problem == f"invalid UTF-8 at byte {offset}"
    assert caught.value.line_excerpt.startswith(line[: line.index(b":") + 1].decode())
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
        decode_stream(b'data: "a"\n\ndata: "b"\n\ndata: nope\n\n')
    assert (caught.value.event_number, caught.value.problem) == (3, "data is not JSON")
    assert caught.value.line_excerpt == "data: nope"
    assert str(caught.value) == "event 3: data is not JSON: 'data: nope'"


def test_input_after_the_done_marker_is_ignored_whatever_its_size() -> None:
    decoder = EventStreamDecoder(max_event_size=16)
    assert decoder.feed(b'data: "a"\n\ndata: [DONE]\n\n') == ["a"]
    assert decoder.feed(b"x" * 100) == []  # no newline, far over the limit: still ignored
    assert decoder.feed(b"data: nope\n\n") == []
    assert decoder.close() == []


def test_an_lf_is_dropped_once_after_a_cr_that_ended_a_chunk() -> None:
    decoder = EventStreamDecoder()
    assert decoder.feed(b'data: "a"\r\n\r') == ["a"]
    assert decoder.feed(b'\ndata: "b"') == []  # the LF of the CRLF, then a line still open
    assert decoder.feed(b"\n\n") == ["b"]  # this LF is a line end of its own


@pytest.mark.parametrize("size", [15, 16])
def test_a_pending_line_may_be_exactly_max_event_size(size: int) -> None:
    decoder = EventStreamDecoder(max_event_size=16)
    assert decoder.feed(b"x" * size) == []
    assert decoder.close() == []  # an unknown field, ignored


def test_a_pending_line_one_byte_over_max_event_size_raises() -> None:
    decoder = EventStreamDecoder(max_event_size=16)
    with pytest.raises(EventTooLargeError):
        decoder.feed(b"x" * 17)


def test_an_oversized_tail_after_good_events_raises_on_close() -> None:
    decoder = EventStreamDecoder(max_event_size=16)
    assert decoder.feed(b'data: "a"\n\n' + b"x" * 17) == ["a"]
    with pytest.raises(EventTooLargeError) as caught:
        decoder.close()
    assert caught.value.event_number == 2


def test_data_lines_may_add_up_to_exactly_max_event_size_in_every_event() -> None:
    # Each "data: 1234567" line carries 7 bytes of data; two make 14.
    decoder = EventStreamDecoder(max_event_size=14)
    body = b"data: 1234567\ndata: 1234567\n\n"
    assert decoder.feed(body + body) == [1234567, 1234567, 1234567, 1234567]


def test_data_lines_over_max_event_size_name_the_line_that_crossed_it() -> None:
    decoder = EventStreamDecoder(max_event_size=13)
    with pytest.raises(EventTooLargeError) as caught:
        decoder.feed(b"data: 1234567\ndata: 7654321\n\n")
    assert (caught.value.event_number, caught.value.line_excerpt) == (1, "data: 7654321")


def test_an_empty_data_line_is_skipped_and_the_event_goes_on() -> None:
    assert decode_stream(b'data: \ndata: "a"\ndata:\ndata: "b"\n\n') == ["a", "b"]


def test_a_bare_data_line_opens_an_event_that_counts() -> None:
    with pytest.raises(MalformedEventError) as caught:
        decode_stream(b"data\n\ndata: nope\n\n")
    assert caught.value.event_number == 2


@pytest.mark.parametrize("data", [b'"a\tb"', b'"a\x01"', b'"a"x', b'"a" "b"', b'"a'])
def test_string_data_is_strict_json(data: bytes) -> None:
    with pytest.raises(MalformedEventError):
        decode_stream(b"data: " + data + b"\n\n")


def test_string_data_may_have_white_space_around_it() -> None:
    assert decode_stream(b'data:  "a" \n\n') == ["a"]


@pytest.mark.parametrize("cut", [None, 10, 20, 23])
def test_the_size_limit_does_not_depend_on_where_the_body_is_cut(cut: int | None) -> None:
    # 'data: ' + 16 bytes of value: the value is exactly max_event_size, the line is not.
    body = b'data: "' + b"x" * 14 + b'"\n\n'
    chunks = [body] if cut is None else [body[:cut], body[cut:]]
    assert decode_stream(*chunks, max_event_size=16) == ["x" * 14]


@pytest.mark.parametrize("line", [b": " + b"c" * 20, b"event: " + b"e" * 20])
@pytest.mark.parametrize("cut", [None, 5])
def test_any_other_line_over_the_limit_is_too_large_however_it_is_cut(
    line: bytes, cut: int | None
) -> None:
    body = b'data: "a"\n\n' + line + b"\n\n"
    chunks = [body] if cut is None else [body[: 11 + cut], body[11 + cut :]]
    decoder = EventStreamDecoder(max_event_size=16)
    values: list[object] = []
    with pytest.raises(EventTooLargeError) as caught:
        for chunk in chunks:
            values += decoder.feed(chunk)
        decoder.close()
    assert values == ["a"]
    assert caught.value.event_number == 2


def test_a_crlf_split_after_its_cr_keeps_the_event_open() -> None:
    # One event of two data lines: not JSON line by line nor joined, so event 1 is malformed
    # and nothing is yielded. Had the LF counted as a blank line, "a" would have been event 1.
    decoder = EventStreamDecoder()
    assert decoder.feed(b'data: "a"\r') == []
    with pytest.raises(MalformedEventError) as caught:
        decoder.feed(b"\ndata: nope\r\n\r\n")
    assert caught.value.event_number == 1


def test_an_open_data_line_counts_with_the_events_earlier_data_lines() -> None:
    decoder = EventStreamDecoder(max_event_size=16)
    assert decoder.feed(b"data: 12345678\ndata: 12345678") == []  # 8 + 8: at the limit
    with pytest.raises(EventTooLargeError):
        EventStreamDecoder(max_event_size=16).feed(b"data: 12345678\ndata: 123456789")


@pytest.mark.parametrize(("prefix", "limit"), [(b"data:", 16), (b"data: ", 16)])
def test_an_open_data_line_is_measured_by_its_value_with_or_without_the_space(
    prefix: bytes, limit: int
) -> None:
    assert EventStreamDecoder(max_event_size=limit).feed(prefix + b"1" * limit) == []
    with pytest.raises(EventTooLargeError):
        EventStreamDecoder(max_event_size=limit).feed(prefix + b"1" * (limit + 1))
