"""Counted nouns for what ``record`` and ``verify`` print."""

from __future__ import annotations

__all__ = ["plural"]


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 cassette``, ``2 cassettes``, ``0 cassettes``.

    >>> plural(1, "chunk"), plural(3, "chunk"), plural(2, "entry", "entries")
    ('1 chunk', '3 chunks', '2 entries')
    """
    return f"{count} {word if count == 1 else (many or word + 's')}"
