"""What a valid request to ``POST /api/gpt/`` is: the rules docs/PROTOCOL.md describes. Pure.

Two shapes (:func:`request_shape`): the **browser** shape the provider sends (browser headers,
a Visitor-ID, all four body fields), and the **keyed** shape of API-key clients
(``Authorization: Bearer``, ``input`` required, the other fields optional). The browser headers
come from :func:`koala.request.build_headers`, so the client and the server share one truth.

A missing or refused key is a 401 (keyed shape); a body that is not JSON is a 400; JSON of the
wrong shape is a 422; header deviations and unknown body keys are warnings (errors, hence a 422,
when ``strict``).
"""

from __future__ import annotations

import json
import json.scanner
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, NamedTuple

from multidict import CIMultiDict, CIMultiDictProxy, istr

from koala.api_key import ApiKey
from koala.request import VISITOR_ID_ALPHABET, VISITOR_ID_LENGTH, build_headers
from koala.response import parse_media_type

__all__ = [
    "BROWSER",
    "KEYED",
    "KEYED_HEADERS",
    "PASSED",
    "PASSED_KEYED",
    "Problem",
    "Shape",
    "Verdict",
    "VerdictMemo",
    "check_authorization",
    "check_headers",
    "check_payload",
    "check_request",
    "describe",
    "parse_body",
    "passed",
    "request_shape",
]

Shape = Literal["browser", "keyed"]
BROWSER: Shape = "browser"
KEYED: Shape = "keyed"
#: The headers a keyed client sends (besides what its HTTP library adds: Host, User-Agent,
#: Content-Length, Accept-Encoding). Shared with the recorder, which keeps these names.
KEYED_HEADERS = ("Authorization", "Content-Type", "Accept")

#: Headers whose values are per call (checked on their own) or set by the HTTP client.
_PER_CALL_HEADERS = {"visitor-id", "flag-real-time-data"}
_EXPECTED_HEADERS = {
    name: value
    for name, value in build_headers("0" * VISITOR_ID_LENGTH).items()
    if name.lower() not in _PER_CALL_HEADERS
}
#: Accept may also ask for the JSON reply (the provider's ``json_reply=True``).
_ACCEPTED_VALUES = {"accept": ("text/event-stream", "application/json")}
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
#: The keyed shape: ``input`` required, the rest optional.
_KEYED_REQUIRED_FIELDS = ("input",)
_KNOWN_BODY_FIELDS = frozenset(_BODY_FIELDS) | frozenset(_OPTIONAL_BODY_FIELDS)
_CASE_INSENSITIVE = (CIMultiDict, CIMultiDictProxy)
#: json.loads without its wrapper (which skips whitespace around the value): twice as fast.
#: (typeshed types the scanner's context as a scanner; it is the decoder whose settings it uses.)
_scan_json_value: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(
    json.JSONDecoder()  # type: ignore[arg-type]
)


class Problem(NamedTuple):
    """One deviation from the contract: where, what was expected, what came (immutable; as
    JSON, :meth:`to_json`'s object)."""

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


class Verdict(NamedTuple):
    """The contract's answer about one request. ``status`` is 200 when it may be served.

    Immutable, so that one :data:`PASSED` can stand for every request without a problem (a
    named tuple rather than a frozen dataclass, which costs ``serve`` ten times as much to
    define at import). As JSON: :meth:`to_json`'s object.
    """

    status: int = 200
    error: str | None = None
    #: Lists in a verdict check_request made for one request; empty tuples in :data:`PASSED`.
    errors: Sequence[Problem] = ()
    warnings: Sequence[Problem] = ()
    payload: dict[str, Any] | None = None
    #: The shape the request was checked against.
    shape: Shape = BROWSER

    @property
    def ok(self) -> bool:
        return self.status == 200

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "shape": self.shape,
            "status": self.status,
            "error": self.error,
            "errors": [p.to_json() for p in self.errors],
            "warnings": [p.to_json() for p in self.warnings],
        }


#: The verdict about a request the contract has nothing to say about (shared by their entries).
PASSED = Verdict()
PASSED_KEYED = Verdict(shape=KEYED)


