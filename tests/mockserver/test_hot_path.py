"""The chat API's shortcuts say exactly what the longer paths they replace say."""

from __future__ import annotations

import gc

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from koala.response import parse_media_type
from mockserver import MockConfig, create_app
from mockserver.cli.main import freeze_start_up_objects
from mockserver.server.access_log import format_text, log_record, text_line
from mockserver.server.http_errors import CURRENT_ENTRY
from mockserver.server.journal import Journal, JournalEntry
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


def test_serve_freezes_start_up_objects_and_create_app_does_not() -> None:
    before = gc.get_freeze_count()
    create_app(MockConfig(cassette_dir=None))
    assert gc.get_freeze_count() == before
    try:
        freeze_start_up_objects()
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()
