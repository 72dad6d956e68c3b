"""Answers a test sets for itself ("stubs"), tried in order before the cassettes. Pure.

A stub says what to answer (``tokens``, ``text``, ``status``, ``headers``, ``fault``), to which
requests (``when``: body fields that must be equal) and how many times (``times``; unlimited
when absent). The first stub whose ``when`` matches answers and uses up one of its times.

>>> stubs = StubList()
>>> _ = stubs.add(parse_stub({"tokens": ["Hi", "!"], "when": {"input": "Hello"}, "times": 1}))
>>> stubs.take({"input": "Hello"}, {}).values()
['Hi', '!']
>>> stubs.take({"input": "Hello"}, {}) is None  # used up
True
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mockserver.wire.fault_queue import FaultSpecError
from mockserver.wire.http_headers import SERVER_CONTROLLED_HEADERS, control_character, is_field_name
from mockserver.wire.json_answer import json_plan
from mockserver.wire.plan import ResponsePlan, Write, event_stream_plan
from mockserver.wire.request_filter import FilterError, RequestFilter
from mockserver.wire.stub_list import MAX_STUBS, StubError, StubList

if TYPE_CHECKING:  # the registry is imported only once a fault is asked for
    from mockserver.wire.faults import FaultSpec


__all__ = ["MAX_DEPTH", "MAX_STUBS", "STUB_KEYS", "Stub", "StubError", "StubList", "parse_stub"]

STUB_KEYS = ("tokens", "text", "status", "headers", "fault", "when", "times")
#: Deeper tokens or ``when`` values are refused (comparing them recurses once per level).
MAX_DEPTH = 32
_PLAIN_TEXT = "text/plain; charset=utf-8"


@dataclass
class Stub:
    when: RequestFilter = field(default_factory=RequestFilter)
    tokens: list[Any] | None = None
    text: str | None = None
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    fault: FaultSpec | None = None
    #: How many more requests it answers (None: every matching one).
    remaining: int | None = None
    #: Set when the stub is added: 1 for the first, then 2...
    number: int = 0
    #: How many requests it answered.
    used: int = 0

    def values(self) -> list[Any]:
        """What a correct client yields from the answer's stream."""
        if self.tokens is not None:
            return list(self.tokens)
        return [self.text] if self.text else []

    def plan(self, delay: float = 0.0, json: bool = False) -> ResponsePlan:
        """The answer: the fault applied to the values, an event stream for a 2xx (``json``:
        the JSON reply ``{"output": ...}``), else the text as the body (``text/plain`` unless
        ``headers`` says otherwise)."""
        if self.fault is not None:
            plan = self.fault.plan(self.values(), delay, json=json)
        elif 200 <= self.status < 300 and json:
            wait = delay * max(0, len(self.values()) - 1)
            plan = json_plan(self.values(), wait=wait, status=self.status)
        elif 200 <= self.status < 300:
            plan = event_stream_plan(self.values(), delay=delay, status=self.status)
        else:
            body = (self.text or "").encode("utf-8")
            plan = ResponsePlan(
                status=self.status, headers=(("Content-Type", _PLAIN_TEXT),), writes=(Write(body),)
            )
        for name, value in self.headers:
            plan = plan.with_header(name, value)
        return plan

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "when": dict(self.when.fields),
            "tokens": self.tokens,
            "text": self.text,
            "status": self.status,
            "headers": dict(self.headers),
            "fault": str(self.fault) if self.fault is not None else None,
            "remaining": self.remaining,
            "used": self.used,
        }


def parse_stub(data: Any) -> Stub:
    """A stub from its JSON form (the keys of :data:`STUB_KEYS`); :class:`StubError` naming
    the first problem."""
    if not isinstance(data, dict):
        raise StubError(f"a stub is a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(STUB_KEYS))
    if unknown:
        raise StubError(f"unknown keys {unknown}; a stub has {', '.join(STUB_KEYS)}")
    tokens, text = data.get("tokens"), data.get("text")
    if tokens is not None and text is not None:
        raise StubError("give tokens or text, not both")
    if tokens is not None and not isinstance(tokens, list):
        raise StubError(f"tokens: expected a list of JSON values, got {tokens!r:.80}")
    if tokens is not None:
        _check_json(tokens)
    if text is not None and not isinstance(text, str):
        raise StubError(f"text: expected a string, got {text!r:.80}")
    status = data.get("status", 200)
    if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
        raise StubError(f"status: expected an integer 200..599, got {status!r}")
    fault = _fault(data.get("fault"))
    if fault is not None and status != 200:
        raise StubError("fault and status: a fault sets its own status; give one of them")
    if fault is None and 200 <= status < 300 and tokens is None and text is None:
        raise StubError("give tokens (a list) or text to answer with, or a status or a fault")
    return Stub(
        when=_when(data.get("when")),
        tokens=list(tokens) if tokens is not None else None,
        text=text,
        status=status,
        headers=_headers(data.get("headers")),
        fault=fault,
        remaining=_times(data.get("times")),
    )


def _check_json(value: Any) -> None:
    if _depth(value) > MAX_DEPTH:
        raise StubError(f"tokens: nested more than {MAX_DEPTH} levels deep")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StubError(f"tokens: not JSON values ({exc})") from None


def _depth(value: Any, limit: int = MAX_DEPTH + 1) -> int:
    """How deeply lists and objects nest in ``value`` (counting stops past ``limit``)."""
    depth, level = 0, [value]
    while level and depth < limit:
        depth += 1
        level = [
            item
            for v in level
            if isinstance(v, (list, dict))
            for item in (v.values() if isinstance(v, dict) else v)
        ]
    return depth if not level else limit


def _fault(value: Any) -> FaultSpec | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise StubError(f"fault: expected 'NAME' or 'NAME;param=value', got {value!r}")
    from mockserver.wire.faults import parse_fault_spec  # late: see mockserver.wire.fault_queue

    try:
        return parse_fault_spec(value)
    except FaultSpecError as exc:
        raise StubError(f"fault: {exc}") from None


def _when(value: Any) -> RequestFilter:
    if value is None:
        return RequestFilter()
    if not isinstance(value, dict):
        raise StubError(f"when: expected an object of body fields, got {value!r:.80}")
    if _depth(value) > MAX_DEPTH:
        raise StubError(f"when: nested more than {MAX_DEPTH} levels deep")
    try:
        return RequestFilter.build(value)
    except FilterError as exc:
        raise StubError(f"when: {exc}") from None


def _headers(value: Any) -> list[tuple[str, str]]:
    if value is None:
        return []
    if not isinstance(value, dict):
        raise StubError(f"headers: expected an object of name: value strings, got {value!r:.80}")
    out = []
    for name, text in value.items():
        if not is_field_name(name):
            raise StubError(f"headers: {name!r} is not a header name (letters, digits, -, ...)")
        if name.lower() in SERVER_CONTROLLED_HEADERS:
            raise StubError(
                f"headers: {name!r} is set by the server (it frames the answer and runs the "
                "connection); a stub cannot set it"
            )
        if not isinstance(text, str):
            raise StubError(f"headers: {name!r}: expected a string value, got {text!r:.80}")
        bad = control_character(text)
        if bad is not None:
            raise StubError(
                f"headers: {name!r} contains the control character {bad!r} (CR, LF and other "
                "control characters cannot be sent in a header value)"
            )
        out.append((name, text))
    return out


def _times(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise StubError(f"times: expected a positive integer (none: unlimited), got {value!r}")
    return value
