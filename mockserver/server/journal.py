"""The journal: every request the server saw, what it decided and what it sent.

Bounded twice, so a long-running server does not grow without limit: the newest
:data:`DEFAULT_CAPACITY` entries, and at most ``max_bytes`` stored bytes
(:data:`~mockserver.config.DEFAULT_JOURNAL_MAX_BYTES` by default); the oldest entries go first.
An entry's stored bytes (:func:`stored_size`) are counted when it finishes: its request body as
kept, its headers, what it keeps of the response (the values, the event times) and
:data:`ENTRY_OVERHEAD` for the rest of its fields. The admin API serves it as JSON; tests read
it through :class:`Journal`.
"""

from __future__ import annotations

import json
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Generic, Literal, Protocol, TypeVar

from koala.request import API_PATH
from koala.testing import scrub_header_value
from mockserver.config import DEFAULT_JOURNAL_MAX_BYTES
from mockserver.wire.contract import Verdict
from mockserver.wire.plan import MAX_STORED_BYTES, ServedBy

__all__ = [
    "DEFAULT_CAPACITY",
    "ENTRY_OVERHEAD",
    "MAX_EVENT_TIMES",
    "Ending",
    "Journal",
    "JournalEntry",
    "JournalWatcher",
    "decode_json_body",
    "header_bytes",
    "header_dict",
    "masked_header_dict",
    "raw_header_bytes",
    "stored_size",
]

T = TypeVar("T")
DEFAULT_CAPACITY = 10_000
#: The bytes every entry is counted for besides its body, headers and response values.
ENTRY_OVERHEAD = 256
_API_PATH_STEM = API_PATH.rstrip("/")

#: How a response ended, as ``JournalEntry.ending`` says (None while it is being sent):
#:
#: - ``eof``: complete: the whole body was sent and the response ended normally;
#: - ``close``: the connection was closed (FIN) before the body was complete (``truncate``);
#: - ``abort``: the connection was reset (RST) mid-stream (``disconnect``);
#: - ``stall``: nothing more was sent for a while, then the connection was closed (``stall``);
#: - ``shutdown``: the server stopped while the stream was open (or waiting to start);
#: - ``client_disconnected``: the client went away before the end;
#: - ``server_bug``: the server failed mid-stream (logged) and cut the connection;
#: - ``upstream_unreachable``: recording proxy: the upstream did not answer (a 502 was sent);
#: - ``upstream_broke_off``: recording proxy: the upstream's answer broke off.
Ending = Literal[
    "eof",
    "close",
    "abort",
    "stall",
    "shutdown",
    "client_disconnected",
    "server_bug",
    "upstream_unreachable",
    "upstream_broke_off",
]
#: A streamed answer keeps the send time of at most this many events (the rest are counted).
MAX_EVENT_TIMES = 10_000


class JournalWatcher(Protocol):
    """Told about every new and every finished entry, and about :meth:`Journal.clear`.

    At most one per journal (the event hub of ``GET /__admin/events``); set only while someone
    listens, so with nobody listening the journal does no more work than without it.
    """

    def entry_changed(self, entry: JournalEntry) -> None: ...

    def journal_cleared(self) -> None: ...


