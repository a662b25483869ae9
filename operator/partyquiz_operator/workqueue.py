"""A deduplicating two-lane queue of PartyQuiz keys with worker threads of its own.

Owns the threads that run the operator's queued passes: urgent keys (a child changed, a first
pass to finish) always go before background keys (the periodic resync), a background key is
promoted when an urgent add arrives for it, and only a bounded number of threads ever run
background work, so resync passes can never take every thread from event-driven ones. A key
waits at most once however many adds arrive for it. It makes no decisions and must not import
kopf.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    """Run ``work(key, background)`` on ``threads`` threads, once per wait of the key.

    ``background_threads`` (at least 1, at most ``threads``) bounds how many threads run
    background keys at once; the others stay free for urgent keys.
    """

    def __init__(
        self,
        work: Callable[[K, bool], object],
        *,
        threads: int,
        name: str,
        background_threads: int = 1,
    ) -> None:
        if threads < 1:
            raise ValueError("a WorkQueue needs at least one thread")
        self._work = work
        self._background_limit = max(1, min(background_threads, threads))
        self._urgent: collections.deque[K] = collections.deque()
        self._background: collections.deque[K] = collections.deque()
        self._waiting: dict[K, bool] = {}  # key -> waits in the background lane
        self._running_background = 0
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

    def add(self, key: K, *, background: bool = False) -> None:
        """Queue ``key`` unless it already waits; never blocks for long (safe on the event loop).

        An urgent add of a key that waits in the background lane moves it to the urgent one.
        """
        with self._ready:
            waits_in_background = self._waiting.get(key)
            if waits_in_background is None:
                self._waiting[key] = background
                (self._background if background else self._urgent).append(key)
            elif waits_in_background and not background:
                self._background.remove(key)
                self._waiting[key] = False
                self._urgent.append(key)
            else:
                return
            self._ready.notify()

    def waiting(self) -> int:
        """Return how many keys wait in either lane."""
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

    def _next(self) -> tuple[K, bool] | None:
        """Take the next key to run (urgent first), waiting for one; None when stopping."""
        with self._ready:
            while True:
                if self._stopping:
                    return None
                if self._urgent:
                    key, background = self._urgent.popleft(), False
                    break
                if self._background and self._running_background < self._background_limit:
                    key, background = self._background.popleft(), True
                    self._running_background += 1
                    break
                self._ready.wait()
            # Taken off the queue before the work starts: an add during the work queues the
            # key again, so it is not lost.
            del self._waiting[key]
            return key, background

    def _serve(self) -> None:
        while True:
            taken = self._next()
            if taken is None:
                return
            key, background = taken
            try:
                self._work(key, background)
            except Exception:
                logger.exception("work on %s failed", key)
            finally:
                if background:
                    with self._ready:
                        self._running_background -= 1
                        # A background key may have waited for this slot.
                        self._ready.notify()
