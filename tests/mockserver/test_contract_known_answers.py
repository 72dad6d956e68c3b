"""The request contract held to known answers, not only to itself.

Every case states the exact status and the exact problem text a request must get. Each runs twice:
with a plain ``dict`` of headers (the full checks) and with aiohttp's case-insensitive
``CIMultiDictProxy`` (which takes the provider fast path when it can), so neither path can drift
from the right answer even when both drift together.

The expected header values are written out from docs/PROTOCOL.md on purpose (conftest's
``PROTOCOL_HEADER_ROWS``), not taken from :func:`koala.request.build_headers`: a wrong constant
there must fail here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from conftest import PROTOCOL_HEADER_ROWS, VISITOR_ID
from multidict import CIMultiDict, CIMultiDictProxy

from mockserver.wire.contract import Problem, Verdict, _provider_payload, check_request, describe

#: The browser headers of docs/PROTOCOL.md, in wire order, plus the Content-Type aiohttp adds.
PROTOCOL_HEADERS = {
    **{name: VISITOR_ID if value is None else value for name, value in PROTOCOL_HEADER_ROWS},
    "Content-Type": "application/json",
}
#: Headers whose value is compared with one fixed string.
FIXED_HEADERS = [
    name
    for name in PROTOCOL_HEADERS
    if name not in ("Visitor-ID", "Flag-Real-Time-Data", "Content-Type")
]
BODY = {"input": "Hi", "inputHistory": ["a"], "outputHistory": ["b"], "model": "gpt-4o-mini"}
UNPROCESSABLE = "the request does not match the Koala API contract"
NOT_JSON = "the request body is not valid JSON"

Containers = Callable[[Mapping[str, str]], Mapping[str, str]]
CONTAINERS: list[Containers] = [dict, lambda h: CIMultiDictProxy(CIMultiDict(h))]
container = pytest.mark.parametrize("as_headers", CONTAINERS, ids=["dict", "CIMultiDictProxy"])


def verdict_for(
    as_headers: Containers,
    headers: Mapping[str, str] | None = None,
    body: Any = BODY,
    raw: bytes | None = None,
    strict: bool = False,
) -> Verdict:
    raw = json.dumps(body).encode() if raw is None else raw
    return check_request(
        as_headers(PROTOCOL_HEADERS if headers is None else headers), raw, strict=strict
    )


def without(name: str) -> dict[str, str]:
    return {k: v for k, v in PROTOCOL_HEADERS.items() if k != name}


def replaced(name: str, value: str) -> dict[str, str]:
    return {**PROTOCOL_HEADERS, name: value}


def messages(problems: list[Problem]) -> list[str]:
    return [p.message() for p in problems]


# -- the request as the provider sends it ---------------------------------------------------


@container
def test_the_protocol_request_passes_with_its_payload(as_headers: Containers) -> None:
    verdict = verdict_for(as_headers)
    assert (verdict.status, verdict.error, verdict.errors, verdict.warnings) == (200, None, [], [])
    assert verdict.payload == BODY
    assert verdict.ok


@container
@pytest.mark.parametrize("flag", ["true", "false"])
@pytest.mark.parametrize("in_body", [None, True, False])
def test_the_real_time_flag_agrees_with_the_body(
    as_headers: Containers, flag: str, in_body: bool | None
) -> None:
    body = dict(BODY) if in_body is None else {**BODY, "realTimeData": in_body}
    verdict = verdict_for(as_headers, replaced("Flag-Real-Time-Data", flag), body)
    agrees = in_body is None or (flag == "true") == in_body
    assert verdict.status == 200
    assert verdict.payload == body
    if agrees:
        assert verdict.warnings == []
    else:
        expected = f"{json.dumps(in_body)!r} (as realTimeData)"
        assert messages(verdict.warnings) == [
            f"header Flag-Real-Time-Data: expected {expected}, got {flag!r}"
        ]


# -- the body ---------------------------------------------------------------------------------


@container
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("input", "a string"),
        ("inputHistory", "a list of strings"),
        ("outputHistory", "a list of strings"),
        ("model", "a string"),
    ],
)
def test_every_missing_field_is_a_422_naming_it(
    as_headers: Containers, name: str, expected: str
) -> None:
    body = {k: v for k, v in BODY.items() if k != name}
    verdict = verdict_for(as_headers, body=body)
    assert (verdict.status, verdict.error) == (422, UNPROCESSABLE)
    assert messages(verdict.errors) == [
        f"{name}: expected {expected}, got nothing (the field is missing)"
    ]
    assert verdict.warnings == []
    assert verdict.payload is None


@container
@pytest.mark.parametrize("name", ["inputHistory", "outputHistory"])
@pytest.mark.parametrize("items", [[1], [None, None], [["a"]]])
def test_a_history_of_only_wrong_items_is_a_422(
    as_headers: Containers, name: str, items: list[Any]
) -> None:
    verdict = verdict_for(as_headers, body={**BODY, name: items})
    assert verdict.status == 422
    assert [p.field for p in verdict.errors] == [f"{name}[{i}]" for i in range(len(items))]


@container
def test_all_fields_missing_are_named_in_order(as_headers: Containers) -> None:
    verdict = verdict_for(as_headers, body={})
    assert verdict.status == 422
    assert [p.field for p in verdict.errors] == ["input", "inputHistory", "outputHistory", "model"]
    assert {p.got for p in verdict.errors} == {"nothing (the field is missing)"}


#: Values of every JSON type, with the text ``describe`` gives each.
WRONG_VALUES: list[tuple[Any, str]] = [
    (None, "null"),
    (True, "boolean true"),
    (False, "boolean false"),
    (4, "number 4"),
    (1.5, "number 1.5"),
    ("x", "string 'x'"),
    (["a", "b"], "a list of 2 items"),
    ({"k": 1}, "an object with 1 keys"),
]


@container
@pytest.mark.parametrize(("value", "got"), WRONG_VALUES, ids=[g for _, g in WRONG_VALUES])
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("input", "a string"),
        ("model", "a string"),
        ("inputHistory", "a list of strings"),
        ("outputHistory", "a list of strings"),
        ("realTimeData", "a boolean"),
    ],
)
def test_every_field_of_the_wrong_type_is_a_422_naming_it(
    as_headers: Containers, name: str, expected: str, value: Any, got: str
) -> None:
    right = (
        (expected == "a string" and isinstance(value, str))
        or (expected == "a boolean" and isinstance(value, bool))
        or (expected == "a list of strings" and value == ["a", "b"])
    )
    headers = PROTOCOL_HEADERS
    if name == "realTimeData" and value is True:
        headers = replaced("Flag-Real-Time-Data", "true")
    verdict = verdict_for(as_headers, headers, body={**BODY, name: value})
    if right:
        assert verdict.status == 200 and verdict.errors == [] and verdict.warnings == []
        return
    assert (verdict.status, verdict.error) == (422, UNPROCESSABLE)
    assert messages(verdict.errors) == [f"{name}: expected {expected}, got {got}"]


@container
@pytest.mark.parametrize("name", ["inputHistory", "outputHistory"])
def test_a_history_item_of_the_wrong_type_is_named_by_index(
    as_headers: Containers, name: str
) -> None:
    verdict = verdict_for(as_headers, body={**BODY, name: ["a", 2, None, "b", []]})
    assert verdict.status == 422
    assert messages(verdict.errors) == [
        f"{name}[1]: expected a string, got number 2",
        f"{name}[2]: expected a string, got null",
        f"{name}[4]: expected a string, got a list of 0 items",
    ]


@container
@pytest.mark.parametrize(("body", "got"), WRONG_VALUES[:-1], ids=[g for _, g in WRONG_VALUES[:-1]])
def test_a_body_that_is_not_an_object_is_a_422(as_headers: Containers, body: Any, got: str) -> None:
    verdict = verdict_for(as_headers, body=body)
    assert (verdict.status, verdict.error) == (422, UNPROCESSABLE)
    assert messages(verdict.errors) == [f"body: expected a JSON object, got {got}"]


@container
def test_unknown_keys_are_warnings_in_order_and_errors_when_strict(as_headers: Containers) -> None:
    body = {**BODY, "temperature": 0.2, "stream": True}
    lenient = verdict_for(as_headers, body=body)
    expected = [
        "temperature: expected no such field, got number 0.2",
        "stream: expected no such field, got boolean true",
    ]
    assert (lenient.status, lenient.errors) == (200, [])
    assert messages(lenient.warnings) == expected
    assert lenient.payload == body
    strict = verdict_for(as_headers, body=body, strict=True)
    assert (strict.status, strict.error, strict.warnings) == (422, UNPROCESSABLE, [])
    assert messages(strict.errors) == expected


@container
def test_strict_turns_header_warnings_into_errors(as_headers: Containers) -> None:
    verdict = verdict_for(as_headers, replaced("TE", "gzip"), strict=True)
    assert verdict.status == 422
    assert messages(verdict.errors) == ["header TE: expected 'trailers', got 'gzip'"]


@container
@pytest.mark.parametrize(
    ("raw", "got"),
    [
        (b"", "an empty body"),
        (b"  \n", "an empty body"),
        (b'{"input": "\xff"}', "invalid UTF-8 at byte 11"),
        (b"\xc3", "invalid UTF-8 at byte 0"),
        (b'{"a": }', "Expecting value at line 1 column 7 (char 6)"),
        (b'{"a": 1}\n{', "Extra data at line 2 column 1 (char 9)"),
        (b"[" * 100_000, "unreadable JSON (RecursionError)"),
    ],
)
def test_a_body_that_is_not_json_is_a_400_saying_why(
    as_headers: Containers, raw: bytes, got: str
) -> None:
    verdict = verdict_for(as_headers, raw=raw)
    assert (verdict.status, verdict.error) == (400, NOT_JSON)
    expected = (
        "a JSON object" if got == "an empty body" else "UTF-8 JSON" if "UTF-8" in got else "JSON"
    )
    assert messages(verdict.errors) == [f"body: expected {expected}, got {got}"]
    assert verdict.payload is None


@container
def test_whitespace_around_the_json_is_accepted(as_headers: Containers) -> None:
    verdict = verdict_for(as_headers, raw=b" " + json.dumps(BODY).encode() + b"\n")
    assert (verdict.status, verdict.warnings, verdict.payload) == (200, [], BODY)


# -- the headers ------------------------------------------------------------------------------


@container
@pytest.mark.parametrize("name", FIXED_HEADERS)
def test_every_missing_header_is_a_warning_naming_it(as_headers: Containers, name: str) -> None:
    verdict = verdict_for(as_headers, without(name))
    assert (verdict.status, verdict.errors, verdict.payload) == (200, [], BODY)
    assert messages(verdict.warnings) == [
        f"header {name}: expected {PROTOCOL_HEADERS[name]!r}, got nothing (missing)"
    ]


@container
@pytest.mark.parametrize("name", FIXED_HEADERS)
def test_every_wrong_header_value_is_a_warning_naming_it(as_headers: Containers, name: str) -> None:
    verdict = verdict_for(as_headers, replaced(name, "*/*"))
    assert verdict.status == 200
    assert messages(verdict.warnings) == [
        f"header {name}: expected {PROTOCOL_HEADERS[name]!r}, got '*/*'"
    ]


@container
@pytest.mark.parametrize("name", FIXED_HEADERS)
def test_header_values_are_compared_exactly(as_headers: Containers, name: str) -> None:
    verdict = verdict_for(as_headers, replaced(name, PROTOCOL_HEADERS[name].upper() + " "))
    assert [p.field for p in verdict.warnings] == [f"header {name}"]


@container
def test_header_names_are_case_insensitive(as_headers: Containers) -> None:
    lowered = {k.lower(): v for k, v in PROTOCOL_HEADERS.items()}
    verdict = verdict_for(as_headers, lowered)
    assert (verdict.status, verdict.warnings) == (200, [])


#: What the warning about each checked header says is expected.
EXPECTED_VALUES = {
    "Visitor-ID": "20 characters from a-z0-9",
    "Flag-Real-Time-Data": "'true' or 'false'",
    "Content-Type": "'application/json'",
}
#: Values each checked header must not have.
WRONG_VALUES = {
    "Visitor-ID": [
        "ABCDEFGHIJ0123456789",
        "abcdefghij012345678",
        "abcdefghij01234567890",
        "abcdefghij-123456789",
        "",
        " abcdefghij012345678",
    ],
    "Flag-Real-Time-Data": ["True", "FALSE", "1", "", "false "],
    "Content-Type": ["text/plain", "application/jsonx", "application/x-www-form-urlencoded"],
}


@container
@pytest.mark.parametrize(
    ("name", "value"), [(name, value) for name, values in WRONG_VALUES.items() for value in values]
)
def test_a_wrong_value_of_a_checked_header_is_a_warning(
    as_headers: Containers, name: str, value: str
) -> None:
    verdict = verdict_for(as_headers, replaced(name, value))
    assert messages(verdict.warnings) == [
        f"header {name}: expected {EXPECTED_VALUES[name]}, got {value!r}"
    ]


@container
@pytest.mark.parametrize("name", EXPECTED_VALUES)
def test_a_missing_checked_header_is_a_warning(as_headers: Containers, name: str) -> None:
    verdict = verdict_for(as_headers, without(name))
    assert messages(verdict.warnings) == [
        f"header {name}: expected {EXPECTED_VALUES[name]}, got nothing (missing)"
    ]


@container
@pytest.mark.parametrize(
    "value",
    [
        "application/json; charset=utf-8",
        "application/json;charset=utf-8; x=y",
        "Application/JSON",
        " application/json",
    ],
)
def test_content_type_parameters_and_case_are_accepted(as_headers: Containers, value: str) -> None:
    verdict = verdict_for(as_headers, replaced("Content-Type", value))
    assert (verdict.status, verdict.warnings, verdict.payload) == (200, [], BODY)


@container
def test_header_warnings_come_in_wire_order_before_body_warnings(as_headers: Containers) -> None:
    headers = {**without("Referer"), "Accept": "*/*", "Visitor-ID": "X", "TE": "gzip"}
    verdict = verdict_for(as_headers, headers, body={**BODY, "extra": 1})
    assert [p.field for p in verdict.warnings] == [
        "header Accept",
        "header Referer",
        "header TE",
        "header Visitor-ID",
        "extra",
    ]


# -- the wording --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("x" * 40, "string '" + "x" * 40 + "'"),
        ("x" * 41, "string '" + "x" * 40 + "…'"),
        ("é" * 41, "string '" + "é" * 40 + "…'"),
        (0, "number 0"),
        (-2.5e300, "number -2.5e+300"),
        ([], "a list of 0 items"),
        ({}, "an object with 0 keys"),
        (b"raw", "bytes"),  # not a JSON type: its Python type's name
    ],
)
def test_describe_names_the_type_and_shortens_strings_to_40_characters(
    value: Any, text: str
) -> None:
    assert describe(value) == text


def test_a_problem_reads_as_a_sentence_and_serialises_every_part() -> None:
    problem = Problem("input", "a string", "number 4")
    assert problem.message() == "input: expected a string, got number 4"
    assert problem.to_json() == {
        "field": "input",
        "expected": "a string",
        "got": "number 4",
        "message": "input: expected a string, got number 4",
    }


@container
def test_a_verdict_serialises_status_error_errors_and_warnings(as_headers: Containers) -> None:
    verdict = verdict_for(as_headers, replaced("TE", "x"), body={**BODY, "model": 4})
    assert verdict.to_json() == {
        "ok": False,
        "shape": "browser",
        "status": 422,
        "error": UNPROCESSABLE,
        "errors": [Problem("model", "a string", "number 4").to_json()],
        "warnings": [Problem("header TE", "'trailers'", "'x'").to_json()],
    }


# -- the fast path ----------------------------------------------------------------------------
# An optimisation, but one with a contract of its own: every request exactly as the provider
# sends it takes it (so the server's cost per request stays low), and nothing else does.

FAST_PATH_BODIES = [
    BODY,
    {**BODY, "inputHistory": [], "outputHistory": []},
    {**BODY, "inputHistory": ["a", "b"], "outputHistory": ["c", "d", "e"], "input": ""},
    {**BODY, "realTimeData": False},
]


@pytest.mark.parametrize("body", FAST_PATH_BODIES)
def test_the_providers_request_takes_the_fast_path(body: dict[str, Any]) -> None:
    headers = CIMultiDictProxy(CIMultiDict(PROTOCOL_HEADERS))
    assert _provider_payload(headers, json.dumps(body).encode()) == body


@pytest.mark.parametrize("in_body", [None, True])
def test_a_real_time_request_takes_the_fast_path(in_body: bool | None) -> None:
    body = dict(BODY) if in_body is None else {**BODY, "realTimeData": True}
    headers = CIMultiDictProxy(CIMultiDict(replaced("Flag-Real-Time-Data", "true")))
    assert _provider_payload(headers, json.dumps(body).encode()) == body


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        (PROTOCOL_HEADERS, {**BODY, "realTimeData": True}),
        (replaced("Flag-Real-Time-Data", "true"), {**BODY, "realTimeData": False}),
        (replaced("Flag-Real-Time-Data", "TRUE"), BODY),
        (replaced("Content-Type", "application/json; charset=utf-8"), BODY),
        (replaced("Visitor-ID", "X" * 20), BODY),
        (without("Visitor-ID"), BODY),
        (PROTOCOL_HEADERS, {**BODY, "extra": 1}),
        (PROTOCOL_HEADERS, {**BODY, "inputHistory": [1]}),
        (PROTOCOL_HEADERS, {**BODY, "model": None}),
    ],
)
def test_anything_else_leaves_the_fast_path(headers: dict[str, str], body: Any) -> None:
    raw = json.dumps(body).encode()
    assert _provider_payload(CIMultiDictProxy(CIMultiDict(headers)), raw) is None
    assert _provider_payload(headers, raw) is None  # a plain dict never takes it
