"""The pass queue: a key waits once however many adds arrive, none is lost, and keys of lower
lanes (the rest of a first pass, the resync) never go before higher ones nor take every
thread."""

from __future__ import annotations

import threading

from partyquiz_operator.workqueue import WorkQueue


def test_a_burst_of_events_for_one_key_costs_one_run_after_the_current_one() -> None:
    started, release = threading.Event(), threading.Event()
    runs: list[str] = []
    done = threading.Semaphore(0)

    def work(key: str, lane: int) -> None:
        runs.append(key)
        if len(runs) == 1:
            started.set()
            release.wait(10)
        done.release()

    queue: WorkQueue[str] = WorkQueue(work, threads=1, name="test", lanes=(None, 1))
    queue.start()
    queue.add("quiz")
    assert started.wait(10)
    for _ in range(50):  # changes during the first run: the key waits once
        queue.add("quiz")
        queue.add("quiz", 1)
    release.set()
    assert done.acquire(timeout=10)
    assert done.acquire(timeout=10)
    queue.stop()
    assert runs == ["quiz", "quiz"]


def test_keys_run_on_their_own_threads_and_a_failure_does_not_stop_the_queue() -> None:
    seen: set[str] = set()
    both = threading.Barrier(2, timeout=10)
    done = threading.Semaphore(0)

    def work(key: str, lane: int) -> None:
        if key == "broken":
            done.release()
            raise RuntimeError("boom")
        both.wait()  # only passes when the two keys run at the same time
        seen.add(key)
        done.release()

    queue: WorkQueue[str] = WorkQueue(work, threads=2, name="test")
    queue.start()
    queue.add("broken")
    assert done.acquire(timeout=10)
    queue.add("a")
    queue.add("b")
    assert done.acquire(timeout=10)
    assert done.acquire(timeout=10)
    queue.stop()
    assert seen == {"a", "b"}


def test_higher_lanes_go_before_lower_lanes_queued_earlier() -> None:
    started, release = threading.Event(), threading.Event()
    runs: list[tuple[str, int]] = []
    done = threading.Semaphore(0)

    def work(key: str, lane: int) -> None:
        runs.append((key, lane))
        if key == "busy":
            started.set()
            release.wait(10)
        done.release()

    queue: WorkQueue[str] = WorkQueue(work, threads=1, name="test", lanes=(None, 1, 1))
    queue.start()
    queue.add("busy")
    assert started.wait(10)
    queue.add("resync-1", 2)
    queue.add("resync-2", 2)
    queue.add("first-pass", 1)
    queue.add("event")
    queue.add("resync-2")  # an event for a key that waits in a lower lane moves it up
    queue.add("first-pass", 2)  # a lower add leaves a key where it waits
    assert queue.waiting() == 4
    release.set()
    for _ in range(5):
        assert done.acquire(timeout=10)
    queue.stop()
    assert runs == [("busy", 0), ("event", 0), ("resync-2", 0), ("first-pass", 1), ("resync-1", 2)]


def test_a_lower_lane_never_takes_more_threads_than_allowed() -> None:
    release = threading.Event()
    background_started = threading.Semaphore(0)
    urgent_ran = threading.Event()
    running = 0
    most = 0
    guard = threading.Lock()

    def work(key: str, lane: int) -> None:
        nonlocal running, most
        if lane == 0:
            urgent_ran.set()
            return
        with guard:
            running += 1
            most = max(most, running)
        background_started.release()
        release.wait(10)
        with guard:
            running -= 1

    queue: WorkQueue[str] = WorkQueue(work, threads=3, name="test", lanes=(None, 1))
    queue.start()
    for i in range(5):
        queue.add(f"resync-{i}", 1)
    assert background_started.acquire(timeout=10)
    # One background key runs and the rest wait, yet two threads are free for an event.
    queue.add("event")
    assert urgent_ran.wait(10)
    assert queue.waiting() == 4
    release.set()
    for _ in range(4):
        assert background_started.acquire(timeout=10)
    queue.stop()
    assert most == 1
