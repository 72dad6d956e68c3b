"""Run a client against the mock server, in-process: every fault case, then every fuzz case.

Faults are served on the synthetic answer (mode ``synthetic``, so the answer depends on nothing
but the request) and queued one request at a time through the admin API, which is what lets a
client that takes only ``(api_endpoint, messages)`` be audited. Fuzz cases replay each cassette's
stream rewritten by a seed (mode ``fuzz``, one server per seed). The journal tells what the
client actually asked, so the expected values are those of the request it sent.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from koala.request import DEFAULT_MODEL, build_payload
from koala.response import parse_media_type
from mockserver.audit.cases import FaultCase, FuzzCase, Timing, fault_cases
from mockserver.audit.classify import Verdict, classify
from mockserver.audit.clients import Client, Messages, run_client
from mockserver.cassettes.cassette import Interaction, interaction_name, load_cassette_dir
from mockserver.cassettes.library import recorded
from mockserver.config import MockConfig
from mockserver.testing.embedded import KoalaMock
from mockserver.wire.expectations import Expected
from mockserver.wire.fuzz import rewriting_for
from mockserver.wire.streams import KOALA_FORMAT
from mockserver.wire.synthetic import synthetic_tokens

__all__ = [
    "FAULT_HEADER",
    "FAULT_MESSAGES",
    "FAULT_PROMPT",
    "SEED_HEADER",
    "SHUTDOWN_TIMEOUT",
    "AuditSettings",
    "CaseResult",
    "RecordedStream",
    "Reproduce",
    "fuzz_cases",
    "interaction_name_of",
    "messages_for",
    "recorded_streams",
    "rewriting_summary",
    "run_audit",
    "seeds_for",
]

FAULT_PROMPT = "How does a client survive a broken stream?"
FAULT_MESSAGES: Messages = ({"role": "user", "content": FAULT_PROMPT},)
FAULT_HEADER = "X-Koala-Mock-Fault"
SEED_HEADER = "X-Koala-Mock-Seed"
SHUTDOWN_TIMEOUT = 0.1


@dataclass(frozen=True)
class Reproduce:
    """How to see the same stream again: the server to start, the header, the request."""

    serve: str
    header: str
    request: str

    def to_json(self) -> dict[str, str]:
        return {"serve": self.serve, "header": self.header, "request": self.request}


@dataclass(frozen=True)
class CaseResult:
    family: str
    kind: str
    case: str
    expected: Expected
    verdict: Verdict
    reproduce: Reproduce


@dataclass(frozen=True)
class AuditSettings:
    client: Client
    cassette_dir: Path | None
    seeds: Sequence[int]
    timing: Timing
    #: Only these faults (None: every fault of the catalogue).
    faults: Sequence[str] | None = None

    @property
    def hang_after(self) -> float:
        return self.timing.hang_after


async def run_audit(settings: AuditSettings) -> list[CaseResult]:
    results = [r async for r in _fault_results(settings)]
    results += [r async for r in _fuzz_results(settings)]
    return results


# -- faults -----------------------------------------------------------------------------------


def _quiet_config(**options: Any) -> MockConfig:
    return MockConfig(speed=0.0, **options)


def _mock(config: MockConfig) -> KoalaMock:
    # A stalled stream left behind by a hang is closed at once when the audit moves on.
    return KoalaMock(config, shutdown_timeout=SHUTDOWN_TIMEOUT)


async def _fault_results(settings: AuditSettings) -> Any:
    with _mock(_quiet_config(cassette_dir=None, mode="synthetic")) as mock:
        for case in fault_cases(settings.timing):
            if settings.faults is not None and case.spec.name not in settings.faults:
                continue
            mock.reset()
            mock.fault(case.spec.name, **case.spec.params)
            result = await run_client(
                settings.client, mock.api_endpoint, FAULT_MESSAGES, settings.hang_after
            )
            tokens = synthetic_tokens(_payload_sent(mock, FAULT_MESSAGES))
            planned = case.spec.plan(tokens).values
            answer = planned if planned is not None else tokens
            full = answer if case.expected.values else tokens
            verdict = classify(case.expected, result, answer, full, settings.client.accepts)
            yield CaseResult(
                case.family, "fault", case.label, case.expected, verdict, _fault_reproduce(case)
            )


def _payload_sent(mock: KoalaMock, messages: Messages) -> Mapping[str, Any]:
    """The body of the first request of this run, or what the project's provider would send."""
    for entry in mock.requests:
        body = entry.get("body")
        if isinstance(body, dict):
            return body
    return build_payload(DEFAULT_MODEL, list(messages))


def _fault_reproduce(case: FaultCase) -> Reproduce:
    spec = str(case.spec)
    return Reproduce(
        serve=f"koala-mock serve --mode synthetic --speed 0 --fault {shlex.quote(spec)}",
        header=f"{FAULT_HEADER}: {spec}",
        request=_describe_messages(FAULT_MESSAGES),
    )


# -- fuzz -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedStream:
    """A cassette's streamed answer that a client can be asked for with messages alone."""

    name: str
    messages: Messages
    values: list[Any]


