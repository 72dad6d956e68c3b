"""One log line per request for ``koala-mock serve``, from the request's journal entry.

Text: ``POST /api/gpt/ 200 cassette greeting 12 events 345 bytes 4.1 ms``.
JSON: ``{"method", "path", "status", "served_by", "events", "bytes", "duration_ms", ...}``.

Lines are buffered (:class:`LineBuffer`) and written to stderr together, at most
:data:`FLUSH_INTERVAL` seconds after the first of them, when :data:`FLUSH_LINES` are waiting,
and when the app shuts down: one write per request cost about a fifth of a replay's CPU.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from aiohttp import HttpVersion10, web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

from mockserver.server.http_errors import CURRENT_ENTRY
from mockserver.wire.log_text import escape, timestamp

if TYPE_CHECKING:
    from mockserver.server.journal import JournalEntry

__all__ = [
    "ACCESS_LOG_BUFFER",
    "FLUSH_INTERVAL",
    "FLUSH_LINES",
    "LineBuffer",
    "describe_source",
    "flush_access_log",
    "format_text",
    "install_access_log",
    "log_record",
]

#: Seconds a log line may wait in the buffer; and how many lines make a write at once.
FLUSH_INTERVAL = 0.1
FLUSH_LINES = 512


class LineBuffer:
    """Log lines on their way to stderr (looked up at each write, so redirections hold)."""

    def __init__(self, interval: float = FLUSH_INTERVAL, max_lines: int = FLUSH_LINES) -> None:
        self.interval = interval
        self.max_lines = max_lines
        self._lines: list[str] = []
        self._timer: asyncio.TimerHandle | None = None

    def add(self, line: str) -> None:
        self._lines.append(line)
        if len(self._lines) >= self.max_lines:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (a direct call): nothing would flush it later
                self.flush()
                return
            self._timer = loop.call_later(self.interval, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._lines:
            text = "\n".join(self._lines) + "\n"
            self._lines.clear()
            sys.stderr.write(text)
            sys.stderr.flush()

    def __len__(self) -> int:
        return len(self._lines)


ACCESS_LOG_BUFFER = web.AppKey("koala_mock_access_log_buffer", LineBuffer)


def install_access_log(
    app: web.Application, log_format: str, buffer: LineBuffer | None = None
) -> type[AbstractAccessLogger]:
    """The runner's ``access_log_class`` for per-request log lines in ``log_format``.

    The logger reads the request's journal entry from
    :data:`mockserver.server.http_errors.CURRENT_ENTRY`, which the route wrappers set. Its lines
    go through ``buffer`` (a new :class:`LineBuffer` by default), kept as
    ``app[ACCESS_LOG_BUFFER]`` and flushed when the app is cleaned up (and by
    :func:`flush_access_log`).
    """
    lines = buffer if buffer is not None else LineBuffer()
    app[ACCESS_LOG_BUFFER] = lines

    async def flush_on_cleanup(app: web.Application) -> None:
        lines.flush()

    app.on_cleanup.append(flush_on_cleanup)
    base = _JsonAccessLogger if log_format == "json" else _TextAccessLogger
    return type(base.__name__, (base,), {"lines": lines})


def flush_access_log(app: web.Application) -> None:
    """Write out the log lines still buffered (none when no access log is installed)."""
    buffer = app.get(ACCESS_LOG_BUFFER)
    if buffer is not None:
        buffer.flush()


def describe_source(served_by: Mapping[str, Any] | None) -> str:
    """A journal entry's ``served_by`` in a few words: ``cassette greeting``, ``fault stall``
    (``-``: not answered yet)."""
    if served_by is None:
        return "-"
    source = str(served_by.get("source") or "-")
    if source == "cassette":
        text = f"cassette {served_by.get('cassette', '?')}"
    elif source == "fault":
        text = f"fault {served_by.get('fault', '?')}"
    else:
        text = source
    if served_by.get("seed") is not None:
        text += f" seed={served_by['seed']}"
    return text


def log_record(request: BaseRequest, response: StreamResponse, seconds: float) -> dict[str, Any]:
    """What a log line says about one request (admin requests have no journal entry)."""
    entry = CURRENT_ENTRY.get()
    record: dict[str, Any] = {
        "request": entry.number if entry is not None else None,
        "method": request.method,
        "path": request.path,
        "status": _status(response, entry),
        "served_by": describe_source(entry.served_by) if entry is not None else "admin",
        "events": entry.events_sent if entry is not None else 0,
        "bytes": entry.bytes_sent if entry is not None else response.body_length,
        "duration_ms": round(seconds * 1000, 3),
    }
    if entry is not None:
        record["ending"] = entry.ending
        record["client_disconnected"] = entry.client_disconnected
        verdict = entry.contract_verdict
        if verdict is not None and verdict.warnings:
            record["warnings"] = len(verdict.warnings)
    return record


def _status(response: StreamResponse, entry: JournalEntry | None) -> int | None:
    """The status the client got: none for a client gone before it was answered (the response
    aiohttp holds then was never sent), as the journal says."""
    if entry is not None and entry.client_disconnected and entry.status is None:
        return None
    return response.status


def format_text(record: dict[str, Any]) -> str:
    """The record as a text line; the path and what served it (which can quote a fault's
    client-given parameters) are escaped, so no request can split or forge a line."""
    line = (
        f"{record['method']} {escape(record['path'])} {record['status'] or '-'} "
        f"{escape(record['served_by'])} "
        f"{record['events']} events {record['bytes']} bytes {record['duration_ms']:.1f} ms"
    )
    if record.get("client_disconnected"):
        line += " (client disconnected)"
    if record.get("warnings"):
        line += f" ({record['warnings']} contract warnings)"
    return line


class _BufferedAccessLogger(AbstractAccessLogger):
    #: Set on the class :func:`install_access_log` makes.
    lines: ClassVar[LineBuffer]


def _unparsed(request: BaseRequest) -> bool:
    """aiohttp's stand-in request for malformed HTTP (its parser-error line says it all)."""
    return request.method == "UNKNOWN" and request.version == HttpVersion10


