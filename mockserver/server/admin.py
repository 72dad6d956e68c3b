"""The admin API under ``/__admin``: JSON in, JSON out. See :data:`ADMIN_ENDPOINTS`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from mockserver.server.events import notify_state_changed, stream_events
from mockserver.server.http_errors import Handler, json_error
from mockserver.server.journal import JournalEntry
from mockserver.server.request_body import BodyRejected, ClientGone, client_gone, read_body
from mockserver.server.state import (
    CASSETTES,
    CONFIG,
    FAULT_QUEUE,
    JOURNAL,
    STARTED,
    STREAMS,
    STUBS,
    cassettes,
    reset,
)
from mockserver.server.ui import UI_PATH
from mockserver.wire.fault_queue import FaultSpecError
from mockserver.wire.numbers import strict_int
from mockserver.wire.request_filter import FilterError, RequestFilter
from mockserver.wire.stub_list import StubError

__all__ = [
    "ADMIN_ENDPOINTS",
    "MAX_LIMIT",
    "MAX_TIMES",
    "add_admin_routes",
    "add_stub",
    "admin_index",
    "admin_table",
    "clear_faults",
    "clear_requests",
    "clear_stubs",
    "health",
    "list_cassettes",
    "list_faults",
    "list_requests",
    "list_stubs",
    "query_int",
    "queue_fault_handler",
    "reload_cassettes",
    "request_filter_from_query",
    "reset_all",
]

#: The largest ``?limit=`` (the journal never holds more entries than this).
MAX_LIMIT = 1_000_000
#: The most requests one queued fault may answer.
MAX_TIMES = 1_000_000_000
#: (method, path, what it does): the README's admin table.
ADMIN_ENDPOINTS: tuple[tuple[str, str, str], ...] = (
    ("GET", "/__admin/", "This list of endpoints, as JSON, and where the live page is (`ui`)."),
    (
        "GET",
        "/__admin/ui",
        "The live journal page, for a browser (with an admin token: open it as "
        "`/__admin/ui#token=TOKEN`).",
    ),
    (
        "GET",
        "/__admin/events",
        "Server-sent events: every journal entry as it arrives and finishes, journal clears, "
        "state changes; resumes from `Last-Event-ID`.",
    ),
    (
        "GET",
        "/__admin/requests",
        "Every request (the newest 10,000, at most 64 MiB by default): time, method, path, "
        "headers, body, contract verdict, "
        "what served it (`served_by`), seed, fault, the values sent, events and bytes sent (and "
        "when, for a streamed answer), client disconnect, status, ending. Filters: "
        "`?path=/api/gpt/`, `?input=TEXT`, `?model=NAME`, `?header=Name:value` (repeatable); "
        "`?before=NUMBER` only older entries; `?limit=N` keeps the last N.",
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
    ("GET", "/__admin/stubs", "The stubs, in the order they are tried, with their use counts."),
    (
        "POST",
        "/__admin/stubs",
        'Add a stub, tried in order before the cassettes: `{"tokens": [...]` or `"text": "..."`, '
        '`"status": 200, "headers": {...}, "fault": "NAME;k=v", "when": {body fields}, '
        '"times": N}` (no `times`: unlimited). 201 with the stub; 400 naming the problem.',
    ),
    ("DELETE", "/__admin/stubs", 'Remove every stub. Answers `{"cleared": n}`.'),
    (
        "POST",
        "/__admin/reset",
        'Clear the journal, the queued faults and the stubs. Answers `{"cleared": {...}}`.',
    ),
    ("GET", "/__admin/cassettes", "Loaded cassettes (interactions, provenance) and load errors."),
    ("POST", "/__admin/cassettes/reload", "Reload the cassettes from disk; answers as GET."),
    (
        "GET",
        "/__admin/health",
        '`{"status": "ok", ...}` with mode, uptime, counts of requests, cassettes, '
        "open streams, queued faults and stubs, the journal's use and bounds (entries, "
        "bytes), and `generated_bytes`: the bytes of generated fault answers being sent and "
        "their bound.",
    ),
)
_REQUEST_QUERY = ("path", "limit", "before", "input", "model", "header")


def request_filter_from_query(query: Any) -> RequestFilter:
    """``?input=``, ``?model=`` and repeated ``?header=Name:value`` as a filter."""
    fields = {name: query[name] for name in ("input", "model") if name in query}
    headers = []
    for text in query.getall("header", []):
        name, colon, value = text.partition(":")
        if not colon or not name.strip():
            raise FilterError(f"header: expected Name:value, got {text!r}")
        headers.append((name.strip(), value.strip()))
    return RequestFilter.build(fields, headers)


async def list_requests(request: web.Request) -> web.Response:
    unknown = sorted(set(request.query) - set(_REQUEST_QUERY))
    if unknown:
        return json_error(
            400, f"unknown query parameters {unknown}; expected {', '.join(_REQUEST_QUERY)}"
        )
    path = request.query.get("path")
    limit = query_int(request, "limit", 0, MAX_LIMIT)
    if isinstance(limit, web.Response):
        return limit
    try:
        wanted = request_filter_from_query(request.query)
    except FilterError as exc:
        return json_error(400, str(exc))
    before = query_int(request, "before", 0, MAX_LIMIT * 1000)
    if isinstance(before, web.Response):
        return before
    entries = request.app[JOURNAL].entries(path, before)
    if wanted:
        entries = [e for e in entries if _entry_matches(e, wanted)]
    if limit is not None:
        entries = entries[len(entries) - limit :] if limit else []
    return web.json_response(
        {"count": len(entries), "requests": [e.to_json() for e in entries]}, dumps=_dumps
    )


def _entry_matches(entry: JournalEntry, wanted: RequestFilter) -> bool:
    return wanted.matches(entry.body, entry.headers)


def query_int(
    request: web.Request, name: str, minimum: int, maximum: int
) -> int | web.Response | None:
    """Query parameter ``name`` as an int in ``minimum..maximum`` (None when absent), or the
    JSON 400 that names it. Only ASCII digits count (``mockserver.wire.numbers.strict_int``)."""
    text = request.query.get(name)
    if text is None:
        return None
    value = strict_int(text) if len(text) <= len(str(maximum)) else None
    if value is None:
        return json_error(
            400, f"{name}: expected a whole number {minimum}..{maximum}, got {text[:40]!r}"
        )
    if not minimum <= value <= maximum:
        return json_error(400, f"{name}: expected a whole number {minimum}..{maximum}, got {value}")
    return value


async def clear_requests(request: web.Request) -> web.Response:
    return web.json_response({"cleared": request.app[JOURNAL].clear()})


async def list_faults(request: web.Request) -> web.Response:
    from mockserver.wire.faults import FAULTS  # late: see mockserver.wire.fault_queue

    return web.json_response(
        {
            "queue": request.app[FAULT_QUEUE].to_json(),
            "catalogue": [s.to_json() for s in FAULTS.values()],
        }
    )


async def queue_fault_handler(request: web.Request) -> web.Response:
    from mockserver.wire.faults import FAULTS, make_fault_spec, split_fault_spec  # late, as above

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
    if isinstance(times, bool) or not isinstance(times, int) or not 1 <= times <= MAX_TIMES:
        return json_error(400, f"times: expected a whole number 1..{MAX_TIMES}, got {times!r}")
    if not isinstance(params, dict):
        return json_error(400, f"params: expected an object, got {params!r}")
    try:
        fault_name, in_spec = split_fault_spec(name)
        twice = sorted(set(in_spec) & {str(key).strip() for key in params})
        if twice:
            raise FaultSpecError(
                f'fault {fault_name!r}: parameter {twice[0]!r} is given twice (in "fault" '
                'and in "params"); give it once'
            )
        spec = make_fault_spec(fault_name, {**in_spec, **params})
    except FaultSpecError as exc:
        return json_error(400, str(exc), faults=list(FAULTS))
    item = request.app[FAULT_QUEUE].push(spec, times)
    return web.json_response({"queued": item.to_json()}, status=201)


async def clear_faults(request: web.Request) -> web.Response:
    return web.json_response({"cleared": request.app[FAULT_QUEUE].clear()})


async def list_stubs(request: web.Request) -> web.Response:
    return web.json_response({"stubs": request.app[STUBS].to_json()}, dumps=_dumps)


async def add_stub(request: web.Request) -> web.Response:
    from mockserver.wire.stubs import STUB_KEYS, parse_stub  # late: see wire/stub_list.py

    body = await _json_object(request)
    if isinstance(body, web.Response):
        return body
    try:
        stub = request.app[STUBS].add(parse_stub(body))
    except StubError as exc:
        return json_error(400, str(exc), keys=list(STUB_KEYS))
    return web.json_response({"stub": stub.to_json()}, status=201, dumps=_dumps)


async def clear_stubs(request: web.Request) -> web.Response:
    return web.json_response({"cleared": request.app[STUBS].clear()})


async def reset_all(request: web.Request) -> web.Response:
    return web.json_response({"cleared": reset(request.app)})


async def list_cassettes(request: web.Request) -> web.Response:
    return web.json_response(cassettes(request.app).to_json(), dumps=_dumps)


async def reload_cassettes(request: web.Request) -> web.Response:
    library = request.app[CASSETTES]
    library.reload()
    notify_state_changed(request.app)
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
            "journal": app[JOURNAL].usage(),
            "cassettes": len(library.cassettes) if library.loaded else None,
            "cassette_errors": len(library.errors) if library.loaded else None,
            "open_streams": app[STREAMS].count,
            "generated_bytes": app[STREAMS].budget.to_json(),
            "queued_faults": len(app[FAULT_QUEUE]),
            "stubs": len(app[STUBS]),
        }
    )


async def admin_index(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "server": "koala-mock",
            "ui": UI_PATH,
            "endpoints": [
                {"method": method, "path": path, "description": what}
                for method, path, what in ADMIN_ENDPOINTS
            ],
        }
    )


async def _json_object(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        raw = await read_body(request, request.app[CONFIG].max_body_size)
    except BodyRejected as rejected:
        return rejected.response
    except ClientGone:
        return client_gone(None)
    try:
        body = json.loads(raw, object_pairs_hook=_unique_keys) if raw.strip() else None
    except DuplicateKey as exc:
        return json_error(400, str(exc))
    except (ValueError, RecursionError) as exc:
        return json_error(400, f"the body is not valid JSON: {exc}")
    if not isinstance(body, dict):
        return json_error(400, "expected a JSON object")
    return body


class DuplicateKey(ValueError):
    """A JSON object that gives one key twice: which value was meant cannot be known (a plain
    ``json.loads`` would keep the last one without a word)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key, value in pairs:
        if key in body:
            shown = key if len(key) <= 80 else key[:80] + "..."  # (a key can be megabytes)
            raise DuplicateKey(
                f"the body gives the key {shown!r} twice in one object; give it once"
            )
        body[key] = value
    return body


