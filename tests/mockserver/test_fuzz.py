"""Pure parts of the server: fuzz rewriting, fault specs and plans, the synthetic answer."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import decode_stream
from hypothesis import given
from hypothesis import strategies as st

from koala.errors import StreamError
from koala.sse import EventStreamDecoder
from mockserver.wire.faults import FAULTS, FaultSpecError, make_fault_spec, parse_fault_spec
from mockserver.wire.fuzz import fuzzed_plan, rewriting_for
from mockserver.wire.plan import event_stream_plan
from mockserver.wire.synthetic import synthetic_text, synthetic_tokens, tokenize

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
)
values_lists = st.lists(
    st.text(max_size=20)
    | st.recursive(json_scalars, lambda c: st.lists(c, max_size=3), max_leaves=5),
    max_size=12,
)
seeds = st.integers(0, 2**63 - 1)


@given(seed=seeds, values=values_lists)
def test_fuzzed_bytes_decode_to_the_same_values(seed: int, values: list[Any]) -> None:
    plan = fuzzed_plan(seed, values)
    assert decode_stream(*[w.data for w in plan.writes]) == values
    assert plan.values == values
    assert len(plan.event_ends) == len(values)


@given(seed=seeds, values=values_lists)
def test_a_seed_always_gives_the_same_bytes(seed: int, values: list[Any]) -> None:
    first, second = fuzzed_plan(seed, values), fuzzed_plan(seed, values)
    assert [w.data for w in first.writes] == [w.data for w in second.writes]


def test_seeds_explore_different_wire_formats() -> None:
    formats = {rewriting_for(seed, ["a", "b"]).fmt for seed in range(200)}
    assert {f.line_ending for f in formats} == {"\n", "\r\n", "\r"}
    assert {f.bom for f in formats} == {True, False}
    assert len(formats) > 50


@given(values=values_lists, delay=st.sampled_from([0.0, 0.01]))
def test_event_stream_plan_marks_event_ends(values: list[Any], delay: float) -> None:
    plan = event_stream_plan(values, delay=delay)
    body = plan.body
    for end, value in zip(plan.event_ends, values, strict=True):
        assert decode_stream(body[:end])[-1] == value
    assert plan.coalescible() == (delay == 0 or len(values) < 2)


def test_fault_spec_syntax() -> None:
    spec = parse_fault_spec(" truncate ; events=3 ; mid_event=yes ")
    assert spec.name == "truncate" and spec.params == {"events": 3, "mid_event": True}
    assert str(spec) == "truncate;events=3;mid_event=true"
    assert parse_fault_spec("stall").params == {"after": 1, "seconds": 30.0}
    assert make_fault_spec("stall", {"seconds": 2}).params["seconds"] == 2.0


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "unknown fault ''"),
        ("meteor", "known faults: rate_limit"),
        ("stall;seconds", "is not param=value"),
        ("stall;seconds=61", "above the maximum 60"),
        ("stall;seconds=nan", "is not a number"),
        ("truncate;mid_event=perhaps", "is not true or false"),
        ("truncate;events=-1", "below the minimum 0"),
        ("truncate;events=1.5", "is not an integer"),
        ("rate_limit;retry=3", "has no parameter 'retry'; its parameters: retry_after"),
        ("cloudflare;x=1", "its parameters: none"),
    ],
)
def test_bad_fault_specs_name_the_problem(text: str, problem: str) -> None:
    with pytest.raises(FaultSpecError, match=problem.replace("(", r"\(")):
        parse_fault_spec(text)


ANSWER = ["One", " two", " three", " four"]


def test_stream_faults_say_which_values_a_client_should_see() -> None:
    def plan(spec: str) -> Any:
        return parse_fault_spec(spec).plan(ANSWER)

    assert plan("truncate;events=2").values == ANSWER[:2]
    assert plan("truncate;events=2").ending == "close"
    assert plan("disconnect;events=1").ending == "abort"
    assert plan("stall;after=3;seconds=1").stall_seconds == 1.0
    assert plan("done_marker").values == ANSWER
    assert b"data: [DONE]" in plan("done_marker").body
    assert plan("bom").body.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in plan("crlf").body and b"\n" not in plan("cr").body
    assert all(len(w.data) == 3 for w in plan("split_writes;size=3").writes[:-1])
    assert plan("slow_first_byte;delay=2").first_byte_delay == 2.0
    assert not plan("slow_first_byte;delay=2").coalescible()


@pytest.mark.parametrize("name", ["malformed_json", "invalid_utf8"])
def test_bad_event_faults_break_the_decoder_after_the_good_events(name: str) -> None:
    plan = parse_fault_spec(f"{name};after=2").plan(ANSWER)
    decoder = EventStreamDecoder()
    good: list[Any] = []
    with pytest.raises(StreamError):
        for write in plan.writes:
            good += decoder.feed(write.data)
    assert good == ANSWER[:2] == plan.values


def test_every_fault_builds_a_plan_from_any_answer() -> None:
    for scenario in FAULTS.values():
        for answer in ([], ["only"], ANSWER):
            plan = make_fault_spec(scenario.name).plan(answer)
            assert 200 <= plan.status < 600
            assert plan.headers


@given(text=st.text())
def test_tokens_join_to_the_text(text: str) -> None:
    assert "".join(tokenize(text)) == text


@given(
    text=st.text(min_size=1),
    inputs=st.lists(st.text(), max_size=3),
    outputs=st.lists(st.text(), max_size=3),
)
def test_synthetic_answer_is_deterministic_and_quotes_the_request(
    text: str, inputs: list[str], outputs: list[str]
) -> None:
    payload = {"input": text, "inputHistory": inputs, "outputHistory": outputs, "model": "m"}
    assert synthetic_tokens(payload) == synthetic_tokens(dict(payload))
    answer = synthetic_text(payload)
    assert text[:200] in answer
    assert f"{len(inputs)} earlier input" in answer
    assert f"{len(outputs)} earlier output" in answer
