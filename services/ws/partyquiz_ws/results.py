"""Delivery of final results to the web service: at least once, never lost.

Owns the loop that takes finished games from the results outbox (Redis or memory), posts each
once per attempt and removes it only after the web service acknowledged it; failures back off
exponentially up to a cap. The web side is idempotent, so a repeated post is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from partyquiz_core.errors import PartyQuizError
from partyquiz_core.ids import GameId
from partyquiz_ws.backends import ResultsOutbox
from partyquiz_ws.metrics import WsMetrics
from partyquiz_ws.webclient import WebClient

log = logging.getLogger(__name__)

SCAN_SECONDS = 5.0
FIRST_RETRY_SECONDS = 0.5
CLAIM_SECONDS = 30.0


class ResultsCourier:
    def __init__(
        self,
        outbox: ResultsOutbox,
        web: WebClient,
        metrics: WsMetrics,
        holder: str,
        max_backoff: float,
    ) -> None:
        self._outbox = outbox
        self._web = web
        self._metrics = metrics
        self._holder = holder
        self._max_backoff = max_backoff
        self._wake = asyncio.Event()
        self._retry_at: dict[GameId, tuple[float, float]] = {}

    def wake(self) -> None:
        """Look at the outbox now (a game just ended here)."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                await self.deliver_due()
            except Exception:
                log.exception("results delivery pass failed")
            self._wake.clear()
            wait = SCAN_SECONDS
            if self._retry_at:
                soonest = min(at for at, _ in self._retry_at.values())
                wait = max(0.05, min(wait, soonest - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    async def deliver_due(self) -> int:
        """Try every pending game whose back-off has run out; return how many were delivered."""
        delivered = 0
        now = time.monotonic()
        for game_id in await self._outbox.pending():
            due, _ = self._retry_at.get(game_id, (0.0, 0.0))
            if due > now or not await self._outbox.claim(game_id, self._holder, CLAIM_SECONDS):
                continue
            body = await self._outbox.get(game_id)
            if body is None:
                await self._outbox.remove(game_id)
                continue
            try:
                await self._web.post_results(game_id, body)
            except PartyQuizError as exc:
                self._metrics.results_deliveries.labels("retry").inc()
                _, backoff = self._retry_at.get(game_id, (0.0, FIRST_RETRY_SECONDS / 2))
                backoff = min(self._max_backoff, backoff * 2)
                self._retry_at[game_id] = (time.monotonic() + backoff, backoff)
                log.warning("results not delivered (%s); retrying in %.1fs", exc.code, backoff)
                continue
            await self._outbox.remove(game_id)
            self._retry_at.pop(game_id, None)
            self._metrics.results_deliveries.labels("delivered").inc()
            delivered += 1
        return delivered
