"""The admin API under ``/__admin``: JSON in, JSON out. See :data:`ADMIN_ENDPOINTS`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from mockserver.server.http_errors import Handler, json_error
from mockserver.server.state import (
    CASSETTES,
    CONFIG,
    FAULT_QUEUE,
    JOURNAL,
    STARTED,
    STREAMS,
    cassettes,
)
from mockserver.wire.faults import FAULTS, FaultSpecError, make_fault_spec, parse_fault_spec

#: (method, path, what it does): the README's admin table.
ADMIN_ENDPOINTS: tuple[tuple[str, str, str], ...] = (
    (
        "GET",
        "/__admin/requests",
        "Every request (newest 10,000; `?path=/api/gpt/` filters, `?limit=N` keeps the last N): "
        "time, method, path, headers, body, contract verdict, what served it (`served_by`), seed, "
        "fault, the values sent, events and bytes sent, client disconnect, status, ending.",
    ),
    ("DELETE", "/__admin/requests", 'Clear the journal. Answers `{"cleared": n}`.'),
    (
        "GET",
        "/__admin/faults",
        "The queue of pending faults and the catalogue (names, descriptions, parameters).",
    ),
    (
        "POST",
        "/__admin/faults",
        'Queue a fault: `{"fault": "NAME", "times": 1, "params": {...}}` (`fault` may also be '
        '`"NAME;param=value"`). 201 with the queued item; 400 naming the problem.',
    ),
    ("DELETE", "/__admin/faults", 'Clear the queue. Answers `{"cleared": n}`.'),
    ("GET", "/__admin/cassettes", "Loaded cassettes (interactions, provenance) and load errors."),
    ("POST", "/__admin/cassettes/reload", "Reload the cassettes from disk; answers as GET."),
    (
        "GET",
        "/__admin/health",
        '`{"status": "ok", ...}` with mode, uptime, counts of requests, cassettes, '
        "open streams and queued faults.",
    ),
)


async def list_requests(request: web.Request) -> web.Response:
    path = request.query.get("path")
    limit_text = request.query.get("limit")
    entries = request.app[JOURNAL].entries(path)
    if limit_text is not None:
        if not limit_text.isdigit():
            return json_error(400, f"limit: expected a non-negative integer, got {limit_text!r}")
        entries = entries[len(entries) - int(limit_text) :] if int(limit_text) else []
    return web.json_response(
        {"count": len(entries), "requests": [e.to_json() for e in entries]}, dumps=_dumps
    )


async def clear_requests(request: web.Request) -> web.Response:
    return web.json_response({"cleared": request.app[JOURNAL].clear()})


async def list_faults(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "queue": request.app[FAULT_QUEUE].to_json(),
            "catalogue": [s.to_json() for s in FAULTS.values()],
        }
    )


async def queue_fault_handler(request: web.Request) -> web.Response:
    body = await _json_object(request)
    if isinstance(body, web.Response):
        return body
    unknown = sorted(set(body) - {"fault", "times", "params"})
    if unknown:
        return json_error(400, f"unknown keys {unknown}; expected fault, times, params")
    name = body.get("fault")
    times = body.get("times", 1)
    params = body.get("params", {})
    if not isinstance(name, str):
        return json_error(400, f"fault: expected a fault name (string), got {name!r}")
    if isinstance(times, bool) or not isinstance(times, int) or times < 1:
        return json_error(400, f"times: expected a positive integer, got {times!r}")
    if not isinstance(params, dict):
        return json_error(400, f"params: expected an object, got {params!r}")
    try:
        base = parse_fault_spec(name)
        spec = make_fault_spec(base.name, {**_given(base.params, base.name), **params})
    except FaultSpecError as exc:
        return json_error(400, str(exc), faults=list(FAULTS))
    item = request.app[FAULT_QUEUE].push(spec, times)
    return web.json_response({"queued": item.to_json()}, status=201)


def _given(params: dict[str, Any], name: str) -> dict[str, Any]:
    defaults = FAULTS[name].defaults()
    return {k: v for k, v in params.items() if v != defaults[k]}


async def clear_faults(request: web.Request) -> web.Response:
    return web.json_response({"cleared": request.app[FAULT_QUEUE].clear()})


async def list_cassettes(request: web.Request) -> web.Response:
    return web.json_response(cassettes(request.app).to_json(), dumps=_dumps)


async def reload_cassettes(request: web.Request) -> web.Response:
    library = request.app[CASSETTES]
    library.reload()
    return web.json_response({"reloaded": True, **library.to_json()}, dumps=_dumps)


async def health(request: web.Request) -> web.Response:
    app = request.app
    config = app[CONFIG]
    library = app[CASSETTES]
    return web.json_response(
        {
            "status": "ok",
            "server": "koala-mock",
            "mode": config.mode,
            "strict": config.strict,
            "uptime": round(time.time() - app[STARTED], 3),
            "requests": app[JOURNAL].total,
            "cassettes": len(library.cassettes) if library.loaded else None,
            "cassette_errors": len(library.errors) if library.loaded else None,
            "open_streams": app[STREAMS].count,
            "queued_faults": len(app[FAULT_QUEUE]),
        }
    )


async def _json_object(request: web.Request) -> dict[str, Any] | web.Response:
    raw = await request.read()
    try:
        body = json.loads(raw) if raw.strip() else None
    except (ValueError, RecursionError) as exc:
        return json_error(400, f"the body is not valid JSON: {exc}")
    if not isinstance(body, dict):
        return json_error(400, "expected a JSON object")
    return body


def _dumps(value: Any) -> str:
    return json.dumps(value, default=repr)


def add_admin_routes(app: web.Application, wrap: Callable[[Handler], Handler]) -> None:
    """The admin routes, each handler passed through ``wrap`` (the admin guard, JSON errors)."""
    router = app.router
    router.add_get("/__admin/requests", wrap(list_requests))
    router.add_delete("/__admin/requests", wrap(clear_requests))
    router.add_get("/__admin/faults", wrap(list_faults))
    router.add_post("/__admin/faults", wrap(queue_fault_handler))
    router.add_delete("/__admin/faults", wrap(clear_faults))
    router.add_get("/__admin/cassettes", wrap(list_cassettes))
    router.add_post("/__admin/cassettes/reload", wrap(reload_cassettes))
    router.add_get("/__admin/health", wrap(health))


def admin_table() -> str:
    """The admin API as a markdown table (for the README)."""
    rows = ["| method | path | what it does |", "|---|---|---|"]
    rows += [f"| {m} | `{p}` | {what} |" for m, p, what in ADMIN_ENDPOINTS]
    return "\n".join(rows)
