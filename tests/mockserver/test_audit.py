"""koala-mock audit: each fault's expected outcome, run classification, and whole audits of the
project's provider and of deliberately weak clients (tests/audit_clients.py) at speed 0."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from koala import KoalaConnectionError
from mockserver.audit.cases import Timing, fault_cases
from mockserver.audit.classify import Outcome, RunResult, Verdict, classify
from mockserver.audit.clients import ClientSpecError, load_client
from mockserver.audit.report import SCHEMA, Scorecard, to_json, to_text
from mockserver.audit.runner import (
    AuditSettings,
    CaseResult,
    Reproduce,
    messages_for,
    rewriting_summary,
    run_audit,
)
from mockserver.cli import main
from mockserver.config import SOURCE_CASSETTE_DIR
from mockserver.wire.expectations import FAMILIES, VALUES, Expected, Limits, raises
from mockserver.wire.faults import FAULTS, make_fault_spec
from mockserver.wire.fuzz import rewriting_for
from mockserver.wire.streams import KOALA_FORMAT, WireFormat

# Generous for a run that should end (an 18-token answer, or a 600 kB event, on loopback), short
# for the timeouts; a small max_event_size keeps the "just above it" event small too.
HANG_AFTER = 1.0
TIMING = Timing(HANG_AFTER, 0.3, 64 * 1024)
LIMIT_FLAGS = (
    "--timeout",
    str(HANG_AFTER),
    "--read-timeout",
    str(TIMING.read_timeout),
    "--max-event-size",
    str(TIMING.max_event_size),
)
SHORT, LONG = f"{TIMING.short_wait:g}", f"{TIMING.long_wait:g}"
ABOVE_LIMIT = f"huge_event;size={TIMING.max_event_size + 1}"
CONNECTION_CASES = (
    "truncate;events=0",
    "truncate",
    "truncate;mid_event=true",
    "disconnect;events=0",
    "disconnect",
)


@pytest.fixture(scope="module")
def cassette_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three small shipped cassettes: text, a multi-turn request, and non-string values."""
    directory = tmp_path_factory.mktemp("audit-cassettes")
    for name in (
        "greeting.yaml",
        "multi_turn.yaml",
        "non_string_values.yaml",
        "keyed_json_reply.yaml",  # a JSON reply for another model: not fuzzed
        "rate_limited_429.yaml",  # not a 2xx: not fuzzed
    ):
        shutil.copy(SOURCE_CASSETTE_DIR / name, directory / name)
    return directory


def audit(client: str, cassettes: Path | None, seeds: Sequence[int] = ()) -> dict[str, Outcome]:
    settings = AuditSettings(load_client(client, TIMING.limits), cassettes, list(seeds), TIMING)
    return {r.case: r.verdict.outcome for r in asyncio.run(run_audit(settings))}


# -- the expected outcomes beside the catalogue --------------------------------------------


def test_every_fault_states_its_family_and_a_right_outcome() -> None:
    limits = Limits(read_timeout=1.0, max_event_size=100)
    for scenario in FAULTS.values():
        assert scenario.family in FAMILIES, scenario.name
        assert isinstance(make_fault_spec(scenario.name).expected(limits), Expected)


def test_outcomes_that_depend_on_the_clients_limits() -> None:
    limits = Limits(read_timeout=1.0, max_event_size=100)
    stall = make_fault_spec("stall", {"seconds": 0.5}).expected(limits)
    assert stall == raises("KoalaConnectionError")  # waited out, then the body is cut
    assert make_fault_spec("stall", {"seconds": 2}).expected(limits) == raises("KoalaTimeoutError")
    assert make_fault_spec("slow_first_byte", {"delay": 0.5}).expected(limits) == VALUES
    slow = make_fault_spec("slow_first_byte", {"delay": 2}).expected(limits)
    assert slow == raises("KoalaTimeoutError")
    assert make_fault_spec("huge_event", {"size": 100}).expected(limits) == VALUES
    above = make_fault_spec("huge_event", {"size": 101}).expected(limits)
    assert above == Expected(values=True, error="EventTooLargeError")


