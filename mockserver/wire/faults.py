"""Named fault scenarios: each turns the answer the server would send into a broken one. Pure.

A fault is selected per request with ``X-Koala-Mock-Fault: NAME[;param=value...]``, queued for
the next N requests through the admin API (:class:`FaultQueue`), or set as the server's default.

:data:`FAULTS` is the one registry: each builder is registered with its name, description,
what the provider does with it, and its typed, bounded parameters by the :func:`fault`
decorator just above it. :func:`parse_fault_spec` reads the header's syntax against it;
:func:`fault_table` renders it as the README's markdown table.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from typing import Any

from mockserver.wire.expectations import (
    CONNECTION,
    CONTENT,
    FRAMING,
    STATUS,
    TIMING,
    VALUES,
    Expected,
    Limits,
    Rule,
    always,
    huge_event_rule,
    raises,
    slow_first_byte_rule,
    stall_rule,
)
from mockserver.wire.fault_queue import FaultQueue, FaultSpecError, QueuedFault
from mockserver.wire.http_headers import control_character
from mockserver.wire.huge_event import huge_event_plan
from mockserver.wire.json_answer import json_body, json_plan
from mockserver.wire.numbers import strict_float, strict_int
from mockserver.wire.plan import ResponsePlan, Write, event_stream_plan, html_plan, split_plan
from mockserver.wire.streams import (
    KOALA_FORMAT,
    WireFormat,
    done_event,
    encode_event,
    encode_events,
)

__all__ = [
    "BOT_PAGE",
    "CLOUDFLARE_PAGE",
    "FAULTS",
    "HTML_200_PAGE",
    "MAX_WAIT_SECONDS",
    "Builder",
    "FaultContext",
    "FaultQueue",
    "FaultScenario",
    "FaultSpec",
    "FaultSpecError",
    "Param",
    "QueuedFault",
    "fault",
    "fault_table",
    "known_names",
    "make_fault_spec",
    "parse_fault_spec",
    "split_fault_spec",
]

#: Upper bound of every waiting fault, so that nothing hangs for ever.
MAX_WAIT_SECONDS = 60.0

CLOUDFLARE_PAGE = """<!DOCTYPE html>
<html lang="en-US"><head><title>Just a moment...</title>
<meta http-equiv="Content-Type" content="text/html; charset=UTF-8"></head>
<body><div id="cf-please-wait"><p>Checking if the site connection is secure</p></div>
<p>koala.sh needs to review the security of your connection before proceeding.</p>
<!-- served by the Koala mock server (fault: cloudflare) --></body></html>
"""
BOT_PAGE = """<!DOCTYPE html>
<html><head><title>koala.sh</title></head>
<body><p>Unable to load site</p>
<p>If you are using a VPN, try disabling it.</p>
<!-- served by the Koala mock server (fault: bot_detected) --></body></html>
"""
HTML_200_PAGE = """<!DOCTYPE html>
<html><head><title>Koala</title></head>
<body><p>This is a web page, not an event stream.</p>
<!-- served by the Koala mock server (fault: html_200) --></body></html>
"""


@dataclass(frozen=True)
class Param:
    """One parameter of a fault: its type, default, limits and meaning."""

    name: str
    kind: type
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None

    def convert(self, fault: str, raw: Any) -> Any:
        value = self._typed(fault, raw)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.minimum is not None and value < self.minimum:
                raise FaultSpecError(
                    f"fault {fault!r}: {self.name}={value!r} is below the minimum "
                    f"{_limit(self.minimum)}"
                )
            if self.maximum is not None and value > self.maximum:
                raise FaultSpecError(
                    f"fault {fault!r}: {self.name}={value!r} is above the maximum "
                    f"{_limit(self.maximum)}"
                )
        return value

    def _number(self, raw: Any) -> int | float | None:
        """``raw`` (text: ASCII digits only, :mod:`mockserver.wire.numbers`) as ``kind``."""
        if isinstance(raw, str):
            parse = strict_int if self.kind is int else strict_float
            return parse(raw, negative=True)  # the minimum, not the grammar, refuses negatives
        try:
            return self.kind(raw)  # type: ignore[no-any-return]
        except (TypeError, ValueError, OverflowError):
            return None

    def _typed(self, fault: str, raw: Any) -> Any:
        expected = {bool: "true or false", int: "an integer", float: "a number"}.get(
            self.kind, "a string"
        )
        problem = FaultSpecError(f"fault {fault!r}: {self.name}={raw!r} is not {expected}")
        if self.kind is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("true", "1", "yes", "on"):
                return True
            if text in ("false", "0", "no", "off"):
                return False
            raise problem
        if self.kind in (int, float):
            if isinstance(raw, bool):
                raise problem
            number = self._number(raw)
            if number is None:
                raise problem
            if self.kind is float and number != number:  # NaN
                raise problem
            if self.kind is int and isinstance(raw, float) and raw != number:
                raise problem
            return number
        if not isinstance(raw, str):
            raise problem
        bad = control_character(raw)
        if bad is not None:  # it would end up in a header, which cannot hold it
            raise FaultSpecError(
                f"fault {fault!r}: {self.name} contains the control character {bad!r} "
                "(CR, LF and other control characters cannot be sent in a header value)"
            )
        return raw


@dataclass(frozen=True)
class FaultContext:
    """What a fault works from: the answer the server would have sent, and the parameters."""

    values: Sequence[Any]
    params: Mapping[str, Any]
    #: Seconds between events (the configured latency, scaled).
    delay: float = 0.0


#: What a fault's builder is: the answer and parameters in, the (broken) response plan out.
Builder = Callable[[FaultContext], ResponsePlan]


@dataclass(frozen=True)
class FaultScenario:
    """A named way for the API to misbehave. ``expectation`` says what the Koala provider does."""

    name: str
    description: str
    expectation: str
    build: Builder
    params: tuple[Param, ...] = ()
    #: The scorecard family (:data:`mockserver.wire.expectations.FAMILIES`).
    family: str = FRAMING
    #: What a good client does with it, from the parameters and the client's limits.
    expected: Rule = field(default=always(VALUES))
    #: How the fault breaks a JSON answer (``Accept: application/json``); None: it is about
    #: the event stream only, and a request that wants JSON gets a 400 for it.
    build_json: Builder | None = None

    @property
    def applies_to_json(self) -> bool:
        return self.build_json is not None

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "provider": self.expectation,
            "applies_to_json": self.applies_to_json,
            "params": [
                {
                    "name": p.name,
                    "type": p.kind.__name__,
                    "default": p.default,
                    "help": p.help,
                    "minimum": p.minimum,
                    "maximum": p.maximum,
                }
                for p in self.params
            ],
        }


@dataclass(frozen=True)
class FaultSpec:
    """A scenario with its parameters filled in (defaults for the ones not given)."""

    scenario: FaultScenario
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.scenario.name

    def expected(self, limits: Limits) -> Expected:
        """What a good client with ``limits`` does with this fault."""
        return self.scenario.expected(self.params, limits)

    @property
    def applies_to_json(self) -> bool:
        return self.scenario.applies_to_json

    def plan(self, values: Sequence[Any], delay: float = 0.0, json: bool = False) -> ResponsePlan:
        """The broken answer; ``json``: its JSON form (check :attr:`applies_to_json` first)."""
        build = self.scenario.build_json if json else self.scenario.build
        if build is None:
            raise FaultSpecError(f"fault {self.name!r} is about the event stream only")
        return build(FaultContext(values, self.params, delay))

    def __str__(self) -> str:
        given = [
            f"{k}={_show(v)}" for k, v in self.params.items() if v != self.scenario.defaults()[k]
        ]
        return ";".join([self.name, *given])

    def to_json(self) -> dict[str, Any]:
        return {"fault": self.name, "params": dict(self.params), "spec": str(self)}


def _limit(value: float) -> str:
    """A parameter limit for people: ``67,108,864`` (not ``6.71089e+07``), ``0.5``, ``60``."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:g}" if isinstance(value, float) else str(value)


