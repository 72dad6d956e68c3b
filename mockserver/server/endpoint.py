"""``POST /api/gpt/``: check the request, choose the answer's source, send it.

Sources, in order: a fault (header, queue, or the server default); then the first matching stub
(set by a test: :mod:`mockserver.wire.stubs`); then a matching cassette (unless the mode is
``synthetic``); then, unless the mode is ``replay`` (404), the synthetic answer. A fault breaks
the answer the stub, cassette or synthesis would have given. A fuzz seed (fuzz mode, or the
``X-Koala-Mock-Seed`` header) rewrites the answer's stream without changing its values.

The answer's form follows ``Accept`` (:func:`mockserver.wire.json_answer.wants_json`): the
event stream, or one JSON ``{"output": ...}``, whatever the source (stub, cassette, synthesis).
A fault that is about the stream only is a 400 for a request that wants JSON.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from aiohttp import web
from multidict import istr

from mockserver.cassettes.library import Recorded
from mockserver.config import MockConfig
from mockserver.server.decisions import Decision, DecisionKey, DecisionMemo
from mockserver.server.http_errors import RequestRejected, json_error
from mockserver.server.journal import JournalEntry, decode_json_body
from mockserver.server.request_body import BodyRejected, ClientGone, client_gone, read_body
from mockserver.server.sender import send_plan
from mockserver.server.state import CASSETTES, CONFIG, FAULT_QUEUE, STREAMS, STUBS
from mockserver.wire.contract import VerdictMemo, passed
from mockserver.wire.fault_queue import FaultQueue, FaultSpecError
from mockserver.wire.fuzz import MAX_SEED, fuzzed_plan, new_seed
from mockserver.wire.json_answer import as_json, as_stream, is_json_answer, json_plan, wants_json
from mockserver.wire.numbers import strict_int
from mockserver.wire.plan import MAX_STORED_BYTES, ResponsePlan, ServedBy, event_stream_plan
from mockserver.wire.synthetic import synthetic_tokens

if TYPE_CHECKING:  # the registry and the stub model are imported only once used
    from mockserver.wire.faults import FaultSpec
    from mockserver.wire.stubs import Stub


__all__ = [
    "FAULT_HEADER",
    "SEED_HEADER",
    "ChatEndpoint",
    "RequestRejected",
    "control_header",
    "fault_for",
    "plan_answer",
    "replay_plan",
    "seed_for",
    "stream_only",
]

FAULT_HEADER = "X-Koala-Mock-Fault"
SEED_HEADER = "X-Koala-Mock-Seed"
# Case-insensitive names for the hot path's lookups (a multidict does not fold an istr's case).
_FAULT_KEY, _SEED_KEY = istr(FAULT_HEADER), istr(SEED_HEADER)


class ChatEndpoint:
    """The chat API of one app; the app's state is looked up once, not per request."""

    def __init__(self, app: web.Application) -> None:
        self.config = app[CONFIG]
        self.fault_queue = app[FAULT_QUEUE]
        self.streams = app[STREAMS]
        self.library = app[CASSETTES]
        self.verdicts = VerdictMemo()
        self.decisions = DecisionMemo()
        self.stubs = app[STUBS]

    async def __call__(self, request: web.Request, entry: JournalEntry) -> web.StreamResponse:
        """The answer to ``request``; a :class:`RequestRejected` for a JSON error (the journaled
        wrapper sends it)."""
        config = self.config
        try:
            raw = await read_body(request, config.max_body_size)
        except BodyRejected as rejected:
            raise RequestRejected(rejected.response) from None
        except ClientGone:
            return client_gone(entry)
        entry.body_size = len(raw)
        headers = request.headers
        keep_body = len(raw) <= MAX_STORED_BYTES  # a larger one is only summarised (memory)
        verdicts = self.verdicts
        shape = verdicts.shape_of(headers, raw, strict=config.strict, api_key=config.api_key)
        # (A keyed request has no shape: its verdict, and so its answer, is never memoised.)
        key: DecisionKey | None = None
        if shape is not None and self._nothing_pending(headers):
            # The verdict and answer decided for the same request, if nothing they read changed.
            key = (request.method, request.path, shape)
            decision = self.decisions.get(key, self._decision_state())
            if decision is not None:
                entry.contract_verdict = decision.verdict
                if keep_body:
                    entry.keep_json_body(raw)
                entry.served_by = decision.served_by
                return await send_plan(request, decision.plan, self.streams, entry)
        verdict = verdicts.verdict_for(
            shape, headers, raw, strict=config.strict, api_key=config.api_key
        )
        # A verdict without problems is journaled as a shared one (keeps entries small).
        has_problems = verdict.errors or verdict.warnings
        entry.contract_verdict = verdict if has_problems else passed(verdict.shape)
        payload = verdict.payload
        if payload is None or not verdict.ok:
            if keep_body:
                entry.body = decode_json_body(raw)
                entry.raw_body = raw if entry.body is None else b""
            message = verdict.error or "bad request"
            if verdict.errors:  # the keyed API's clients show only ``message``: make it say why
                message = f"{message}: " + "; ".join(p.message() for p in verdict.errors[:3])
            raise RequestRejected(
                json_error(
                    verdict.status,
                    verdict.error or "bad request",
                    {"WWW-Authenticate": "Bearer"} if verdict.status == 401 else None,
                    message=message,
                    problems=[p.to_json() for p in verdict.errors],
                    warnings=[p.to_json() for p in verdict.warnings],
                    shape=verdict.shape,
                )
            )
        if keep_body:  # as bytes: decoded when read (the payload may be a memoised verdict's)
            entry.keep_json_body(raw)
        seed = seed_for(headers, config)
        json_form = wants_json(headers)
        # After the seed: a rejected request uses no queued fault.
        fault = fault_for(headers, self.fault_queue, config)
        if fault is not None and json_form and not fault.applies_to_json:
            raise RequestRejected(stream_only(fault))

        # len() first: with no stubs set (the usual case) this costs one call.
        stub = self.stubs.take(payload, headers) if len(self.stubs) else None
        if stub is not None:
            if json_form and stub.fault is not None and not stub.fault.applies_to_json:
                raise RequestRejected(stream_only(stub.fault))
            plan, entry.served_by = _stub_plan(stub, fault, seed, config, json_form)
            return await self._send(request, plan, entry, fault or stub.fault, seed)
        found: Recorded | None = None
        mode = config.mode
        if mode != "synthetic":
            self.library.ensure_loaded()
            found, miss = self.library.lookup(
                request.method, request.path, payload, raw, nearest=mode == "replay"
            )
            if found is None and mode == "replay" and fault is None:
                nearest = miss.nearest_name if miss else None
                differences = miss.differences if miss else []
                entry.served_by = {
                    "source": "error",
                    "unmatched": True,
                    "nearest": nearest,
                    "differences": differences,
                }
                error = "no cassette matches this request (mode: replay)"
                message = error
                if nearest is not None:
                    message = f"{error}; nearest: {nearest} ({'; '.join(differences[:3])})"
                raise RequestRejected(
                    json_error(
                        404, error, message=message, nearest=nearest, differences=differences
                    )
                )
        plan, entry.served_by = plan_answer(payload, found, fault, seed, config, json_form)
        if key is not None:  # (so no fault, seed or stub was used; the state read after loading)
            state = self._decision_state()
            decision = Decision(entry.contract_verdict, plan, entry.served_by, state)
            self.decisions.put(key, decision, len(raw))
        return await self._send(request, plan, entry, fault, seed)

    def _decision_state(self) -> tuple[Any, ...]:
        """What a memoised decision read besides the request: the cassettes' version and the
        config's mode, speed and latency."""
        config = self.config
        return (self.library.version, config.mode, config.speed, config.latency)

    def _nothing_pending(self, headers: Mapping[str, str]) -> bool:
        """No fault, seed or stub could change the answer."""
        config = self.config
        return (
            _FAULT_KEY not in headers
            and _SEED_KEY not in headers
            and config.default_fault is None
            and config.mode != "fuzz"
            and not len(self.fault_queue)
            and not len(self.stubs)
        )

    def _send(
        self,
        request: web.Request,
        plan: ResponsePlan,
        entry: JournalEntry,
        fault: FaultSpec | None,
        seed: int | None,
    ) -> Awaitable[web.StreamResponse]:
        """``send_plan``'s coroutine (not a coroutine of its own: one frame fewer per request)."""
        if fault is not None:
            entry.fault = str(fault)
        if seed is not None:
            plan = plan.with_header(SEED_HEADER, str(seed))
            entry.seed = seed
        return send_plan(request, plan, self.streams, entry)


