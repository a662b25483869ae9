"""A deduplicating queue of PartyQuiz keys with worker threads of its own, for child events.

Owns the threads that reconcile an owner after one of its children changed. A key waits at most
once however many events arrive for it, and these passes never occupy kopf's executor, so a
storm of child events cannot hold back the create and update handlers of other instances.
It makes no decisions and must not import kopf.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)

_STOP = object()


class WorkQueue(Generic[K]):
    """Run ``work(key)`` on ``threads`` threads for each key added, once per wait in the queue."""

    def __init__(self, work: Callable[[K], object], *, threads: int, name: str) -> None:
        self._work = work
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._waiting: set[K] = set()
        self._guard = threading.Lock()
        self._threads = [
            threading.Thread(target=self._serve, name=f"{name}-{i}", daemon=True)
            for i in range(threads)
        ]

    def start(self) -> None:
        """Start the worker threads."""
        for thread in self._threads:
            thread.start()

    def add(self, key: K) -> None:
        """Queue ``key`` unless it already waits; never blocks (safe on the event loop)."""
        with self._guard:
            if key in self._waiting:
                return
            self._waiting.add(key)
        self._queue.put(key)

    def stop(self, timeout: float = 5.0) -> None:
        """Let the threads finish their current key and end."""
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout)

    def _serve(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            key: K = item  # type: ignore[assignment]
            with self._guard:
                # Taken off the queue before the work starts: a change during the work queues
                # the key again, so it is not lost.
                self._waiting.discard(key)
            try:
                self._work(key)
            except Exception:
                logger.exception("work on %s failed", key)