def passed(shape: Shape) -> Verdict:
    """The shared verdict without problems for ``shape`` (journal entries keep it, not a copy)."""
    return PASSED if shape == BROWSER else PASSED_KEYED


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


def check_payload(body: Any, shape: Shape = BROWSER) -> tuple[list[Problem], list[Problem]]:
    """Errors and warnings about the decoded body (every field is required in the browser shape,
    only ``input`` in the keyed shape; a field that is present has its type checked)."""
    if not isinstance(body, dict):
        return [Problem("body", "a JSON object", describe(body))], []
    required = _BODY_FIELDS if shape == BROWSER else _KEYED_REQUIRED_FIELDS
    errors: list[Problem] = []
    for name, expected in _BODY_FIELDS.items():
        if name not in body:
            if name in required:
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
        if got != expected and got not in _ACCEPTED_VALUES.get(name.lower(), ()):
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
    problems.extend(_content_type_problems(lowered))
    return problems


def _content_type_problems(headers: Mapping[str, str]) -> list[Problem]:
    content_type = headers.get("content-type")
    if content_type is None:
        return [Problem("header Content-Type", "'application/json'", "nothing (missing)")]
    if not parse_media_type(content_type).is_json:
        return [Problem("header Content-Type", "'application/json'", repr(content_type))]
    return []


def request_shape(headers: Mapping[str, str], key_required: bool = False) -> Shape:
    """Which shape a request is checked against.

    A request with an ``Authorization`` header is keyed. When the server requires a key, a
    request with neither a key nor a Visitor-ID is keyed too (a keyed client that forgot its
    key, answered with a 401). Everything else is the browser shape.
    """
    lowered = headers if isinstance(headers, _CASE_INSENSITIVE) else CIMultiDict(headers)
    if "authorization" in lowered:
        return KEYED
    if key_required and "visitor-id" not in lowered:
        return KEYED
    return BROWSER


_OTHER_SCHEMES = {"basic", "digest", "token", "apikey", "negotiate", "hoba", "mutual"}


def check_authorization(headers: Mapping[str, str], api_key: ApiKey | None) -> Problem | None:
    """Why the keyed request's credential is refused (a 401), or None.

    Without a configured key any non-empty Bearer token passes. A problem never quotes the
    token: it may be a real key sent to the wrong place.
    """
    lowered = headers if isinstance(headers, _CASE_INSENSITIVE) else CIMultiDict(headers)
    value = lowered.get("authorization")
    expected = "'Bearer <API key>'"
    if value is None:
        return Problem("header Authorization", expected, "nothing (missing)")
    if not value.strip():
        return Problem("header Authorization", expected, "an empty value")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        # Only a well-known scheme is named: anything else may be the key itself.
        known = scheme if scheme.lower() in _OTHER_SCHEMES else None
        shown = f"the scheme {known!r}" if known else "a value without the Bearer scheme"
        return Problem("header Authorization", expected, shown)
    token = token.strip()
    if not token:
        return Problem("header Authorization", expected, "'Bearer' without a key")
    if api_key is not None and not api_key.matches(token):
        return Problem(
            "header Authorization", "the API key the server was started with", "another key"
        )
    return None


def check_request(
    headers: Mapping[str, str],
    raw_body: bytes,
    *,
    strict: bool = False,
    api_key: ApiKey | None = None,
) -> Verdict:
    """The full verdict: 401 for a refused key, 400 for a body that is not JSON, 422 for a
    wrong shape, else 200. ``api_key``: the key keyed requests must carry (None: any key)."""
    payload = _provider_payload(headers, raw_body)
    if payload is not None:
        return Verdict(200, None, [], [], payload)
    shape = request_shape(headers, api_key is not None)
    if shape == KEYED:
        refused = check_authorization(headers, api_key)
        if refused is not None:
            return Verdict(401, "the API key is missing or not valid", [refused], shape=KEYED)
    body, not_json = parse_body(raw_body)
    if not_json is not None:
        return Verdict(400, "the request body is not valid JSON", [not_json], shape=shape)
    errors, warnings = check_payload(body, shape)
    if shape == BROWSER:
        warnings = check_headers(headers, body) + warnings
    else:
        lowered = headers if isinstance(headers, _CASE_INSENSITIVE) else CIMultiDict(headers)
        warnings = _content_type_problems(lowered) + warnings
    if strict:
        errors, warnings = errors + warnings, []
    if errors:
        return Verdict(
            422, "the request does not match the Koala API contract", errors, warnings, None, shape
        )
    return Verdict(200, None, [], warnings, body, shape)


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
    if "authorization" in headers:  # the keyed shape, checked by the full path
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


