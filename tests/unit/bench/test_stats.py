"""Summaries the benchmark harness reports: percentiles, medians and the interleaved order."""

from __future__ import annotations

import math

import pytest
from bench.stats import (
    Spread,
    interleaved,
    median,
    median_by_kind,
    paired_ratios,
    percentile,
    ratio,
    spread,
    spread_of,
)
from hypothesis import given
from hypothesis import strategies as st


def test_percentile_interpolates_between_closest_ranks() -> None:
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 0) == 10.0
    assert percentile(values, 100) == 40.0
    assert percentile(values, 50) == 25.0
    assert percentile(values, 99) == pytest.approx(39.7)


def test_percentile_does_not_depend_on_input_order() -> None:
    assert percentile([5.0, 1.0, 3.0], 50) == percentile([1.0, 3.0, 5.0], 50) == 3.0


def test_percentile_of_one_value_is_that_value() -> None:
    assert percentile([7.5], 99) == 7.5


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


@pytest.mark.parametrize("q", [-1.0, 100.5, math.nan])
def test_percentile_outside_0_to_100_is_an_error(q: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1.0], q)


@given(st.lists(st.floats(-1e6, 1e6), min_size=1), st.floats(0, 100), st.floats(0, 100))
def test_percentile_is_monotonic_and_within_the_data(
    values: list[float], q1: float, q2: float
) -> None:
    low, high = sorted((q1, q2))
    assert min(values) <= percentile(values, low) <= percentile(values, high) <= max(values)


def test_median_of_even_count_is_the_mean_of_the_middle_two() -> None:
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5


def test_interleaved_visits_every_kind_once_per_run_in_order() -> None:
    assert interleaved(["a", "b", "c"], 2) == [
        (0, "a"),
        (0, "b"),
        (0, "c"),
        (1, "a"),
        (1, "b"),
        (1, "c"),
    ]


def test_interleaved_refuses_zero_runs_and_duplicate_kinds() -> None:
    with pytest.raises(ValueError, match="one run"):
        interleaved(["a"], 0)
    with pytest.raises(ValueError, match="distinct"):
        interleaved(["a", "a"], 1)


def test_median_by_kind_groups_samples_and_ignores_missing_values() -> None:
    samples = [("pq", 3.0), ("node", 10.0), ("pq", 1.0), ("pq", None), ("node", 20.0), ("pq", 2.0)]
    assert median_by_kind(samples) == {"pq": 2.0, "node": 15.0}


def test_median_by_kind_reports_none_for_a_kind_without_values() -> None:
    assert median_by_kind([("floor", None)]) == {"floor": None}


def test_ratio_is_none_when_it_cannot_be_computed() -> None:
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(None, 2.0) is None
    assert ratio(1.0, None) is None
    assert ratio(1.0, 0.0) is None


def test_spread_is_the_range_relative_to_the_median() -> None:
    assert spread([9.0, 10.0, 11.0]) == pytest.approx(0.2)
    assert spread([10.0]) is None


def test_spread_of_runs_is_the_median_with_the_extremes_ignoring_missing_runs() -> None:
    assert spread_of([3.0, None, 1.0, 2.0, math.nan]) == Spread(2.0, 1.0, 3.0, 3)
    assert spread_of([None]) is None


def test_paired_ratios_compare_runs_of_the_same_round_only() -> None:
    mine = {0: 90.0, 1: 100.0, 2: 140.0, 3: 50.0}
    theirs = {0: 100.0, 1: 125.0, 2: 140.0, 4: 10.0}
    assert paired_ratios(mine, theirs) == [0.9, 0.8, 1.0]
    assert paired_ratios({0: None}, {0: 1.0}) == []
