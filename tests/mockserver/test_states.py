"""Shared objects are immutable, states are closed sets, the version is read once."""

from __future__ import annotations

import dataclasses
from importlib.metadata import version
from typing import Any, get_args

import pytest

from koala import Koala
from koala.request import API_ENDPOINT, API_PATH
from mockserver.config import MODES, MockConfig, Mode
from mockserver.metadata import VERSION
from mockserver.server.decisions import Decision
from mockserver.server.journal import Ending
from mockserver.upstream.saving import recorder
from mockserver.upstream.verify import OUTCOMES
from mockserver.wire.contract import PASSED, Problem
from mockserver.wire.fuzz import Rewriting
from mockserver.wire.generated import Write
from mockserver.wire.plan import Ending as PlanEnding
from mockserver.wire.plan import ResponsePlan, event_stream_plan
from mockserver.wire.request_filter import RequestFilter
from mockserver.wire.streams import KOALA_FORMAT, WireFormat


def test_a_response_plan_cannot_be_changed_in_place() -> None:
    plan = event_stream_plan(["a", "b"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.status = 500  # type: ignore[misc]
    assert isinstance(plan.writes, tuple) and isinstance(plan.headers, tuple)
    changed = plan.with_header("X-Test", "1")
    assert ("X-Test", "1") in changed.headers and ("X-Test", "1") not in plan.headers
    assert plan.body == changed.body  # the cached body works on a frozen plan


def test_the_shared_passed_verdict_is_immutable() -> None:
    with pytest.raises(AttributeError):
        PASSED.status = 422  # type: ignore[misc]
    with pytest.raises(AttributeError):
        PASSED.extra = 1  # type: ignore[attr-defined]
    assert PASSED.errors == () and PASSED.warnings == ()
    with pytest.raises(AttributeError):
        PASSED.errors.append(None)  # type: ignore[attr-defined]


def test_the_shared_value_objects_refuse_changes_and_compare_by_value() -> None:
    # Named tuples since the start-up work (frozen dataclasses before): still immutable, still
    # equal and hashed by their fields.
    problem = Problem("input", "a string", "number 4")
    values: list[Any] = [
        problem,
        Write(b"x", 0.5),
        WireFormat(line_ending="\r\n"),
        Rewriting(1, KOALA_FORMAT, (2,)),
        Decision(PASSED, ResponsePlan(), {"source": "synthetic"}, (1,)),
        RequestFilter.build({"input": "Hello"}),
    ]
    for value in values:
        with pytest.raises(AttributeError):
            value.extra = 1
        with pytest.raises(AttributeError):
            setattr(value, type(value)._fields[0], None)
        assert value == type(value)(*value) and type(value).__name__ in repr(value)
    assert hash(problem) == hash(Problem("input", "a string", "number 4"))
    assert WireFormat() == KOALA_FORMAT and hash(WireFormat()) == hash(KOALA_FORMAT)


def test_the_journal_endings_include_every_plan_ending() -> None:
    assert set(get_args(PlanEnding)) <= set(get_args(Ending))
    assert len(get_args(Ending)) == 9


def test_modes_and_outcomes_are_closed_sets() -> None:
    assert MODES == get_args(Mode) == ("auto", "replay", "synthetic", "fuzz")
    assert OUTCOMES == ("ok", "drift", "unverified")
    with pytest.raises(ValueError, match="is not one of auto, replay, synthetic, fuzz"):
        MockConfig(cassette_dir=None, mode="other")  # type: ignore[arg-type]


def test_the_recorder_names_the_installed_version() -> None:
    assert version("koala-harness") == VERSION
    assert recorder("record") == f"koala-mock record {VERSION}"


def test_the_api_path_is_spelled_once() -> None:
    assert Koala.api_endpoint == API_ENDPOINT == "https://koala.sh" + API_PATH
    assert API_PATH == "/api/gpt/"
    assert ResponsePlan().status == 200