# ----------------------------------------------------------------------------- the registry

#: Every fault by name, in the order the README and the admin API list them. Add one with
#: :func:`fault` on its builder; nothing else needs to change (header, queue, CLI and admin API
#: all look faults up here).
FAULTS: dict[str, FaultScenario] = {}


def fault(
    name: str,
    description: str,
    expectation: str,
    *params: Param,
    family: str,
    expected: Rule,
    json: Builder | bool = False,
) -> Callable[[Builder], Builder]:
    """Register the decorated builder as fault ``name``, with its description and parameters.

    ``description`` says what the server does (markdown, shown in the README's table and the
    admin API), ``expectation`` what the Koala provider does with it, ``params`` the
    ``;key=value`` parameters the builder reads from ``ctx.params`` (already converted and
    checked against their bounds), ``family`` and ``expected`` what a good client does with it
    (the rule ``koala-mock audit`` scores clients by, see :mod:`mockserver.wire.expectations`)::

        @fault(
            "teapot", "418 with an empty body.", "ResponseStatusError",
            family=STATUS, expected=always(raises("ResponseStatusError")),
        )
        def _teapot(ctx: FaultContext) -> ResponsePlan: ...

    ``json`` says what the fault does to a request that wants the JSON answer: ``True``, the
    same (a status page); a builder, that builder's plan (a cut JSON body, say); ``False``,
    nothing sensible (a stream-only fault: such a request gets a 400 naming it).
    """

    def register(build: Builder) -> Builder:
        if name in FAULTS:
            raise ValueError(f"fault {name!r} is registered twice")
        FAULTS[name] = FaultScenario(
            name,
            description,
            expectation,
            build,
            params,
            family=family,
            expected=expected,
            build_json=build if json is True else (json or None),
        )
        return build

    return register


