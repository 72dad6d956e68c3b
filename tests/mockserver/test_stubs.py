"""Stubs: answers a test sets, tried in order before cassettes; over the admin API and from
Python (``koala_mock.respond_with``)."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from aiohttp import ClientPayloadError
from conftest import HEADERS, Client, ClientFactory

from koala import Koala, KoalaConnectionError, RateLimitError, build_payload
from koala import encode_payload as encode
from mockserver import MockConfig, create_app, journal
from mockserver.testing.embedded import KoalaMock, MockAdminError
from mockserver.wire.stubs import MAX_STUBS, StubError, StubList, parse_stub

HELLO = [{"role": "user", "content": "Hello"}]
OTHER = [{"role": "user", "content": "Something else"}]


async def ask(client: Client, messages: list[dict[str, Any]] = HELLO) -> tuple[int, bytes, Any]:
    payload = encode(build_payload("gpt-4o-mini", messages))
    async with client.post("/api/gpt/", data=payload, headers=HEADERS) as response:
        body = b""
        with contextlib.suppress(ClientPayloadError):
            body = await response.read()
        return response.status, body, response.headers


async def add(client: Client, stub: dict[str, Any]) -> tuple[int, Any]:
    async with client.post("/__admin/stubs", json=stub) as response:
        return response.status, await response.json()


@pytest.fixture
async def client(aiohttp_client: ClientFactory) -> Client:
    # The bundled cassettes: "Hello" has one, so a stub visibly wins over it.
    return await aiohttp_client(create_app(MockConfig(speed=0)))


# ----------------------------------------------------------------------------- pure


def test_first_match_wins_and_times_uses_it_up() -> None:
    stubs = StubList()
    stubs.add(parse_stub({"tokens": ["a"], "when": {"input": "Hello"}, "times": 2}))
    stubs.add(parse_stub({"tokens": ["b"]}))
    assert [stubs.take({"input": "Hello"}, {}).values() for _ in range(3)] == [  # type: ignore[union-attr]
        ["a"],
        ["a"],
        ["b"],
    ]
    assert stubs.take({"input": "x"}, {}).values() == ["b"]  # type: ignore[union-attr]
    assert len(stubs) == 1


@pytest.mark.parametrize(
    ("stub", "problem"),
    [
        ({"tokens": ["a"], "text": "b"}, "not both"),
        ({"tokens": "abc"}, "tokens: expected a list"),
        ({"tokens": [float("nan")]}, "not JSON values"),
        ({"text": 5}, "text: expected a string"),
        ({"text": "x", "status": 99}, "status: expected an integer 200..599"),
        ({"text": "x", "status": True}, "status"),
        ({"tokens": [], "times": 0}, "times: expected a positive integer"),
        ({"tokens": [], "when": ["input"]}, "when: expected an object"),
        ({"tokens": [], "headers": {"X-A": 1}}, "headers: 'X-A'"),
        ({"tokens": [], "headers": {"X-A": "a\r\nInjected: 1"}}, "control character"),
        ({"tokens": [], "fault": "no_such"}, "fault: unknown fault"),
        ({"fault": "rate_limit", "status": 500}, "fault and status"),
        ({}, "give tokens"),
        ({"tokens": [], "extra": 1}, "unknown keys ['extra']"),
        ([], "a stub is a JSON object"),
    ],
)
def test_bad_stubs_are_refused_naming_the_problem(stub: Any, problem: str) -> None:
    with pytest.raises(StubError, match=problem.replace("[", r"\[").replace("(", r"\(")):
        parse_stub(stub)


def test_a_non_2xx_stub_answers_its_text_as_plain_text() -> None:
    plan = parse_stub({"status": 503, "text": "down", "headers": {"Retry-After": "3"}}).plan()
    assert (plan.status, plan.body, plan.values) == (503, b"down", None)
    assert ("Retry-After", "3") in plan.headers
    assert plan.content_type() == "text/plain; charset=utf-8"


# ----------------------------------------------------------------------------- over HTTP


async def test_a_stub_answers_before_the_cassette(client: Client) -> None:
    status, answer = await add(client, {"tokens": ["Stubbed", "!"], "when": {"input": "Hello"}})
    assert status == 201 and answer["stub"]["number"] == 1
    code, body, _ = await ask(client)
    assert code == 200 and body == b'data: "Stubbed"\n\ndata: "!"\n\n'
    code, body, _ = await ask(client, OTHER)  # when does not match: the synthetic answer
    assert code == 200 and b"Stubbed" not in body
    served = [e.served_by for e in journal(client.app).entries()]  # type: ignore[arg-type]
    assert served[0] == {"source": "stub", "stub": 1}
    assert served[1]["source"] == "synthetic"


async def test_stubs_in_order_first_match_wins_times_consumes(client: Client) -> None:
    await add(client, {"text": "first", "times": 1})
    await add(client, {"text": "second"})
    answers = [(await ask(client))[1] for _ in range(3)]
    assert answers == [b'data: "first"\n\n', b'data: "second"\n\n', b'data: "second"\n\n']
    async with client.get("/__admin/stubs") as response:
        listing = await response.json()
    assert [(s["number"], s["used"], s["remaining"]) for s in listing["stubs"]] == [(2, 2, None)]


async def test_a_stub_with_status_headers_and_fault(client: Client) -> None:
    await add(client, {"status": 429, "text": "slow down", "headers": {"Retry-After": "7"}})
    code, body, headers = await ask(client)
    assert (code, body, headers["Retry-After"]) == (429, b"slow down", "7")
    await client.delete("/__admin/stubs")
    await add(client, {"tokens": ["a", "b", "c"], "fault": "truncate;events=1"})
    assert (await ask(client))[0] == 200
    last = journal(client.app).last()  # type: ignore[arg-type]
    assert (last.events_sent, last.ending, last.fault) == (1, "close", "truncate;events=1")


async def test_a_stub_counts_as_a_match_in_replay_mode(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(create_app(MockConfig(mode="replay", speed=0)))
    assert (await ask(client, OTHER))[0] == 404
    await add(client, {"tokens": ["ok"]})
    assert (await ask(client, OTHER))[:2] == (200, b'data: "ok"\n\n')


async def test_a_bad_stub_is_a_400_naming_the_key(client: Client) -> None:
    status, answer = await add(client, {"tokens": ["a"], "times": -1})
    assert status == 400 and "times" in answer["error"]
    async with client.post(
        "/__admin/stubs", data=b"{nope", headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 400 and "not valid JSON" in (await response.json())["error"]
    # A key given twice, even in a nested object, is refused: the stub would match otherwise
    # on whichever value json.loads happened to keep.
    twice = b'{"tokens": ["a"], "when": {"input": "x", "input": "y"}}'
    async with client.post(
        "/__admin/stubs", data=twice, headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 400
        assert "key 'input' twice" in (await response.json())["error"]
    async with client.get("/__admin/stubs") as listing:
        assert (await listing.json())["stubs"] == []  # nothing was added


async def test_delete_removes_every_stub(client: Client) -> None:
    await add(client, {"tokens": ["x"]})
    await add(client, {"tokens": ["y"]})
    async with client.delete("/__admin/stubs") as response:
        assert await response.json() == {"cleared": 2}
    assert b"x" not in (await ask(client))[1]


async def test_hostile_stubs_are_400s_not_500s(client: Client) -> None:
    deep: Any = "x"
    for _ in range(200):
        deep = [deep]
    for stub, problem in (
        ({"tokens": [deep]}, "tokens: nested more than 32"),
        ({"tokens": ["x"], "when": {"inputHistory": deep}}, "when: nested more than 32"),
    ):
        status, answer = await add(client, stub)
        assert status == 400 and problem in answer["error"]
    assert (await ask(client))[0] == 200  # the server still serves


def test_a_server_holds_a_bounded_number_of_stubs() -> None:
    stubs = StubList()
    for _ in range(MAX_STUBS):
        stubs.add(parse_stub({"tokens": []}))
    with pytest.raises(StubError, match="DELETE some first"):
        stubs.add(parse_stub({"tokens": []}))
    stubs.clear()
    assert stubs.add(parse_stub({"tokens": []})).number == 1


def test_depth_counts_lists_and_objects() -> None:
    assert parse_stub({"tokens": [[[{"a": [1]}]]]}).tokens == [[[{"a": [1]}]]]
    assert parse_stub({"tokens": [nest(30)]}).tokens == [nest(30)]  # 32 levels with the list
    with pytest.raises(StubError, match="nested more than 32"):
        parse_stub({"tokens": [nest(32)]})


def nest(levels: int) -> Any:
    value: Any = 0
    for _ in range(levels):
        value = {"k": value}
    return value


# ----------------------------------------------------------------------------- from Python


def test_respond_with_through_the_provider() -> None:
    with KoalaMock(MockConfig(speed=0)) as mock:
        mock.respond_with(["Bonjour", " !"], when={"input": "Hello"}, times=1)
        url = mock.api_endpoint
        assert "".join(Koala.create_completion("gpt-4o-mini", HELLO, api_endpoint=url)) == (
            "Bonjour !"
        )
        # Used up: the cassette answers again.
        assert "".join(Koala.create_completion("gpt-4o-mini", HELLO, api_endpoint=url)).startswith(
            "Hello!"
        )
        mock.respond_with(status=429, headers={"Retry-After": "2"})
        with pytest.raises(RateLimitError) as caught:
            "".join(Koala.create_completion("gpt-4o-mini", HELLO, api_endpoint=url))
        assert caught.value.retry_after == 2
        mock.clear_stubs()
        mock.respond_with(text="partial answer", fault="disconnect;events=0")
        with pytest.raises(KoalaConnectionError):
            "".join(Koala.create_completion("gpt-4o-mini", HELLO, api_endpoint=url))
        with pytest.raises(MockAdminError, match="status"):
            mock.respond_with(["x"], status=42)
