"""A deduplicating queue of PartyQuiz keys in priority lanes, with worker threads of its own.

Owns the threads that run the operator's queued passes. Lane 0 goes first, then lane 1, and
so on; a lane may be bounded to a number of threads running its keys at once, so lower lanes
(the rest of a first pass, the periodic resync) can never take every thread from the passes a
child's change asked for. A key waits at most once however many adds arrive for it, and an add
in a higher lane moves a waiting key up. It makes no decisions and must not import kopf.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    """Run ``work(key, lane)`` on ``threads`` threads, once per wait of the key.

    ``lanes`` gives, per lane in priority order, how many threads may run that lane's keys at
    once (None: all of them). The default is one unbounded lane.
    """

    def __init__(
        self,
        work: Callable[[K, int], object],
        *,
        threads: int,
        name: str,
        lanes: Sequence[int | None] = (None,),
    ) -> None:
        if threads < 1 or not lanes:
            raise ValueError("a WorkQueue needs at least one thread and one lane")
        self._work = work
        self._limits = [threads if n is None else max(1, min(n, threads)) for n in lanes]
        self._lanes: list[collections.deque[K]] = [collections.deque() for _ in lanes]
        self._running = [0 for _ in lanes]
        self._waiting: dict[K, int] = {}  # key -> the lane it waits in
        self._stopping = False
        self._ready = threading.Condition(threading.Lock())
        self._threads = [
            threading.Thread(target=self._serve, name=f"{name}-{i}", daemon=True)
            for i in range(threads)
        ]

    def start(self) -> None:
        """Start the worker threads."""
        for thread in self._threads:
            thread.start()

    def add(self, key: K, lane: int = 0) -> None:
        """Queue ``key`` in ``lane`` unless it already waits there or higher; never blocks long.

        A key that waits in a lower lane moves up to ``lane``.
        """
        with self._ready:
            waits_in = self._waiting.get(key)
            if waits_in is not None:
                if waits_in <= lane:
                    return
                self._lanes[waits_in].remove(key)
            self._waiting[key] = lane
            self._lanes[lane].append(key)
            self._ready.notify_all()

    def waiting(self) -> int:
        """Return how many keys wait in any lane."""
        with self._ready:
            return len(self._waiting)

    def stop(self, timeout: float = 5.0) -> None:
        """Let the threads finish their current key and end; keys still waiting are dropped."""
        with self._ready:
            self._stopping = True
            self._ready.notify_all()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout)

    def _next(self) -> tuple[K, int] | None:
        """Take the next key to run (highest lane with a free slot), waiting for one."""
        with self._ready:
            while True:
                if self._stopping:
                    return None
                lane = next(
                    (
                        i
                        for i, keys in enumerate(self._lanes)
                        if keys and self._running[i] < self._limits[i]
                    ),
                    None,
                )
                if lane is not None:
                    break
                self._ready.wait()
            key = self._lanes[lane].popleft()
            self._running[lane] += 1
            # Taken off the queue before the work starts: an add during the work queues the
            # key again, so it is not lost.
            del self._waiting[key]
            return key, lane

    def _serve(self) -> None:
        while True:
            taken = self._next()
            if taken is None:
                return
            key, lane = taken
            try:
                self._work(key, lane)
            except Exception:
                logger.exception("work on %s failed", key)
            finally:
                with self._ready:
                    self._running[lane] -= 1
                    # A key of a bounded lane may have waited for this slot.
                    self._ready.notify_all()
