"""The ``huge_event`` fault's answer: the first event, one event of ``size`` x's, the rest. Pure.

The same bytes, event ends and values as ``event_stream_plan([first, "x" * size, *rest])``,
but the huge event is made while it is sent (:class:`~mockserver.wire.generated.RepeatedFill`)
and its value only when read (:class:`~mockserver.wire.generated.ValuesWithLongText`): the
server never holds the 64 MiB it may be asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import accumulate
from typing import Any

from mockserver.wire.generated import JoinedWrites, RepeatedFill, ValuesWithLongText, Write
from mockserver.wire.plan import ResponsePlan
from mockserver.wire.streams import WireFormat, encode_event

__all__ = ["FILL", "huge_event_plan"]

#: The character the huge event's text is made of.
FILL = "x"


def huge_event_plan(values: Sequence[Any], size: int, delay: float = 0.0) -> ResponsePlan:
    """``values`` with a ``size``-character event after the first, events ``delay`` apart."""
    fmt = WireFormat()
    before, after = list(values[:1]), list(values[1:])
    number = len(before) + 1  # the huge event's number in the stream (1-based)
    # The huge event is the encoding of a one-character text with that character repeated.
    sample = encode_event(FILL, fmt, number)
    quoted = f'"{FILL}"'.encode()
    cut = sample.index(quoted) + 1
    prefix, suffix = sample[:cut], sample[cut + len(FILL) :]
    huge = RepeatedFill(prefix, FILL.encode(), size, suffix, delay if before else 0.0)
    head = tuple(Write(encode_event(v, fmt, n)) for n, v in enumerate(before, start=1))
    tail = tuple(
        Write(encode_event(v, fmt, n), delay) for n, v in enumerate(after, start=number + 1)
    )
    sizes = [*(len(w.data) for w in head), huge.size, *(len(w.data) for w in tail)]
    return ResponsePlan(
        writes=JoinedWrites(head, huge, tail),
        event_ends=tuple(accumulate(sizes)),
        values=ValuesWithLongText(before, FILL, size, after),
    )
