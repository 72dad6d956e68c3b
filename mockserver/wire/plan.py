"""A response plan: what the server will write, when, and how the connection ends. Pure.

Replay, synthesis, faults and fuzzing each build a :class:`ResponsePlan`; one sender
(:mod:`mockserver.server.sender`) carries any plan out over the network. Keeping the plan pure
lets the tests check what a fault *means* without a socket.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from itertools import accumulate
from typing import Any, Literal, TypedDict

from multidict import CIMultiDict, CIMultiDictProxy

from mockserver.wire.generated import GeneratedWrites, SlicedBody, Write
from mockserver.wire.streams import KOALA_FORMAT, WireFormat, encode_events

if sys.version_info >= (3, 11):
    from typing import NotRequired
else:  # pragma: no cover - Python 3.10
    from typing_extensions import NotRequired

__all__ = [
    "EVENT_STREAM",
    "MAX_STORED_BYTES",
    "SINGLE_WRITE_LIMIT",
    "Ending",
    "ResponsePlan",
    "ServedBy",
    "Source",
    "Write",
    "event_stream_plan",
    "html_plan",
    "rechunk",
    "split_plan",
]

#: How a stream ends: ``eof`` (complete), ``close`` (FIN before the body is complete),
#: ``abort`` (TCP reset), ``stall`` (stop sending, keep the connection open, then close).
Ending = Literal["eof", "close", "abort", "stall"]
EVENT_STREAM = "text/event-stream; charset=utf-8"

#: What produced an answer, as the journal's ``served_by["source"]`` says: a cassette, the
#: synthetic answer, a fault, the upstream (recording proxy), the server's JSON error, or a bug.
Source = Literal["cassette", "synthetic", "stub", "fault", "upstream", "error", "bug"]


class ServedBy(TypedDict):
    """The journal's ``served_by`` once a request is answered: ``source``, and the details that
    source has. Shared between entries (one per recording): never mutated."""

    source: Source
    #: ``cassette``: the file's name and the interaction's index in it.
    cassette: NotRequired[str]
    interaction: NotRequired[int]
    #: The fuzz seed, when one rewrote the answer.
    seed: NotRequired[int]
    #: ``fault``: the fault spec, and the source of the answer it broke.
    fault: NotRequired[str]
    answer: NotRequired[Source]
    #: ``stub``: the stub's number (``POST /__admin/stubs``).
    stub: NotRequired[int]
    #: ``"json"`` when the answer went out as the JSON reply instead of a stream.
    form: NotRequired[str]
    #: ``error`` in replay mode: no cassette matched; the nearest one and what differs.
    unmatched: NotRequired[bool]
    nearest: NotRequired[str | None]
    differences: NotRequired[list[str]]
    #: ``upstream``: where the recording proxy forwarded (credentials masked), and the proxy's
    #: record mode (also on the answers it replays).
    upstream: NotRequired[str]
    record_mode: NotRequired[str]


#: Larger bodies are streamed (and tracked), so shutdown can close them if the client stalls.
SINGLE_WRITE_LIMIT = 1 << 20


#: Bodies and answers larger than this are summarised in the journal, not kept.
MAX_STORED_BYTES = 64 * 1024


# A dataclass, although serve defines it at import (about 5 M instructions): plans are copied
# by dataclasses.replace in some 25 places, which mypy checks field by field.
@dataclass(frozen=True)
class ResponsePlan:
    """What to send: status, headers, the body as timed writes, and how the connection ends.

    Immutable: a replayed plan is built once and served to many requests at once
    (``dataclasses.replace`` makes a changed copy). ``values`` is a list for comparison with
    what a client yields; it is never changed after the plan is built.
    """

    status: int = 200
    #: The reason phrase (None: the standard one for the status).
    reason: str | None = None
    headers: tuple[tuple[str, str], ...] = (("Content-Type", EVENT_STREAM),)
    #: A tuple, or :class:`~mockserver.wire.generated.GeneratedWrites` made while they are sent
    #: (a body too large, or cut in too many pieces, to build whole).
    writes: Sequence[Write] = ()
    ending: Ending = "eof"
    #: Seconds to hold a stalled connection open before closing it.
    stall_seconds: float = 0.0
    #: Seconds to wait before sending the status line and headers.
    first_byte_delay: float = 0.0
    #: Byte offsets in the body at which each event is complete (for the journal's event count).
    event_ends: tuple[int, ...] = ()
    #: The values a correct client should yield from this plan (None: not an answer stream).
    values: Sequence[Any] | None = None
    #: False when the write boundaries are the point (split_writes, fuzz): never coalesce them.
    keep_writes: bool = False

    # Cached: a replayed plan is built once and served many times (``dataclasses.replace``
    # makes a new plan, with an empty cache; cached_property works on a frozen dataclass).
    @cached_property
    def body(self) -> bytes:
        """The whole body (built whole even when generated: for tests, never for sending)."""
        return b"".join(w.data for w in self.writes)

    @cached_property
    def generated_size(self) -> int:
        """The bytes of a body made while it is sent (0: the body is built already)."""
        return self.writes.size if isinstance(self.writes, GeneratedWrites) else 0

    @cached_property
    def body_size(self) -> int:
        return self.generated_size or len(self.body)

    @cached_property
    def values_for_journal(self) -> list[Any] | None:
        """``values``, unless the answer is too large for the journal to keep (memory)."""
        if self.values is None or self.body_size > MAX_STORED_BYTES:
            return None
        return self.values if isinstance(self.values, list) else list(self.values)

    @cached_property
    def header_dict(self) -> CIMultiDictProxy[str]:
        """The headers as aiohttp takes them (repeated names kept)."""
        headers: CIMultiDict[str] = CIMultiDict()
        for name, value in self.headers:
            headers.add(name, value)
        return CIMultiDictProxy(headers)

    @cached_property
    def _paced(self) -> bool:
        return any(w.delay for w in self.writes)

    def coalescible(self) -> bool:
        """True when the plan may go out as one write: nothing in it asks for pacing."""
        return (
            self.ending == "eof"
            and self.first_byte_delay == 0
            and not self.keep_writes
            and not self.generated_size  # streamed, so that it is never built whole
            and not self._paced
        )

    @cached_property
    def single_write(self) -> bytes | None:
        """The whole body when the plan goes out as one ordinary response, else None."""
        if self.coalescible() and len(self.body) <= SINGLE_WRITE_LIMIT:
            return self.body
        return None

    def with_header(self, name: str, value: str) -> ResponsePlan:
        kept = [(n, v) for n, v in self.headers if n.lower() != name.lower()]
        return replace(self, headers=(*kept, (name, value)))

    def content_type(self) -> str:
        """The Content-Type header's value ("" when there is none)."""
        return self._content_type

    @cached_property
    def _content_type(self) -> str:
        return next((v for n, v in self.headers if n.lower() == "content-type"), "")


