"""Ranking py-spy's collapsed stacks into the hottest functions of a profiled process."""

from __future__ import annotations

from bench.profiling import rank, render

STACKS = [
    "run (asyncio/base_events.py:600);broadcast (asyncio/server.py:10);write (asyncio/t.py:5) 6",
    "run (asyncio/base_events.py:600);broadcast (asyncio/server.py:12);send (x/frames.py:3) 3",
    "run (asyncio/base_events.py:600);apply (core/game.py:40) 1",
    "not a stack line",
]


def test_inclusive_counts_a_function_once_per_sample_across_its_lines() -> None:
    total, inclusive, _ = rank(STACKS)
    assert total == 10
    assert dict(inclusive)["broadcast (asyncio/server.py)"] == 9
    assert dict(inclusive)["run (asyncio/base_events.py)"] == 10


def test_self_counts_only_the_top_frame() -> None:
    _, _, own = rank(STACKS)
    assert own[0] == ("write (asyncio/t.py)", 6)
    assert "run (asyncio/base_events.py)" not in dict(own)


def test_render_shows_shares_of_all_samples() -> None:
    text = render(STACKS)
    assert text.startswith("10 samples")
    assert " 90.0%  broadcast (asyncio/server.py)" in text


def test_render_of_an_empty_profile_says_so() -> None:
    assert render([]) == "no samples\n"