class _BodyPart(Generic[T]):
    """``raw_body`` or ``body`` of a :class:`JournalEntry`, kept in the field ``name``: reading
    it first decodes a JSON body kept as bytes (:meth:`JournalEntry.keep_json_body`); setting it
    ends the wait for that decoding."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, entry: JournalEntry, owner: type | None = None) -> T:
        if entry._body_pending:
            entry._decode_body()
        value: T = getattr(entry, self.name)
        return value

    def __set__(self, entry: JournalEntry, value: T) -> None:
        setattr(entry, self.name, value)
        entry._body_pending = False


class JournalEntry:
    """One request. Fields about the response are filled in while it is sent.

    A plain class with ``__slots__`` (a journal keeps up to 10,000 entries) and the constructor
    below, which gives every field its default; not a dataclass, which costs ``serve`` several
    million instructions to define at import.
    """

    __slots__ = (
        "_body",
        "_body_pending",
        "_duration",
        "_event_ends",
        "_event_times",
        "_journal",
        "_raw_body",
        "_watcher",
        "body_size",
        "bytes_sent",
        "client_disconnected",
        "contract_verdict",
        "ending",
        "events_sent",
        "fault",
        "header_bytes",
        "headers",
        "method",
        "number",
        "omitted_values",
        "path",
        "seed",
        "served_by",
        "status",
        "stored_bytes",
        "time",
        "values",
    )

    number: int
    time: float
    method: str
    path: str
    #: The request headers as received (case-insensitive for aiohttp requests).
    headers: Mapping[str, str]
    #: See :attr:`raw_body` and :attr:`body`.
    _raw_body: bytes
    _body: Any
    body_size: int
    #: True while ``_raw_body`` holds a JSON body not decoded yet (see :meth:`keep_json_body`).
    _body_pending: bool
    #: The contract's verdict (None: not checked); :attr:`verdict` is its JSON.
    contract_verdict: Verdict | None
    #: What answered (see :class:`~mockserver.wire.plan.ServedBy`); None until it is answered
    #: (``{}`` in :meth:`to_json`).
    served_by: ServedBy | None
    status: int | None
    seed: int | None
    fault: str | None
    #: The values a correct client yields from the response (None: not an answer stream).
    values: list[Any] | None
    #: How many values an answer too large to keep had (``values`` is None then).
    omitted_values: int
    events_sent: int
    bytes_sent: int
    client_disconnected: bool
    #: How the response ended (see :data:`Ending` for every value); None while it is sent.
    ending: Ending | None
    #: Seconds from the request to the end of its answer, unrounded (see :attr:`duration`).
    _duration: float | None
    #: Seconds from the headers to each event's last write, for a streamed answer, unrounded
    #: (see :attr:`event_times`; None: the answer went out in one write, or is no event stream).
    _event_times: list[float] | None
    _event_ends: Sequence[int]
    _watcher: JournalWatcher | None
    #: The request head's header bytes (names and values), counted in :func:`stored_size`.
    header_bytes: int
    #: What :func:`stored_size` said when the entry finished (0: not counted yet).
    stored_bytes: int
    #: The journal that holds the entry and counts its bytes (None once it is dropped).
    _journal: Journal | None

    def __init__(
        self,
        number: int,
        time: float,
        method: str,
        path: str,
        headers: Mapping[str, str],
        header_bytes: int = 0,
        journal: Journal | None = None,
    ) -> None:
        # Written out rather than generated: a dataclass __init__ of every field, most of them
        # by keyword default, cost twice as much, once per request. Every field is set here
        # (a test holds this list to the declared fields and each one's default).
        self.number = number
        self.time = time
        self.method = method
        self.path = path
        self.headers = headers
        self._raw_body = b""
        self._body = None
        self.body_size = 0
        self._body_pending = False
        self.contract_verdict = None
        self.served_by = None
        self.status = None
        self.seed = None
        self.fault = None
        self.values = None
        self.omitted_values = 0
        self.events_sent = 0
        self.bytes_sent = 0
        self.client_disconnected = False
        self.ending = None
        self._duration = None
        self._event_times = None
        self._event_ends = ()
        self._watcher = None
        self.header_bytes = header_bytes
        self.stored_bytes = 0
        self._journal = journal

    @property
    def duration(self) -> float | None:
        """Seconds from the request to the end of its answer, to the microsecond (None while it
        is being answered)."""
        return round(self._duration, 6) if self._duration is not None else None

    @property
    def event_times(self) -> list[float] | None:
        """When each event left, in seconds since the answer's first write, to the microsecond
        (rounded when read: a timed write costs less without it); None: no event was streamed."""
        times = self._event_times
        return [round(at, 6) for at in times] if times is not None else None

    @property
    def shape(self) -> str | None:
        """The request shape the contract matched: ``browser`` or ``keyed`` (None: unchecked)."""
        return self.contract_verdict.shape if self.contract_verdict is not None else None

    #: The body's bytes when it is not JSON (a JSON body is kept decoded, in ``body``).
    raw_body = _BodyPart[bytes]("_raw_body")
    #: The body's JSON value (None: no body, not JSON, or too large to keep).
    body = _BodyPart[Any]("_body")

    def keep_json_body(self, raw: bytes) -> None:
        """Keep ``raw``, a body known to be JSON, as bytes: :attr:`body` decodes it when read."""
        self._raw_body = raw
        self._body = None
        self._body_pending = True

    def _decode_body(self) -> None:
        self._body_pending = False
        self._body = decode_json_body(self._raw_body)
        if self._body is not None:
            self._raw_body = b""

    @property
    def verdict(self) -> dict[str, Any] | None:
        """The contract's verdict as JSON (see :meth:`mockserver.wire.contract.Verdict.to_json`)."""
        return self.contract_verdict.to_json() if self.contract_verdict is not None else None

    def expect_events(self, event_ends: Sequence[int]) -> None:
        self._event_ends = event_ends

    def sent(self, total_bytes: int) -> None:
        """Record that the first ``total_bytes`` bytes of the body are written."""
        self.bytes_sent = total_bytes
        self.events_sent = bisect_right(self._event_ends, total_bytes)

    def sent_streamed(self, total_bytes: int, since_first_write: float) -> None:
        """:meth:`sent`, for a streamed answer: also note when each completed event left.

        Called once per timed write, so it does :meth:`sent`'s work inline and appends one
        time for the usual write that completes one event (no list built per write)."""
        self.bytes_sent = total_bytes
        events = bisect_right(self._event_ends, total_bytes)
        completed = events - self.events_sent
        if completed <= 0:
            return
        self.events_sent = events
        times = self._event_times
        if times is None:
            times = self._event_times = []
        room = MAX_EVENT_TIMES - len(times)
        if room > 0:
            if completed == 1:
                times.append(since_first_write)
            else:
                times.extend([since_first_write] * min(completed, room))

    def finish(self, ending: Ending) -> None:
        self.ending = ending
        self._duration = time.time() - self.time
        if self._journal is not None and not self.stored_bytes:
            self._journal._count_bytes(self)
        if self._watcher is not None:
            self._watcher.entry_changed(self)

    def finish_disconnected(self) -> None:
        """Finish the entry of a client that went away before the end of its answer."""
        self.client_disconnected = True
        self.finish("client_disconnected")

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "time": self.time,
            "method": self.method,
            "path": self.path,
            "headers": masked_header_dict(self.headers),
            "body": _storable(self.body, self.raw_body, self.body_size),
            "shape": self.shape,
            "verdict": self.verdict,
            "served_by": self.served_by or {},
            "status": self.status,
            "seed": self.seed,
            "fault": self.fault,
            "values": _storable_values(self.values, self.omitted_values, self.bytes_sent),
            "events_sent": self.events_sent,
            "bytes_sent": self.bytes_sent,
            "client_disconnected": self.client_disconnected,
            "ending": self.ending,
            "duration": self.duration,
            "event_times": self.event_times,
        }


