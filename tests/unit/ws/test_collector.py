"""The game service's garbage-collector policy: freeze survivors, collect fully when idle."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from partyquiz_ws.collector import BUSY_THRESHOLD, CollectorPolicy


@pytest.fixture(autouse=True)
def _thawed() -> Iterator[None]:
    yield
    gc.unfreeze()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _cycle() -> None:
    a: list[object] = []
    a.append(a)


def test_survivors_are_frozen_and_a_full_collection_waits_for_an_idle_replica() -> None:
    clock, busy = Clock(), [True]
    policy = CollectorPolicy(lambda: busy[0], 1.0, 300.0, 3600.0, clock=clock)
    kept = [[i] for i in range(1000)]
    policy.step()
    assert gc.get_freeze_count() >= len(kept)
    clock.now = 301.0
    policy.step()  # a game is live: no full pass yet
    assert policy.full_collections == 0
    busy[0] = False
    policy.step()
    assert policy.full_collections == 1


def test_a_full_collection_frees_frozen_cycles_and_runs_when_overdue_even_if_busy() -> None:
    clock = Clock()
    policy = CollectorPolicy(lambda: True, 1.0, 300.0, 3600.0, clock=clock)
    gc.collect()
    gc.disable()  # keep the automatic passes from freeing the cycles before the freeze
    try:
        for _ in range(1000):
            _cycle()
        policy.step()
    finally:
        gc.enable()  # the cycles are garbage but frozen: nothing walks them
    assert gc.collect() == 0
    clock.now = 3600.0
    policy.step()
    assert policy.full_collections == 1
    assert policy.last_found >= 1000  # the self-referencing lists, freed at last
    assert gc.get_freeze_count() > 0  # what survived is frozen again


def test_zero_leaves_the_default_collector_alone() -> None:
    policy = CollectorPolicy(lambda: False, 0.0, 300.0, 3600.0)
    assert not policy.enabled


def test_automatic_passes_wait_while_a_game_is_live_and_resume_when_idle() -> None:
    usual = gc.get_threshold()
    busy = [True]
    policy = CollectorPolicy(lambda: busy[0], 1.0, 300.0, 3600.0, clock=Clock())
    try:
        policy.step()
        assert gc.get_threshold() == (BUSY_THRESHOLD, *usual[1:])
        busy[0] = False
        policy.step()
        assert gc.get_threshold() == usual
    finally:
        gc.set_threshold(*usual)


async def test_the_usual_thresholds_come_back_when_the_policy_stops() -> None:
    usual = gc.get_threshold()
    asked = asyncio.Event()

    def busy() -> bool:
        asked.set()  # the step that asked finishes before the loop runs again
        return True

    policy = CollectorPolicy(busy, 0.01, 300.0, 3600.0)
    task = asyncio.create_task(policy.run())
    try:
        await asyncio.wait_for(asked.wait(), 5)
        assert gc.get_threshold()[0] == BUSY_THRESHOLD
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert gc.get_threshold() == usual
    finally:
        gc.set_threshold(*usual)