def _stub_plan(
    stub: Stub,
    fault: FaultSpec | None,
    seed: int | None,
    config: MockConfig,
    json_form: bool = False,
) -> tuple[ResponsePlan, ServedBy]:
    """A stub's answer (broken by ``fault``, or rewritten from ``seed``, when given), and the
    journal's word for it; ``json_form``: as the JSON reply."""
    delay = config.scaled(config.latency)
    served: ServedBy = {"source": "stub", "stub": stub.number}
    if seed is not None:
        served["seed"] = seed
    if json_form:
        served["form"] = "json"
    if fault is not None:
        plan = fault.plan(stub.values(), delay, json=json_form)
        return plan, {**served, "source": "fault", "fault": str(fault), "answer": "stub"}
    plan = stub.plan(delay, json=json_form)
    if json_form:
        return plan, served
    if seed is not None and plan.values is not None and stub.fault is None:
        fuzzed = fuzzed_plan(seed, plan.values, delay)
        plan = replace(fuzzed, status=plan.status, headers=plan.headers)
    return plan, served


def plan_answer(
    payload: dict[str, Any],
    found: Recorded | None,
    fault: FaultSpec | None,
    seed: int | None,
    config: MockConfig,
    json_form: bool = False,
) -> tuple[ResponsePlan, ServedBy]:
    """What to send, and what the journal says served it; ``json_form``: the JSON reply."""
    delay = config.scaled(config.latency)
    values = found.plan.values if found is not None else None
    served: ServedBy = found.served_by if found is not None else {"source": "synthetic"}
    if seed is not None:
        served = {**served, "seed": seed}
    if json_form:
        served = {**served, "form": "json"}
    if fault is not None:
        # A stream fault breaks the answer the server would send, or the synthetic one when
        # the cassette holds no stream (a recorded 429, say).
        answer = values if values is not None else synthetic_tokens(payload)
        plan = fault.plan(answer, delay, json=json_form)
        return plan, {**served, "source": "fault", "fault": str(fault), "answer": served["source"]}
    if found is not None:
        plan = replay_plan(found, config.speed, delay)
        if json_form:  # a stream becomes its JSON reply, sent when the stream would have ended
            return as_json(plan), served
        if is_json_answer(plan):  # a recorded keyed reply, asked for as a stream
            return as_stream(plan, delay), served
        if seed is not None and values is not None:  # fuzzing drops the recorded timing
            fuzzed = fuzzed_plan(seed, values, delay)
            plan = replace(fuzzed, status=plan.status, headers=plan.headers)
        return plan, served
    tokens = synthetic_tokens(payload)
    if json_form:  # (fuzzing rewrites streams; a JSON reply has no stream to rewrite)
        return json_plan(tokens, wait=delay * max(0, len(tokens) - 1)), served
    if seed is not None:
        return fuzzed_plan(seed, tokens, delay), served
    return event_stream_plan(tokens, delay=delay), served


