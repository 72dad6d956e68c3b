"""The public hypothesis strategies generate what they promise."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from koala.request import build_payload
from mockserver.testing.strategies import (
    ROLES,
    EncodedStream,
    chunkings,
    encoded_streams,
    message_lists,
)
from mockserver.wire.streams import encode_stream


@given(encoded_streams(), st.data())
def test_chunkings_cover_the_body_exactly(stream: EncodedStream, data: st.DataObject) -> None:
    chunks = data.draw(chunkings(stream.body))
    assert b"".join(chunks) == stream.body
    assert all(chunks)


@given(encoded_streams())
def test_encoded_streams_render_through_mockserver_streams(stream: EncodedStream) -> None:
    assert stream.body == encode_stream(stream.values, stream.fmt)


@given(message_lists(parts=True))
def test_message_lists_are_valid_conversations(messages: list[dict[str, Any]]) -> None:
    assert 1 <= len(messages) <= 8
    assert all(message["role"] in ROLES for message in messages)
    build_payload(None, messages)  # raises if a generated message were invalid
