"""One log line, not a traceback, for a request aiohttp could not even parse.

aiohttp answers malformed HTTP (a bad request line, a bad chunk size, a header over 8 KB...)
with a plain-text 400 before any handler runs, and logs it on ``aiohttp.server`` with the full
traceback. For a mock server that is noise: :class:`ParserErrorFilter` rewrites those records
into one line (or drops them when quiet) and lets every other record through unchanged.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from aiohttp.http_exceptions import HttpProcessingError

from mockserver.wire.log_text import escape as escape_text

__all__ = [
    "SERVER_LOGGER",
    "ParserErrorFilter",
    "parser_error_summary",
    "parser_errors_as_one_line",
]

SERVER_LOGGER = "aiohttp.server"
_MAX_DETAIL = 120


def parser_error_summary(error: HttpProcessingError) -> str:
    """The first line of aiohttp's message, without the trailing colon, at most 120 chars."""
    lines = [line.strip() for line in (error.message or "").splitlines() if line.strip()]
    detail = lines[0].rstrip(":") if lines else type(error).__name__
    if len(detail) > _MAX_DETAIL:
        detail = detail[: _MAX_DETAIL - 3] + "..."
    return f"{error.code or 400} {detail}"


class ParserErrorFilter(logging.Filter):
    """Turns aiohttp's HTTP parser errors into one line (``quiet``: drops them)."""

    def __init__(self, prefix: str, quiet: bool = False, escape: bool = True) -> None:
        super().__init__()
        self.prefix = prefix
        self.quiet = quiet
        self.escape = escape

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, HttpProcessingError):
            # The logger is at DEBUG for aiohttp's "bad method" note; other debug notes go.
            return record.levelno >= logging.INFO
        if self.quiet:
            return False
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        where = record.getMessage().replace("Error handling request", "").strip()
        where = f" {where}" if where else ""
        summary = parser_error_summary(error)
        line = f"malformed HTTP request{where}, answered {summary}"
        record.msg = self.prefix + (escape_text(line) if self.escape else line)
        record.args = ()  # no %-formatting of the (client-chosen) text
        record.exc_info = None
        record.exc_text = None
        return True


@contextlib.contextmanager
def parser_errors_as_one_line(
    prefix: str, quiet: bool = False, escape: bool = True
) -> Iterator[ParserErrorFilter]:
    """Install a :class:`ParserErrorFilter` on ``aiohttp.server`` for the ``with`` block."""
    logger = logging.getLogger(SERVER_LOGGER)
    log_filter = ParserErrorFilter(prefix, quiet, escape)
    logger.addFilter(log_filter)
    # aiohttp logs a bad method on a connection's first request at DEBUG only (a TLS hello, a
    # port scan); the filter raises those to warnings and drops every other debug record.
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        yield log_filter
    finally:
        logger.setLevel(level)
        logger.removeFilter(log_filter)
