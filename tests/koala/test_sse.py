"""The event-stream decoder: round trips, chunkings, PROTOCOL.md's behaviour table, bad input."""

from __future__ import annotations

import codecs
import json
from typing import Any

import pytest
from conftest import decode_stream
from httpx_sse._decoders import SSEDecoder, SSELineDecoder
from hypothesis import given
from hypothesis import strategies as st
from sse_reference import reference_decode

from koala import EventTooLargeError, InvalidEncodingError, MalformedEventError
from koala.errors import StreamError
from koala.sse import DEFAULT_MAX_EVENT_SIZE, EventStreamDecoder
from mockserver.testing.strategies import (
    chunkings,
    encoded_streams,
    event_values,
    json_values,
    tokens,
    wire_formats,
)
from mockserver.wire.streams import KOALA_FORMAT, WireFormat, encode_stream, encode_value, split_at


def bytewise(body: bytes) -> list[bytes]:
    return [body[i : i + 1] for i in range(len(body))]


def as_json(values: list[Any]) -> str:
    """A comparison that tells 1 from 1.0 from True (plain == does not)."""
    return json.dumps(values)


# ---------------------------------------------------------------- round trips


@given(encoded_streams(), st.data())
def test_decode_of_encode_is_identity_for_any_format_and_chunking(
    stream: Any, data: st.DataObject
) -> None:
    chunks = data.draw(chunkings(stream.body))
    assert as_json(decode_stream(*chunks)) == as_json(stream.values)


@given(encoded_streams())
def test_byte_by_byte_equals_all_at_once(stream: Any) -> None:
    whole = decode_stream(stream.body)
    assert as_json(whole) == as_json(stream.values)
    assert as_json(decode_stream(*bytewise(stream.body))) == as_json(whole)


@given(encoded_streams(formats=st.just(KOALA_FORMAT)), st.data())
def test_koala_format_round_trips_through_the_fast_path(stream: Any, data: st.DataObject) -> None:
    chunks = data.draw(chunkings(stream.body, max_cuts=3))
    assert as_json(decode_stream(*chunks)) == as_json(stream.values)


@given(st.lists(st.sampled_from(["é", "€", "😀", "𝄞", "中文", "a\u0301"]), min_size=1), st.data())
def test_tokens_split_inside_multibyte_characters(pieces: list[str], data: st.DataObject) -> None:
    body = encode_stream(pieces)
    chunks = data.draw(chunkings(body))
    assert decode_stream(*chunks) == pieces
    assert decode_stream(*bytewise(body)) == pieces


ANY_VALUES = event_values()
ANY_STREAM = encoded_streams()
AFTER_CR = st.sampled_from(["\r", "\r\n"])
ANY_ENDING = st.sampled_from(["\n", "\r", "\r\n"])


@st.composite
def mixed_ending_streams(draw: st.DrawFn) -> tuple[list[Any], bytes]:
    """Events whose every line ending is drawn on its own (a CR never directly before a LF,
    which would make them one CRLF); containers are sometimes spread over several data lines."""
    values = draw(ANY_VALUES)
    body = []
    previous = ""
    for value in values:
        spread = isinstance(value, (list, dict)) and draw(st.booleans())
        text = json.dumps(value, indent=1, ensure_ascii=False) if spread else encode_value(value)
        for line in [*(f"data: {part}" for part in text.split("\n")), ""]:
            ending = draw(AFTER_CR if previous == "\r" and not line else ANY_ENDING)
            body.append(line + ending)
            previous = ending
    return values, "".join(body).encode()


@given(mixed_ending_streams(), st.data())
def test_mixed_line_endings_in_one_stream(
    stream: tuple[list[Any], bytes], data: st.DataObject
) -> None:
    values, body = stream
    assert as_json(decode_stream(*data.draw(chunkings(body)))) == as_json(values)


def test_lf_after_a_cr_that_ends_a_chunk_mid_buffer_is_kept() -> None:
    # Regression: a CR followed by more bytes in the same chunk made the decoder drop the LF
    # that started the next chunk, merging two events.
    assert decode_stream(b"data: [1,\rdata: 2]", b"\n\ndata: 3\n\n") == [[1, 2], 3]


