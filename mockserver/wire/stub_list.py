"""The stubs a server holds (in the order they were added) and the error of a bad stub: what a
server keeps from its start, without the stub model.

:mod:`mockserver.wire.stubs` (the :class:`~mockserver.wire.stubs.Stub` dataclass and its
parser) is imported only once a stub is added; a server that only replays cassettes starts
without it. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mockserver.errors import MockServerError

if TYPE_CHECKING:
    from mockserver.wire.stubs import Stub

__all__ = ["MAX_STUBS", "StubError", "StubList"]

#: A server holds at most this many stubs (each request may try them all).
MAX_STUBS = 1000


class StubError(MockServerError, ValueError):
    """A stub that cannot be served (the message names the bad key)."""


class StubList:
    """The stubs of one server, in the order they were added."""

    def __init__(self) -> None:
        self._stubs: list[Stub] = []
        self._added = 0

    def add(self, stub: Stub) -> Stub:
        """Append ``stub``; :class:`StubError` when :data:`MAX_STUBS` are held already."""
        if len(self._stubs) >= MAX_STUBS:
            raise StubError(f"this server holds {MAX_STUBS} stubs already; DELETE some first")
        self._added += 1
        stub.number = self._added
        self._stubs.append(stub)
        return stub

    def take(self, body: Any, headers: Mapping[str, str]) -> Stub | None:
        """The first stub matching the request (and one use of it), or None."""
        for stub in self._stubs:
            if stub.when.matches(body, headers):
                stub.used += 1
                if stub.remaining is not None:
                    stub.remaining -= 1
                    if stub.remaining <= 0:
                        self._stubs.remove(stub)
                return stub
        return None

    def clear(self) -> int:
        cleared = len(self._stubs)
        self._stubs.clear()
        self._added = 0
        return cleared

    def to_json(self) -> list[dict[str, Any]]:
        return [stub.to_json() for stub in self._stubs]

    def __len__(self) -> int:
        return len(self._stubs)
