"""The audit's scorecards of several clients side by side, as a markdown table (for the README).

    python bench/audit_scorecards.py                    # koala and g4f (when installed)
    python bench/audit_scorecards.py koala mypkg.client:ask --seeds 20 --timeout 2

Each client is audited exactly as ``koala-mock audit --client SPEC`` does; the table has one row
per fault case, the fuzz runs summed up per family, then each family's and the overall score.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
from collections import Counter

from koala.sse import DEFAULT_MAX_EVENT_SIZE
from mockserver.audit.cases import Timing
from mockserver.audit.clients import load_client
from mockserver.audit.report import Scorecard, score_of
from mockserver.audit.runner import AuditSettings, run_audit, seeds_for
from mockserver.config import default_cassette_dir


def scorecard(spec: str, seeds: int, timeout: float) -> Scorecard:
    timing = Timing(timeout, timeout / 2, DEFAULT_MAX_EVENT_SIZE)
    client = load_client(spec, timing.limits)
    settings = AuditSettings(client, default_cassette_dir(), list(seeds_for(seeds)), timing)
    results = asyncio.run(run_audit(settings))
    return Scorecard(client.name, settings.timing, settings.seeds, None, results)


def cell(outcome: str, passed: bool) -> str:
    return outcome if passed else f"**{outcome}**"


def table(cards: list[Scorecard]) -> str:
    first = cards[0]
    lines = [
        "| family | case | expected | " + " | ".join(c.client for c in cards) + " |",
        "|---|---|---|" + "---|" * len(cards),
    ]
    by_case = [{(r.family, r.case): r for r in c.results} for c in cards]
    faults = [r for _, rows in first.families() for r in rows if r.kind == "fault"]
    for r in faults:
        cells = [by[(r.family, r.case)].verdict for by in by_case]
        lines.append(
            f"| {r.family} | `{r.case}` | {r.expected.describe()} | "
            + " | ".join(cell(v.outcome.value, v.passed) for v in cells)
            + " |"
        )
    fuzz = []
    for c in cards:
        runs = [r for r in c.results if r.kind == "fuzz"]
        counts = Counter(r.verdict.outcome.value for r in runs)
        fuzz.append(", ".join(f"{n} {outcome}" for outcome, n in counts.most_common()) or "-")
    lines.append(
        f"| fuzz | {len(first.seeds)} seeds x every cassette | values | " + " | ".join(fuzz) + " |"
    )
    for family, _ in first.families():
        scores = []
        for c in cards:
            rows = dict(c.families()).get(family, [])
            scores.append(f"{score_of(sum(r.verdict.passed for r in rows), len(rows)):g}%")
        lines.append(f"| **{family}** | | | " + " | ".join(scores) + " |")
    lines.append(
        "| **score** | (mean of the families) | | "
        + " | ".join(f"**{c.score:g}%** ({c.passed}/{c.total} runs)" for c in cards)
        + " |"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = ["koala", "g4f"] if importlib.util.find_spec("g4f") else ["koala"]
    parser.add_argument("clients", nargs="*", default=default)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args()
    cards = [scorecard(spec, args.seeds, args.timeout) for spec in args.clients]
    print(table(cards))


if __name__ == "__main__":
    main()