def test_every_fault_is_run_with_the_variants_that_matter() -> None:
    labels = [case.label for case in fault_cases(TIMING)]
    assert {label.split(";")[0] for label in labels} == set(FAULTS)
    for label in (*CONNECTION_CASES, f"stall;seconds={SHORT}", f"stall;seconds={LONG}"):
        assert label in labels
    assert TIMING.short_wait < TIMING.read_timeout < HANG_AFTER < TIMING.long_wait


def test_only_streams_a_client_can_ask_for_are_fuzzed(cassette_dir: Path) -> None:
    from mockserver.audit.runner import recorded_streams

    streams, skipped = recorded_streams(cassette_dir)
    assert [s.name for s in streams] == ["greeting", "multi_turn", "non_string_values"]
    assert skipped == [
        "keyed_json_reply: an answer of type application/json, not an event stream",
        "rate_limited_429: status 429",
    ]


def test_messages_rebuild_the_recorded_request() -> None:
    from koala.request import build_payload

    body = {"input": "And?", "inputHistory": ["a", "b"], "outputHistory": ["x"], "model": "m"}
    messages = messages_for(body)
    assert messages is not None
    assert build_payload("m", list(messages)) == body
    assert messages_for({"inputHistory": []}) is None


# -- classification (pure) -----------------------------------------------------------------


def _accepts_by_name(exc: BaseException, name: str) -> bool:
    return type(exc).__name__ == name


@pytest.mark.parametrize(
    ("expected", "result", "outcome", "passed"),
    [
        (VALUES, RunResult(["a", "b", "c"]), Outcome.CORRECT, True),
        (VALUES, RunResult(["ab", "c"]), Outcome.CORRECT, True),  # text chunked differently
        (VALUES, RunResult(["b", "c"]), Outcome.SILENT_LOSS, False),  # the BOM case
        (VALUES, RunResult(["a", "b"]), Outcome.SILENT_LOSS, False),
        (VALUES, RunResult(["a", "b", "c", "AFTER"]), Outcome.WRONG_VALUES, False),
        (VALUES, RunResult(["a"], hung=True), Outcome.HANG, False),
        (VALUES, RunResult([], error=ValueError("x")), Outcome.RAW_EXCEPTION, False),
        (
            raises("KoalaConnectionError"),
            RunResult(["a"], error=KoalaConnectionError("cut")),
            Outcome.TYPED_ERROR,
            True,
        ),
        (
            raises("KoalaConnectionError"),
            RunResult(["a", "z"], error=KoalaConnectionError("cut")),
            Outcome.WRONG_VALUES,
            False,
        ),
        (raises("KoalaConnectionError"), RunResult(["a"]), Outcome.SILENT_LOSS, False),
        (raises("KoalaConnectionError"), RunResult([]), Outcome.SILENT_LOSS, False),
        (raises("KoalaConnectionError"), RunResult(["z"]), Outcome.WRONG_VALUES, False),
        (
            raises("KoalaConnectionError"),
            RunResult([], error=ConnectionResetError()),
            Outcome.RAW_EXCEPTION,
            False,
        ),
    ],
)
def test_classify(expected: Expected, result: RunResult, outcome: Outcome, passed: bool) -> None:
    verdict = classify(expected, result, ["a", "b", "c"], ["a", "b", "c"], _accepts_by_name)
    assert (verdict.outcome, verdict.passed) == (outcome, passed)


def test_non_string_values_must_match_exactly() -> None:
    want = [{"a": 1}, 2, None]
    assert classify(VALUES, RunResult(want), want, want, _accepts_by_name).passed
    verdict = classify(VALUES, RunResult([{"a": 1}, "2", None]), want, want, _accepts_by_name)
    assert verdict.outcome is Outcome.WRONG_VALUES


def test_a_foreign_error_counts_by_name_or_when_declared() -> None:
    client = load_client("koala", TIMING.limits, ["builtins:LookupError"])

    class RateLimitError(Exception):  # a foreign client's own class of the documented name
        pass

    assert client.accepts(RateLimitError("429"), "RateLimitError")
    assert client.accepts(KeyError("x"), "KoalaConnectionError")  # declared: a LookupError
    assert not client.accepts(ValueError("x"), "KoalaConnectionError")


