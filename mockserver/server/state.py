"""The application's typed state (``web.AppKey``) and the helpers tests and plugins call.

>>> app = create_app(MockConfig(cassette_dir=None))  # doctest: +SKIP
>>> queue_fault(app, "rate_limit", times=2, retry_after=5)  # doctest: +SKIP
>>> journal(app).last().status  # doctest: +SKIP
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from mockserver.cassettes.library import CassetteLibrary
from mockserver.config import MockConfig
from mockserver.server.journal import Journal
from mockserver.server.sender import OpenStreams
from mockserver.wire.faults import FaultSpec, FaultSpecError, make_fault_spec


@dataclass
class QueuedFault:
    spec: FaultSpec
    remaining: int

    def to_json(self) -> dict[str, Any]:
        return {**self.spec.to_json(), "remaining": self.remaining}


class FaultQueue:
    """Faults queued for the next requests, served in order, each for its number of times."""

    def __init__(self) -> None:
        self._queue: deque[QueuedFault] = deque()

    def push(self, spec: FaultSpec, times: int = 1) -> QueuedFault:
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise FaultSpecError(f"times must be a positive integer, got {times!r}")
        item = QueuedFault(spec, times)
        self._queue.append(item)
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
        return cleared

    def to_json(self) -> list[dict[str, Any]]:
        return [item.to_json() for item in self._queue]

    def __len__(self) -> int:
        return len(self._queue)


CONFIG = web.AppKey("koala_mock_config", MockConfig)
JOURNAL = web.AppKey("koala_mock_journal", Journal)
FAULT_QUEUE = web.AppKey("koala_mock_fault_queue", FaultQueue)
CASSETTES = web.AppKey("koala_mock_cassettes", CassetteLibrary)
STREAMS = web.AppKey("koala_mock_streams", OpenStreams)
STARTED = web.AppKey("koala_mock_started", float)


def journal(app: web.Application) -> Journal:
    return app[JOURNAL]


def config(app: web.Application) -> MockConfig:
    return app[CONFIG]


def queue_fault(app: web.Application, name: str, times: int = 1, **params: Any) -> QueuedFault:
    """Serve fault ``name`` (with ``params``) to the next ``times`` API requests.

    Raises :class:`FaultSpecError` (a ValueError) for an unknown fault or a bad parameter.
    """
    return app[FAULT_QUEUE].push(make_fault_spec(name, params), times)


def reset(app: web.Application) -> None:
    """Clear the journal and the fault queue (the cassettes stay loaded)."""
    app[JOURNAL].clear()
    app[FAULT_QUEUE].clear()


def cassettes(app: web.Application) -> CassetteLibrary:
    """The cassette library, loaded from disk on first use."""
    library = app[CASSETTES]
    library.ensure_loaded()
    return library