def stored_size(entry: JournalEntry) -> int:
    """About how many bytes ``entry`` keeps: cheap (no walk over values or JSON), and never less
    than the body, headers and response values it holds."""
    size = ENTRY_OVERHEAD + entry.header_bytes + len(entry._raw_body)
    if entry._body is not None:  # decoded already: count the bytes it was decoded from
        size += entry.body_size
    if entry.values is not None:  # the values are no larger than the body that carried them
        size += entry.bytes_sent
    if entry._event_times is not None:
        size += 32 * len(entry._event_times)  # a pointer and a float object each
    return size


def header_bytes(headers: Mapping[str, str]) -> int:
    """The bytes of the header names and values."""
    return sum([len(name) + len(value) for name, value in headers.items()])


def raw_header_bytes(raw_headers: Sequence[tuple[bytes, bytes]]) -> int:
    """:func:`header_bytes` of a request head's raw pairs (cheaper than decoded headers)."""
    return sum([len(name) + len(value) for name, value in raw_headers])


def _storable(body: Any, raw: bytes, size: int) -> Any:
    size = max(size, len(raw))
    if size > MAX_STORED_BYTES:
        return {"omitted": f"{size} bytes (more than {MAX_STORED_BYTES})"}
    if body is not None:
        return body
    return raw.decode("utf-8", errors="replace") if raw else None


def _storable_values(values: list[Any] | None, omitted: int, body_size: int) -> Any:
    if omitted:
        return {"omitted": f"{omitted} values in {body_size} bytes (more than {MAX_STORED_BYTES})"}
    if values is None:
        return None
    size = sum(len(v) if isinstance(v, str) else 8 for v in values)
    if size > MAX_STORED_BYTES:
        return {"omitted": f"{len(values)} values, about {size} characters"}
    return values


