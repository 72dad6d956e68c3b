"""A close-delimited event stream or JSON reply (no Content-Length, no chunked encoding: the body
ends when the server closes the connection) that is cut off is a KoalaConnectionError, not a short
answer nor an unexpected content type.

A raw asyncio server on 127.0.0.1 writes the head and some bytes of a stream, then ends the
connection one of three ways: a clean close (FIN), a reset (SO_LINGER 0, then abort: RST), or a
clean close after a stream that ended properly. Only a clean close on an event boundary (or after
``data: [DONE]``) is the answer's end (docs/PROTOCOL.md, "The end of an event stream"); a JSON
reply ends after the bracket that closes it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from koala import Koala, KoalaConnectionError, UnexpectedContentTypeError
from mockserver.testing.strategies import tokens

Ending = Literal["close", "reset"]
MESSAGES = [{"role": "user", "content": "Hi"}]
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
#: Time for the client to read what was written before the connection ends.
PAUSE = 0.05


@asynccontextmanager
async def raw_server(
    body: bytes, ending: Ending, head: bytes = HEAD + b"\r\n"
) -> AsyncIterator[str]:
    """Serve one canned answer per connection: ``head``, ``body``, then ``ending``."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in request_head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        writer.write(head + body)
        await writer.drain()
        await asyncio.sleep(PAUSE)
        if ending == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        else:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/api/gpt/"
    finally:
        server.close()
        await server.wait_closed()


async def outcome(url: str, json_reply: bool = False) -> tuple[list[Any], BaseException | None]:
    """The chunks yielded, and the error that ended them (None for a complete answer)."""
    chunks: list[Any] = []
    try:
        async for chunk in Koala.create_async_generator(
            "", MESSAGES, api_endpoint=url, json_reply=json_reply
        ):
            chunks.append(chunk)
    except Exception as error:
        return chunks, error
    return chunks, None


async def answer_to(body: bytes, ending: Ending, **kwargs: Any) -> tuple[list[Any], Any]:
    async with raw_server(body, ending, **kwargs) as url:
        return await outcome(url)


COMPLETE = b'data: "Hel"\n\ndata: "lo"\n\n'


async def test_a_stream_that_ends_properly_at_close_is_the_answer() -> None:
    assert await answer_to(COMPLETE, "close") == (["Hel", "lo"], None)


@pytest.mark.parametrize(
    "body",
    [
        COMPLETE + b'data: "wor',  # in the middle of a line
        COMPLETE + b'data: "world"',  # a whole value, but its line never ended
        COMPLETE + b'data: "world"\n',  # the line ended, the event's blank line never came
        COMPLETE + b"data: {\ndata: 1}\n",  # one event of two data lines, cut before its end
    ],
)
async def test_a_clean_close_in_the_middle_of_an_event_is_a_connection_error(body: bytes) -> None:
    chunks, error = await answer_to(body, "close")
    assert chunks == ["Hel", "lo"]
    assert isinstance(error, KoalaConnectionError)
    assert "broke off" in str(error)
    assert "in the middle of an event" in str(error)


@pytest.mark.parametrize("body", [COMPLETE + b'data: "wor', COMPLETE, b""])
async def test_a_reset_is_a_connection_error_wherever_it_falls(body: bytes) -> None:
    chunks, error = await answer_to(body, "reset")
    assert chunks == json_values(body)
    assert isinstance(error, KoalaConnectionError)
    assert "reset" in str(error)


async def test_the_done_marker_ends_the_answer_whatever_follows() -> None:
    for ending in ("close", "reset"):
        got = await answer_to(b'data: "a"\n\ndata: [DONE]\n\ndata: "cut', ending)
        assert got == (["a"], None)


async def test_crlf_and_cr_line_ends_end_an_event_as_lf_does() -> None:
    for ending in (b"\r\n", b"\r"):
        body = b'data: "a"' + ending * 2 + b'data: "b"' + ending * 2
        assert await answer_to(body, "close") == (["a", "b"], None)
        chunks, error = await answer_to(body + b'data: "c"' + ending, "close")
        assert (chunks, type(error)) == (["a", "b"], KoalaConnectionError)


async def test_a_body_of_known_length_may_end_without_a_blank_line() -> None:
    """Framed bodies are complete by their framing: the open last event is dispatched."""
    body = COMPLETE + b'data: "world"'
    head = HEAD + b"Content-Length: %d\r\n\r\n" % len(body)
    assert await answer_to(body, "close", head=head) == (["Hel", "lo", "world"], None)


async def test_connection_close_header_changes_nothing() -> None:
    head = HEAD + b"Connection: close\r\n\r\n"
    chunks, error = await answer_to(COMPLETE + b'data: "wor', "close", head=head)
    assert (chunks, type(error)) == (["Hel", "lo"], KoalaConnectionError)
    assert await answer_to(COMPLETE, "close", head=head) == (["Hel", "lo"], None)


def json_values(body: bytes) -> list[Any]:
    """The values of the complete ``data: <JSON>`` events of ``body`` (LF line ends)."""
    events = body.split(b"\n\n")[:-1]
    return [json.loads(event[len(b"data: ") :]) for event in events]


