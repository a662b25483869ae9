"""The child-event queue: a key waits once however many events arrive, and none is lost."""

from __future__ import annotations

import threading

from partyquiz_operator.workqueue import WorkQueue


def test_a_burst_of_events_for_one_key_costs_one_run_after_the_current_one() -> None:
    started, release = threading.Event(), threading.Event()
    runs: list[str] = []
    done = threading.Semaphore(0)

    def work(key: str) -> None:
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
    release.set()
    assert done.acquire(timeout=10)
    assert done.acquire(timeout=10)
    queue.stop()
    assert runs == ["quiz", "quiz"]


def test_keys_run_on_their_own_threads_and_a_failure_does_not_stop_the_queue() -> None:
    seen: set[str] = set()
    both = threading.Barrier(2, timeout=10)
    done = threading.Semaphore(0)

    def work(key: str) -> None:
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