def header_dict(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers as a plain dict; repeated headers are joined with ``", "``."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def masked_header_dict(headers: Mapping[str, str]) -> dict[str, str]:
    """:func:`header_dict` with credentials masked (``Authorization: Bearer SCRUBBED``, cookie
    values, any header whose name looks like a token, key, secret or session): the journal is
    served over HTTP, so it must not hand them out. The Visitor-ID is kept (it is no secret here,
    and tests look at it)."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        if name.lower() != "visitor-id":
            value = scrub_header_value(name, value)
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def decode_json_body(raw: bytes) -> Any:
    """The body as JSON when it is JSON, else None (the journal then shows the text)."""
    if not raw or len(raw) > MAX_STORED_BYTES:
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


class Journal:
    """The newest requests, oldest first: at most ``capacity`` of them, holding at most
    ``max_bytes`` stored bytes (see :func:`stored_size`; entries still being answered are
    counted when they finish)."""

    def __init__(
        self, capacity: int = DEFAULT_CAPACITY, max_bytes: int = DEFAULT_JOURNAL_MAX_BYTES
    ) -> None:
        if capacity < 1 or max_bytes < 1:
            raise ValueError(f"journal bounds must be positive, got {capacity}, {max_bytes}")
        self._capacity = capacity
        self.max_bytes = max_bytes
        self._entries: deque[JournalEntry] = deque()
        self._bytes = 0
        self._count = 0
        #: Bumped by :meth:`clear`: entry numbers start again at 1, so a number alone is ambiguous.
        self.generation = 0
        self._watcher: JournalWatcher | None = None

    @property
    def capacity(self) -> int:
        """The most entries kept."""
        return self._capacity

    @property
    def stored_bytes(self) -> int:
        """The stored bytes of the entries kept (those that have finished)."""
        return self._bytes

    def usage(self) -> dict[str, int]:
        """Both bounds and what is in use, as ``/__admin/health`` shows them."""
        return {
            "entries": len(self._entries),
            "max_entries": self._capacity,
            "bytes": self._bytes,
            "max_bytes": self.max_bytes,
        }

    def _count_bytes(self, entry: JournalEntry) -> None:
        """Count a finished entry's bytes; drop the oldest entries while over ``max_bytes``."""
        entry.stored_bytes = stored_size(entry)
        self._bytes += entry.stored_bytes
        entries = self._entries
        while self._bytes > self.max_bytes and entries:
            self._drop(entries.popleft())

    def _drop(self, entry: JournalEntry) -> None:
        entry._journal = None
        self._bytes -= entry.stored_bytes

    def watch(self, watcher: JournalWatcher | None) -> None:
        """Tell ``watcher`` about new, finished and cleared entries from now on (None: stop)."""
        self._watcher = watcher
        for entry in self._entries:  # the requests in progress will say when they finish
            if entry.ending is None:
                entry._watcher = watcher

    def start(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        raw_body: bytes = b"",
        header_size: int | None = None,
    ) -> JournalEntry:
        """A new entry for a request that just arrived; ``header_size``: the headers' bytes
        when the caller knows them (else they are counted here)."""
        self._count += 1
        entry = JournalEntry(
            self._count,
            time.time(),
            method,
            path,
            headers,
            header_bytes(headers) if header_size is None else header_size,
            self,
        )
        if raw_body:
            entry._raw_body = raw_body
            entry.body_size = len(raw_body)
        entries = self._entries
        if len(entries) >= self._capacity:
            self._drop(entries.popleft())
        entries.append(entry)
        if self._watcher is not None:
            entry._watcher = self._watcher
            self._watcher.entry_changed(entry)
        return entry

    @property
    def total(self) -> int:
        """How many requests were journaled since the last :meth:`clear` (dropped ones too)."""
        return self._count

    def entries(self, path: str | None = None, before: int | None = None) -> list[JournalEntry]:
        """The entries, oldest first; only those for ``path`` and numbered below ``before``."""
        return [
            e
            for e in self._entries
            if (path is None or e.path == path) and (before is None or e.number < before)
        ]

    def since(self, number: int) -> list[JournalEntry]:
        """The entries numbered ``number`` or later, oldest first."""
        newer: list[JournalEntry] = []
        for entry in reversed(self._entries):
            if entry.number < number:
                break
            newer.append(entry)
        newer.reverse()
        return newer

    def api_requests(self) -> list[JournalEntry]:
        """The entries for the chat API (``/api/gpt/`` and ``/api/gpt``)."""
        return [e for e in self._entries if e.path.rstrip("/") == _API_PATH_STEM]

    def last(self) -> JournalEntry:
        """The newest entry; LookupError when the journal is empty."""
        if not self._entries:
            raise LookupError("the journal is empty: the server has seen no request")
        return self._entries[-1]

    def payloads(self) -> list[Any]:
        """The JSON bodies of the chat API requests, oldest first."""
        return [e.body for e in self.api_requests()]

    def clear(self) -> int:
        """Forget every entry; returns how many there were."""
        cleared = len(self._entries)
        for entry in self._entries:
            entry._journal = None
        self._entries.clear()
        self._bytes = 0
        self._count = 0
        self.generation += 1
        if self._watcher is not None:
            self._watcher.journal_cleared()
        return cleared

    def to_json(self) -> list[dict[str, Any]]:
        return [e.to_json() for e in self._entries]

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[JournalEntry]:
        return iter(list(self._entries))
