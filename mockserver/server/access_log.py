"""One log line per request for ``koala-mock serve``, from the request's journal entry.

Text: ``POST /api/gpt/ 200 cassette greeting 12 events 345 bytes 4.1 ms``.
JSON: ``{"method", "path", "status", "served_by", "events", "bytes", "duration_ms", ...}``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

from mockserver.server.http_errors import CURRENT_ENTRY


def install_access_log(app: web.Application, log_format: str) -> type[AbstractAccessLogger]:
    """The runner's ``access_log_class`` for per-request log lines in ``log_format``.

    The logger reads the request's journal entry from
    :data:`mockserver.server.http_errors.CURRENT_ENTRY`, which the route wrappers set; ``app``
    needs no change.
    """
    return _JsonAccessLogger if log_format == "json" else _TextAccessLogger


def describe_source(served_by: dict[str, Any]) -> str:
    """A journal entry's ``served_by`` in a few words: ``cassette greeting``, ``fault stall``."""
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
        "method": request.method,
        "path": request.path,
        "status": response.status,
        "served_by": describe_source(entry.served_by) if entry is not None else "admin",
        "events": entry.events_sent if entry is not None else 0,
        "bytes": entry.bytes_sent if entry is not None else response.body_length,
        "duration_ms": round(seconds * 1000, 3),
    }
    if entry is not None:
        record["ending"] = entry.ending
        record["client_disconnected"] = entry.client_disconnected
        if entry.verdict and entry.verdict.get("warnings"):
            record["warnings"] = len(entry.verdict["warnings"])
    return record


def format_text(record: dict[str, Any]) -> str:
    line = (
        f"{record['method']} {record['path']} {record['status']} {record['served_by']} "
        f"{record['events']} events {record['bytes']} bytes {record['duration_ms']:.1f} ms"
    )
    if record.get("client_disconnected"):
        line += " (client disconnected)"
    if record.get("warnings"):
        line += f" ({record['warnings']} contract warnings)"
    return line


class _TextAccessLogger(AbstractAccessLogger):
    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        print(format_text(log_record(request, response, time)), file=sys.stderr, flush=True)


class _JsonAccessLogger(AbstractAccessLogger):
    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        line = json.dumps(log_record(request, response, time), ensure_ascii=False)
        print(line, file=sys.stderr, flush=True)
