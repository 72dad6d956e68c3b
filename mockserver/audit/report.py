"""The scorecard: a table per fault family and an overall score, as text or JSON.

The JSON form (``--format json``) is versioned by its ``schema`` field; its layout is documented
in the README ("koala-mock audit") and held by a test. A new field may be added within a
version; renaming or removing one makes a new version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mockserver.audit.cases import FUZZ, Timing
from mockserver.audit.runner import CaseResult
from mockserver.wire.expectations import FAMILIES

__all__ = ["SCHEMA", "Scorecard", "score_of", "to_json", "to_text"]

SCHEMA = "koala-mock-audit/1"
_FAMILY_ORDER = (*FAMILIES, FUZZ)


@dataclass(frozen=True)
class Scorecard:
    client: str
    timing: Timing
    seeds: Sequence[int]
    cassette_dir: str | None
    results: Sequence[CaseResult]

    @property
    def passed(self) -> int:
        return sum(r.verdict.passed for r in self.results)

    @property
    def total(self) -> int:
        return len(self.results)

    @property
    def score(self) -> float:
        """The mean of the family scores: each family weighs the same, whatever the number of
        its runs (so ``--seeds`` does not drown the fault families in fuzz runs)."""
        families = self.families()
        if not families:
            return 0.0
        shares = [sum(r.verdict.passed for r in rows) / len(rows) for _, rows in families]
        return round(100.0 * sum(shares) / len(shares), 1)

    def families(self) -> list[tuple[str, list[CaseResult]]]:
        present = {r.family for r in self.results}
        order = [f for f in _FAMILY_ORDER if f in present]
        order += sorted(present - set(order))
        return [(f, [r for r in self.results if r.family == f]) for f in order]

    def failures(self) -> list[CaseResult]:
        return [r for r in self.results if not r.verdict.passed]


def score_of(passed: int, total: int) -> float:
    """Percent of runs that passed, one decimal (an audit with no runs scores 0)."""
    return round(100.0 * passed / total, 1) if total else 0.0


def to_json(card: Scorecard) -> dict[str, Any]:
    timing = card.timing
    return {
        "schema": SCHEMA,
        "client": card.client,
        "limits": {
            "hang_after": timing.hang_after,
            "read_timeout": timing.read_timeout,
            "short_wait": timing.short_wait,
            "long_wait": timing.long_wait,
            "max_event_size": timing.max_event_size,
        },
        "seeds": list(card.seeds),
        "cassettes": card.cassette_dir,
        "score": card.score,
        "passed": card.passed,
        "total": card.total,
        "families": [
            {
                "family": family,
                "passed": sum(r.verdict.passed for r in rows),
                "total": len(rows),
                "score": score_of(sum(r.verdict.passed for r in rows), len(rows)),
            }
            for family, rows in card.families()
        ],
        "runs": [
            {
                "family": r.family,
                "kind": r.kind,
                "case": r.case,
                "expected": r.expected.to_json(),
                "outcome": r.verdict.outcome.value,
                "passed": r.verdict.passed,
                "detail": r.verdict.detail,
                "reproduce": r.reproduce.to_json(),
            }
            for r in card.results
        ],
    }


def _seeds(card: Scorecard) -> str:
    if not card.seeds or card.cassette_dir is None:
        return "no fuzz runs"
    return f"fuzz seeds 0..{len(card.seeds) - 1} of the cassettes in {card.cassette_dir}"


def to_text(card: Scorecard) -> str:
    timing = card.timing
    lines = [
        f"koala-mock audit of {card.client}: each run ends within {timing.hang_after:g} s or is "
        f"a hang (short wait {timing.short_wait:g} s, long wait {timing.long_wait:g} s); "
        f"{_seeds(card)}",
        "",
    ]
    case_width = max((len(r.case) for r in card.results), default=10)
    expected_width = max((len(r.expected.describe()) for r in card.results), default=10)
    for family, rows in card.families():
        passed = sum(r.verdict.passed for r in rows)
        lines.append(f"{family}: {passed}/{len(rows)} ({score_of(passed, len(rows)):g}%)")
        for r in rows:
            mark = "ok  " if r.verdict.passed else "FAIL"
            lines.append(
                f"  {mark} {r.case:<{case_width}}  {r.expected.describe():<{expected_width}}  "
                f"{r.verdict.outcome.value:<13}  {r.verdict.detail}"
            )
        lines.append("")
    lines.append(
        f"score: {card.score:g}% (the mean of the family scores; {card.passed}/{card.total} runs "
        "passed)"
    )
    failures = card.failures()
    if failures:
        lines += ["", "to reproduce a failing run, start the server and send the request:"]
        shown_request = None
        for r in failures:
            if r.reproduce.request != shown_request:
                lines.append(f"  request: {r.reproduce.request}")
                shown_request = r.reproduce.request
            lines += [
                f"  {r.case}: {r.verdict.outcome.value}",
                f"    {r.reproduce.serve}",
                f"    (or on any running server: {r.reproduce.header})",
            ]
    return "\n".join(lines) + "\n"