def test_g4f_absent_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from mockserver.audit import g4f_client

    for name in [m for m in sys.modules if m == "g4f" or m.startswith("g4f.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(g4f_client.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ClientSpecError, match=r"g4f is not installed \(pip install g4f==0.3.3.4"):
        load_client("g4f", TIMING.limits)


def test_bad_client_specs_are_named() -> None:
    for spec, says in [
        ("no_colon", "expected module:name"),
        ("no_such_module_xyz:run", "cannot import"),
        ("json:no_such_function", "has no"),
        ("json:__doc__", "not callable"),
    ]:
        with pytest.raises(ClientSpecError, match=says):
            load_client(spec, TIMING.limits)
    with pytest.raises(ClientSpecError, match="not an exception class"):
        load_client("koala", TIMING.limits, ["json:dumps"])


# -- whole audits --------------------------------------------------------------------------


def test_the_projects_provider_scores_100_and_json_follows_the_schema(
    cassette_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["audit", *LIMIT_FLAGS, "--seeds", "2", "--format", "json"]
    code = main([*argv, "--cassettes", str(cassette_dir), "--min-score", "100"])
    report = json.loads(capsys.readouterr().out)
    failing = [run for run in report["runs"] if not run["passed"]]
    assert failing == []
    assert code == 0
    assert report["score"] == 100.0
    assert report["total"] == len(list(fault_cases(TIMING))) + 2 * 3
    assert_schema(report)


def assert_schema(report: dict[str, object]) -> None:
    """The documented koala-mock-audit/1 layout (README, "koala-mock audit")."""
    assert report["schema"] == SCHEMA == "koala-mock-audit/1"
    assert set(report) == {
        "schema",
        "client",
        "limits",
        "seeds",
        "cassettes",
        "score",
        "passed",
        "total",
        "families",
        "runs",
    }
    limits = report["limits"]
    assert isinstance(limits, dict)
    assert set(limits) == {
        "hang_after",
        "read_timeout",
        "short_wait",
        "long_wait",
        "max_event_size",
    }
    families = report["families"]
    assert isinstance(families, list)
    for family in families:
        assert set(family) == {"family", "passed", "total", "score"}
    assert [f["family"] for f in families] == [*FAMILIES, "fuzz"][: len(families)]
    runs = report["runs"]
    assert isinstance(runs, list) and runs
    outcomes = {o.value for o in Outcome}
    for run in runs:
        assert set(run) == {
            "family",
            "kind",
            "case",
            "expected",
            "outcome",
            "passed",
            "detail",
            "reproduce",
        }
        assert run["kind"] in ("fault", "fuzz")
        assert set(run["expected"]) == {"values", "error"}
        assert run["outcome"] in outcomes
        assert isinstance(run["passed"], bool)
        assert set(run["reproduce"]) == {"serve", "header", "request"}
        assert run["reproduce"]["serve"].startswith("koala-mock serve ")


def test_a_line_by_line_parser_like_the_original(cassette_dir: Path) -> None:
    outcomes = audit("audit_clients:line_by_line", cassette_dir, seeds=[0, 1, 2])
    raw, loss, hang, correct = (
        Outcome.RAW_EXCEPTION,
        Outcome.SILENT_LOSS,
        Outcome.HANG,
        Outcome.CORRECT,
    )
    expected = {
        "rate_limit": raw,
        "bot_detected": raw,
        **dict.fromkeys(CONNECTION_CASES, raw),
        f"stall;seconds={SHORT}": raw,
        f"stall;seconds={LONG}": hang,
        f"slow_first_byte;delay={SHORT}": correct,
        f"slow_first_byte;delay={LONG}": hang,
        "split_writes": correct,
        "malformed_json": raw,
        "done_marker": raw,
        "invalid_utf8": raw,
        "bom": loss,
        "huge_event": raw,  # aiohttp's line limit
        ABOVE_LIMIT: correct,  # 64 KiB + 1 is under aiohttp's line limit: read, and right
        "crlf": correct,
        "cr": raw,
        "keepalive_comments": correct,
        "html_200": loss,
        "wrong_content_type": correct,  # it never looks at the content type
        "json_reply": loss,
    }
    assert {case: outcomes[case] for case in expected} == expected
    fuzz = {case: o for case, o in outcomes.items() if "seed=" in case}
    assert len(fuzz) == 9
    assert Outcome.CORRECT in fuzz.values()  # some rewritings it reads,
    assert set(fuzz.values()) - {Outcome.CORRECT}  # others it does not


def test_a_client_that_ignores_truncation_loses_values_silently(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["audit", "--client", "audit_clients:ignores_truncation", "--seeds", "0"]
    code = main([*argv, *LIMIT_FLAGS, "--format", "json", "--min-score", "99"])
    captured = capsys.readouterr()
    assert code == 1
    assert "is below --min-score 99" in captured.err
    runs = {run["case"]: run for run in json.loads(captured.out)["runs"]}
    cut = {*CONNECTION_CASES, f"stall;seconds={SHORT}"}
    assert {case for case, run in runs.items() if run["outcome"] == "silent loss"} == cut
    assert {run["outcome"] for case, run in runs.items() if case not in cut} <= {
        "correct",
        "typed error",
    }
    assert runs["truncate;mid_event=true"]["reproduce"] == {
        "serve": "koala-mock serve --mode synthetic --speed 0 --fault 'truncate;mid_event=true'",
        "header": "X-Koala-Mock-Fault: truncate;mid_event=true",
        "request": 'messages [{"role": "user", "content": "How does a client survive a broken '
        'stream?"}]',
    }


def test_a_client_without_a_timeout_hangs_on_a_stall() -> None:
    outcomes = audit("audit_clients:hangs_on_stall", None)
    hangs = {case for case, o in outcomes.items() if o is Outcome.HANG}
    assert hangs == {f"stall;seconds={LONG}", f"slow_first_byte;delay={LONG}"}
    others = {o for case, o in outcomes.items() if case not in hangs}
    assert others <= {Outcome.CORRECT, Outcome.TYPED_ERROR}


@pytest.mark.parametrize("client", ["audit_clients:whole_text", "audit_clients:blocking_iterator"])
def test_awaitables_of_text_and_plain_iterators_are_audited_too(client: str) -> None:
    settings = AuditSettings(
        load_client(client, TIMING.limits),
        None,
        [],
        TIMING,
        faults=["truncate", "done_marker", "split_writes", "rate_limit"],
    )
    results = asyncio.run(run_audit(settings))
    assert [r.verdict.outcome for r in results] == [
        Outcome.TYPED_ERROR,
        Outcome.TYPED_ERROR,
        Outcome.TYPED_ERROR,
        Outcome.TYPED_ERROR,
        Outcome.CORRECT,
        Outcome.CORRECT,
        Outcome.CORRECT,
    ]


def test_cli_refuses_what_it_cannot_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "--client", "no_such_module_xyz:ask"]) == 4
    assert "cannot import 'no_such_module_xyz'" in capsys.readouterr().err
    assert main(["audit", "--cassettes", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["audit", "--timeout", "1", "--read-timeout", "2"]) == 2
    assert "must be shorter than the hang limit" in capsys.readouterr().err


def test_a_bad_cassette_is_named_and_the_others_are_fuzzed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(SOURCE_CASSETTE_DIR / "greeting.yaml", tmp_path / "greeting.yaml")
    (tmp_path / "broken.yaml").write_text("interactions: [unclosed\n")
    argv = ["audit", "--cassettes", str(tmp_path), "--seeds", "1", *LIMIT_FLAGS]
    assert main([*argv, "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert "not fuzzed: " in captured.err and "broken.yaml" in captured.err
    fuzz = [run["case"] for run in json.loads(captured.out)["runs"] if run["kind"] == "fuzz"]
    assert fuzz == ["greeting seed=0"]


@pytest.mark.skipif(importlib.util.find_spec("g4f") is None, reason="g4f is not installed")
def test_the_original_g4f_provider() -> None:
    outcomes = audit("g4f", None)
    assert outcomes["rate_limit"] is Outcome.TYPED_ERROR  # g4f's own RateLimitError
    assert outcomes["bom"] is Outcome.SILENT_LOSS
    assert outcomes["cr"] is Outcome.RAW_EXCEPTION
    assert outcomes[f"stall;seconds={LONG}"] is Outcome.HANG
    assert outcomes["html_200"] is Outcome.SILENT_LOSS


def fault_row(family: str, fault: str, verdict: Verdict, expected: Expected = VALUES) -> CaseResult:
    """A report row: one run of ``fault``, with the commands that reproduce it."""
    reproduce = Reproduce(f"koala-mock serve --fault {fault}", f"X-Koala-Mock-Fault: {fault}", "m")
    return CaseResult(family, "fault", fault, expected, verdict, reproduce)


def test_text_report_has_a_table_per_family() -> None:
    silent = Verdict(Outcome.SILENT_LOSS, False, "ended without an error")
    typed = Verdict(Outcome.TYPED_ERROR, True, "RateLimitError")
    rows = [
        fault_row("connection", "truncate", silent, raises("KoalaConnectionError")),
        fault_row("status", "rate_limit", typed, raises("RateLimitError")),
    ]
    card = Scorecard("weak", TIMING, [], None, rows)
    text = to_text(card)
    assert text.index("status: 1/1 (100%)") < text.index("connection: 0/1 (0%)")
    assert "score: 50% (the mean of the family scores; 1/2 runs passed)" in text
    assert "koala-mock serve --fault truncate" in text
    assert "koala-mock serve --fault rate_limit" not in text  # passing rows need no command
    assert_schema(to_json(card))


def test_the_score_weighs_each_family_the_same() -> None:
    def row(family: str, passed: bool) -> CaseResult:
        outcome = Outcome.CORRECT if passed else Outcome.SILENT_LOSS
        return fault_row(family, "x", Verdict(outcome, passed, ""))

    rows = [row("status", True), row("fuzz", True), row("fuzz", False), row("fuzz", False)]
    card = Scorecard("c", TIMING, [0], None, rows)
    assert (card.passed, card.total) == (2, 4)
    assert card.score == 66.7  # (100% + 33.3%) / 2, not 2/4
    assert to_json(card)["families"] == [
        {"family": "status", "passed": 1, "total": 1, "score": 100.0},
        {"family": "fuzz", "passed": 1, "total": 3, "score": 33.3},
    ]


def test_a_plain_iterator_that_never_ends_is_a_hang_and_is_stopped() -> None:
    import threading
    import time

    settings = AuditSettings(
        load_client("audit_clients:never_ends", TIMING.limits),
        None,
        [],
        Timing(0.2, 0.1, 1024),
        faults=["crlf"],
    )
    [result] = asyncio.run(run_audit(settings))
    assert result.verdict.outcome is Outcome.HANG
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(
        t.name == "koala-audit-client" for t in threading.enumerate()
    ):
        time.sleep(0.01)
    assert not [t for t in threading.enumerate() if t.name == "koala-audit-client"]


def test_a_fuzz_failure_names_what_its_seed_changed_from_the_koala_format() -> None:
    # Known answers (random.Random(seed)): seed 7 picks CRLF, "data:" without the space, no cut.
    assert rewriting_summary(7, ["a", "b"]) == (
        "line_ending='\\r\\n', space_after_colon=False, 0 split points"
    )
    for seed in range(20):
        rewriting = rewriting_for(seed, ["a", "b"])
        summary = rewriting_summary(seed, ["a", "b"])
        for name in WireFormat._fields:
            changed = getattr(rewriting.fmt, name) != getattr(KOALA_FORMAT, name)
            assert (f"{name}=" in summary) == changed, (seed, name)
        assert summary.endswith(f"{len(rewriting.cuts)} split points")