#: The headers the contract reads (besides Visitor-ID, whose value only matters when invalid).
_CONTRACT_HEADER_NAMES = (*_EXPECTED_HEADER_NAMES, "flag-real-time-data", "content-type")
# The memo's lookups by case-insensitive name: a multidict looks an istr up without folding its
# case again (about half the cost of a str per lookup).
_CONTRACT_HEADER_KEYS = tuple(map(istr, _CONTRACT_HEADER_NAMES))
_AUTHORIZATION_KEY = istr("authorization")
_VISITOR_ID_KEY = istr("visitor-id")


class VerdictMemo:
    """:func:`check_request` for repeated request shapes: a verdict is a pure function of the
    body's bytes, ``strict``, whether a key is required and the headers the contract reads, so
    the verdict of an earlier request with the same ones is reused (a valid Visitor-ID, new on
    every provider call, counts as one shape). Every request is still compared with its shape in
    full. Keyed requests (an ``Authorization`` header) are always checked afresh, so no
    credential is kept. Bounded: at most ``capacity`` shapes, the oldest forgotten first. Never
    mutate a verdict it returns.
    """

    def __init__(self, capacity: int = 1024, max_body: int = 64 * 1024) -> None:
        self.capacity = capacity
        self.max_body = max_body
        self._verdicts: dict[tuple[Any, ...], Verdict] = {}

    def check(
        self,
        headers: Mapping[str, str],
        raw_body: bytes,
        *,
        strict: bool = False,
        api_key: ApiKey | None = None,
    ) -> Verdict:
        shape = self.shape_of(headers, raw_body, strict=strict, api_key=api_key)
        return self.verdict_for(shape, headers, raw_body, strict=strict, api_key=api_key)

    def shape_of(
        self,
        headers: Mapping[str, str],
        raw_body: bytes,
        *,
        strict: bool = False,
        api_key: ApiKey | None = None,
    ) -> tuple[Any, ...] | None:
        """What the request's verdict is a function of (the memo's key); None when it is not
        memoised: a keyed request, a body over ``max_body``, headers that are not a multidict."""
        if (
            not isinstance(headers, _CASE_INSENSITIVE)
            or len(raw_body) > self.max_body
            or _AUTHORIZATION_KEY in headers
        ):
            return None
        get = headers.get
        visitor_id = get(_VISITOR_ID_KEY)
        valid_id = visitor_id is not None and _VISITOR_ID.fullmatch(visitor_id) is not None
        return (
            raw_body,
            strict,
            api_key is not None,
            True if valid_id else visitor_id,
            *map(get, _CONTRACT_HEADER_KEYS),
        )

    def verdict_for(
        self,
        shape: tuple[Any, ...] | None,
        headers: Mapping[str, str],
        raw_body: bytes,
        *,
        strict: bool = False,
        api_key: ApiKey | None = None,
    ) -> Verdict:
        """The verdict of a request whose :meth:`shape_of` is ``shape`` (None: checked afresh)."""
        if shape is None:
            return check_request(headers, raw_body, strict=strict, api_key=api_key)
        verdict = self._verdicts.get(shape)
        if verdict is None:
            verdict = check_request(headers, raw_body, strict=strict, api_key=api_key)
            if len(self._verdicts) >= self.capacity:
                del self._verdicts[next(iter(self._verdicts))]
            self._verdicts[shape] = verdict
        return verdict

    def __len__(self) -> int:
        return len(self._verdicts)
