"""Statistics of the benchmark suite: percentiles, medians, spreads over runs, paired ratios
and the interleaved run order.

Pure functions over plain numbers, unit-tested in tests/unit/bench. No I/O and no clock reads:
the harness measures, these only summarise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


def percentile(values: Iterable[float], q: float) -> float:
    """Return the q-th percentile (0-100) with linear interpolation between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0 or math.isnan(q):
        raise ValueError(f"percentile must be between 0 and 100, got {q}")
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Iterable[float]) -> float:
    """Return the median (the 50th percentile)."""
    return percentile(values, 50.0)


def interleaved(kinds: Sequence[str], runs: int) -> list[tuple[int, str]]:
    """Return the run order A B C D A B C D ...: ``runs`` rounds, each visiting every kind once.

    Interleaving spreads slow drifts of a shared machine (a build starting, thermal limits)
    over every kind instead of charging them to whichever ran last.
    """
    if runs < 1:
        raise ValueError("at least one run")
    if len(set(kinds)) != len(kinds):
        raise ValueError("kinds must be distinct")
    return [(run, kind) for run in range(runs) for kind in kinds]


def median_by_kind(samples: Iterable[tuple[str, float | None]]) -> dict[str, float | None]:
    """Group (kind, value) samples by kind; return each kind's median (None when it has none)."""
    grouped: dict[str, list[float]] = {}
    for kind, value in samples:
        bucket = grouped.setdefault(kind, [])
        if value is not None and not math.isnan(value):
            bucket.append(value)
    return {kind: (median(values) if values else None) for kind, values in grouped.items()}


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """Return numerator / denominator, or None when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def spread(values: Sequence[float]) -> float | None:
    """Return (max - min) / median of repeated runs: how much a figure moved between runs."""
    if len(values) < 2:
        return None
    mid = median(values)
    return ratio(max(values) - min(values), mid)


@dataclass(frozen=True)
class Spread:
    """A figure over repeated runs: the median beside the best and worst run."""

    median: float
    low: float
    high: float
    runs: int


def spread_of(values: Iterable[float | None]) -> Spread | None:
    """The median, minimum and maximum of the values present (None when there are none)."""
    present = [v for v in values if v is not None and not math.isnan(v)]
    if not present:
        return None
    return Spread(median(present), min(present), max(present), len(present))


def paired_ratios(
    numerators: Mapping[int, float | None], denominators: Mapping[int, float | None]
) -> list[float]:
    """Per-run ratios of two servers measured in the same interleaved round (keyed by run):
    each run is compared with its neighbour in time, never with another round's."""
    out = []
    for run in sorted(numerators.keys() & denominators.keys()):
        r = ratio(numerators[run], denominators[run])
        if r is not None:
            out.append(r)
    return out
