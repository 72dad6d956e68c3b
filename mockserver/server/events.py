"""``GET /__admin/events``: the journal and the server's state, live, as server-sent events.

Every event's data is one JSON object on one line with a ``type``, which is also the SSE
``event`` name:

- ``hello`` (first, on every connection): ``run`` (this server process), ``generation`` (bumped by
  each journal clear), ``resumed`` and ``state``. ``resumed`` is true when the client's
  ``Last-Event-ID`` came from this run and generation: the entries it missed follow. When false,
  the client's copy of the journal is stale (first connection, server restarted, journal cleared):
  it should drop it and read ``GET /__admin/requests`` again.
- ``entry``: a journal entry (the JSON of ``GET /__admin/requests``), when it arrives and again
  when it finishes (the same ``number``: replace the earlier copy).
- ``cleared``: the journal was cleared.
- ``state``: the server's state changed (queued faults, cassettes, counts).
- ``reset``: this client fell too far behind; read the journal again.

The ``id`` of each event is an opaque cursor; sent back as ``Last-Event-ID`` on reconnection, the
server resends every entry the client may have missed (possibly a few it already has). A
``retry`` line tells clients how soon to reconnect; a comment every few seconds keeps proxies
from timing the stream out.

With no client connected the journal does no extra work: the hub watches it only while someone
listens, and each client's updates are serialised in its own task, never in the request's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from typing import Any

from aiohttp import web

from mockserver.server.journal import Journal, JournalEntry
from mockserver.server.state import CASSETTES, CONFIG, FAULT_QUEUE, JOURNAL, STREAMS

__all__ = [
    "EVENTS",
    "KEEPALIVE_SECONDS",
    "MAX_PENDING",
    "RETRY_MILLISECONDS",
    "EventHub",
    "Subscriber",
    "add_event_hub",
    "encode_sse",
    "notify_state_changed",
    "parse_event_id",
    "server_state",
    "stream_events",
]

#: Milliseconds a client should wait before reconnecting.
RETRY_MILLISECONDS = 1000
#: Seconds between keep-alive comments.
KEEPALIVE_SECONDS = 15.0
#: A client further behind than this many entries gets a ``reset`` instead of every one.
MAX_PENDING = 2000


class Subscriber:
    """One connected client: the entries changed since its last write, coalesced."""

    def __init__(self) -> None:
        self.pending: dict[int, JournalEntry] = {}
        self.cleared = False
        self.overflowed = False
        self.state_changed = False
        self.closed = False
        self.wake = asyncio.Event()


class EventHub:
    """The connected clients of one app; the journal's watcher while there is any."""

    def __init__(self, journal: Journal) -> None:
        #: Identifies this server process in event ids (entry numbers restart with the server).
        self.run = secrets.token_hex(6)
        self._journal = journal
        self._subscribers: set[Subscriber] = set()

    def subscribe(self) -> Subscriber:
        subscriber = Subscriber()
        self._subscribers.add(subscriber)
        if len(self._subscribers) == 1:
            self._journal.watch(self)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)
        if not self._subscribers:
            self._journal.watch(None)

    # -- JournalWatcher
    def entry_changed(self, entry: JournalEntry) -> None:
        for subscriber in self._subscribers:
            if subscriber.overflowed:
                continue
            subscriber.pending[entry.number] = entry
            if len(subscriber.pending) > MAX_PENDING:
                subscriber.pending.clear()
                subscriber.overflowed = True
            subscriber.wake.set()

    def journal_cleared(self) -> None:
        for subscriber in self._subscribers:
            subscriber.pending.clear()
            subscriber.overflowed = False
            subscriber.cleared = True
            subscriber.wake.set()

    def state_changed(self) -> None:
        """The fault queue or the cassettes changed: tell every client."""
        for subscriber in self._subscribers:
            subscriber.state_changed = True
            subscriber.wake.set()

    def close_all(self) -> None:
        """End every stream (server shutdown)."""
        for subscriber in self._subscribers:
            subscriber.closed = True
            subscriber.wake.set()


EVENTS = web.AppKey("koala_mock_events", EventHub)


def notify_state_changed(app: web.Application) -> None:
    """Tell the connected clients that the server's state changed."""
    hub = app.get(EVENTS)
    if hub is not None:
        hub.state_changed()


def server_state(app: web.Application) -> dict[str, Any]:
    """What the page shows in its header: mode, journal size, cassettes, queued faults."""
    journal = app[JOURNAL]
    library = app[CASSETTES]
    return {
        "mode": app[CONFIG].mode,
        "strict": app[CONFIG].strict,
        "requests": journal.total,
        "journal_size": len(journal),
        "journal_capacity": journal.capacity,
        "cassettes": len(library.cassettes) if library.loaded else None,
        "cassette_errors": len(library.errors) if library.loaded else None,
        "queued_faults": app[FAULT_QUEUE].to_json(),
        "open_streams": app[STREAMS].count,
    }


