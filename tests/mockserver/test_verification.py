"""Verification: which requests came (filters on the journal, in Python and over HTTP), the
nearest request when an assertion fails, ``/__admin/`` and ``/__admin/reset``."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import HEADERS, VISITOR_ID, Client, ClientFactory

from koala import Koala, build_payload, encode_payload
from mockserver import MockConfig, create_app
from mockserver.server.admin import ADMIN_ENDPOINTS
from mockserver.testing.embedded import ContractViolation, KoalaMock
from mockserver.testing.verification import RequestList, assert_requested, contract_failures
from mockserver.wire.request_filter import FilterError, RequestFilter, same_json


def entry(number: int, text: str, model: str = "gpt-4o-mini", **headers: str) -> dict[str, Any]:
    return {
        "number": number,
        "method": "POST",
        "path": "/api/gpt/",
        "status": 200,
        "headers": headers,
        "body": build_payload(model, [{"role": "user", "content": text}]),
    }


JOURNAL = RequestList(
    [
        entry(1, "Hello", **{"Visitor-ID": "a" * 20}),
        entry(2, "Hello", "gpt-4o-mini-2024", **{"visitor-id": "b" * 20}),
        entry(3, "Bye"),
        {"number": 4, "method": "GET", "path": "/chat", "status": 200, "headers": {}, "body": None},
    ]
)


# ----------------------------------------------------------------------------- pure


def test_matching_by_field_header_and_both() -> None:
    assert [e["number"] for e in JOURNAL.matching(input="Hello")] == [1, 2]
    assert [e["number"] for e in JOURNAL.matching(model="gpt-4o-mini")] == [1, 3]
    # Header names are case-insensitive; several pairs must all match.
    assert [e["number"] for e in JOURNAL.matching(header=("Visitor-ID", "b" * 20))] == [2]
    assert JOURNAL.matching(input="Hello", header=[("visitor-id", "a" * 20), ("X", "y")]) == []
    assert [e["number"] for e in JOURNAL.matching()] == [1, 2, 3]  # chat API requests only
    assert JOURNAL.matching(inputHistory=[], outputHistory=[]) == JOURNAL.api()


def test_json_equality_is_by_json_type() -> None:
    assert same_json(1, 1.0) and same_json([1, "a"], (1, "a")) and same_json({"a": [1]}, {"a": [1]})
    assert not same_json(True, 1) and not same_json(0, False) and not same_json("1", 1)
    assert not same_json([1], [1, 2]) and not same_json({"a": 1}, {"b": 1})
    assert not same_json(None, 0) and same_json(None, None)


def test_a_bad_filter_is_refused() -> None:
    with pytest.raises(FilterError, match="header"):
        RequestFilter.build({}, [("only-a-name",)])  # type: ignore[list-item]
    with pytest.raises(FilterError, match="header"):
        JOURNAL.matching(header=("Visitor-ID", 5))  # type: ignore[arg-type]


def test_only_an_empty_filter_is_false_and_filters_compare_by_their_rules() -> None:
    # A named tuple of two fields is true unless __bool__ says otherwise: the admin API skips
    # filtering for a false filter.
    assert not RequestFilter() and not RequestFilter.build({}, {})
    assert RequestFilter.build({"input": "Hello"}) and RequestFilter.build(None, {"X": "y"})
    assert RequestFilter.build({"input": "Hello"}) == RequestFilter((("input", "Hello"),), ())
    assert RequestFilter.build({"input": "Hello"}) != RequestFilter.build(None, {"input": "Hello"})


def test_assert_requested_passes_and_returns_the_matches() -> None:
    assert [e["number"] for e in assert_requested(JOURNAL, input="Hello")] == [1, 2]
    assert len(assert_requested(JOURNAL, times=1, input="Bye")) == 1
    assert assert_requested(JOURNAL, times=0, input="Nobody") == []


def test_assert_requested_shows_the_nearest_request_and_how_it_differs() -> None:
    with pytest.raises(AssertionError) as caught:
        assert_requested(JOURNAL, input="Bye", model="gpt-4o-mini-2024")
    assert str(caught.value).splitlines() == [
        "expected a request matching input='Bye', model='gpt-4o-mini-2024'; "
        "got 0 (of 3 chat API requests)",
        "  nearest: request #2 POST /api/gpt/ (status 200), which differs in:",
        "    input: 'Hello' != 'Bye'",
    ]


def test_assert_requested_with_times_lists_what_matched() -> None:
    with pytest.raises(AssertionError, match=r"expected 1 request .*got 2") as caught:
        assert_requested(JOURNAL, times=1, input="Hello")
    assert "matched: request #1" in str(caught.value)
    assert "matched: request #2" in str(caught.value)


def test_assert_requested_on_an_empty_journal() -> None:
    with pytest.raises(AssertionError, match="no chat API request reached the server"):
        assert_requested([], input="Hello")


def test_contract_failures_strict_and_not() -> None:
    warned = {
        **entry(1, "x"),
        "verdict": {
            "errors": [],
            "warnings": [{"field": "header Accept", "message": "header Accept: expected a, got b"}],
        },
    }
    assert contract_failures([warned]) == []
    assert contract_failures([warned], strict=True) == [
        "request #1 POST /api/gpt/ (status 200):\n  - header Accept: expected a, got b"
    ]


# ----------------------------------------------------------------------------- over HTTP


@pytest.fixture
async def client(aiohttp_client: ClientFactory) -> Client:
    client = await aiohttp_client(create_app(MockConfig(cassette_dir=None)))
    for text, model in (("Hello", "gpt-4o-mini"), ("Bye", "gpt-4o-mini"), ("Hello", "other")):
        payload = encode_payload(build_payload(model, [{"role": "user", "content": text}]))
        async with client.post("/api/gpt/", data=payload, headers=HEADERS) as response:
            await response.read()
    return client


async def numbers(client: Client, query: str) -> tuple[int, Any]:
    async with client.get(f"/__admin/requests?{query}") as response:
        answer = await response.json()
        if response.status != 200:
            return response.status, answer["error"]
        return 200, [e["number"] for e in answer["requests"]]


async def test_the_journal_filters_over_http(client: Client) -> None:
    assert await numbers(client, "input=Hello") == (200, [1, 3])
    assert await numbers(client, "input=Hello&model=other") == (200, [3])
    visitor_and_model = f"header=visitor-id:{VISITOR_ID}&model=gpt-4o-mini"
    assert await numbers(client, visitor_and_model) == (200, [1, 2])
    assert await numbers(client, "header=Visitor-ID:someone-else") == (200, [])
    assert await numbers(client, "input=Hello&limit=1") == (200, [3])


async def test_bad_journal_filters_are_400s_naming_them(client: Client) -> None:
    status, error = await numbers(client, "modle=gpt-4o-mini")
    assert status == 400 and "modle" in error
    status, error = await numbers(client, "header=no-colon")
    assert status == 400 and "Name:value" in error


async def test_admin_index_lists_every_endpoint_and_each_get_answers(client: Client) -> None:
    async with client.get("/__admin/") as response:
        assert response.status == 200
        listed = (await response.json())["endpoints"]
    assert [(e["method"], e["path"]) for e in listed] == [(m, p) for m, p, _ in ADMIN_ENDPOINTS]
    # The live page is HTML and its event stream SSE (only the headers are read); the rest JSON.
    content_types = {"/__admin/ui": "text/html", "/__admin/events": "text/event-stream"}
    for method, path, _ in ADMIN_ENDPOINTS:
        if method == "GET":
            async with client.get(path) as response:
                assert response.status == 200, path
                assert response.content_type == content_types.get(path, "application/json")


async def test_reset_clears_journal_faults_and_stubs(client: Client) -> None:
    await client.post("/__admin/faults", json={"fault": "rate_limit", "times": 2})
    await client.post("/__admin/stubs", json={"tokens": ["x"]})
    async with client.post("/__admin/reset", json={}) as response:
        assert await response.json() == {"cleared": {"requests": 3, "faults": 1, "stubs": 1}}
    async with client.get("/__admin/health") as response:
        health = await response.json()
    assert (health["requests"], health["queued_faults"], health["stubs"]) == (0, 0, 0)


# ----------------------------------------------------------------------------- KoalaMock


def test_koala_mock_verification_and_contract_check() -> None:
    hello = [{"role": "user", "content": "Hello"}]
    with KoalaMock(MockConfig(speed=0)) as mock:
        "".join(Koala.create_completion("gpt-4o-mini", hello, api_endpoint=mock.api_endpoint))
        (found,) = mock.requests.matching(input="Hello")
        visitor = found["headers"]["Visitor-ID"]
        mock.assert_requested(times=1, input="Hello", header=("Visitor-ID", visitor))
        with pytest.raises(AssertionError, match="input: 'Hello' != 'Hi'"):
            mock.assert_requested(input="Hi")
        mock.check_contract()  # the provider's request is correct
        mock.admin("POST", "/__admin/stubs", {"tokens": ["x"], "when": {"input": 5}})
        import urllib.error
        import urllib.request

        bad = urllib.request.Request(mock.api_endpoint, data=b'{"input": 5}', method="POST")
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(bad)
        with pytest.raises(ContractViolation, match=r"request #2 .*\n  - input: expected a"):
            mock.check_contract()
        mock.allow_contract_errors()
        mock.check_contract()
