"""The chat API's shortcuts say exactly what the longer paths they replace say."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from conftest import HEADERS, PAYLOAD, Client, ClientFactory

from koala import build_payload, encode_payload
from koala.api_key import ApiKey
from koala.response import parse_media_type
from mockserver import MockConfig, create_app
from mockserver.cli.main import SERVING_GC_THRESHOLD, tune_garbage_collector
from mockserver.config import DEFAULT_CASSETTE_DIR
from mockserver.server import access_log
from mockserver.server import endpoint as endpoint_module
from mockserver.server.access_log import format_text, log_record, text_line
from mockserver.server.decisions import Decision, DecisionMemo
from mockserver.server.http_errors import CURRENT_ENTRY
from mockserver.server.journal import Journal, JournalEntry
from mockserver.server.state import CONFIG, JOURNAL
from mockserver.wire.contract import Problem, Verdict
from mockserver.wire.json_answer import is_json_answer, is_stream_answer, wants_json
from mockserver.wire.plan import ResponsePlan, Write

WARNED = Verdict(200, None, [], [Problem("header Origin", "https://koala.sh", "none")], {})


def _entry(case: int) -> JournalEntry:
    entry = Journal().start("POST", "/api/gpt/", {})
    if case == 0:
        entry.served_by = {"source": "cassette", "cassette": "greeting", "interaction": 0}
        entry.sent(345)
        entry.finish("eof")
    elif case == 1:
        entry.served_by = {"source": "fault", "fault": "stall;x=a\nb", "seed": 7}
        entry.client_disconnected = True
        entry.finish("client_disconnected")
    elif case == 2:
        entry.served_by = {"source": "synthetic"}
        entry.contract_verdict = WARNED
    return entry


@pytest.mark.parametrize("case", [0, 1, 2, 3])
@pytest.mark.parametrize("seconds", [0.0, 0.00104999, 0.00005, 1.23456, 61.0])
@pytest.mark.parametrize("path", ["/api/gpt/", "/x%0Ay%0D%0APOST%20/forged"])
def test_the_text_line_is_the_record_formatted(case: int, seconds: float, path: str) -> None:
    request = make_mocked_request("POST", path)
    response = web.Response(status=418 if case == 3 else 200, body=b"12345")
    # Case 3: no journal entry (an admin request).
    token = CURRENT_ENTRY.set(_entry(case) if case != 3 else None)
    try:
        expected = format_text(log_record(request, response, seconds))
        assert text_line(request, response, seconds) == expected
        assert "\n" not in expected and "\r" not in expected
    finally:
        CURRENT_ENTRY.reset(token)


def _wants_json_longhand(accept: str) -> bool:
    media_types = {parse_media_type(part).essence for part in accept.split(",")}
    return "application/json" in media_types and "text/event-stream" not in media_types


@pytest.mark.parametrize(
    "accept",
    [
        "text/event-stream",
        "application/json",
        "Application/JSON; q=0.9",
        "application/json, text/event-stream",
        "*/*",
        "application/json;charset=utf-8, text/plain",
    ],
)
def test_wants_json_is_the_same_on_every_call(accept: str) -> None:
    for _ in range(3):  # the first call fills the memo, the others read it
        assert wants_json({"Accept": accept}) is _wants_json_longhand(accept)
    assert wants_json({}) is False


@pytest.mark.parametrize(
    ("content_type", "json_answer", "stream_answer"),
    [
        ("application/json; charset=utf-8", True, False),
        ("text/event-stream", False, True),
        ("Text/Event-Stream; charset=UTF-8", False, True),
        ("text/html", False, False),
    ],
)
def test_plans_are_classified_by_their_content_type(
    content_type: str, json_answer: bool, stream_answer: bool
) -> None:
    plan = ResponsePlan(
        headers=(("content-type", content_type),), writes=(Write(b"x"),), values=["x"]
    )
    for _ in range(2):
        assert plan.content_type() == content_type
        assert is_json_answer(plan) is json_answer
        assert is_stream_answer(plan) is stream_answer
    assert ResponsePlan(headers=()).content_type() == ""


def test_serve_tunes_the_collector_and_create_app_does_not() -> None:
    before, threshold = gc.get_freeze_count(), gc.get_threshold()
    create_app(MockConfig(cassette_dir=None))
    assert (gc.get_freeze_count(), gc.get_threshold()) == (before, threshold)
    try:
        tune_garbage_collector()
        assert gc.get_freeze_count() > before
        assert gc.get_threshold() == (SERVING_GC_THRESHOLD, *threshold[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


# -- the answer decided once for a repeated request (mockserver.server.decisions) --------------

HELLO = build_payload("gpt-4o-mini", [{"role": "user", "content": "Hello"}])
UNRECORDED = build_payload("gpt-4o-mini", [{"role": "user", "content": "never recorded"}])


class _CountingMemo(DecisionMemo):
    """A :class:`DecisionMemo` that counts the decisions it gives again."""

    hits = 0

    def get(self, *args: Any) -> Decision | None:
        decision = super().get(*args)
        if decision is not None:
            type(self).hits += 1
        return decision


@pytest.fixture
def counting_memo(monkeypatch: pytest.MonkeyPatch) -> type[_CountingMemo]:
    counting = type("Counting", (_CountingMemo,), {"hits": 0})
    monkeypatch.setattr(endpoint_module, "DecisionMemo", counting)
    return counting


async def _exchange(client: Client, payload: Any, **headers: str) -> tuple[Any, ...]:
    """What a client and the journal see of one request, less what differs per request."""
    async with client.post(
        "/api/gpt/", data=encode_payload(payload), headers={**HEADERS, **headers}
    ) as response:
        body = await response.read()
        answer = (response.status, [(k, v) for k, v in response.headers.items() if k != "Date"])
    entry = client.app[JOURNAL].last().to_json()
    for varying in ("number", "time", "duration"):
        del entry[varying]
    if entry["event_times"] is not None:  # when each event left: only how many is the same
        entry["event_times"] = len(entry["event_times"])
    return (*answer, body, entry)


@pytest.mark.parametrize("mode", ["auto", "replay", "synthetic"])
@pytest.mark.parametrize("payload", [HELLO, PAYLOAD, UNRECORDED])
@pytest.mark.parametrize("accept", ["text/event-stream", "application/json"])
@pytest.mark.parametrize("speed", [0.0, 1.0])
async def test_a_repeated_request_gets_what_the_first_got(
    aiohttp_client: ClientFactory,
    counting_memo: type[_CountingMemo],
    mode: str,
    payload: Any,
    accept: str,
    speed: float,
) -> None:
    config = MockConfig(mode=mode, speed=speed, latency=0.001)  # type: ignore[arg-type]
    client = await aiohttp_client(create_app(config))
    first = await _exchange(client, payload, Accept=accept)
    again = [await _exchange(client, payload, Accept=accept) for _ in range(2)]
    assert again == [first, first]
    # Every answer but replay's 404 (a rejection, decided afresh) is given again from the memo.
    answered = first[0] != 404
    assert counting_memo.hits == (2 if answered else 0)
    assert [e.status for e in client.app[JOURNAL].entries()] == [first[0]] * 3


async def test_the_decision_is_not_reused_once_something_could_change_it(
    aiohttp_client: ClientFactory, counting_memo: type[_CountingMemo], tmp_path: Path
) -> None:
    (tmp_path / "greeting.yaml").write_bytes((DEFAULT_CASSETTE_DIR / "greeting.yaml").read_bytes())
    config = MockConfig(cassette_dir=tmp_path, mode="auto", speed=0)
    client = await aiohttp_client(create_app(config))
    journal = client.app[JOURNAL]

    async def source(**headers: str) -> Any:
        await _exchange(client, HELLO, **headers)
        return journal.last().served_by["source"]

    assert [await source(), await source()] == ["cassette", "cassette"]
    assert counting_memo.hits == 1
    assert await source(**{"X-Koala-Mock-Fault": "rate_limit"}) == "fault"
    seeded = await _exchange(client, HELLO, **{"X-Koala-Mock-Seed": "7"})
    assert seeded[3]["seed"] == 7 and seeded[3]["served_by"]["seed"] == 7
    async with client.post("/__admin/faults", json={"fault": "rate_limit"}) as response:
        assert response.status == 201
    assert await source() == "fault"
    async with client.post("/__admin/stubs", json={"tokens": ["s"], "times": 1}) as response:
        assert response.status == 201
    assert await source() == "stub"
    assert await source() == "cassette"  # the stub is used up; the fault too
    # The contract's verdict is the request's own: a warning shows, then goes again.
    warned = await _exchange(client, HELLO, Origin="https://example.com")
    assert warned[3]["verdict"]["warnings"] and warned[3]["served_by"]["source"] == "cassette"
    assert not (await _exchange(client, HELLO))[3]["verdict"]["warnings"]
    hits = counting_memo.hits
    (tmp_path / "greeting.yaml").unlink()  # reloaded: the cassette is gone
    async with client.post("/__admin/cassettes/reload", json={}) as response:
        assert response.status == 200
    assert await source() == "synthetic"
    client.app[CONFIG].mode = "replay"
    assert (await _exchange(client, HELLO))[0] == 404
    assert counting_memo.hits == hits  # each of those decided afresh


async def test_the_decision_is_not_reused_once_the_contract_settings_change(
    aiohttp_client: ClientFactory, counting_memo: type[_CountingMemo]
) -> None:
    # strict and whether a key is required are part of the contract's shape: the verdict
    # memoised before either changed must not answer after.
    client = await aiohttp_client(create_app(MockConfig(mode="auto", speed=0)))
    config = client.app[CONFIG]
    warned = {"Origin": "https://example.com"}  # a warning: an error when strict
    assert [(await _exchange(client, HELLO, **warned))[0] for _ in range(2)] == [200, 200]
    assert counting_memo.hits == 1
    config.strict = True
    assert (await _exchange(client, HELLO, **warned))[0] == 422

    async def bare_status() -> int:  # the keyed API's shape, without its Authorization header
        async with client.post(
            "/api/gpt/", data=encode_payload(HELLO), headers={"Accept": "text/event-stream"}
        ) as response:
            await response.read()
            return response.status

    config.strict = False
    assert [await bare_status(), await bare_status()] == [200, 200]
    config.api_key = ApiKey("k" * 24)
    assert await bare_status() == 401


def test_the_decision_memo_is_bounded() -> None:
    memo = DecisionMemo(capacity=2, max_body=4)
    decision = Decision(WARNED, ResponsePlan(), {}, (1,))

    def key(body: bytes) -> tuple[str, str, tuple[Any, ...]]:
        return ("POST", "/", (body, False))

    for n in range(3):
        memo.put(key(str(n).encode()), decision, 1)
    memo.put(key(b"large"), decision, 5)
    assert len(memo) == 2
    assert memo.get(key(b"0"), (1,)) is None  # the oldest went first
    assert memo.get(key(b"2"), (1,)) is decision
    assert memo.get(key(b"2"), (2,)) is None  # another state: decided afresh
    assert memo.get(key(b"large"), (1,)) is None  # too large a body to keep


def test_text_lines_in_a_row_are_each_their_own_record_formatted() -> None:
    # text_line keeps the previous line's fixed part: repeated, alternating and
    # equal-but-distinct ones must each give their own line.
    cut_short = _entry(0)  # as entry 0 but for the bytes, then the events, it sent
    cut_short.sent(344)
    more_events = _entry(0)
    more_events.events_sent += 1
    # Each right after an entry that differs from it in that one part.
    entries = [_entry(0), cut_short, _entry(0), more_events, _entry(1), _entry(2)]
    entries.append(Journal().start("POST", "/", {}))
    assert entries[-1].served_by is None  # not answered (yet)
    paths = ["/api/gpt/", "/api/gpt", "/a%0Ab"]
    for entry, path in [(e, p) for p in paths for e in entries] * 2 + [(entries[0], paths[0])] * 3:
        request = make_mocked_request("POST", path)
        token = CURRENT_ENTRY.set(entry)
        try:
            expected = format_text(log_record(request, web.Response(), 0.0021))
            assert text_line(request, web.Response(), 0.0021) == expected
        finally:
            CURRENT_ENTRY.reset(token)


def test_the_first_text_line_of_an_unanswered_entry_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(access_log, "_last_line", ((), ""))  # as in a new process
    request = make_mocked_request("POST", "/")
    token = CURRENT_ENTRY.set(Journal().start("POST", "/", {}))
    try:
        line = text_line(request, web.Response(), 0.0)
        assert line == format_text(log_record(request, web.Response(), 0.0))
        assert " - 0 events" in line
    finally:
        CURRENT_ENTRY.reset(token)


@pytest.mark.parametrize(("answered", "shown"), [(False, "-"), (True, "200")])
def test_a_client_gone_before_its_answer_is_logged_without_a_status(
    answered: bool, shown: str
) -> None:
    # aiohttp holds a 400 for a request whose client hung up mid-body; it is never sent, and
    # the journal says status None: the log line must not say 400.
    entry = Journal().start("POST", "/api/gpt/", {})
    if answered:
        entry.status = 200
    entry.client_disconnected = True
    entry.finish("client_disconnected")
    request = make_mocked_request("POST", "/api/gpt/")
    response = web.Response(status=200 if answered else 400)
    token = CURRENT_ENTRY.set(entry)
    try:
        record = log_record(request, response, 0.0)
        line = text_line(request, response, 0.0)
    finally:
        CURRENT_ENTRY.reset(token)
    assert record["status"] == (200 if answered else None)
    assert line == format_text(record)
    assert line.startswith(f"POST /api/gpt/ {shown} ") and line.endswith("(client disconnected)")


def test_a_new_journal_entry_has_every_field_at_its_declared_default() -> None:
    # JournalEntry's __init__ is written out by hand (the hot path's constructor): a field added
    # to the class and forgotten there would be unset (AttributeError on read) or wrong.
    headers = {"Accept": "text/event-stream"}
    journal = Journal()
    entry = JournalEntry(7, 12.5, "POST", "/api/gpt/", headers, 99, journal)
    given = {
        "number": 7,
        "time": 12.5,
        "method": "POST",
        "path": "/api/gpt/",
        "headers": headers,
        "header_bytes": 99,
        "_journal": journal,
    }
    # The defaults as the class documents them (a field added to __slots__ must be added here).
    defaults: dict[str, Any] = {
        "_raw_body": b"",
        "_body": None,
        "body_size": 0,
        "_body_pending": False,
        "contract_verdict": None,
        "served_by": None,
        "status": None,
        "seed": None,
        "fault": None,
        "values": None,
        "omitted_values": 0,
        "events_sent": 0,
        "bytes_sent": 0,
        "client_disconnected": False,
        "ending": None,
        "_duration": None,
        "_event_times": None,
        "_event_ends": (),
        "_watcher": None,
        "stored_bytes": 0,
    }
    declared = set(JournalEntry.__annotations__)
    assert set(JournalEntry.__slots__) == declared == set(given) | set(defaults)
    for name in JournalEntry.__slots__:
        value = getattr(entry, name)  # AttributeError: a slot __init__ left unset
        if name in given:
            assert value is given[name], name
        else:
            assert value == defaults[name] and type(value) is type(defaults[name]), name
    assert entry.duration is None
    entry.finish("eof")
    assert entry.duration is not None and entry.duration == round(entry.duration, 6)
