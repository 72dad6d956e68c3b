"""What a valid request to ``POST /api/gpt/`` is: the rules PROTOCOL.md describes. Pure, no I/O.

The expected headers come from :func:`koala.request.build_headers`, so the client and the server
share one truth. A body that is not JSON is a 400; JSON of the wrong shape is a 422; header
deviations and unknown body keys are warnings (errors, hence a 422, when ``strict``).
"""

from __future__ import annotations

import json
import json.scanner
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy

from koala.request import VISITOR_ID_ALPHABET, VISITOR_ID_LENGTH, build_headers
from koala.response import parse_media_type

#: Headers whose values are per call (checked on their own) or set by the HTTP client.
_PER_CALL_HEADERS = {"visitor-id", "flag-real-time-data"}
_EXPECTED_HEADERS = {
    name: value
    for name, value in build_headers("0" * VISITOR_ID_LENGTH).items()
    if name.lower() not in _PER_CALL_HEADERS
}
_EXPECTED_HEADER_ITEMS = tuple(_EXPECTED_HEADERS.items())
_EXPECTED_HEADER_NAMES = tuple(_EXPECTED_HEADERS)
_EXPECTED_HEADER_VALUES = tuple(_EXPECTED_HEADERS.values())
#: koala.request.is_visitor_id as a pattern (the same constants; a regex is faster per request).
_VISITOR_ID = re.compile(f"[{re.escape(VISITOR_ID_ALPHABET)}]{{{VISITOR_ID_LENGTH}}}")
_BODY_FIELDS: dict[str, str] = {
    "input": "a string",
    "inputHistory": "a list of strings",
    "outputHistory": "a list of strings",
    "model": "a string",
}
_OPTIONAL_BODY_FIELDS = {"realTimeData": "a boolean"}
_KNOWN_BODY_FIELDS = frozenset(_BODY_FIELDS) | frozenset(_OPTIONAL_BODY_FIELDS)
_CASE_INSENSITIVE = (CIMultiDict, CIMultiDictProxy)
#: json.loads without its wrapper (which skips whitespace around the value): twice as fast.
#: (typeshed types the scanner's context as a scanner; it is the decoder whose settings it uses.)
_scan_json_value: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(
    json.JSONDecoder()  # type: ignore[arg-type]
)


@dataclass(frozen=True)
class Problem:
    """One deviation from the contract: where, what was expected, what came."""

    field: str
    expected: str
    got: str

    def message(self) -> str:
        return f"{self.field}: expected {self.expected}, got {self.got}"

    def to_json(self) -> dict[str, str]:
        return {
            "field": self.field,
            "expected": self.expected,
            "got": self.got,
            "message": self.message(),
        }


@dataclass
class Verdict:
    """The contract's answer about one request. ``status`` is 200 when it may be served."""

    status: int = 200
    error: str | None = None
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    payload: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "status": self.status,
            "error": self.error,
            "errors": [p.to_json() for p in self.errors],
            "warnings": [p.to_json() for p in self.warnings],
        }


#: The verdict about a request the contract has nothing to say about (never mutated).
PASSED = Verdict()


