"""The answer's second form: one JSON object ``{"output": <the whole text>}``. Pure, no I/O.

A request whose ``Accept`` asks for ``application/json`` and not for ``text/event-stream`` gets
this form (the keyed API's clients read it); every other request gets the event stream. Both
forms carry the same answer: the JSON ``output`` is the stream's string values joined, as
``Koala.create_async`` joins them (values that are not strings are left out).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import lru_cache
from typing import Any

from koala.response import EVENT_STREAM, JSON, parse_media_type
from mockserver.wire.plan import ResponsePlan, Write, event_stream_plan

__all__ = [
    "JSON_CONTENT_TYPE",
    "as_json",
    "as_stream",
    "is_json_answer",
    "is_stream_answer",
    "joined_text",
    "json_body",
    "json_plan",
    "wants_json",
]

JSON_CONTENT_TYPE = "application/json; charset=utf-8"


def wants_json(headers: Mapping[str, str]) -> bool:
    """True when ``Accept`` names ``application/json`` and not ``text/event-stream``."""
    accept = headers.get("Accept") or headers.get("accept")
    if not accept:
        return False
    return _accept_wants_json(accept)


# Memoised: every request of a client sends the same Accept, every replay of a plan has the same
# Content-Type (a few microseconds per request on the chat API's hot path). Bounded.
@lru_cache(maxsize=256)
def _accept_wants_json(accept: str) -> bool:
    media_types = {parse_media_type(part).essence for part in accept.split(",")}
    return JSON in media_types and EVENT_STREAM not in media_types


_media_type = lru_cache(maxsize=256)(parse_media_type)


def joined_text(values: Sequence[Any]) -> str:
    return "".join(value for value in values if isinstance(value, str))


def json_body(values: Sequence[Any]) -> bytes:
    return json.dumps({"output": joined_text(values)}).encode("utf-8")


def json_plan(values: Sequence[Any], wait: float = 0.0, status: int = 200) -> ResponsePlan:
    """The JSON answer for ``values``, sent ``wait`` seconds after the request (in one write)."""
    return ResponsePlan(
        status=status,
        headers=(("Content-Type", JSON_CONTENT_TYPE),),
        writes=(Write(json_body(values)),),
        first_byte_delay=wait,
        values=[joined_text(values)],
    )


def is_json_answer(plan: ResponsePlan) -> bool:
    """A 2xx JSON answer with its output known (a recorded keyed reply)."""
    return (
        200 <= plan.status < 300
        and plan.values is not None
        and _media_type(plan.content_type()).is_json
    )


def is_stream_answer(plan: ResponsePlan) -> bool:
    return (
        200 <= plan.status < 300
        and plan.values is not None
        and _media_type(plan.content_type()).is_event_stream
    )


def as_json(plan: ResponsePlan) -> ResponsePlan:
    """A stream answer as the JSON answer; anything else (errors, a JSON answer) unchanged.

    The JSON goes out when the stream would have ended: a service cannot send the whole answer
    before it has it, so the recorded (or configured) pacing becomes the wait before the reply.
    Headers other than the content type are kept (a cassette's, the fuzz seed's).
    """
    if not is_stream_answer(plan):
        return plan
    assert plan.values is not None
    wait = plan.first_byte_delay + sum(write.delay for write in plan.writes)
    kept = [(n, v) for n, v in plan.headers if n.lower() not in ("content-type", "content-length")]
    answer = json_plan(plan.values, wait, plan.status)
    return replace(answer, headers=(*answer.headers, *kept), reason=plan.reason)


def as_stream(plan: ResponsePlan, delay: float = 0.0) -> ResponsePlan:
    """A JSON answer (a recorded keyed reply) as an event stream of its one output value."""
    if not is_json_answer(plan):
        return plan
    assert plan.values is not None
    stream = event_stream_plan(plan.values, delay=delay, status=plan.status)
    kept = [(n, v) for n, v in plan.headers if n.lower() not in ("content-type", "content-length")]
    return replace(stream, headers=(*stream.headers, *kept), reason=plan.reason)