# ----------------------------------------------------------------------------- shared pieces


def _status_plan(status: int, message: str, *headers: tuple[str, str]) -> ResponsePlan:
    body = json.dumps({"error": message, "mock_fault": True})
    return ResponsePlan(
        status=status,
        headers=(("Content-Type", "application/json; charset=utf-8"), *headers),
        writes=(Write(body.encode()),),
    )


def _cloudflare_headers() -> list[tuple[str, str]]:
    return [("Server", "cloudflare"), ("cf-mitigated", "challenge"), ("CF-RAY", "0-MOCK")]


def _answer(ctx: FaultContext, fmt: WireFormat = KOALA_FORMAT) -> ResponsePlan:
    return event_stream_plan(ctx.values, fmt, ctx.delay)


def _cut_after(ctx: FaultContext, events: int, extra: bytes = b"") -> ResponsePlan:
    """The first ``events`` events (and ``extra`` bytes), values as far as they went."""
    full = _answer(ctx)
    kept = full.writes[:events]
    if extra:
        kept = (*kept, Write(extra, ctx.delay if kept else 0.0))
    return replace(
        full,
        writes=kept,
        event_ends=full.event_ends[:events],
        values=list(ctx.values[:events]),
    )


def _insert_event(ctx: FaultContext, after: int, raw_event: bytes) -> ResponsePlan:
    """The answer with a raw event after the first ``after`` events; values up to it."""
    full = _answer(ctx)
    after = min(after, len(full.writes))
    writes = (
        *full.writes[:after],
        Write(raw_event, ctx.delay if after else 0.0),
        *full.writes[after:],
    )
    return replace(
        full,
        writes=writes,
        event_ends=full.event_ends[:after],
        values=list(ctx.values[:after]),
    )


