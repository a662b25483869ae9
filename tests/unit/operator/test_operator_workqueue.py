"""The pass queue: a key waits once however many adds arrive, none is lost, and background
(resync) keys never go before urgent ones nor take every thread."""

from __future__ import annotations

import threading

from partyquiz_operator.workqueue import WorkQueue


def test_a_burst_of_events_for_one_key_costs_one_run_after_the_current_one() -> None:
    started, release = threading.Event(), threading.Event()
    runs: list[str] = []
    done = threading.Semaphore(0)

    def work(key: str, background: bool) -> None:
        runs.append(key)
        if len(runs) == 1:
            started.set()
            release.wait(10)
        done.release()

    queue: WorkQueue[str] = WorkQueue(work, threads=1, name="test")
    queue.start()
    queue.add("quiz")
    assert started.wait(10)
    for _ in range(50):  # changes during the first run: the key waits once
        queue.add("quiz")
        queue.add("quiz", background=True)
    release.set()
    assert done.acquire(timeout=10)
    assert done.acquire(timeout=10)
    queue.stop()
    assert runs == ["quiz", "quiz"]


def test_keys_run_on_their_own_threads_and_a_failure_does_not_stop_the_queue() -> None:
    seen: set[str] = set()
    both = threading.Barrier(2, timeout=10)
    done = threading.Semaphore(0)

    def work(key: str, background: bool) -> None:
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


def test_urgent_keys_go_before_background_keys_queued_earlier() -> None:
    started, release = threading.Event(), threading.Event()
    runs: list[tuple[str, bool]] = []
    done = threading.Semaphore(0)

    def work(key: str, background: bool) -> None:
        runs.append((key, background))
        if key == "busy":
            started.set()
            release.wait(10)
        done.release()

    queue: WorkQueue[str] = WorkQueue(work, threads=1, name="test")
    queue.start()
    queue.add("busy")
    assert started.wait(10)
    queue.add("resync-1", background=True)
    queue.add("resync-2", background=True)
    queue.add("event")
    queue.add("resync-2")  # an event for a key that waits in the background lane promotes it
    assert queue.waiting() == 3
    release.set()
    for _ in range(4):
        assert done.acquire(timeout=10)
    queue.stop()
    assert runs == [("busy", False), ("event", False), ("resync-2", False), ("resync-1", True)]


def test_background_keys_never_take_more_threads_than_allowed() -> None:
    release = threading.Event()
    background_started = threading.Semaphore(0)
    urgent_ran = threading.Event()
    running = 0
    most = 0
    guard = threading.Lock()

    def work(key: str, background: bool) -> None:
        nonlocal running, most
        if not background:
            urgent_ran.set()
            return
        with guard:
            running += 1
            most = max(most, running)
        background_started.release()
        release.wait(10)
        with guard:
            running -= 1

    queue: WorkQueue[str] = WorkQueue(work, threads=3, name="test", background_threads=1)
    queue.start()
    for i in range(5):
        queue.add(f"resync-{i}", background=True)
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