@given(st.lists(json_values(), max_size=6), wire_formats(), st.data())
def test_multi_line_data_that_is_only_valid_joined_is_joined(
    values: list[Any], fmt: WireFormat, data: st.DataObject
) -> None:
    """Each value pretty-printed over several ``data:`` lines (first line ``[`` or ``{``)."""
    nl = fmt.line_ending
    body = "".join(
        "".join(f"data: {line}{nl}" for line in json.dumps(v, indent=1).split("\n")) + nl
        for v in values
    ).encode()
    assert as_json(decode_stream(*data.draw(chunkings(body)))) == as_json(values)


# ---------------------------------------------------------------- against an independent decoder


def whatwg_data(chunks: list[bytes]) -> list[Any]:
    """Event data through httpx-sse's WHATWG decoder (BOM dropped by the text decoder)."""
    text = codecs.getincrementaldecoder("utf-8-sig")()
    lines = SSELineDecoder()
    events = SSEDecoder()
    found = []
    all_lines: list[str] = []
    for chunk in chunks:
        all_lines += lines.decode(text.decode(chunk))
    all_lines += lines.decode(text.decode(b"", final=True)) + lines.flush()
    for line in all_lines:
        event = events.decode(line)
        if event is not None and event.data:  # WHATWG: no data, no event
            found.append(json.loads(event.data))
    return found


@given(encoded_streams(formats=wire_formats().filter(lambda f: f.final_blank_line)), st.data())
def test_httpx_sse_agrees_on_single_data_line_streams(stream: Any, data: st.DataObject) -> None:
    chunks = data.draw(chunkings(stream.body))
    assert as_json(decode_stream(*chunks)) == as_json(whatwg_data(chunks))


# ---------------------------------------------------------------- PROTOCOL.md's behaviour table

TABLE = [
    (b'data: "Hello"\n\ndata: " world"\n\n', ["Hello", " world"]),
    (b'data: "Hello"\r\n\r\ndata: " world"\r\n\r\n', ["Hello", " world"]),
    (b'data: "Hello"\r\rdata: " world"\r\r', ["Hello", " world"]),  # original: JSONDecodeError
    (b'data:"x"\n\n', ["x"]),  # original: nothing
    (b': ping\n\nevent: message\ndata: "a"\n\n: ping\ndata: "b"\n\n', ["a", "b"]),
    (b'data: "a"\n\ndata: [DONE]\n\ndata: "late"\n\n', ["a"]),  # original: JSONDecodeError
    (b'data: "a"\n\ndata:[DONE]\n\n', ["a"]),
    (b'data: "a"\n\ndata: [DONE]\n\ndata: {not json\n\n\xff\xfe', ["a"]),
    (b'data: \n\ndata: "a"\n\ndata:\n\ndata\n\n', ["a"]),  # empty data skipped
    (b'data: {"a":\ndata: 1}\n\n', [{"a": 1}]),  # original: JSONDecodeError
    (b'data: "a"\ndata: "b"\n\n', ["a", "b"]),  # no SSE joining when each line is JSON
    (b'data: "a"\n\ndata: "last"', ["a", "last"]),  # last line without newline
    (b'data: "a"\n\ndata: "last"\n', ["a", "last"]),  # last event without blank line
    (b'\xef\xbb\xbfdata: "first"\n\n', ["first"]),  # original: first event lost
    (b'data: {"o": 1}\n\ndata: 2.5\n\ndata: null\n\ndata: [1, "x"]\n\n',
     [{"o": 1}, 2.5, None, [1, "x"]]),
    (b'retry: 100\nid: 7\nevent: token\ndata: "a"\n\n', ["a"]),
    (b"", []),
    (b"\n\n\n", []),
]  # fmt: skip


@pytest.mark.parametrize(("body", "values"), TABLE)
def test_protocol_behaviour_table(body: bytes, values: list[Any]) -> None:
    assert as_json(decode_stream(body)) == as_json(values)
    assert as_json(decode_stream(*bytewise(body))) == as_json(values)


def test_error_after_good_values_in_one_chunk_is_raised_by_the_next_call() -> None:
    decoder = EventStreamDecoder()
    assert decoder.feed(b'data: "a"\n\ndata: "b"\n\ndata: {bad\n\n') == ["a", "b"]
    with pytest.raises(MalformedEventError, match=r"^event 3: "):
        decoder.feed(b'data: "c"\n\n')
    with pytest.raises(MalformedEventError, match=r"^event 3: "):
        decoder.close()


