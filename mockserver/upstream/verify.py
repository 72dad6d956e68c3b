"""Drift check: does the upstream still answer the way a cassette recorded it?

``koala-mock verify`` sends each cassette's request to the upstream and compares the *shape* of
the answer with the recording, never the text (a chat answer legitimately varies):

- the status and the content type (media type and charset);
- the event framing: line endings, ``data: `` or ``data:``, data lines per event, the blank line
  after the last event, a byte order mark, ``[DONE]``, other fields (``event``/``id``/``retry``,
  comments);
- the JSON types of the data values (string, number, null, object...);
- the headers the client's contract depends on: ``Retry-After`` on a 429; the kind of error page
  (a Cloudflare challenge, a bot refusal) on a 403/503.

Cassettes of situational answers (a 429, a Cloudflare page) are "unverified", not drift, when the
upstream answers normally today; likewise a 2xx cassette when the upstream answers 429 or 403.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args

from koala.errors import StreamError
from koala.request import new_visitor_id
from koala.response import RATE_LIMIT_STATUSES, ErrorPage, error_page, parse_media_type
from koala.sse import BOM, EventStreamDecoder
from mockserver.cassettes.cassette import (
    Cassette,
    Interaction,
    first_header,
    interaction_name,
    json_kind,
)
from mockserver.cassettes.scrub import SCRUBBED
from mockserver.upstream.client import (
    Capture,
    RecordingError,
    StreamInterruptedError,
    Timeouts,
    UpstreamClient,
    UpstreamUnreachableError,
    UpstreamURL,
    sendable_headers,
)
from mockserver.upstream.words import plural

__all__ = [
    "DRIFT",
    "NEEDS_API_KEY",
    "OK",
    "OUTCOMES",
    "SITUATIONAL_STATUSES",
    "UNVERIFIED",
    "Outcome",
    "StreamShape",
    "Verdict",
    "VerifyUnreachableError",
    "compare",
    "counts",
    "error_page_kind",
    "format_verdict",
    "framing_differences",
    "needs_api_key",
    "report",
    "request_headers_for",
    "stream_shape",
    "summary_line",
    "verdict_json",
    "verify_cassettes",
]

#: A cassette interaction's outcome: the same shape, drift, or not verifiable today.
Outcome = Literal["ok", "drift", "unverified"]
OK: Final = "ok"
DRIFT: Final = "drift"
UNVERIFIED: Final = "unverified"
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
#: Answers that depend on the moment (load, the client's IP), not on the API's contract.
SITUATIONAL_STATUSES = frozenset({402, 403, 429, 503})
_LINE_ENDING = re.compile(rb"(\r\n|\n|\r)")
_ENDING_NAMES = {b"\n": "LF", b"\r\n": "CRLF", b"\r": "CR"}
_PAGE_NAMES: dict[ErrorPage | None, str] = {
    "cloudflare": "Cloudflare challenge",
    "bot": "bot refusal page",
    None: "other",
}


class VerifyUnreachableError(UpstreamUnreachableError):
    """The upstream did not answer a cassette's request; the check stopped there."""

    def __init__(self, unreachable: UpstreamUnreachableError, verdicts: list[Verdict]) -> None:
        self.verdicts = list(verdicts)
        checked = len(verdicts)
        self.consequence = (
            "no cassette was verified"
            if not checked
            else f"verification stopped after {plural(checked, 'interaction')}"
        )
        RecordingError.__init__(self, f"{unreachable.problem}; {self.consequence}")
        self.url, self.cause, self.problem = unreachable.url, unreachable.cause, unreachable.problem


@dataclass
class StreamShape:
    """The framing of an event-stream body, without its text."""

    line_endings: set[str] = field(default_factory=set)
    data_forms: set[str] = field(default_factory=set)
    data_lines_per_event: set[int] = field(default_factory=set)
    other_fields: set[str] = field(default_factory=set)
    value_kinds: set[str] = field(default_factory=set)
    bom: bool = False
    done_marker: bool = False
    ends_with_blank_line: bool = True
    events: int = 0


def stream_shape(body: bytes) -> StreamShape:
    """Measure the framing of ``body`` (read as an event stream).

    The values, the number of events and the ``[DONE]`` marker are what :mod:`koala.sse`
    decodes; the bytes around them (line endings, ``data:`` forms, lines per event, other
    fields, the final blank line) are counted here, since decoding is meant to hide them.
    """
    shape = StreamShape(bom=body.startswith(BOM))
    decoder = EventStreamDecoder(max_event_size=len(body) + 1)
    values: list[Any] = []
    try:
        values += decoder.feed(body)
        values += decoder.close()
    except StreamError:  # the values before the bad event are kept
        shape.value_kinds.add("not JSON")
    shape.value_kinds.update(json_kind(value) for value in values)
    shape.events = decoder.events_dispatched
    shape.done_marker = decoder.done
    _measure_lines(body[len(BOM) :] if shape.bom else body, shape)
    return shape