def _dumps(value: Any) -> str:
    return json.dumps(value, default=repr)


def add_admin_routes(app: web.Application, wrap: Callable[[Handler], Handler]) -> None:
    """The admin routes, each handler passed through ``wrap`` (the admin guard, JSON errors)."""
    router = app.router
    router.add_get("/__admin/", wrap(admin_index))
    router.add_get("/__admin", wrap(admin_index))
    router.add_get("/__admin/events", wrap(stream_events))
    router.add_get("/__admin/requests", wrap(list_requests))
    router.add_delete("/__admin/requests", wrap(clear_requests))
    router.add_get("/__admin/faults", wrap(list_faults))
    router.add_post("/__admin/faults", wrap(queue_fault_handler))
    router.add_delete("/__admin/faults", wrap(clear_faults))
    router.add_get("/__admin/stubs", wrap(list_stubs))
    router.add_post("/__admin/stubs", wrap(add_stub))
    router.add_delete("/__admin/stubs", wrap(clear_stubs))
    router.add_post("/__admin/reset", wrap(reset_all))
    router.add_get("/__admin/cassettes", wrap(list_cassettes))
    router.add_post("/__admin/cassettes/reload", wrap(reload_cassettes))
    router.add_get("/__admin/health", wrap(health))


def admin_table() -> str:
    """The admin API as a markdown table (for the README)."""
    rows = ["| method | path | what it does |", "|---|---|---|"]
    rows += [f"| {m} | `{p}` | {what} |" for m, p, what in ADMIN_ENDPOINTS]
    return "\n".join(rows)
