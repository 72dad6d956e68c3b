"""The request contract (pure): what the provider builds passes; every deviation is named."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import HEADERS
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from koala import build_headers, build_payload, encode_payload
from koala.api_key import ApiKey
from koala.request import VISITOR_ID_ALPHABET, is_visitor_id
from mockserver.wire.contract import VerdictMemo, check_headers, check_payload, check_request

texts = st.text(max_size=30)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system", "tool"]), "content": texts}
    ),
    min_size=1,
    max_size=8,
)


@given(messages=messages, model=st.sampled_from([None, "", "gpt-4o-mini"]), rtd=st.booleans())
def test_what_the_provider_builds_passes_without_warnings(
    messages: list[dict[str, str]], model: str | None, rtd: bool
) -> None:
    payload = build_payload(model, messages)
    headers = {**build_headers(real_time_data=rtd), "Content-Type": "application/json"}
    verdict = check_request(headers, encode_payload(payload))
    assert verdict.ok, verdict.to_json()
    assert verdict.warnings == []
    assert verdict.payload == payload


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children, max_size=3),
    max_leaves=10,
)


@given(field=st.sampled_from(["input", "model"]), value=json_values)
def test_a_non_string_field_is_named(field: str, value: Any) -> None:
    if isinstance(value, str):
        return
    body = {**build_payload(None, [{"role": "user", "content": "x"}]), field: value}
    verdict = check_request(HEADERS, json.dumps(body).encode())
    assert verdict.status == 422
    assert [p.field for p in verdict.errors] == [field]
    assert field in verdict.errors[0].message()


@given(body=json_values)
def test_any_json_is_either_valid_or_a_422_never_a_crash(body: Any) -> None:
    verdict = check_request(HEADERS, json.dumps(body).encode())
    assert verdict.status in (200, 422)
    assert (verdict.status == 422) == bool(verdict.errors)


@given(raw=st.binary(max_size=60))
def test_any_bytes_get_a_verdict(raw: bytes) -> None:
    verdict = check_request(HEADERS, raw)
    assert verdict.status in (200, 400, 422)
    if verdict.status == 400:
        assert verdict.errors[0].field == "body"


@pytest.mark.parametrize(
    ("raw", "got"),
    [
        (b"", "an empty body"),
        (b"\xff{}", "invalid UTF-8 at byte 0"),
        (b"[" * 100_000, "unreadable JSON"),
        (b'{"a": }', "Expecting value"),
    ],
)
def test_bodies_that_are_not_json_are_400(raw: bytes, got: str) -> None:
    verdict = check_request(HEADERS, raw)
    assert verdict.status == 400
    assert got in verdict.errors[0].got


def test_unknown_body_keys_are_warnings_and_strict_errors() -> None:
    body = {**build_payload(None, [{"role": "user", "content": "x"}]), "temperature": 0.2}
    lenient = check_request(HEADERS, json.dumps(body).encode())
    assert lenient.ok and [w.field for w in lenient.warnings] == ["temperature"]
    strict = check_request(HEADERS, json.dumps(body).encode(), strict=True)
    assert strict.status == 422 and [e.field for e in strict.errors] == ["temperature"]


def test_header_checks() -> None:
    assert check_headers(HEADERS) == []
    lowered = {k.lower(): v for k, v in HEADERS.items()}
    assert check_headers(lowered) == []  # header names are case-insensitive
    headers = {**HEADERS, "Visitor-ID": "ABCDEFGHIJ0123456789", "TE": "gzip"}
    del headers["Referer"]
    fields = {p.field for p in check_headers(headers)}
    assert fields == {"header Visitor-ID", "header TE", "header Referer"}
    flag = {**HEADERS, "Flag-Real-Time-Data": "false"}
    problems = check_headers(flag, {"realTimeData": True})
    assert [p.field for p in problems] == ["header Flag-Real-Time-Data"]


def test_a_list_item_of_the_wrong_type_is_named_by_index() -> None:
    errors, _ = check_payload(
        {"input": "", "inputHistory": ["a", 2], "outputHistory": [], "model": ""}
    )
    assert [(e.field, e.got) for e in errors] == [("inputHistory[1]", "number 2")]


@given(
    value=st.text(alphabet=VISITOR_ID_ALPHABET, min_size=19, max_size=21)
    | st.text(alphabet="abcxyz019AZ-_ \n", max_size=22)
    | st.text(max_size=22)
)
def test_visitor_id_check_is_the_clients(value: str) -> None:
    headers = {**HEADERS, "Visitor-ID": value}
    flagged = any(p.field == "header Visitor-ID" for p in check_headers(headers))
    assert flagged == (not is_visitor_id(value))


def _verdict_json(headers: Any, raw: bytes) -> dict[str, Any]:
    verdict = check_request(headers, raw)
    return {**verdict.to_json(), "payload": verdict.payload}


#: Ways a request can differ from the provider's: (where, name, value); None removes it.
DEVIATIONS = [
    ("header", "Flag-Real-Time-Data", "true"),
    ("header", "Flag-Real-Time-Data", "True"),
    ("header", "Flag-Real-Time-Data", None),
    ("header", "Visitor-ID", "ABCDEFGHIJ0123456789"),
    ("header", "Visitor-ID", None),
    ("header", "Content-Type", "application/json; charset=utf-8"),
    ("header", "Content-Type", None),
    ("header", "Accept", "*/*"),
    ("header", "Accept", None),
    ("body", "realTimeData", True),
    ("body", "realTimeData", False),
    ("body", "realTimeData", 1),
    ("body", "input", None),
    ("body", "model", 4),
    ("body", "inputHistory", ["a", 1]),
    ("body", "extra", "x"),
]


def deviate(
    headers: dict[str, Any], body: dict[str, Any], deviations: list[tuple[str, str, Any]]
) -> None:
    """Apply ``deviations`` (see :data:`DEVIATIONS`) to a request's headers and body."""
    for where, name, value in deviations:
        target = headers if where == "header" else body
        if value is None:
            target.pop(name, None)
        else:
            target[name] = value