def stream_only(fault: FaultSpec) -> web.Response:
    """The 400 for a stream-only fault asked of a request that wants the JSON answer."""
    from mockserver.wire.faults import FAULTS  # late: see mockserver.wire.fault_queue

    usable = [name for name, scenario in FAULTS.items() if scenario.applies_to_json]
    return json_error(
        400,
        f"fault {fault.name!r} is about the event stream only, and this request asks for a JSON "
        "answer (Accept: application/json without text/event-stream)",
        fault=fault.name,
        json_faults=usable,
    )


def replay_plan(found: Recorded, speed: float, delay: float) -> ResponsePlan:
    if found.has_timing:
        return found.timed_plan(speed)
    if delay and found.plan.event_ends:
        return found.paced_plan(delay)
    return found.plan


def control_header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of the mock's own header ``name``, or None; a JSON 400 (RequestRejected) when
    it is given more than once, since which one was meant cannot be known."""
    getall = getattr(headers, "getall", None)  # a multidict: the request's own headers
    if getall is None:
        return headers.get(name)
    values: list[str] = getall(name, [])
    if len(values) > 1:
        raise RequestRejected(
            json_error(
                400,
                f"{name}: given {len(values)} times; send it once (which one was meant "
                "cannot be known)",
                values=values[:5],
            )
        )
    return values[0] if values else None


def fault_for(
    headers: Mapping[str, str], queue: FaultQueue, config: MockConfig
) -> FaultSpec | None:
    """The header's fault, else the next queued one, else the server default."""
    text = control_header(headers, FAULT_HEADER)
    if text is None:
        queued = queue.take()
        if queued is not None:
            return queued
        text = config.default_fault
        if text is None:
            return None
    from mockserver.wire.faults import known_names, parse_fault_spec  # late: see fault_queue

    try:
        return parse_fault_spec(text)
    except FaultSpecError as exc:
        raise RequestRejected(
            json_error(400, f"{FAULT_HEADER}: {exc}", faults=known_names().split(", "))
        ) from None


def seed_for(headers: Mapping[str, str], config: MockConfig) -> int | None:
    """The header's seed, else in fuzz mode the configured seed or a new random one."""
    text = control_header(headers, SEED_HEADER)
    if text is not None:
        seed = strict_int(text)
        if seed is None or not 0 <= seed <= MAX_SEED:
            raise RequestRejected(
                json_error(400, f"{SEED_HEADER}: expected an integer 0..{MAX_SEED}, got {text!r}")
            )
        return seed
    if config.mode != "fuzz":
        return None
    return config.seed if config.seed is not None else new_seed()
