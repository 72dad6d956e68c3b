"""What ``koala-mock serve`` writes on stderr: notes, warnings and log records, as text or JSON.

Text: ``koala-mock: 3 cassettes ...`` / ``koala-mock: warning: ...``. With ``--log-format json``
every stderr line is one JSON object with ``time`` (ISO 8601, UTC), ``level`` and ``message``
(request lines add their fields and the journal's ``request`` number), so a log shipper never
meets a plain line. Anything a client controls is escaped in text lines
(:func:`mockserver.server.access_log.escape`); JSON escapes by itself.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import sys
import time
from typing import Any

from mockserver.wire.log_text import timestamp

__all__ = ["PROG", "AcceptErrorReporter", "Console", "JsonLogFormatter", "log_records_as"]

PROG = "koala-mock"


class Console:
    """Notes and warnings on stderr in the chosen format (``text`` or ``json``)."""

    def __init__(self, log_format: str = "text") -> None:
        self.json = log_format == "json"

    def note(self, message: str, **fields: Any) -> None:
        self._write("info", message, fields)

    def warn(self, message: str, **fields: Any) -> None:
        self._write("warning", message, fields)

    def error(self, message: str, **fields: Any) -> None:
        self._write("error", message, fields)

    def _write(self, level: str, message: str, fields: dict[str, Any]) -> None:
        if self.json:
            record = {"time": timestamp(), "level": level, "message": message, **fields}
            line = json.dumps(record, ensure_ascii=False, default=str)
        elif level == "info":
            line = f"{PROG}: {message}"
        else:
            line = f"{PROG}: {level}: {message}"
        print(line, file=sys.stderr, flush=True)


class JsonLogFormatter(logging.Formatter):
    """A :mod:`logging` record as one JSON line (a traceback goes in ``exception``)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def log_records_as(log_format: str) -> logging.Handler:
    """A stderr handler for the root logger in ``log_format`` (install it, remove it after)."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonLogFormatter())
    else:
        handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
    handler.setLevel(logging.WARNING)
    return handler


#: accept() failures that mean "out of descriptors or memory": asyncio retries a second later.
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class AcceptErrorReporter:
    """A loop exception handler: out of file descriptors is one line a second, no traceback.

    asyncio stops accepting for a second when ``accept()`` fails this way and then tries
    again, so the server serves again as soon as descriptors are free; by default it also
    logs a traceback for every failure. Everything else goes to the default handler.
    """

    def __init__(self, console: Console, interval: float = 1.0) -> None:
        self.console = console
        self.interval = interval
        self._last = -interval
        self.suppressed = 0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        if not (isinstance(error, OSError) and error.errno in _OUT_OF_RESOURCES):
            loop.default_exception_handler(context)
            return
        now = time.monotonic()
        if now - self._last < self.interval:
            self.suppressed += 1
            return
        self._last = now
        more = f" ({self.suppressed} more since the last note)" if self.suppressed else ""
        self.suppressed = 0
        self.console.warn(
            f"cannot accept connections: {error.strerror or error}{more}; retrying every "
            "second (raise the limit with `ulimit -n`, or close idle connections)"
        )
