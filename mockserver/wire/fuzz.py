"""Meaning-preserving rewriting of an event stream from a seed. Pure, no I/O.

The same seed always gives the same rewriting, so a failure seen in fuzz mode reproduces with
``X-Koala-Mock-Seed: N``. Every choice keeps the values a WHATWG-conforming decoder (and
:mod:`koala.sse`) reads: line endings, ``data:`` with or without the space, comment lines,
``event:``/``id:``/``retry:`` fields, a BOM, a missing final blank line, and where the bytes are
split across writes.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Sequence
from typing import Any, NamedTuple

from mockserver.wire.plan import ResponsePlan, event_stream_plan, rechunk
from mockserver.wire.streams import LineEnding, WireFormat, split_at

__all__ = [
    "MAX_SEED",
    "Rewriting",
    "fuzzed_plan",
    "new_seed",
    "rewriting_for",
    "split_points",
    "wire_format_for",
]

MAX_SEED = 2**63 - 1
_LINE_ENDINGS: tuple[LineEnding, ...] = ("\n", "\r\n", "\r")


def new_seed() -> int:
    return secrets.randbelow(MAX_SEED)


class Rewriting(NamedTuple):
    """What a seed chose: the wire format and the write boundaries (immutable)."""

    seed: int
    fmt: WireFormat
    cuts: tuple[int, ...]


def wire_format_for(rng: random.Random) -> WireFormat:
    return WireFormat(
        line_ending=rng.choice(_LINE_ENDINGS),
        space_after_colon=rng.random() < 0.7,
        bom=rng.random() < 0.2,
        comment_every=rng.choice((0, 0, 1, 2, 5)),
        event_name=rng.choice((None, None, "message", "token")),
        with_ids=rng.random() < 0.3,
        retry=rng.choice((None, None, 0, 3000)),
        final_blank_line=rng.random() < 0.8,
    )


def split_points(rng: random.Random, size: int) -> tuple[int, ...]:
    """Where to cut a body of ``size`` bytes: none, a few, or (rarely) every byte."""
    if size < 2:
        return ()
    style = rng.random()
    if style < 0.2:
        return ()
    if style < 0.3 and size <= 4096:
        return tuple(range(1, size))
    count = rng.randint(1, min(size - 1, 32))
    return tuple(sorted(rng.sample(range(1, size), count)))


def rewriting_for(seed: int, values: Sequence[Any]) -> Rewriting:
    """The rewriting ``seed`` picks for a stream of ``values``."""
    rng = random.Random(seed)
    fmt = wire_format_for(rng)
    body_size = len(event_stream_plan(values, fmt).body)
    return Rewriting(seed, fmt, split_points(rng, body_size))


def fuzzed_plan(seed: int, values: Sequence[Any], delay: float = 0.0) -> ResponsePlan:
    """The plan for ``values`` rewritten by ``seed`` (same values, different bytes)."""
    rewriting = rewriting_for(seed, values)
    plan = event_stream_plan(values, rewriting.fmt)
    return rechunk(plan, split_at(plan.body, rewriting.cuts), delay)