def test_done_marker_sets_done_and_ignores_later_input() -> None:
    decoder = EventStreamDecoder()
    assert decoder.feed(b'data: "a"\n\ndata: [DONE]\n\n') == ["a"]
    assert decoder.done
    assert decoder.feed(b'data: "b"\n\ndata: not json\n\n') == []
    assert decoder.close() == []


def test_event_id_and_retry_fields_are_kept() -> None:
    decoder = EventStreamDecoder()
    decoder.feed(b'retry: 1500\nid: 42\nevent: token\ndata: "a"\n\n')
    assert (decoder.retry, decoder.last_event_id, decoder.event_type) == (1500, "42", "token")


def test_bad_id_and_retry_values_are_ignored_as_whatwg_says() -> None:
    decoder = EventStreamDecoder()
    decoder.feed(b'id: 1\nretry: 5\ndata: "a"\n\nid: a\x00b\nretry: soon\ndata: "b"\n\n')
    assert (decoder.last_event_id, decoder.retry) == ("1", 5)


def test_600_000_byte_event_parses_with_the_default_limit() -> None:
    assert DEFAULT_MAX_EVENT_SIZE >= 1024 * 1024
    token = "x" * 600_000
    body = encode_stream([token, "after"])
    assert decode_stream(body) == [token, "after"]
    assert decode_stream(*split_at(body, range(0, len(body), 65536))) == [token, "after"]


@pytest.mark.parametrize("ending", [b"\n\n", b""])
def test_event_past_max_event_size_raises_event_too_large(ending: bytes) -> None:
    body = b'data: "ok"\n\ndata: "' + b"x" * 2000 + b'"' + ending
    for chunks in ([body], split_at(body, range(0, len(body), 100))):
        with pytest.raises(EventTooLargeError) as raised:
            decode_stream(*chunks, max_event_size=1000)
        assert raised.value.event_number == 2
        assert "max_event_size=1000" in str(raised.value)


def test_many_data_lines_past_max_event_size_raise() -> None:
    body = b'data: "a"\n' * 200 + b"\n"
    with pytest.raises(EventTooLargeError):
        decode_stream(body, max_event_size=500)


def test_invalid_utf8_raises_after_the_good_events() -> None:
    decoder = EventStreamDecoder()
    assert decoder.feed(b'data: "good"\n\n') == ["good"]
    with pytest.raises(InvalidEncodingError) as raised:
        decoder.feed(b'data: "bad \xff"\n\n')
    assert raised.value.event_number == 2
    assert "event 2" in str(raised.value)


def test_not_json_names_the_event_and_the_line() -> None:
    with pytest.raises(MalformedEventError) as raised:
        decode_stream(b'data: "a"\n\ndata: "b"\n\ndata: "c"\n\ndata: hello there\n\n')
    message = str(raised.value)
    assert message.startswith("event 4: ")
    assert "data: hello there" in message


def test_error_message_shows_at_most_200_characters_of_the_line() -> None:
    with pytest.raises(MalformedEventError) as raised:
        decode_stream(b"data: {" + b"y" * 10_000 + b"\n\n")
    assert len(raised.value.line_excerpt) <= 201
    assert len(str(raised.value)) < 300


def test_deeply_nested_json_is_a_malformed_event_not_a_recursion_error() -> None:
    with pytest.raises(MalformedEventError):
        decode_stream(b"data: " + b"[" * 100_000 + b"]" * 100_000 + b"\n\n")


# ------------------------------------------------------------ malformed input, never a raw error


def assert_decodes_or_raises_koala_error(chunks: list[bytes]) -> None:
    """The decoder gives the reference model's answer: the same values, then the same error
    (class and event number) or none, whatever the chunking."""
    expected = reference_decode(b"".join(chunks), max_event_size=4096)
    decoder = EventStreamDecoder(max_event_size=4096)
    values: list[Any] = []
    error: tuple[str, int] | None = None
    try:
        for chunk in chunks:
            values += decoder.feed(chunk)
        values += decoder.close()
    except StreamError as raised:
        assert str(raised).startswith(f"event {raised.event_number}: ")
        assert len(raised.line_excerpt) <= 201
        error = (type(raised).__name__, raised.event_number)
    assert (as_json(values), error) == (as_json(expected.values), expected.error)