_EVENTS_BEFORE = "events sent before the fault"
#: The mislabelled body is a complete event stream: reading it is lenient, not wrong.
_LENIENT_CONTENT_TYPE = always(Expected(values=True, error="UnexpectedContentTypeError"))


# ----------------------------------------------------------------------------- JSON forms
# The faults that make sense for a JSON answer break it with these (status pages are the same).


def _json_half(ctx: FaultContext) -> ResponsePlan:
    """The first half of the JSON answer (no value complete)."""
    body = json_body(ctx.values)
    return replace(json_plan(ctx.values), writes=(Write(body[: len(body) // 2]),), values=[])


def _json_truncate(ctx: FaultContext) -> ResponsePlan:
    return replace(_json_half(ctx), ending="close")


def _json_disconnect(ctx: FaultContext) -> ResponsePlan:
    return replace(_json_half(ctx), ending="abort")


def _json_stall(ctx: FaultContext) -> ResponsePlan:
    """The status line and headers, then nothing for ``seconds``, then the connection closes."""
    plan = json_plan(ctx.values)
    return replace(plan, writes=(), values=[], ending="stall", stall_seconds=ctx.params["seconds"])


def _json_slow_first_byte(ctx: FaultContext) -> ResponsePlan:
    return json_plan(ctx.values, wait=ctx.params["delay"])


def _json_malformed(ctx: FaultContext) -> ResponsePlan:
    return replace(json_plan(ctx.values), writes=(Write(b'{"output": "unterminated'),), values=None)


def _json_wrong_content_type(ctx: FaultContext) -> ResponsePlan:
    plan = json_plan(ctx.values)
    return replace(plan, headers=(("Content-Type", ctx.params["content_type"]),), values=None)


def _split(plan: ResponsePlan, ctx: FaultContext) -> ResponsePlan:
    """``plan``'s body in writes of ``size`` bytes, ``delay`` apart (made while sent)."""
    size = ctx.params["size"]
    pieces = -(-len(plan.body) // size)
    # Many tiny writes times a delay could take hours: keep the whole stream within the bound.
    delay = min(ctx.params["delay"], MAX_WAIT_SECONDS / max(1, pieces))
    return split_plan(plan, size, delay)


def _json_split_writes(ctx: FaultContext) -> ResponsePlan:
    return _split(json_plan(ctx.values), ctx)


# ----------------------------------------------------------------------------- the faults


@fault(
    "rate_limit",
    "429 Too Many Requests with a `Retry-After` header.",
    "RateLimitError (retry_after set)",
    Param("retry_after", int, 30, "Retry-After value, seconds", 0, 86400),
    family=STATUS,
    expected=always(raises("RateLimitError")),
    json=True,
)
def _rate_limit(ctx: FaultContext) -> ResponsePlan:
    retry_after = ctx.params["retry_after"]
    return _status_plan(429, "Rate limit reached", ("Retry-After", str(retry_after)))


@fault(
    "payment_required",
    "402 Payment Required.",
    "RateLimitError",
    family=STATUS,
    expected=always(raises("RateLimitError")),
    json=True,
)
def _payment_required(ctx: FaultContext) -> ResponsePlan:
    return _status_plan(402, "Payment required: out of credits")


@fault(
    "cloudflare",
    "403 Cloudflare challenge page (`<title>Just a moment...</title>`).",
    "CloudflareError",
    family=STATUS,
    expected=always(raises("CloudflareError")),
    json=True,
)
def _cloudflare(ctx: FaultContext) -> ResponsePlan:
    return html_plan(403, CLOUDFLARE_PAGE, _cloudflare_headers())


@fault(
    "cloudflare_503",
    "503 with the Cloudflare challenge page.",
    "CloudflareError",
    family=STATUS,
    expected=always(raises("CloudflareError")),
    json=True,
)
def _cloudflare_503(ctx: FaultContext) -> ResponsePlan:
    return html_plan(503, CLOUDFLARE_PAGE, _cloudflare_headers())


@fault(
    "bot_detected",
    "403 page with `<p>Unable to load site</p>`.",
    "BotDetectedError",
    family=STATUS,
    expected=always(raises("BotDetectedError")),
    json=True,
)
def _bot_detected(ctx: FaultContext) -> ResponsePlan:
    return html_plan(403, BOT_PAGE)


def _reason(status: int) -> str:
    """The standard reason phrase (``502 Bad Gateway``); a generic one for unnamed codes."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Server Error"


@fault(
    "server_error",
    "A 5xx status with a plain-text body.",
    "ResponseStatusError",
    Param("status", int, 500, "the status code", 500, 599),
    family=STATUS,
    expected=always(raises("ResponseStatusError")),
    json=True,
)
def _server_error(ctx: FaultContext) -> ResponsePlan:
    status = ctx.params["status"]
    return ResponsePlan(
        status=status,
        headers=(("Content-Type", "text/plain; charset=utf-8"),),
        writes=(Write(f"{status} {_reason(status)} (mock fault: server_error)".encode()),),
    )


@fault(
    "truncate",
    "Sends `events` events, then closes the connection (FIN) before the body is complete; "
    "`mid_event=true` cuts inside the next event.",
    "KoalaConnectionError (the body ended before its end)",
    Param("events", int, 2, _EVENTS_BEFORE, 0, 1_000_000),
    Param("mid_event", bool, False, "also send half of the next event"),
    family=CONNECTION,
    expected=always(raises("KoalaConnectionError")),
    json=_json_truncate,
)
def _truncate(ctx: FaultContext) -> ResponsePlan:
    events = ctx.params["events"]
    extra = b""
    if ctx.params["mid_event"] and events < len(ctx.values):
        following = encode_event(ctx.values[events], number=events + 1)
        extra = following[: max(1, len(following) // 2)]
    return replace(_cut_after(ctx, events, extra), ending="close")


@fault(
    "disconnect",
    "Sends `events` events, then resets the connection (TCP RST).",
    "KoalaConnectionError",
    Param("events", int, 2, _EVENTS_BEFORE, 0, 1_000_000),
    family=CONNECTION,
    expected=always(raises("KoalaConnectionError")),
    json=_json_disconnect,
)
def _disconnect(ctx: FaultContext) -> ResponsePlan:
    return replace(_cut_after(ctx, ctx.params["events"]), ending="abort")


@fault(
    "stall",
    "Sends `after` events, then sends nothing for `seconds` with the connection open, "
    "then closes it.",
    "KoalaTimeoutError (when read_timeout < seconds)",
    Param("after", int, 1, _EVENTS_BEFORE, 0, 1_000_000),
    Param("seconds", float, 30.0, "how long to stall (max 60)", 0, MAX_WAIT_SECONDS),
    family=TIMING,
    expected=stall_rule,
    json=_json_stall,
)
def _stall(ctx: FaultContext) -> ResponsePlan:
    plan = _cut_after(ctx, ctx.params["after"])
    return replace(plan, ending="stall", stall_seconds=ctx.params["seconds"])


@fault(
    "slow_first_byte",
    "Waits `delay` seconds before the status line, then answers normally.",
    "the full answer, or KoalaTimeoutError when a timeout is shorter than delay",
    Param("delay", float, 5.0, "seconds before the first byte (max 60)", 0, MAX_WAIT_SECONDS),
    family=TIMING,
    expected=slow_first_byte_rule,
    json=_json_slow_first_byte,
)
def _slow_first_byte(ctx: FaultContext) -> ResponsePlan:
    return replace(_answer(ctx), first_byte_delay=ctx.params["delay"])


@fault(
    "malformed_json",
    'After `after` good events, an event whose data is not JSON (`data: {"token": ...`).',
    "MalformedEventError",
    Param("after", int, 1, "good events before the bad one", 0, 1_000_000),
    family=FRAMING,
    expected=always(raises("MalformedEventError")),
    json=_json_malformed,
)
def _malformed_json(ctx: FaultContext) -> ResponsePlan:
    return _insert_event(ctx, ctx.params["after"], b'data: {"token": "unterminated\n\n')


@fault(
    "done_marker",
    "The answer, then `data: [DONE]`, then more events that must be ignored.",
    "the full answer (nothing after [DONE])",
    family=FRAMING,
    expected=always(VALUES),
)
def _done_marker(ctx: FaultContext) -> ResponsePlan:
    plan = _answer(ctx)
    ignored = b"".join(encode_events(["AFTER", " THE", " DONE", " MARKER"]))
    return replace(plan, writes=(*plan.writes, Write(done_event() + ignored, ctx.delay)))


@fault(
    "html_200",
    "200 with a `text/html` page instead of an event stream.",
    "UnexpectedContentTypeError",
    family=CONTENT,
    expected=always(raises("UnexpectedContentTypeError")),
    json=True,
)
def _html_200(ctx: FaultContext) -> ResponsePlan:
    return html_plan(200, HTML_200_PAGE)


@fault(
    "wrong_content_type",
    "The answer's event stream labelled with another content type.",
    "UnexpectedContentTypeError",
    Param("content_type", str, "text/plain; charset=utf-8", "the Content-Type sent"),
    family=CONTENT,
    expected=_LENIENT_CONTENT_TYPE,
    json=_json_wrong_content_type,
)
def _wrong_content_type(ctx: FaultContext) -> ResponsePlan:
    plan = _answer(ctx)
    return replace(plan, headers=(("Content-Type", ctx.params["content_type"]),), values=None)


@fault(
    "json_reply",
    'The whole answer as one JSON object `{"output": "..."}` (the reply third-party '
    "clients see with `Accept: application/json`), not a stream.",
    "the whole answer as one chunk",
    family=CONTENT,
    expected=always(VALUES),
    json=True,
)
def _json_reply(ctx: FaultContext) -> ResponsePlan:
    return json_plan(ctx.values)


@fault(
    "invalid_utf8",
    "After `after` good events, an event with invalid UTF-8 bytes.",
    "InvalidEncodingError",
    Param("after", int, 1, "good events before the bad one", 0, 1_000_000),
    family=FRAMING,
    expected=always(raises("InvalidEncodingError")),
)
def _invalid_utf8(ctx: FaultContext) -> ResponsePlan:
    return _insert_event(ctx, ctx.params["after"], b'data: "caf\xc3\x28 \xff\xfe"\n\n')


@fault(
    "bom",
    "A UTF-8 byte order mark before the first event.",
    "the full answer (the original lost the first event)",
    family=FRAMING,
    expected=always(VALUES),
)
def _bom(ctx: FaultContext) -> ResponsePlan:
    return _answer(ctx, WireFormat(bom=True))


@fault(
    "huge_event",
    "One event of `size` characters after the first event.",
    "the full answer up to max_event_size; EventTooLargeError above it",
    Param("size", int, 600_000, "characters in the huge event", 1, 64 * 1024 * 1024),
    family=FRAMING,
    expected=huge_event_rule,
)
def _huge_event(ctx: FaultContext) -> ResponsePlan:
    return huge_event_plan(ctx.values, ctx.params["size"], ctx.delay)


@fault("crlf", "CRLF line endings.", "the full answer", family=FRAMING, expected=always(VALUES))
def _crlf(ctx: FaultContext) -> ResponsePlan:
    return _answer(ctx, WireFormat(line_ending="\r\n"))


@fault(
    "cr",
    "CR-only line endings (valid SSE; the original crashed).",
    "the full answer",
    family=FRAMING,
    expected=always(VALUES),
)
def _cr(ctx: FaultContext) -> ResponsePlan:
    return _answer(ctx, WireFormat(line_ending="\r"))


@fault(
    "keepalive_comments",
    "A `retry:` line and a `: keep-alive` comment before every `every`-th event.",
    "the full answer",
    Param("every", int, 1, "a comment before every n-th event", 1, 1_000_000),
    family=FRAMING,
    expected=always(VALUES),
)
def _keepalive_comments(ctx: FaultContext) -> ResponsePlan:
    return _answer(ctx, WireFormat(comment_every=ctx.params["every"], retry=3000))


@fault(
    "split_writes",
    "The body in writes of `size` bytes (splitting lines and UTF-8 characters), "
    "`delay` seconds apart (at most 60 s in all).",
    "the full answer",
    Param("size", int, 1, "bytes per write", 1, 1_000_000),
    Param("delay", float, 0.0, "seconds between writes", 0, 1.0),
    family=TIMING,
    expected=always(VALUES),
    json=_json_split_writes,
)
def _split_writes(ctx: FaultContext) -> ResponsePlan:
    return _split(_answer(ctx), ctx)


# ----------------------------------------------------------------------------- lookup and parsing


def known_names() -> str:
    return ", ".join(FAULTS)


def make_fault_spec(name: str, params: Mapping[str, Any] | None = None) -> FaultSpec:
    """A fault by name with parameters (strings or typed values); FaultSpecError if unknown."""
    scenario = FAULTS.get(name.strip()) if isinstance(name, str) else None
    if scenario is None:
        raise FaultSpecError(f"unknown fault {name!r}; known faults: {known_names()}")
    values = scenario.defaults()
    for key, raw in (params or {}).items():
        param = scenario.param(str(key))
        if param is None:
            valid = ", ".join(p.name for p in scenario.params) or "none"
            raise FaultSpecError(
                f"fault {scenario.name!r} has no parameter {key!r}; its parameters: {valid}"
            )
        values[param.name] = param.convert(scenario.name, raw)
    return FaultSpec(scenario, values)


def split_fault_spec(text: str) -> tuple[str, dict[str, str]]:
    """``"NAME;param=value;..."`` as the name and its parameters' raw text (not checked yet).

    A parameter given twice is refused: which of the two was meant cannot be known.

    >>> split_fault_spec("rate_limit; retry_after=5")
    ('rate_limit', {'retry_after': '5'})
    """
    name, *assignments = text.split(";")
    name = name.strip()
    params: dict[str, str] = {}
    for assignment in assignments:
        if not assignment.strip():
            continue
        key, equals, value = assignment.partition("=")
        key = key.strip()
        if not equals or not key:
            raise FaultSpecError(f"fault {name!r}: {assignment.strip()!r} is not param=value")
        if key in params:
            raise FaultSpecError(
                f"fault {name!r}: parameter {key!r} is given twice "
                f"({key}={params[key]} and {key}={value.strip()}); give it once"
            )
        params[key] = value.strip()
    return name, params


def parse_fault_spec(text: str) -> FaultSpec:
    """``"NAME;param=value;..."`` (the header's and the CLI's syntax) as a :class:`FaultSpec`."""
    name, params = split_fault_spec(text)
    return make_fault_spec(name, params)


def fault_table() -> str:
    """The catalogue as a markdown table (for the README)."""
    rows = [
        "| fault | what the server does | parameters (default) | the Koala provider "
        "| JSON answers |"
    ]
    rows.append("|---|---|---|---|---|")
    for s in FAULTS.values():
        params = "; ".join(f"`{p.name}` ({_show(p.default)}): {p.help}" for p in s.params)
        json_form = "yes" if s.applies_to_json else "stream only (400)"
        rows.append(
            f"| `{s.name}` | {s.description} | {params or '-'} | {s.expectation} | {json_form} |"
        )
    return "\n".join(rows)
