"""The fault queue (faults for the next N requests, queued through the admin API) and the error
of a bad fault spec: what the server holds from its start, without the fault registry.

:mod:`mockserver.wire.faults` (the registry, its scenarios and its dataclasses) is imported
only once a fault is asked for, queued or listed; a server that only replays cassettes starts
without it. Pure.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mockserver.errors import MockServerError

if TYPE_CHECKING:
    from mockserver.wire.faults import FaultSpec

__all__ = ["FaultQueue", "FaultSpecError", "QueuedFault"]


class FaultSpecError(MockServerError, ValueError):
    """A fault name or parameter the server does not know, or a value out of range."""


class QueuedFault:
    """A fault waiting in the queue, and how many more requests it is for."""

    __slots__ = ("remaining", "spec")

    def __init__(self, spec: FaultSpec, remaining: int) -> None:
        self.spec = spec
        self.remaining = remaining

    def to_json(self) -> dict[str, Any]:
        return {**self.spec.to_json(), "remaining": self.remaining}


class FaultQueue:
    """Faults queued for the next requests, served in order, each for its number of times.

    >>> from mockserver.wire.faults import parse_fault_spec
    >>> queue = FaultQueue()
    >>> _ = queue.push(parse_fault_spec("rate_limit;retry_after=5"), times=2)
    >>> [str(queue.take()), str(queue.take()), queue.take()]
    ['rate_limit;retry_after=5', 'rate_limit;retry_after=5', None]
    """

    def __init__(self) -> None:
        self._queue: deque[QueuedFault] = deque()
        #: Called after :meth:`push` and :meth:`clear` (the live page's event stream listens).
        self.on_change: Callable[[], None] | None = None

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def push(self, spec: FaultSpec, times: int = 1) -> QueuedFault:
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise FaultSpecError(f"times must be a positive integer, got {times!r}")
        item = QueuedFault(spec, times)
        self._queue.append(item)
        self._changed()
        return item

    def take(self) -> FaultSpec | None:
        """The fault for the next request (and one use of it), or None."""
        if not self._queue:
            return None
        head = self._queue[0]
        head.remaining -= 1
        if head.remaining <= 0:
            self._queue.popleft()
        return head.spec

    def clear(self) -> int:
        cleared = len(self._queue)
        self._queue.clear()
        self._changed()
        return cleared

    def to_json(self) -> list[dict[str, Any]]:
        return [item.to_json() for item in self._queue]

    def __len__(self) -> int:
        return len(self._queue)
