"""Liveness: a silent resync loop or a watch that stopped delivering versions fails the probe."""

from __future__ import annotations

from partyquiz_operator.liveness import Liveness


def make() -> Liveness:
    return Liveness(resync_seconds=10, watch_stall_seconds=60, now=0)


def test_a_beating_loop_with_a_fresh_watch_is_alive() -> None:
    alive = make()
    alive.watched("ns", "q", "5")
    alive.listed([("ns", "q", "5")], now=10)
    alive.beat(55)
    assert alive.problems(now=60) == []


def test_a_loop_silent_for_three_intervals_is_dead() -> None:
    alive = make()
    assert alive.problems(now=59) == []
    assert alive.problems(now=61) == ["no resync for 61s"]


def test_a_version_the_watch_never_delivers_means_the_watch_stalled() -> None:
    alive = make()
    alive.watched("ns", "q", "5")
    alive.listed([("ns", "q", "7")], now=10)
    alive.beat(65)
    assert alive.problems(now=65) == []  # in flight for a while is normal
    alive.listed([("ns", "q", "7")], now=75)
    alive.beat(75)
    problems = alive.problems(now=75)
    assert len(problems) == 1
    assert "ns/q" in problems[0]


def test_a_late_delivery_or_a_deletion_clears_the_suspicion() -> None:
    alive = make()
    alive.listed([("ns", "q", "7"), ("ns", "gone", "3")], now=0)
    alive.watched("ns", "q", "7")
    alive.watched("ns", "gone", None)
    alive.beat(100)
    alive.listed([("ns", "q", "7")], now=100)
    assert alive.problems(now=100) == []