#: The previous text line's fixed part (all but the duration) and what it was made of, as one
#: tuple (one assignment: two servers in two threads never pair one line's parts with another's
#: prefix). The chat API's lines repeat it (one recording answers many requests), and building
#: it (escaping the path and the source, formatting the numbers) costs more than comparing.
_last_line: tuple[tuple[Any, ...], str] = ((), "")


def text_line(request: BaseRequest, response: StreamResponse, seconds: float) -> str:
    """``format_text(log_record(...))``, built straight from the journal entry (the chat API's
    lines are one per request: no record dict in between)."""
    entry = CURRENT_ENTRY.get()
    if entry is None:
        return format_text(log_record(request, response, seconds))
    served_by = entry.served_by
    status = _status(response, entry)
    parts = (request.method, request.path, status, served_by, entry.events_sent, entry.bytes_sent)
    last_parts, prefix = _last_line
    if parts != last_parts:  # (a served_by is compared by value: equal ones read the same)
        prefix = (
            f"{request.method} {escape(request.path)} {status or '-'} "
            f"{escape(describe_source(served_by))} "
            f"{entry.events_sent} events {entry.bytes_sent} bytes "
        )
        _remember_line(parts, prefix)
    line = f"{prefix}{round(seconds * 1000, 3):.1f} ms"
    if entry.client_disconnected:
        line += " (client disconnected)"
    verdict = entry.contract_verdict
    if verdict is not None and verdict.warnings:
        line += f" ({len(verdict.warnings)} contract warnings)"
    return line


def _remember_line(parts: tuple[Any, ...], prefix: str) -> None:
    global _last_line
    _last_line = (parts, prefix)


class _TextAccessLogger(_BufferedAccessLogger):
    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        if not _unparsed(request):
            self.lines.add(text_line(request, response, time))


class _JsonAccessLogger(_BufferedAccessLogger):
    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        if not _unparsed(request):
            record = {"time": timestamp(), "level": "info", **log_record(request, response, time)}
            self.lines.add(json.dumps(record, ensure_ascii=False))
