"""Number arguments of ``koala-mock``: one parser factory, so every flag words errors alike."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

from mockserver.wire.numbers import strict_float, strict_int

__all__ = ["bounded"]

Number = TypeVar("Number", int, float)


def _shown(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def bounded(
    kind: Callable[[str], Number],
    what: str,
    *,
    minimum: Number | None = None,
    maximum: Number | None = None,
    above: Number | None = None,
) -> Callable[[str], Number]:
    """An argparse ``type=`` that parses ``kind`` and checks ``minimum <= value <= maximum``
    (``above``: ``value > above``); the error names the flag's range and the text given.
    ``kind`` is ``int`` or ``float``; the text must be plain ASCII digits
    (:mod:`mockserver.wire.numbers`), so ``1_0``, ``١٢``, ``1e3`` and ``inf`` are refused."""
    strict = strict_int if kind is int else strict_float
    if above is not None:
        limits = f"> {_shown(above)}"
    elif minimum is not None and maximum is not None:
        limits = f"in {_shown(minimum)}..{_shown(maximum)}"
    elif minimum is not None:
        limits = f">= {_shown(minimum)}"
    else:
        limits = f"<= {_shown(maximum)}" if maximum is not None else ""

    def parse(text: str) -> Number:
        if strict(text, negative=True) is None:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        value = kind(text)
        in_range = value == value  # not NaN
        in_range &= minimum is None or value >= minimum
        in_range &= maximum is None or value <= maximum
        in_range &= above is None or value > above
        if not in_range:
            raise argparse.ArgumentTypeError(f"expected {what} {limits}, got {text!r}")
        return value

    return parse