def event_stream_plan(
    values: Sequence[Any],
    fmt: WireFormat = KOALA_FORMAT,
    delay: float = 0.0,
    status: int = 200,
) -> ResponsePlan:
    """One write per event, ``delay`` seconds apart (the first goes out at once)."""
    pieces = encode_events(values, fmt)
    writes = tuple(Write(piece, delay if n else 0.0) for n, piece in enumerate(pieces))
    ends = tuple(accumulate(len(p) for p in pieces))
    if pieces and len(pieces) > len(values):  # a prefix-only body (no events)
        ends = ()
    return ResponsePlan(status=status, writes=writes, event_ends=ends, values=list(values))


def rechunk(plan: ResponsePlan, pieces: Sequence[bytes], delay: float = 0.0) -> ResponsePlan:
    """``plan`` with its body written as ``pieces`` (which must join to the same body)."""
    writes = tuple(Write(piece, delay if n else 0.0) for n, piece in enumerate(pieces))
    return replace(plan, writes=writes, keep_writes=True)


def split_plan(plan: ResponsePlan, size: int, delay: float = 0.0) -> ResponsePlan:
    """``plan`` with its body written ``size`` bytes at a time, ``delay`` seconds apart; the
    pieces are made while they are sent (``size=1`` would otherwise be a ``Write`` per byte)."""
    return replace(plan, writes=SlicedBody(plan.body, size, delay), keep_writes=True)


def html_plan(
    status: int, html: str, extra_headers: Sequence[tuple[str, str]] = ()
) -> ResponsePlan:
    return ResponsePlan(
        status=status,
        headers=(("Content-Type", "text/html; charset=utf-8"), *extra_headers),
        writes=(Write(html.encode("utf-8")),),
    )