@given(
    deviations=st.lists(st.sampled_from(DEVIATIONS), max_size=3),
    messages=messages,
    padding=st.sampled_from([(b"", b""), (b" ", b""), (b"", b"\n"), (b"", b"x")]),
)
def test_the_provider_fast_path_gives_the_full_checks_verdict(
    deviations: list[tuple[str, str, Any]],
    messages: list[dict[str, str]],
    padding: tuple[bytes, bytes],
) -> None:
    """Requests as the provider sends them and near misses: same verdict on either path."""
    headers: dict[str, Any] = dict(HEADERS)
    body: dict[str, Any] = build_payload("gpt-4o-mini", messages)
    deviate(headers, body, deviations)
    raw = padding[0] + encode_payload(body) + padding[1]
    fast = CIMultiDictProxy(CIMultiDict(headers))  # eligible for the fast path
    assert _verdict_json(fast, raw) == _verdict_json(headers, raw)  # a dict: the full checks


@given(
    requests=st.lists(
        st.tuples(
            st.lists(st.sampled_from(DEVIATIONS), max_size=2),
            st.sampled_from(["hello", "other", ""]),
            st.one_of(
                st.just(None), st.text(alphabet=VISITOR_ID_ALPHABET, min_size=20, max_size=20)
            ),
            st.booleans(),
        ),
        min_size=1,
        max_size=12,
    ),
    capacity=st.sampled_from([1, 2, 1024]),
    authorization=st.sampled_from([None, "Bearer key-one-1234", "Bearer other-5678", "Basic x"]),
    api_key=st.sampled_from([None, "key-one-1234"]),
)
def test_memoised_verdicts_equal_a_fresh_check_of_every_request(
    requests: list[tuple[list[tuple[str, str, Any]], str, str | None, bool]],
    capacity: int,
    authorization: str | None,
    api_key: str | None,
) -> None:
    """Repeated shapes (a new valid Visitor-ID each time, too) get the verdict a check gives."""
    memo = VerdictMemo(capacity=capacity)
    key = ApiKey(api_key) if api_key is not None else None
    for number, (deviations, prompt, visitor_id, strict) in enumerate(requests):
        headers: dict[str, Any] = dict(HEADERS)
        if visitor_id is not None:
            headers["Visitor-ID"] = visitor_id
        if authorization is not None and number % 2:
            headers["Authorization"] = authorization
        body: dict[str, Any] = build_payload("gpt-4o-mini", [{"role": "user", "content": prompt}])
        deviate(headers, body, deviations)
        raw = encode_payload(body)
        fresh = CIMultiDictProxy(CIMultiDict(headers))
        memoised = memo.check(fresh, raw, strict=strict, api_key=key)
        expected = check_request(fresh, raw, strict=strict, api_key=key)
        assert memoised.to_json() == expected.to_json()
        assert memoised.payload == expected.payload
        assert len(memo) <= capacity


def test_the_memo_reuses_a_verdict_for_a_new_visitor_id_but_not_for_a_bad_one() -> None:
    memo = VerdictMemo()
    raw = encode_payload(build_payload("gpt-4o-mini", [{"role": "user", "content": "hi"}]))
    first = memo.check(CIMultiDictProxy(CIMultiDict(HEADERS)), raw)
    other_id = {**HEADERS, "Visitor-ID": "zzzzzzzzzz0123456789"}
    assert memo.check(CIMultiDictProxy(CIMultiDict(other_id)), raw) is first
    bad_id = {**HEADERS, "Visitor-ID": "not-an-id"}
    bad = memo.check(CIMultiDictProxy(CIMultiDict(bad_id)), raw)
    assert bad is not first and "'not-an-id'" in json.dumps(bad.to_json())
    assert len(memo) == 2