@given(st.binary(max_size=300), st.data())
def test_arbitrary_bytes_decode_or_raise_a_koala_error(body: bytes, data: st.DataObject) -> None:
    assert_decodes_or_raises_koala_error(data.draw(chunkings(body)))


garbage_lines = st.one_of(
    st.binary(max_size=40),
    st.sampled_from(
        [b"data: {", b"data: [DONE", b"data: \xff\xfe", b"data: \"\xe2\x82\"", b"data: tru",
         b"data: \"unterminated", b"data: \"bad \\x escape\"", b"id: \xff", b"event: \xc3",
         b"data: " + b"[" * 5000, b"\xef\xbb\xbf", b"data: 1 2"]
    ),
)  # fmt: skip


@st.composite
def mutated_streams(draw: st.DrawFn) -> bytes:
    """A valid stream with garbage lines inserted and/or its end cut off."""
    body = draw(ANY_STREAM).body
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(body)))
        body = body[:at] + draw(garbage_lines) + b"\n" + body[at:]
    if draw(st.booleans()):
        body = body[: draw(st.integers(0, len(body)))]
    return body


@given(mutated_streams(), st.data())
def test_mutated_streams_decode_or_raise_a_koala_error(body: bytes, data: st.DataObject) -> None:
    assert_decodes_or_raises_koala_error(data.draw(chunkings(body)))


@given(st.lists(tokens(), max_size=10), st.data())
def test_bad_event_is_numbered_and_the_good_ones_before_it_are_yielded(
    values: list[str], data: st.DataObject
) -> None:
    position = data.draw(st.integers(0, len(values)))
    bad = data.draw(st.sampled_from([b"data: {oops}\n\n", b'data: "\xff"\n\n']))
    body = encode_stream(values[:position]) + bad + encode_stream(values[position:])
    # Whatever the chunking: good values in the same chunk as the bad event come out first.
    decoder = EventStreamDecoder()
    yielded: list[Any] = []
    with pytest.raises(StreamError) as raised:
        for chunk in data.draw(chunkings(body)):
            yielded += decoder.feed(chunk)
        decoder.close()
    assert yielded == values[:position]
    assert raised.value.event_number == position + 1
    assert str(raised.value).startswith(f"event {position + 1}: ")


def test_done_marker_without_the_space_is_skipped_not_the_end() -> None:
    # The original only read "data: " lines, so it went on past "data:[DONE]"; so do we.
    body = b'data: "a"\n\ndata:[DONE]\ndata: "b c"\n\ndata: "d"\n\n'
    assert decode_stream(body) == ["a", "b c", "d"]


def original_parser(body: bytes) -> list[Any]:
    """PROTOCOL.md's original parser: aiohttp's LF lines; json.loads of each "data: " line."""
    lines = body.split(b"\n")
    complete = [line + b"\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    return [json.loads(line[6:]) for line in complete if line.startswith(b"data: ")]


# Lines of the kinds the original reads without failing, or skips: data lines holding JSON (also
# with extra spaces), comments, other fields, blank lines, the no-space [DONE], and non-SSE noise.
# Not "data:<json>" nor a BOM: there the project yields on purpose what the original dropped.
original_lines = st.one_of(
    json_values().map(lambda v: b"data: " + encode_value(v).encode()),
    json_values().map(lambda v: b"data:  " + encode_value(v).encode() + b" "),
    st.sampled_from(
        [b"", b"", b": ping", b"event: message", b"id: 7", b"retry: 10", b"data:[DONE]", b"x"]
    ),
)


@given(st.lists(original_lines, max_size=12), st.sampled_from([b"\n", b"\r\n"]), st.booleans())
def test_same_values_as_the_original_wherever_it_succeeds(
    lines: list[bytes], newline: bytes, final_newline: bool
) -> None:
    body = newline.join(lines) + (newline if final_newline else b"")
    assert as_json(decode_stream(body)) == as_json(original_parser(body))
