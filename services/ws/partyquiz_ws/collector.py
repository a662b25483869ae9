"""When Python's cyclic garbage collector may pause this process.

A replica with 10 000 connections holds about a million objects that the collector tracks.
Left alone, CPython runs a full collection whenever the objects that survived since the last
one reach a quarter of the long-lived ones, and that full pass walks every object: 0.4-0.6 s
with the event loop stopped, at whatever moment the threshold is crossed (the middle of a
question fan-out, say).

This module keeps collector passes out of live games. Every ``freeze_seconds`` it moves every
object that survived so far into the permanent generation (``gc.freeze()``, which costs
nothing). While a game is live on this replica the automatic young-generation passes wait too:
during a burst of 10 000 answers in a second they ran about ten times, 10-40 ms each, walking
the answers' fresh state only to keep it -- a tenth of the replica's time. Their threshold is
raised to ``BUSY_THRESHOLD`` net new objects instead (a safety valve against a runaway
allocation rate, never reached by a game), and the next freeze makes those objects permanent
without walking them. Cyclic garbage among frozen objects waits for the next full collection,
which runs when no game is live, and at the latest after ``full_max_seconds`` even if one is:
memory of disconnected players is returned within minutes, and the long pause never lands on a
game unless a replica runs games back to back for that long. The answer path itself makes no
cyclic garbage (``bench.answer_path`` leaves nothing for a collection to find).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

# Net new container objects that trigger a young-generation pass while a game is live (the
# default is 700). A second of a 10 000-player answer burst stays well below it.
BUSY_THRESHOLD = 1_000_000


class CollectorPolicy:
    """Freeze survivors often; collect fully only while idle (or when overdue)."""

    def __init__(
        self,
        busy: Callable[[], bool],
        freeze_seconds: float,
        full_every_seconds: float,
        full_max_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._busy = busy
        self._freeze_seconds = freeze_seconds
        self._full_every = full_every_seconds
        self._full_max = full_max_seconds
        self._clock = clock
        self._last_full = clock()
        self._thresholds = gc.get_threshold()  # the interpreter's, restored when idle
        self.full_collections = 0
        self.last_found = 0  # unreachable objects the last full collection freed

    @property
    def enabled(self) -> bool:
        return self._freeze_seconds > 0

    def step(self) -> None:
        """Freeze what survived; run the full collection if it is due; hold the automatic
        passes back while a game is live."""
        busy = self._busy()
        since = self._clock() - self._last_full
        if since >= self._full_max or (since >= self._full_every and not busy):
            self.collect_fully()  # freezes what survived it
        else:
            gc.freeze()
        if busy:
            gc.set_threshold(BUSY_THRESHOLD, *self._thresholds[1:])
        else:
            self.restore()

    def restore(self) -> None:
        """Give the automatic passes their usual thresholds back."""
        gc.set_threshold(*self._thresholds)

    def collect_fully(self) -> None:
        started = time.perf_counter()
        gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        self._last_full = self._clock()
        self.full_collections += 1
        self.last_found = found
        log.info(
            "full garbage collection: %d unreachable objects in %.0f ms",
            found,
            (time.perf_counter() - started) * 1000,
        )

    async def run(self) -> None:
        if not self.enabled:
            return
        gc.freeze()  # what start-up built (modules, schemas) is never garbage
        try:
            while True:
                await asyncio.sleep(self._freeze_seconds)
                self.step()
        finally:
            self.restore()