@settings(max_examples=60)
@given(
    st.lists(tokens(), min_size=1, max_size=5),
    st.sampled_from([b"\n", b"\r\n"]),
    st.sampled_from(["close", "reset"]),
    st.data(),
)
def test_a_cut_anywhere_is_an_error_unless_on_an_event_boundary(
    values: list[str], line_end: bytes, ending: Ending, data: st.DataObject
) -> None:
    events = [b"data: " + json.dumps(v).encode() + line_end * 2 for v in values]
    body = b"".join(events)
    cut = data.draw(st.integers(0, len(body)), label="cut")
    # Where a prefix of the body holds k whole events: after each event's blank line, and (CRLF)
    # after the CR of that blank line, which already ends it.
    boundaries = {0: 0}
    offset = 0
    for count, event in enumerate(events, 1):
        offset += len(event)
        boundaries[offset] = count
        if line_end == b"\r\n":
            boundaries[offset - 1] = count
    whole = max(count for at, count in boundaries.items() if at <= cut)

    chunks, error = asyncio.run(answer_to(body[:cut], ending))

    if ending == "close" and cut in boundaries:
        assert (chunks, error) == (values[:whole], None)
    else:
        assert chunks == values[: len(chunks)] and len(chunks) <= whole
        if ending == "close":  # everything written was read before the close
            assert len(chunks) == whole
        assert isinstance(error, KoalaConnectionError), (chunks, error)


# ----------------------------------------------------------------------------- JSON replies
JSON_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
CLOSE_DELIMITED_JSON = JSON_HEAD + b"Connection: close\r\n\r\n"
REPLY = b'{"output": "hello"}'


async def json_answer_to(
    body: bytes, ending: Ending, head: bytes = CLOSE_DELIMITED_JSON, json_reply: bool = True
) -> tuple[list[Any], Any, str]:
    """The outcome of asking ``json_reply`` of a server answering ``head``, ``body``, ``ending``;
    and the endpoint."""
    async with raw_server(body, ending, head=head) as url:
        chunks, error = await outcome(url, json_reply=json_reply)
    return chunks, error, url


@pytest.mark.parametrize("ending", ["close", "reset"])
async def test_a_whole_json_reply_that_ends_at_close_is_the_answer(ending: Ending) -> None:
    """A JSON object is whole at its last bracket: a reset after it (as after ``[DONE]``) cuts
    nothing."""
    for body in (REPLY, REPLY + b"\n"):
        chunks, error, _ = await json_answer_to(body, ending)
        assert (chunks, error) == (["hello"], None)


@pytest.mark.parametrize("json_reply", [True, False])
@pytest.mark.parametrize("ending", ["close", "reset"])
async def test_a_json_reply_cut_off_is_a_connection_error_naming_the_endpoint(
    ending: Ending, json_reply: bool
) -> None:
    chunks, error, url = await json_answer_to(b'{"output": "hel', ending, json_reply=json_reply)
    assert chunks == []
    assert isinstance(error, KoalaConnectionError), error
    assert str(error).startswith(f"the JSON reply from {url} broke off: ")
    reason = "reset" if ending == "reset" else "closed before the JSON text ended"
    assert reason in str(error)
    assert "event-stream" not in str(error)


@pytest.mark.parametrize(
    "body", [b'{"output": hello}', b"{'output': 'hi'}", b'{"output": "a",}', b'{"output": 3}']
)
async def test_a_whole_but_malformed_json_reply_stays_an_unexpected_content_type(
    body: bytes,
) -> None:
    """Closed on its last bracket, the reply was not cut: it is wrong, not broken off."""
    chunks, error, _ = await json_answer_to(body, "close")
    assert chunks == []
    assert isinstance(error, UnexpectedContentTypeError), error
    assert str(error).startswith('expected a JSON reply {"output": "<text>"}, got application/json')
    assert "event-stream" not in str(error)


async def test_a_reset_after_a_malformed_json_reply_is_a_connection_error() -> None:
    """A reset is a cut wherever it falls, unless the reply already parsed."""
    chunks, error, _ = await json_answer_to(b'{"output": hello}', "reset")
    assert (chunks, type(error)) == ([], KoalaConnectionError)
    assert "reset" in str(error)


async def test_a_json_reply_of_known_length_is_judged_by_its_framing() -> None:
    """Unchanged by the close-delimited rule: short of its Content-Length is aiohttp's payload
    error (a KoalaConnectionError); a body as long as it says is whole, so malformed."""
    cut = b'{"output": "hel'
    for ending in ("close", "reset"):
        head = JSON_HEAD + b"Content-Length: 100\r\n\r\n"
        chunks, error, url = await json_answer_to(cut, ending, head=head)
        assert (chunks, type(error)) == ([], KoalaConnectionError)
        assert str(error).startswith(f"the stream from {url} broke off")
    head = JSON_HEAD + b"Content-Length: %d\r\n\r\n" % len(cut)
    chunks, error, _ = await json_answer_to(cut, "close", head=head)
    assert (chunks, type(error)) == ([], UnexpectedContentTypeError)


@settings(max_examples=60)
@given(
    st.text(max_size=40),
    st.booleans(),
    st.sampled_from([b"", b"\n", b"\r\n "]),
    st.sampled_from(["close", "reset"]),
    st.data(),
)
def test_a_json_reply_cut_anywhere_before_its_last_bracket_is_a_connection_error(
    text: str, ascii_only: bool, trailer: bytes, ending: Ending, data: st.DataObject
) -> None:
    whole = json.dumps({"output": text}, ensure_ascii=ascii_only).encode()
    body = whole + trailer
    cut = data.draw(st.integers(0, len(body)), label="cut")

    chunks, error, url = asyncio.run(json_answer_to(body[:cut], ending))

    if cut >= len(whole):
        assert (chunks, error) == ([text], None)
    else:
        assert chunks == []
        assert isinstance(error, KoalaConnectionError), error
        assert str(error).startswith(f"the JSON reply from {url} broke off: ")
