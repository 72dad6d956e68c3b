"""Hypothesis strategies for testing code that talks Koala: messages, event values, wire formats.

Public, so users can drive their own tests with them::

    from hypothesis import given
    from mockserver.testing.strategies import encoded_streams, chunkings

    @given(encoded_streams())
    def test_my_decoder(stream): ...

Streams are rendered by :mod:`mockserver.wire.streams`, the same encoder the mock server uses.
Needs ``hypothesis`` (the project's ``test`` extra).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from mockserver.wire.streams import WireFormat, encode_stream, split_at

__all__ = [
    "LINE_ENDINGS",
    "ROLES",
    "EncodedStream",
    "chunkings",
    "contents",
    "encoded_streams",
    "event_values",
    "json_values",
    "message_lists",
    "messages",
    "text_parts",
    "texts",
    "tokens",
    "wire_formats",
]

ROLES = ("user", "assistant", "system", "developer", "tool")
LINE_ENDINGS = ("\n", "\r\n", "\r")

# Text with the characters that break naive encoders: quotes, backslashes, line breaks, emoji,
# combining marks, and code points of every UTF-8 length. Lone surrogates are left out: they
# cannot be encoded as UTF-8 at all.
_TRICKY = st.sampled_from(['"', "\\", "\n", "\r", "\t", "\u2028", "é", "€", "😀", "\u0301", "\x00"])


def texts(max_size: int = 20) -> st.SearchStrategy[str]:
    """Any text, biased towards characters that matter on the wire (may be empty)."""
    return st.text(_TRICKY | st.characters(exclude_categories=["Cs"]), max_size=max_size)


def json_values(max_leaves: int = 10) -> st.SearchStrategy[Any]:
    """JSON values as Koala may send them in ``data:``: mostly strings, also the other types.

    Floats are finite (JSON has no NaN or infinity), so ``json.loads(json.dumps(v)) == v``.
    """
    scalars = st.one_of(
        texts(),
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
    )
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(texts(8), children, max_size=4),
        ),
        max_leaves=max_leaves,
    )


def tokens() -> st.SearchStrategy[str]:
    """One streamed token: a short string, as the live API sends."""
    return texts(max_size=8)


def event_values(
    values: st.SearchStrategy[Any] | None = None, max_size: int = 10
) -> st.SearchStrategy[list[Any]]:
    """The values of a stream, one per event (tokens and any other JSON value by default)."""
    if values is None:
        values = st.one_of(tokens(), json_values())
    return st.lists(values, max_size=max_size)


def wire_formats(
    line_endings: Sequence[str] = LINE_ENDINGS,
) -> st.SearchStrategy[WireFormat]:
    """Every way :class:`~mockserver.wire.streams.WireFormat` can render a stream."""
    return st.builds(
        WireFormat,
        line_ending=st.sampled_from(list(line_endings)),
        space_after_colon=st.booleans(),
        bom=st.booleans(),
        comment_every=st.integers(0, 3),
        event_name=st.none() | st.sampled_from(["message", "token", "delta"]),
        with_ids=st.booleans(),
        retry=st.none() | st.integers(0, 10_000),
        final_blank_line=st.booleans(),
    )


@dataclass(frozen=True)
class EncodedStream:
    """Values, the format they were rendered in, and the resulting body."""

    values: list[Any]
    fmt: WireFormat
    body: bytes


def encoded_streams(
    values: st.SearchStrategy[list[Any]] | None = None,
    formats: st.SearchStrategy[WireFormat] | None = None,
) -> st.SearchStrategy[EncodedStream]:
    """A list of values rendered as an event stream by
    :func:`mockserver.wire.streams.encode_stream`."""
    return st.tuples(
        values if values is not None else event_values(),
        formats if formats is not None else wire_formats(),
    ).map(lambda drawn: EncodedStream(drawn[0], drawn[1], encode_stream(*drawn)))


@st.composite
def chunkings(draw: st.DrawFn, body: bytes, max_cuts: int = 20) -> list[bytes]:
    """``body`` cut into network chunks at arbitrary offsets (inside UTF-8 characters too)."""
    if len(body) < 2:
        return [body] if body else []
    cuts = draw(st.lists(st.integers(1, len(body) - 1), max_size=max_cuts))
    return split_at(body, cuts)


def text_parts() -> st.SearchStrategy[Any]:
    """One part of a list-of-parts content: a text part, a bare string, or a non-text part."""
    return st.one_of(
        st.builds(lambda text: {"type": "text", "text": text}, texts()),
        texts(),
        st.just({"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}),
    )


def contents(parts: bool = True) -> st.SearchStrategy[Any]:
    """A message content: a string, or (when ``parts``) an OpenAI-style list of parts."""
    if not parts:
        return texts()
    return st.one_of(texts(), st.lists(text_parts(), max_size=4))


def messages(
    roles: Sequence[str] = ROLES, parts: bool = False
) -> st.SearchStrategy[dict[str, Any]]:
    """One chat message ``{"role": ..., "content": ...}``."""
    return st.fixed_dictionaries({"role": st.sampled_from(list(roles)), "content": contents(parts)})


def message_lists(
    roles: Sequence[str] = ROLES, parts: bool = False, min_size: int = 1, max_size: int = 8
) -> st.SearchStrategy[list[dict[str, Any]]]:
    """A conversation: roles in any order, unicode and empty contents, parts when asked."""
    return st.lists(messages(roles, parts), min_size=min_size, max_size=max_size)