def _measure_lines(body: bytes, shape: StreamShape) -> None:
    """The line-level framing of ``body`` (after any BOM) into ``shape``."""
    pieces = _LINE_ENDING.split(body)  # line, ending, line, ending, ..., last line
    data_lines = 0
    for line, ending in zip(pieces[::2], [*pieces[1::2], b""], strict=True):
        if ending:
            shape.line_endings.add(_ENDING_NAMES[ending])
        if not line:
            if data_lines:
                shape.data_lines_per_event.add(data_lines)
            data_lines = 0
        elif line.startswith(b"data:"):
            data_lines += 1
            shape.data_forms.add("data: " if line.startswith(b"data: ") else "data:")
        elif line.startswith(b":"):
            shape.other_fields.add("comment")
        else:
            shape.other_fields.add(line.partition(b":")[0].decode("utf-8", "replace"))
    if data_lines:
        shape.data_lines_per_event.add(data_lines)
    shape.ends_with_blank_line = body.endswith((b"\n\n", b"\r\n\r\n", b"\r\r"))


def error_page_kind(body: bytes) -> str:
    return _PAGE_NAMES[error_page(body)]


def _names(values: Iterable[str]) -> str:
    items = sorted(values)
    return ", ".join(items) if items else "none"


def framing_differences(recorded: bytes, live: bytes) -> list[str]:
    """How the upstream's event framing differs from the recorded one."""
    before, after = stream_shape(recorded), stream_shape(live)
    out = []

    def compare(what: str, a: set[str], b: set[str]) -> None:
        if a != b:
            out.append(f"{what}: recorded {_names(a)}, upstream {_names(b)}")

    def compare_flag(what: str, a: bool, b: bool, absent: str, present: str) -> None:
        if a != b:
            out.append(
                f"{what}: recorded {present if a else absent}, upstream {present if b else absent}"
            )

    compare("line endings", before.line_endings, after.line_endings)
    compare("data line form", before.data_forms, after.data_forms)
    compare(
        "data lines per event",
        {str(n) for n in before.data_lines_per_event},
        {str(n) for n in after.data_lines_per_event},
    )
    compare_flag(
        "blank line after the last event",
        before.ends_with_blank_line,
        after.ends_with_blank_line,
        "none",
        "one",
    )
    compare_flag("byte order mark", before.bom, after.bom, "no BOM", "a BOM")
    compare_flag("[DONE] marker", before.done_marker, after.done_marker, "none", "one")
    compare("other fields", before.other_fields, after.other_fields)
    new_kinds = after.value_kinds - before.value_kinds
    if new_kinds:
        out.append(
            f"data values: upstream sends {_names(new_kinds)} "
            f"(recorded: {_names(before.value_kinds)})"
        )
    missing = before.value_kinds - after.value_kinds
    if missing and after.events:
        out.append(
            f"data values: recorded {_names(missing)} not seen upstream "
            f"(upstream: {_names(after.value_kinds)})"
        )
    if before.events and not after.events:
        out.append(f"events: recorded {before.events}, upstream none")
    return out


@dataclass
class Verdict:
    """The outcome for one cassette interaction."""

    name: str
    outcome: Outcome
    differences: list[str] = field(default_factory=list)
    note: str = ""


def compare(name: str, recorded: Interaction, live: Capture) -> Verdict:
    """Compare a recorded interaction with what the upstream answered now."""
    if recorded.status != live.status:
        situational = (recorded.status in SITUATIONAL_STATUSES and 200 <= live.status < 300) or (
            200 <= recorded.status < 300 and live.status in SITUATIONAL_STATUSES
        )
        if situational:
            return Verdict(
                name,
                UNVERIFIED,
                note=f"recorded {recorded.status}, upstream answered {live.status}: "
                "a situational answer, so the rest was not compared",
            )
        return Verdict(name, DRIFT, [f"status: recorded {recorded.status}, upstream {live.status}"])
    differences = []
    recorded_type = parse_media_type(recorded.response_header("content-type"))
    live_type = parse_media_type(first_header(live.response_headers, "content-type"))
    if recorded_type.essence != live_type.essence:
        before, after = recorded_type.essence or "none", live_type.essence or "none"
        differences.append(f"content type: recorded {before}, upstream {after}")
    elif recorded_type.charset != live_type.charset:
        differences.append(
            f"content type charset: recorded {recorded_type.charset or 'none'}, "
            f"upstream {live_type.charset or 'none'}"
        )
    if recorded.status in RATE_LIMIT_STATUSES:
        had = recorded.response_header("retry-after") is not None
        has = first_header(live.response_headers, "retry-after") is not None
        if had != has:
            differences.append(
                f"Retry-After header: recorded {'present' if had else 'absent'}, "
                f"upstream {'present' if has else 'absent'}"
            )
    if recorded.status in (403, 503):
        before, after = error_page_kind(recorded.body), error_page_kind(live.body)
        if before != after:
            differences.append(f"error page: recorded {before}, upstream {after}")
    if recorded_type.is_event_stream and live_type.is_event_stream:
        differences.extend(framing_differences(recorded.body, live.body))
    return Verdict(name, DRIFT if differences else OK, differences)