def describe(value: Any) -> str:
    """A short name of a JSON value's type and, for scalars, the value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:40] + "…"
        return f"string {shown!r}"
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    if isinstance(value, dict):
        return f"an object with {len(value)} keys"
    return type(value).__name__


def parse_body(raw: bytes) -> tuple[Any, Problem | None]:
    """The JSON value of ``raw``, or a problem saying why it is not JSON (a 400)."""
    if not raw.strip():
        return None, Problem("body", "a JSON object", "an empty body")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, Problem("body", "UTF-8 JSON", f"invalid UTF-8 at byte {exc.start}")
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, Problem(
            "body", "JSON", f"{exc.msg} at line {exc.lineno} column {exc.colno} (char {exc.pos})"
        )
    except (RecursionError, ValueError) as exc:  # absurd nesting, huge numbers
        return None, Problem("body", "JSON", f"unreadable JSON ({type(exc).__name__})")


def check_payload(body: Any) -> tuple[list[Problem], list[Problem]]:
    """Errors and warnings about the decoded body."""
    if not isinstance(body, dict):
        return [Problem("body", "a JSON object", describe(body))], []
    errors: list[Problem] = []
    for name, expected in _BODY_FIELDS.items():
        if name not in body:
            errors.append(Problem(name, expected, "nothing (the field is missing)"))
            continue
        value = body[name]
        if expected == "a string":
            if not isinstance(value, str):
                errors.append(Problem(name, expected, describe(value)))
        elif not isinstance(value, list):
            errors.append(Problem(name, expected, describe(value)))
        else:
            errors.extend(
                Problem(f"{name}[{index}]", "a string", describe(item))
                for index, item in enumerate(value)
                if not isinstance(item, str)
            )
    if "realTimeData" in body and not isinstance(body["realTimeData"], bool):
        errors.append(
            Problem(
                "realTimeData",
                _OPTIONAL_BODY_FIELDS["realTimeData"],
                describe(body["realTimeData"]),
            )
        )
    known = _KNOWN_BODY_FIELDS
    warnings = [
        Problem(str(name), "no such field", describe(body[name]))
        for name in body
        if name not in known
    ]
    return errors, warnings


def check_headers(headers: Mapping[str, str], payload: Any = None) -> list[Problem]:
    """Deviations of ``headers`` from the browser headers the provider sends."""
    # Header names are case-insensitive; aiohttp's request headers already are.
    lowered = headers if isinstance(headers, _CASE_INSENSITIVE) else CIMultiDict(headers)
    get = lowered.get
    problems: list[Problem] = []
    for name, expected in _EXPECTED_HEADER_ITEMS:
        got = get(name)
        if got != expected:
            shown = "nothing (missing)" if got is None else repr(got)
            problems.append(Problem(f"header {name}", repr(expected), shown))
    visitor_id = lowered.get("visitor-id")
    if visitor_id is None:
        problems.append(
            Problem("header Visitor-ID", "20 characters from a-z0-9", "nothing (missing)")
        )
    elif _VISITOR_ID.fullmatch(visitor_id) is None:
        problems.append(Problem("header Visitor-ID", "20 characters from a-z0-9", repr(visitor_id)))
    flag = lowered.get("flag-real-time-data")
    if flag is None:
        problems.append(
            Problem("header Flag-Real-Time-Data", "'true' or 'false'", "nothing (missing)")
        )
    elif flag not in ("true", "false"):
        problems.append(Problem("header Flag-Real-Time-Data", "'true' or 'false'", repr(flag)))
    elif isinstance(payload, dict) and isinstance(payload.get("realTimeData"), bool):
        in_body = "true" if payload["realTimeData"] else "false"
        if flag != in_body:
            problems.append(
                Problem("header Flag-Real-Time-Data", f"{in_body!r} (as realTimeData)", repr(flag))
            )
    content_type = lowered.get("content-type")
    if content_type is None:
        problems.append(Problem("header Content-Type", "'application/json'", "nothing (missing)"))
    elif not parse_media_type(content_type).is_json:
        problems.append(Problem("header Content-Type", "'application/json'", repr(content_type)))
    return problems


def check_request(headers: Mapping[str, str], raw_body: bytes, *, strict: bool = False) -> Verdict:
    """The full verdict: 400 for a body that is not JSON, 422 for a wrong shape, else 200."""
    payload = _provider_payload(headers, raw_body)
    if payload is not None:
        return Verdict(200, None, [], [], payload)
    body, not_json = parse_body(raw_body)
    if not_json is not None:
        return Verdict(400, "the request body is not valid JSON", errors=[not_json])
    errors, warnings = check_payload(body)
    warnings = check_headers(headers, body) + warnings
    if strict:
        errors, warnings = errors + warnings, []
    if errors:
        return Verdict(422, "the request does not match the Koala API contract", errors, warnings)
    return Verdict(200, None, [], warnings, body)


def _provider_payload(headers: Mapping[str, str], raw_body: bytes) -> dict[str, Any] | None:
    """Fast path: the payload of a request exactly as the provider sends it, else None.

    None is no verdict: the full checks then run (and find the problem). Everything accepted
    here passes them without a warning, so both paths give the same verdict.
    """
    if not isinstance(headers, _CASE_INSENSITIVE):
        return None
    get = headers.get
    if tuple(map(get, _EXPECTED_HEADER_NAMES)) != _EXPECTED_HEADER_VALUES:
        return None
    visitor_id = get("visitor-id")
    if visitor_id is None or _VISITOR_ID.fullmatch(visitor_id) is None:
        return None
    if get("content-type") != "application/json":
        return None
    try:
        text = raw_body.decode("utf-8")
        body, end = _scan_json_value(text, 0)
    except (ValueError, RecursionError, StopIteration):  # StopIteration: no value at 0
        return None
    if end != len(text) or not _is_provider_payload(body):
        return None
    flag = get("flag-real-time-data")
    in_body = body.get("realTimeData")
    if flag == "false":
        return body if in_body is None or in_body is False else None
    if flag == "true":
        return body if in_body is None or in_body is True else None
    return None


def _is_provider_payload(body: Any) -> bool:
    """The body's shape is valid and has no unknown keys (exact JSON types, so no subclasses)."""
    return (
        type(body) is dict
        and body.keys() <= _KNOWN_BODY_FIELDS
        and type(body.get("input")) is str
        and type(body.get("model")) is str
        and _is_string_list(body.get("inputHistory"))
        and _is_string_list(body.get("outputHistory"))
        and type(body.get("realTimeData", False)) is bool
    )


def _is_string_list(value: Any) -> bool:
    return type(value) is list and all(type(item) is str for item in value)
