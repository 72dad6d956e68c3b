"""The request contract's two shapes: the browser shape and the keyed shape, side by side."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from koala import ApiKey, build_headers, build_payload, encode_payload
from koala.request import build_keyed_headers, build_keyed_payload
from mockserver.wire.contract import (
    KEYED_HEADERS,
    check_request,
    request_shape,
)

KEY = "sk-test-0123456789abcdef"
texts = st.text(max_size=30)
string_lists = st.lists(texts, max_size=4)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system", "tool"]), "content": texts}
    ),
    min_size=1,
    max_size=6,
)
models = st.one_of(st.none(), st.just(""), st.text(min_size=1, max_size=20))
#: A keyed body: ``input`` always, every other field present or not.
keyed_bodies = st.fixed_dictionaries(
    {"input": texts},
    optional={
        "inputHistory": string_lists,
        "outputHistory": string_lists,
        "realTimeData": st.booleans(),
        "model": st.text(max_size=20),
    },
)
#: Values of a type no field takes (every field takes a string, a list of strings or a bool).
wrong_values = st.one_of(
    st.integers(), st.floats(allow_nan=False), st.none(), st.dictionaries(texts, texts, max_size=2)
)


def keyed_headers(key: str = KEY, accept: str = "application/json") -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/json", "Accept": accept}


def as_container(headers: dict[str, str], case_insensitive: bool) -> Any:
    return CIMultiDictProxy(CIMultiDict(headers)) if case_insensitive else headers


# ---------------------------------------------------------------- both shapes, by hypothesis


@given(
    messages=messages,
    model=models,
    rtd=st.booleans(),
    json_reply=st.booleans(),
    ci=st.booleans(),
)
def test_what_the_provider_sends_passes_in_both_shapes_and_names_its_shape(
    messages: list[dict[str, str]], model: str | None, rtd: bool, json_reply: bool, ci: bool
) -> None:
    browser_body = encode_payload(build_payload(model, messages))
    browser = {**build_headers(None, rtd, json_reply), "Content-Type": "application/json"}
    verdict = check_request(as_container(browser, ci), browser_body)
    assert verdict.ok and verdict.warnings == [] and verdict.shape == "browser", verdict.to_json()

    keyed_body = encode_payload(build_keyed_payload(model, messages, rtd))
    keyed = {**build_keyed_headers(f"Bearer {KEY}", json_reply), "Content-Type": "application/json"}
    verdict = check_request(as_container(keyed, ci), keyed_body, api_key=ApiKey(KEY))
    assert verdict.ok and verdict.warnings == [] and verdict.shape == "keyed", verdict.to_json()
    assert verdict.payload == json.loads(keyed_body)


@given(body=keyed_bodies, ci=st.booleans(), strict=st.booleans())
def test_a_keyed_body_needs_only_input(body: dict[str, Any], ci: bool, strict: bool) -> None:
    verdict = check_request(
        as_container(keyed_headers(), ci), json.dumps(body).encode(), strict=strict
    )
    assert verdict.ok, verdict.to_json()
    assert verdict.shape == "keyed" and verdict.payload == body and verdict.warnings == []


@given(body=keyed_bodies)
def test_the_same_body_without_histories_is_a_422_in_the_browser_shape(
    body: dict[str, Any],
) -> None:
    headers = {**build_headers(), "Content-Type": "application/json"}
    verdict = check_request(headers, json.dumps(body).encode())
    missing = {"inputHistory", "outputHistory", "model"} - set(body)
    assert verdict.shape == "browser"
    assert verdict.ok == (not missing)
    assert {p.field for p in verdict.errors} == missing


@given(
    body=keyed_bodies,
    field=st.sampled_from(["input", "inputHistory", "outputHistory", "realTimeData", "model"]),
    value=wrong_values,
)
def test_a_keyed_field_of_the_wrong_type_is_a_422_naming_it(
    body: dict[str, Any], field: str, value: Any
) -> None:
    verdict = check_request(keyed_headers(), json.dumps({**body, field: value}).encode())
    assert verdict.status == 422 and verdict.shape == "keyed"
    assert [p.field for p in verdict.errors] == [field]


@given(
    body=keyed_bodies, item=wrong_values, history=st.sampled_from(["inputHistory", "outputHistory"])
)
def test_a_history_item_that_is_not_a_string_is_named_by_its_index(
    body: dict[str, Any], item: Any, history: str
) -> None:
    verdict = check_request(keyed_headers(), json.dumps({**body, history: ["ok", item]}).encode())
    assert verdict.status == 422
    assert [p.field for p in verdict.errors] == [f"{history}[1]"]


@given(
    token=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1).map(
        lambda tail: f"sk-{tail}"
    )
)
def test_any_key_passes_when_the_server_wants_none_and_only_its_own_when_it_does(
    token: str,
) -> None:
    body = b'{"input": "Hi"}'
    assert check_request(keyed_headers(token), body).ok
    verdict = check_request(keyed_headers(token), body, api_key=ApiKey(KEY))
    assert verdict.ok == (token == KEY)
    if not verdict.ok:
        assert verdict.status == 401
        assert token not in json.dumps(verdict.to_json())


# ---------------------------------------------------------------- known answers


@pytest.mark.parametrize(
    ("authorization", "got"),
    [
        ("Basic dXNlcjpwYXNz", "the scheme 'Basic'"),
        ("Bearer", "'Bearer' without a key"),
        ("Bearer    ", "'Bearer' without a key"),
        ("sk-live-no-scheme", "a value without the Bearer scheme"),
        ("abcdefKEY", "a value without the Bearer scheme"),
        ("", "an empty value"),
    ],
)
def test_a_malformed_authorization_is_a_401_that_never_quotes_the_credential(
    authorization: str, got: str
) -> None:
    headers = {**keyed_headers(), "Authorization": authorization}
    verdict = check_request(headers, b'{"input": "Hi"}')
    assert verdict.status == 401 and verdict.shape == "keyed"
    assert [p.message() for p in verdict.errors] == [
        f"header Authorization: expected 'Bearer <API key>', got {got}"
    ]
    serialised = json.dumps(verdict.to_json())
    for secret in ("dXNlcjpwYXNz", "sk-live-no-scheme", "abcdefKEY"):
        assert secret not in serialised


@given(token=st.text(min_size=1).filter(lambda t: t.strip()))
def test_any_token_a_client_sends_is_refused_with_a_401_not_an_exception(token: str) -> None:
    # aiohttp hands undecodable header bytes over as lone surrogates (b"\xff" -> "\udcff").
    headers = {**keyed_headers(), "Authorization": f"Bearer {token}"}
    verdict = check_request(headers, b'{"input": "Hi"}', api_key=ApiKey(KEY))
    assert verdict.status == 401


def test_undecodable_key_bytes_are_a_401() -> None:
    undecodable = b"\xff\xfe".decode("utf-8", "surrogateescape")
    headers = {**keyed_headers(), "Authorization": f"Bearer {undecodable}"}
    assert check_request(headers, b'{"input": "Hi"}', api_key=ApiKey(KEY)).status == 401


def test_a_wrong_key_is_a_401_saying_so_without_either_key() -> None:
    verdict = check_request(keyed_headers("sk-wrong"), b'{"input": "Hi"}', api_key=ApiKey(KEY))
    assert verdict.status == 401
    assert verdict.errors[0].message() == (
        "header Authorization: expected the API key the server was started with, got another key"
    )
    assert KEY not in json.dumps(verdict.to_json())
    assert "sk-wrong" not in json.dumps(verdict.to_json())


def test_the_key_is_checked_before_the_body() -> None:
    verdict = check_request(keyed_headers("sk-wrong"), b"not json", api_key=ApiKey(KEY))
    assert verdict.status == 401


def test_a_keyed_body_that_is_not_json_is_a_400_of_the_keyed_shape() -> None:
    verdict = check_request(keyed_headers(), b"{")
    assert (verdict.status, verdict.shape) == (400, "keyed")


def test_keyed_warnings_are_unknown_fields_and_the_content_type_only() -> None:
    headers = {**keyed_headers(), "Content-Type": "text/plain", "User-Agent": "curl/8"}
    verdict = check_request(headers, b'{"input": "Hi", "temperature": 1}')
    assert verdict.ok
    assert [p.field for p in verdict.warnings] == ["header Content-Type", "temperature"]
    strict = check_request(headers, b'{"input": "Hi", "temperature": 1}', strict=True)
    assert strict.status == 422


@pytest.mark.parametrize(
    ("headers", "key_required", "shape"),
    [
        ({"Authorization": "Bearer x"}, False, "keyed"),
        ({"authorization": "Bearer x", "Visitor-ID": "a" * 20}, False, "keyed"),
        ({"Visitor-ID": "a" * 20}, True, "browser"),
        ({}, False, "browser"),
        ({}, True, "keyed"),
        ({"Accept": "application/json"}, False, "browser"),
    ],
)
def test_the_shape_is_chosen_by_the_authorization_header(
    headers: dict[str, str], key_required: bool, shape: str
) -> None:
    assert request_shape(headers, key_required) == shape
    assert request_shape(CIMultiDictProxy(CIMultiDict(headers)), key_required) == shape


def test_with_a_key_required_a_request_without_key_or_visitor_id_is_a_missing_key() -> None:
    verdict = check_request(
        {"Content-Type": "application/json"}, b'{"input": "Hi"}', api_key=ApiKey(KEY)
    )
    assert verdict.status == 401
    assert verdict.errors[0].got == "nothing (missing)"


def test_the_browser_shape_never_needs_the_key() -> None:
    headers = CIMultiDictProxy(CIMultiDict({**build_headers(), "Content-Type": "application/json"}))
    body = encode_payload(build_payload(None, [{"role": "user", "content": "Hi"}]))
    verdict = check_request(headers, body, api_key=ApiKey(KEY))
    assert verdict.ok and verdict.shape == "browser"


def test_the_browser_shape_may_ask_for_the_json_reply_without_a_warning() -> None:
    headers = {**build_headers(json_reply=True), "Content-Type": "application/json"}
    body = encode_payload(build_payload(None, [{"role": "user", "content": "Hi"}]))
    verdict = check_request(headers, body, strict=True)
    assert verdict.ok, verdict.to_json()


def test_the_keyed_header_names_are_the_ones_the_provider_sets() -> None:
    sent = {**build_keyed_headers("Bearer k"), "Content-Type": "application/json"}
    assert sorted(sent) == sorted(KEYED_HEADERS)


def test_the_readme_fault_table_is_the_registry_with_its_json_column() -> None:
    from pathlib import Path

    from mockserver.wire.faults import FAULTS, fault_table

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert fault_table() in readme
    stream_only = [name for name, scenario in FAULTS.items() if not scenario.applies_to_json]
    assert stream_only == [
        "done_marker",
        "invalid_utf8",
        "bom",
        "huge_event",
        "crlf",
        "cr",
        "keepalive_comments",
    ]
