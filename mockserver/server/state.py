"""The application's typed state (``web.AppKey``) and the helpers tests and plugins call.

>>> app = create_app(MockConfig(cassette_dir=None))  # doctest: +SKIP
>>> queue_fault(app, "rate_limit", times=2, retry_after=5)  # doctest: +SKIP
>>> journal(app).last().status  # doctest: +SKIP
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from mockserver.cassettes.library import CassetteLibrary
from mockserver.config import MockConfig
from mockserver.server.journal import Journal
from mockserver.server.sender import OpenStreams
from mockserver.wire.fault_queue import FaultQueue, QueuedFault
from mockserver.wire.stub_list import StubList

__all__ = [
    "CASSETTES",
    "CONFIG",
    "FAULT_QUEUE",
    "JOURNAL",
    "STARTED",
    "STREAMS",
    "STUBS",
    "add_state",
    "cassettes",
    "journal",
    "queue_fault",
    "reset",
]

CONFIG = web.AppKey("koala_mock_config", MockConfig)
JOURNAL = web.AppKey("koala_mock_journal", Journal)
FAULT_QUEUE = web.AppKey("koala_mock_fault_queue", FaultQueue)
CASSETTES = web.AppKey("koala_mock_cassettes", CassetteLibrary)
STREAMS = web.AppKey("koala_mock_streams", OpenStreams)
STARTED = web.AppKey("koala_mock_started", float)
STUBS = web.AppKey("koala_mock_stubs", StubList)


def add_state(app: web.Application, config: MockConfig) -> None:
    """A new app's state: ``config``, an empty journal, fault queue, stub list and set of open
    streams, the cassette library (loaded on first use) and the start time."""
    app[CONFIG] = config
    app[JOURNAL] = Journal(max_bytes=config.journal_max_bytes)
    app[FAULT_QUEUE] = FaultQueue()
    app[CASSETTES] = CassetteLibrary(config.cassette_dir, max_bytes=config.max_cassette_size)
    app[STREAMS] = OpenStreams(config.max_generated_bytes)
    app[STARTED] = time.time()
    app[STUBS] = StubList()


def journal(app: web.Application) -> Journal:
    return app[JOURNAL]


def queue_fault(app: web.Application, name: str, times: int = 1, **params: Any) -> QueuedFault:
    """Serve fault ``name`` (with ``params``) to the next ``times`` API requests.

    Raises :class:`FaultSpecError` (a ValueError) for an unknown fault or a bad parameter.
    """
    from mockserver.wire.faults import make_fault_spec  # late: see mockserver.wire.fault_queue

    return app[FAULT_QUEUE].push(make_fault_spec(name, params), times)


def reset(app: web.Application) -> dict[str, int]:
    """Clear the journal, the fault queue and the stubs (the cassettes stay loaded); returns how
    many of each were cleared."""
    return {
        "requests": app[JOURNAL].clear(),
        "faults": app[FAULT_QUEUE].clear(),
        "stubs": app[STUBS].clear(),
    }


def cassettes(app: web.Application) -> CassetteLibrary:
    """The cassette library, loaded from disk on first use."""
    library = app[CASSETTES]
    library.ensure_loaded()
    return library
