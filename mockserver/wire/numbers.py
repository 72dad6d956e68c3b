"""Numbers written as text (headers, query and fault parameters, flags): ASCII digits only.

Python's ``int()`` and ``float()`` also take ``1_0``, Unicode digits (``١٢``), surrounding
whitespace, ``1e3``, ``inf`` and ``nan``; a client that sends those gets a value it did not
write. So the text must match a plain grammar first: an optional ``-`` where negatives are
allowed, ASCII digits, and for a decimal number one ``.`` with digits on at least one side.

>>> strict_int("12"), strict_float("0.5"), strict_int("-3", negative=True)
(12, 0.5, -3)
>>> strict_int("1_0") is None, strict_int("١٢") is None, strict_float(" 5") is None
(True, True, True)
"""

from __future__ import annotations

import re

__all__ = ["MAX_DIGITS", "strict_float", "strict_int"]

#: Longer numbers are refused before conversion (``int()`` of a huge text is slow).
MAX_DIGITS = 30

_INT = re.compile(r"-?[0-9]+", re.ASCII)
_FLOAT = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)


def strict_int(text: str, negative: bool = False) -> int | None:
    """``text`` as an int when it is ASCII digits (a leading ``-`` with ``negative``), else None."""
    if len(text) > MAX_DIGITS or _INT.fullmatch(text) is None:
        return None
    if text.startswith("-") and not negative:
        return None
    return int(text)


def strict_float(text: str, negative: bool = False) -> float | None:
    """``text`` as a float when it is ASCII digits with at most one ``.`` (a leading ``-`` with
    ``negative``), else None."""
    if len(text) > MAX_DIGITS or _FLOAT.fullmatch(text) is None:
        return None
    if text.startswith("-") and not negative:
        return None
    return float(text)