def encode_sse(kind: str, data: dict[str, Any], event_id: str | None = None) -> bytes:
    """One event: ``event``, optional ``id``, one ``data`` line of JSON (``type`` = ``kind``)."""
    text = json.dumps({"type": kind, **data}, default=repr, separators=(",", ":"))
    head = f"event: {kind}\n" + (f"id: {event_id}\n" if event_id is not None else "")
    return f"{head}data: {text}\n\n".encode()


class _Cursor:
    """Where a client would resume: the lowest entry it saw unfinished, else the next one.

    Sent as the event id ``RUN.GENERATION.NUMBER``; :func:`parse_event_id` reads it back.
    """

    def __init__(self, run: str, generation: int, next_number: int) -> None:
        self.run = run
        self.generation = generation
        self.next_number = next_number
        self.unfinished: set[int] = set()

    def saw(self, entry: JournalEntry) -> None:
        if entry.ending is None:
            self.unfinished.add(entry.number)
        else:
            self.unfinished.discard(entry.number)
        self.next_number = max(self.next_number, entry.number + 1)

    def restart(self, generation: int) -> None:
        self.generation = generation
        self.next_number = 1
        self.unfinished.clear()

    @property
    def event_id(self) -> str:
        resume = min(self.unfinished) if self.unfinished else self.next_number
        return f"{self.run}.{self.generation}.{resume}"


def parse_event_id(text: str | None) -> tuple[str, int, int] | None:
    """``RUN.GENERATION.NUMBER`` -> its parts; None when absent or not of that form."""
    if not text:
        return None
    parts = text.strip().split(".")
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() for p in parts[1:]):
        return None
    if len(parts[1]) > 12 or len(parts[2]) > 12:
        return None
    return parts[0], int(parts[1]), int(parts[2])


async def stream_events(request: web.Request) -> web.StreamResponse:
    app = request.app
    hub = app[EVENTS]
    journal = app[JOURNAL]
    subscriber = hub.subscribe()  # first: nothing that happens from here on is missed
    try:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        cursor = _Cursor(hub.run, journal.generation, journal.total + 1)
        given = parse_event_id(request.headers.get("Last-Event-ID"))
        resumed = given is not None and given[:2] == (hub.run, journal.generation)
        missed = journal.since(given[2]) if resumed and given is not None else []
        for entry in missed:
            subscriber.pending.pop(entry.number, None)
        hello = {
            "run": hub.run,
            "generation": journal.generation,
            "resumed": resumed,
            "state": server_state(app),
        }
        out = [f"retry: {RETRY_MILLISECONDS}\n\n".encode(), encode_sse("hello", hello, None)]
        out += _entry_events(missed, cursor)
        await response.write(b"".join(out))
        await _follow(request, response, subscriber, cursor)
    except ConnectionError:
        pass  # the client went away
    finally:
        hub.unsubscribe(subscriber)
    return response


def _entry_events(entries: list[JournalEntry], cursor: _Cursor) -> list[bytes]:
    out = []
    for entry in entries:
        cursor.saw(entry)
        out.append(encode_sse("entry", {"entry": entry.to_json()}, cursor.event_id))
    return out


async def _follow(
    request: web.Request,
    response: web.StreamResponse,
    subscriber: Subscriber,
    cursor: _Cursor,
) -> None:
    app = request.app
    journal = app[JOURNAL]
    streams = app[STREAMS]
    while not subscriber.closed and not streams.closing:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(subscriber.wake.wait(), KEEPALIVE_SECONDS)
        subscriber.wake.clear()
        if subscriber.closed:
            break
        out: list[bytes] = []
        if subscriber.cleared:
            subscriber.cleared = False
            cursor.restart(journal.generation)
            out.append(encode_sse("cleared", {"generation": journal.generation}, cursor.event_id))
        if subscriber.overflowed:
            subscriber.overflowed = False
            cursor.next_number = journal.total + 1
            cursor.unfinished.clear()
            out.append(encode_sse("reset", {"why": "too far behind"}, cursor.event_id))
        entries = list(subscriber.pending.values())
        subscriber.pending.clear()
        out += _entry_events(entries, cursor)
        if subscriber.state_changed or entries or out:
            subscriber.state_changed = False
            out.append(encode_sse("state", {"state": server_state(app)}, cursor.event_id))
        await response.write(b"".join(out) if out else b": keep-alive\n\n")


def add_event_hub(app: web.Application) -> None:
    """Give ``app`` its hub and end the event streams on shutdown."""
    hub = EventHub(app[JOURNAL])
    app[EVENTS] = hub
    app[FAULT_QUEUE].on_change = hub.state_changed

    async def close_streams(app: web.Application) -> None:
        app[EVENTS].close_all()

    app.on_shutdown.append(close_streams)