def recorded_streams(cassette_dir: Path) -> tuple[list[RecordedStream], list[str]]:
    """The 2xx event streams of the cassettes (the first recording of each request), and why
    each other interaction or file is left out (``"NAME: reason"``)."""
    cassettes, errors = load_cassette_dir(cassette_dir)
    streams: list[RecordedStream] = []
    skipped = [str(error) for error in errors]
    seen: set[bytes] = set()
    for cassette in cassettes:
        for index, interaction in enumerate(cassette.interactions):
            name = interaction_name(cassette, index)
            messages = messages_for(interaction.request_json())
            values = recorded(cassette, index, interaction).plan.values
            why = _not_fuzzable(interaction, seen)
            if why is None and messages is None:
                why = "its request has no input to ask for"
            if why is None and values is None:
                why = "its stream does not decode"
            if why is not None or messages is None or values is None:
                skipped.append(f"{name}: {why}")
                continue
            seen.add(interaction.request_body)
            streams.append(RecordedStream(name, messages, list(values)))
    return streams, skipped


def _not_fuzzable(interaction: Interaction, seen: set[bytes]) -> str | None:
    if not 200 <= interaction.status < 300:
        return f"status {interaction.status}"
    media_type = parse_media_type(interaction.response_header("Content-Type"))
    if not media_type.is_event_stream:
        return f"an answer of type {media_type.essence or '(none)'}, not an event stream"
    body = interaction.request_json()
    model = body.get("model") if isinstance(body, dict) else None
    if model not in (None, DEFAULT_MODEL):
        return f"recorded for model {model!r}; a client is asked with messages only"
    if interaction.request_body in seen:
        return "an earlier interaction has the same request (it is the one replayed)"
    return None


def fuzz_cases(cassette_dir: Path | None, seeds: Sequence[int]) -> list[FuzzCase]:
    """Every recorded stream of the cassettes, once per seed."""
    if cassette_dir is None or not seeds:
        return []
    streams, _skipped = recorded_streams(cassette_dir)
    return [FuzzCase(seed, s.name, s.messages, s.values) for seed in seeds for s in streams]


def messages_for(body: Any) -> Messages | None:
    """Chat messages from which the Koala request mapping builds ``body`` (None: it cannot)."""
    if not isinstance(body, dict) or not isinstance(body.get("input"), str):
        return None
    earlier_inputs = body.get("inputHistory") or []
    outputs = body.get("outputHistory") or []
    if not all(isinstance(t, str) for t in [*earlier_inputs, *outputs]):
        return None
    return (
        *({"role": "user", "content": text} for text in earlier_inputs),
        *({"role": "assistant", "content": text} for text in outputs),
        {"role": "user", "content": body["input"]},
    )


async def _fuzz_results(settings: AuditSettings) -> Any:
    cases = fuzz_cases(settings.cassette_dir, settings.seeds)
    for seed in settings.seeds:
        mine = [case for case in cases if case.seed == seed]
        if not mine:
            continue
        config = _quiet_config(cassette_dir=settings.cassette_dir, mode="fuzz", seed=seed)
        with _mock(config) as mock:
            for case in mine:
                mock.reset()
                result = await run_client(
                    settings.client, mock.api_endpoint, case.messages, settings.hang_after
                )
                verdict = classify(
                    case.expected, result, case.values, case.values, settings.client.accepts
                )
                if not verdict.passed:
                    why = rewriting_summary(case.seed, case.values)
                    if not _served_from(mock, case.cassette):
                        why = f"the request did not match {case.cassette}"
                    verdict = Verdict(verdict.outcome, False, f"{verdict.detail} ({why})")
                yield CaseResult(
                    case.family,
                    "fuzz",
                    case.label,
                    case.expected,
                    verdict,
                    _fuzz_reproduce(case, settings.cassette_dir),
                )


def rewriting_summary(seed: int, values: Sequence[Any]) -> str:
    """How the seed's bytes differ from the Koala format: ``line_ending='\\r', bom=True, ...``."""
    rewriting = rewriting_for(seed, values)
    changed = [
        f"{name}={value!r}"
        for name, value, koala_value in zip(
            rewriting.fmt._fields, rewriting.fmt, KOALA_FORMAT, strict=True
        )
        if value != koala_value
    ]
    changed.append(f"{len(rewriting.cuts)} split points")
    return ", ".join(changed)


def _served_from(mock: KoalaMock, name: str) -> bool:
    for entry in mock.requests:
        served = entry.get("served_by") or {}
        cassette, index = served.get("cassette"), served.get("interaction", 0)
        if isinstance(cassette, str):
            return interaction_name_of(cassette, index) == name
    return False


def interaction_name_of(cassette: str, index: Any) -> str:
    return cassette if not index else f"{cassette}#{index}"


def _fuzz_reproduce(case: FuzzCase, cassette_dir: Path | None) -> Reproduce:
    where = f" --cassettes {shlex.quote(str(cassette_dir))}" if cassette_dir is not None else ""
    return Reproduce(
        serve=f"koala-mock serve{where} --mode fuzz --seed {case.seed} --speed 0",
        header=f"{SEED_HEADER}: {case.seed}",
        request=f"the one recorded in {case.cassette}, {_describe_messages(case.messages)}",
    )


def _describe_messages(messages: Messages) -> str:
    return "messages " + json.dumps(list(messages), ensure_ascii=False)


def seeds_for(count: int) -> Iterator[int]:
    """The audit's fuzz seeds: 0..count-1, the same on every run (a score is reproducible)."""
    return iter(range(count))
