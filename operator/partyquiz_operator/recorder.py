"""Posting the operator's Events from a thread of its own, so a pass never waits for them.

Owns one daemon thread and a bounded queue of Events to post through ``k8s.Cluster``. Events
are best effort (the status already says what happened): a full queue or a refused post is
logged and dropped, never raised into a pass. It makes no decisions and must not import kopf.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from partyquiz_operator.errors import KubeApiError
from partyquiz_operator.k8s import Cluster

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Event:
    involved: Mapping[str, Any]
    type_: str
    reason: str
    message: str
    now: datetime


class EventRecorder:
    """Queue Events about PartyQuiz objects and post them in order on one thread."""

    def __init__(self, cluster: Cluster, *, capacity: int = 10_000) -> None:
        self._cluster = cluster
        self._queue: queue.Queue[_Event | None] = queue.Queue(maxsize=capacity)
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()

    def record(
        self, involved: Mapping[str, Any], *, type_: str, reason: str, message: str, now: datetime
    ) -> None:
        """Queue an Event about ``involved`` (a PartyQuiz body); never blocks."""
        self._start()
        event = _Event({"metadata": dict(involved["metadata"])}, type_, reason, message, now)
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            logger.warning("event queue full; dropping event %s", reason)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued Event was posted (or dropped); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._queue.all_tasks_done.wait(remaining)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Post what is queued (within ``timeout``) and stop the thread."""
        with self._guard:
            thread, self._thread = self._thread, None
        if thread is None:
            return
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        thread.join(timeout)

    def _start(self) -> None:
        with self._guard:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="partyquiz-events", daemon=True
                )
                self._thread.start()

    def _serve(self) -> None:
        while True:
            event = self._queue.get()
            try:
                if event is None:
                    return
                self._cluster.create_event(
                    event.involved,
                    type_=event.type_,
                    reason=event.reason,
                    message=event.message,
                    now=event.now,
                )
            except KubeApiError as exc:
                logger.warning("cannot record event %s: %s", event.reason if event else "", exc)
            except Exception:
                logger.exception("posting an event failed")
            finally:
                self._queue.task_done()