def request_headers_for(
    interaction: Interaction, api_key: str | None = None
) -> list[tuple[str, str]]:
    """The recorded request headers to send again: a fresh Visitor-ID (the recorded one is a
    placeholder), no scrubbed value (``SCRUBBED`` is no credential); a scrubbed
    ``Authorization`` is sent as ``Bearer <api_key>`` when a key is given."""
    headers = []
    for name, values in interaction.request_headers.items():
        for value in values:
            if name.lower() == "visitor-id":
                headers.append((name, new_visitor_id()))
            elif SCRUBBED not in value:
                headers.append((name, value))
            elif name.lower() == "authorization" and api_key:
                headers.append((name, f"Bearer {api_key}"))
    return sendable_headers(headers)


NEEDS_API_KEY: Final = "recorded with an API key (stored scrubbed): set $KOALA_API_KEY to verify it"


def needs_api_key(interaction: Interaction) -> bool:
    """True when the recorded request carried a credential that scrubbing removed: sent
    again without one, it would be judged as another request (the browser shape, a 422)."""
    return any(
        SCRUBBED in value
        for name, values in interaction.request_headers.items()
        if name.lower() == "authorization"
        for value in values
    )


async def verify_cassettes(
    cassettes: Sequence[Cassette],
    upstream: str,
    *,
    timeouts: Timeouts | None = None,
    api_key: str | None = None,
    on_verdict: Callable[[Verdict], None] | None = None,
) -> list[Verdict]:
    """Send every interaction's request to ``upstream`` and compare the answers; ``on_verdict``
    hears of each result as soon as it is known.

    Raises :class:`VerifyUnreachableError` (an ``UpstreamUnreachableError``) as soon as the
    upstream does not answer; its ``verdicts`` are the results so far.
    """
    target = UpstreamURL.parse(upstream)
    verdicts: list[Verdict] = []

    def found(verdict: Verdict) -> None:
        verdicts.append(verdict)
        if on_verdict is not None:
            on_verdict(verdict)

    async with UpstreamClient(timeouts) as client:
        for cassette in cassettes:
            for index, interaction in enumerate(cassette.interactions):
                name = interaction_name(cassette, index)
                if api_key is None and needs_api_key(interaction):
                    found(Verdict(name, UNVERIFIED, note=NEEDS_API_KEY))
                    continue
                try:
                    live = await client.capture(
                        interaction.method,
                        target,
                        request_headers_for(interaction, api_key),
                        interaction.request_body,
                    )
                except StreamInterruptedError as exc:  # a finding about this cassette
                    found(Verdict(name, DRIFT, [exc.problem]))
                    continue
                except UpstreamUnreachableError as exc:
                    raise VerifyUnreachableError(exc, verdicts) from exc
                found(compare(name, interaction, live))
    return verdicts


def format_verdict(verdict: Verdict) -> str:
    """One cassette's result as ``koala-mock verify`` prints it (a line, then its differences)."""
    head = f"{verdict.name}: {verdict.outcome}"
    if verdict.note:
        head += f" ({verdict.note})"
    return "\n".join([head, *(f"  - {difference}" for difference in verdict.differences)])


def counts(verdicts: Sequence[Verdict]) -> dict[str, int]:
    return {kind: sum(v.outcome == kind for v in verdicts) for kind in OUTCOMES}


def summary_line(verdicts: Sequence[Verdict]) -> str:
    tally = counts(verdicts)
    return f"summary: {tally[OK]} ok, {tally[DRIFT]} drift, {tally[UNVERIFIED]} unverified"


def report(verdicts: Sequence[Verdict]) -> str:
    """The text ``koala-mock verify`` prints."""
    return "\n".join([*(format_verdict(v) for v in verdicts), summary_line(verdicts)])


def verdict_json(verdict: Verdict) -> dict[str, object]:
    return {
        "name": verdict.name,
        "outcome": verdict.outcome,
        "differences": list(verdict.differences),
        "note": verdict.note,
    }
