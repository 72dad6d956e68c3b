"""Answers made while they are sent, a bounded chunk at a time, never built whole. Pure.

A fault can ask for a body far larger than anything else the server sends (``huge_event``: up to
64 MiB in one event), or for a body cut into a great many writes (``split_writes;size=1``: a
``Write`` per byte). Built eagerly, eight such answers at once held 2.1 GB. Here those writes
are a :class:`GeneratedWrites`: a sequence that makes each write when it is read, so the sender,
iterating it, holds one chunk at a time (:data:`CHUNK_SIZE`) and the bytes it sends are exactly
those the eager version built. :class:`ValuesWithLongText` does the same for the values a client
should yield (the one long text is made only when someone reads it).

>>> writes = RepeatedFill(b'data: "', b"x", 5, b'"\\n\\n', chunk_size=4)
>>> [w.data for w in writes], writes.size
([b'data', b': "x', b'xxxx', b'"\\n\\n'], 15)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from itertools import accumulate
from typing import Any, NamedTuple, overload

__all__ = [
    "CHUNK_SIZE",
    "GeneratedWrites",
    "JoinedWrites",
    "RepeatedFill",
    "SlicedBody",
    "ValuesWithLongText",
    "Write",
]

#: The largest write a generated body is made in.
CHUNK_SIZE = 64 * 1024


class Write(NamedTuple):
    """One write to the socket, ``delay`` seconds after the previous one (immutable)."""

    data: bytes
    delay: float = 0.0


class GeneratedWrites(ABC, Sequence[Write]):
    """Writes made one at a time when they are read; :attr:`size` is their bytes in all.

    Reading them in order (what the sender does) keeps at most one write in memory; a slice
    makes the writes it covers (tests and small bodies only).
    """

    #: The bytes of all the writes together.
    size: int

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def write(self, index: int) -> Write:
        """Write ``index`` (0 <= index < len(self))."""

    @overload
    def __getitem__(self, index: int) -> Write: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Write, ...]: ...

    def __getitem__(self, index: int | slice) -> Write | tuple[Write, ...]:
        if isinstance(index, slice):
            return tuple(self.write(i) for i in range(*index.indices(len(self))))
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("write index out of range")
        return self.write(index)

    def __iter__(self) -> Iterator[Write]:
        for index in range(len(self)):
            yield self.write(index)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {len(self)} writes, {self.size} bytes>"


class RepeatedFill(GeneratedWrites):
    """``prefix + fill * count + suffix`` in writes of ``chunk_size`` bytes; the first write
    comes ``delay`` seconds after the one before it. A write made only of fill is one shared
    bytes object: a 64 MiB body costs one chunk of memory, however many are sent at once."""

    def __init__(
        self,
        prefix: bytes,
        fill: bytes,
        count: int,
        suffix: bytes,
        delay: float = 0.0,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        if len(fill) != 1 or count < 0 or chunk_size < 1:
            raise ValueError("fill must be one byte, count >= 0 and chunk_size >= 1")
        self.prefix, self.fill, self.suffix = prefix, fill, suffix
        self.fill_count = count
        self.delay = delay
        self.chunk_size = chunk_size
        self.size = len(prefix) + count + len(suffix)
        self._fill_start = len(prefix)
        self._fill_end = len(prefix) + count
        self._block = fill * min(chunk_size, count)

    def __len__(self) -> int:
        return -(-self.size // self.chunk_size)

    def write(self, index: int) -> Write:
        start = index * self.chunk_size
        end = min(start + self.chunk_size, self.size)
        delay = self.delay if index == 0 else 0.0
        if self._fill_start <= start and end <= self._fill_end:
            length = end - start
            block = self._block if length == len(self._block) else self.fill * length
            return Write(block, delay)
        return Write(self._bytes(start, end), delay)

    def _bytes(self, start: int, end: int) -> bytes:
        """The body's bytes ``start:end`` (a write that touches the prefix or the suffix)."""
        fill_from, fill_to = max(start, self._fill_start), min(end, self._fill_end)
        head = self.prefix[start : min(end, self._fill_start)]
        fill = self.fill * max(0, fill_to - fill_from)
        tail = self.suffix[max(0, start - self._fill_end) : max(0, end - self._fill_end)]
        return head + fill + tail


class SlicedBody(GeneratedWrites):
    """``body`` in writes of ``size`` bytes, each ``delay`` seconds after the one before (the
    first at once): ``split_writes`` without a ``Write`` object per piece in memory."""

    def __init__(self, body: bytes, size: int, delay: float = 0.0) -> None:
        if size < 1:
            raise ValueError("size must be >= 1")
        self.body, self.piece, self.delay = body, size, delay
        self.size = len(body)

    def __len__(self) -> int:
        return -(-len(self.body) // self.piece)

    def write(self, index: int) -> Write:
        start = index * self.piece
        return Write(self.body[start : start + self.piece], self.delay if index else 0.0)


class JoinedWrites(GeneratedWrites):
    """Several sequences of writes, one after the other (eager tuples and generated ones)."""

    def __init__(self, *parts: Sequence[Write]) -> None:
        self.parts = tuple(p for p in parts if len(p))
        self._starts = [0, *accumulate(len(p) for p in self.parts)]
        self.size = sum(_size(p) for p in self.parts)

    def __len__(self) -> int:
        return self._starts[-1]

    def write(self, index: int) -> Write:
        part = bisect_right(self._starts, index) - 1
        return self.parts[part][index - self._starts[part]]

    def __iter__(self) -> Iterator[Write]:
        for part in self.parts:
            yield from part


def _size(writes: Sequence[Write]) -> int:
    if isinstance(writes, GeneratedWrites):
        return writes.size
    return sum(len(w.data) for w in writes)


class ValuesWithLongText(Sequence[Any]):
    """``[*before, char * count, *after]``, the long text made only when it is read.

    What a client should yield from a ``huge_event`` answer: the server needs only how many
    values there are, so it never builds the 64 MiB text; a test or the audit that compares
    values reads it like any list.
    """

    def __init__(self, before: Sequence[Any], char: str, count: int, after: Sequence[Any]) -> None:
        self.before, self.char, self.after = list(before), char, list(after)
        self.length = count  # (``count`` is Sequence's method)

    def __len__(self) -> int:
        return len(self.before) + 1 + len(self.after)

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("value index out of range")
        if index < len(self.before):
            return self.before[index]
        if index == len(self.before):
            return self.char * self.length
        return self.after[index - len(self.before) - 1]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (str, bytes)) or not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]  # mutable-looking, like a list

    def __repr__(self) -> str:
        return f"[*{self.before!r}, {self.char!r} * {self.length}, *{self.after!r}]"
