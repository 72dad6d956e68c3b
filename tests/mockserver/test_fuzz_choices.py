"""What the fuzzer chooses, held to its documented choices and odds over a fixed set of seeds.

Meaning-preservation is tested elsewhere (fuzzed bytes decode to the same values); these pin
*which* rewritings seeds explore, so a change that quietly stops exploring one (say, never a
BOM, or only LF line endings) fails. The seeds are fixed, so the counts are deterministic; the
tolerances only allow for the sample size.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from mockserver.wire.fuzz import (
    MAX_SEED,
    fuzzed_plan,
    new_seed,
    rewriting_for,
    split_points,
    wire_format_for,
)
from mockserver.wire.streams import WireFormat, encode_stream

SEEDS = range(4000)


def formats() -> list[WireFormat]:
    # Built inside each test, not at import, so that a mutation tool sees which tests use it.
    return [wire_format_for(random.Random(seed)) for seed in SEEDS]


def counts(attribute: str) -> Counter[object]:
    return Counter(getattr(fmt, attribute) for fmt in formats())


@pytest.mark.parametrize(
    ("attribute", "odds"),
    [
        ("line_ending", {"\n": 1 / 3, "\r\n": 1 / 3, "\r": 1 / 3}),
        ("comment_every", {0: 2 / 5, 1: 1 / 5, 2: 1 / 5, 5: 1 / 5}),
        ("event_name", {None: 1 / 2, "message": 1 / 4, "token": 1 / 4}),
        ("retry", {None: 1 / 2, 0: 1 / 4, 3000: 1 / 4}),
        ("space_after_colon", {True: 0.7, False: 0.3}),
        ("bom", {True: 0.2, False: 0.8}),
        ("with_ids", {True: 0.3, False: 0.7}),
        ("final_blank_line", {True: 0.8, False: 0.2}),
    ],
)
def test_each_choice_comes_up_with_its_documented_odds(
    attribute: str, odds: dict[object, float]
) -> None:
    seen = counts(attribute)
    assert set(seen) == set(odds)
    for value, expected in odds.items():
        assert seen[value] / len(SEEDS) == pytest.approx(expected, abs=0.03), value


def _cut_styles(size: int) -> Counter[str]:
    styles: Counter[str] = Counter()
    for seed in SEEDS:
        cuts = split_points(random.Random(seed), size)
        assert list(cuts) == sorted(set(cuts)), "cuts are sorted and distinct"
        assert all(0 < cut < size for cut in cuts), "every cut is inside the body"
        if not cuts:
            styles["none"] += 1
        elif cuts == tuple(range(1, size)):
            styles["every byte"] += 1
        else:
            assert 1 <= len(cuts) <= min(size - 1, 32)
            styles["some"] += 1
    return styles


def test_a_body_is_cut_nowhere_everywhere_or_in_up_to_32_places() -> None:
    styles = _cut_styles(4096)
    assert styles["none"] / len(SEEDS) == pytest.approx(0.2, abs=0.03)
    assert styles["every byte"] / len(SEEDS) == pytest.approx(0.1, abs=0.03)
    assert styles["some"] / len(SEEDS) == pytest.approx(0.7, abs=0.03)


def test_a_body_over_4096_bytes_is_never_cut_at_every_byte() -> None:
    styles = _cut_styles(4097)
    assert styles["every byte"] == 0
    assert styles["some"] / len(SEEDS) == pytest.approx(0.8, abs=0.03)


def test_small_bodies() -> None:
    assert {split_points(random.Random(seed), size) for seed in range(50) for size in (0, 1)} == {
        ()
    }
    two = {split_points(random.Random(seed), 2) for seed in range(200)}
    assert two == {(), (1,)}
    three = {split_points(random.Random(seed), 3) for seed in range(200)}
    assert three == {(), (1,), (2,), (1, 2)}


def test_up_to_32_cuts_and_sometimes_exactly_32() -> None:
    sizes = Counter(len(split_points(random.Random(seed), 10_000)) for seed in SEEDS)
    assert max(sizes) == 32
    assert min(size for size in sizes if size) == 1


def test_a_rewriting_names_its_seed_and_cuts_inside_the_body() -> None:
    values = ["Hel", "lo", {"t": 1}]
    for seed in (0, 1, 7, MAX_SEED):
        rewriting = rewriting_for(seed, values)
        assert rewriting.seed == seed
        body = encode_stream(values, rewriting.fmt)
        assert all(0 < cut < len(body) for cut in rewriting.cuts)


def test_a_fuzzed_plan_is_written_as_the_rewriting_says() -> None:
    values = ["a", "b", "c"]
    for seed in range(20):
        rewriting = rewriting_for(seed, values)
        plan = fuzzed_plan(seed, values, delay=0.25)
        assert plan.body == encode_stream(values, rewriting.fmt)
        assert len(plan.writes) == len(rewriting.cuts) + 1
        assert [w.delay for w in plan.writes] == [0.0] + [0.25] * len(rewriting.cuts)
        assert plan.keep_writes and plan.values == values
        assert [w.delay for w in fuzzed_plan(seed, values).writes] == [0.0] * len(plan.writes)


def test_new_seeds_are_in_range_and_vary() -> None:
    seeds = {new_seed() for _ in range(20)}
    assert all(0 <= seed < MAX_SEED for seed in seeds)
    assert len(seeds) > 1
