"""Client of the web service's internal API (quiz lookup, games started, final results).

Owns the HTTP calls and the mapping of their failures onto the domain error tree: 404 becomes
NotFoundError, anything transient (connection refused, 5xx, timeouts) WebUnavailableError so the
caller can retry. It keeps no state beyond its HTTP connection pool.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import httpx
import orjson

from partyquiz_core.errors import ForbiddenError, NotFoundError, PartyQuizError
from partyquiz_core.ids import GameId, JoinCode
from partyquiz_core.quiz import read_stored_quiz
from partyquiz_ws.tokens import issue_service_token

TIMEOUT_SECONDS = 10.0
# Requests in flight at once. Hundreds of games starting together used to open as many
# connections, and sorting out that many waiting requests took the replica most of a core
# for seconds (httpcore's pool is quadratic in them); the rest wait here, cheaply.
MAX_CONCURRENT_REQUESTS = 8
# Games one "started" request names at most (the web service takes up to 1,000).
MAX_STARTED_PER_REQUEST = 500


class WebUnavailableError(PartyQuizError):
    """The web service did not answer usefully; try again later."""

    code = "web_unavailable"


class MethodNotAllowedError(PartyQuizError):
    """The web service has no such call (an older version)."""

    code = "web_refused"


class InternalGame:
    """A game as the web service describes it to the game service."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.game_id = GameId(str(data["game_id"]))
        self.join_code = JoinCode(str(data["join_code"]))
        self.status = str(data["status"])
        self.host_id = str(data["host_id"])
        self.quiz = read_stored_quiz(data["quiz"])


class WebClient:
    def __init__(self, base_url: str, secret: str) -> None:
        self._secret = secret
        limits = httpx.Limits(
            max_connections=MAX_CONCURRENT_REQUESTS,
            max_keepalive_connections=MAX_CONCURRENT_REQUESTS,
        )
        self._http = httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT_SECONDS, limits=limits)
        self._turns = asyncio.Semaphore(MAX_CONCURRENT_REQUESTS)

    async def aclose(self) -> None:
        await self._http.aclose()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_service_token(self._secret, time.time())}"}

    async def _request(self, method: str, path: str, body: bytes | None = None) -> httpx.Response:
        headers = self._headers()
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            async with self._turns:
                response = await self._http.request(method, path, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise WebUnavailableError(f"web service unreachable: {type(exc).__name__}") from exc
        if response.status_code == 404:
            raise NotFoundError("the web service does not know this game", code="unknown_game")
        if response.status_code == 405:
            raise MethodNotAllowedError(f"the web service has no {method} {path}")
        if response.status_code in (401, 403):
            raise ForbiddenError(
                "the web service refused the service token (JWT secrets differ?)",
                code="service_unauthorized",
            )
        if response.status_code >= 500 or response.status_code == 429:
            raise WebUnavailableError(f"web service answered {response.status_code}")
        if response.status_code >= 400:
            raise PartyQuizError(
                f"web service refused the request: {response.status_code}", code="web_refused"
            )
        return response

    async def get_game(self, join_code: JoinCode) -> InternalGame:
        response = await self._request("GET", f"/internal/games/{join_code}")
        try:
            return InternalGame(response.json())
        except (KeyError, TypeError, ValueError) as exc:
            raise WebUnavailableError("web service sent an unreadable game") from exc

    async def mark_started(self, game_id: GameId) -> None:
        await self._request("POST", f"/internal/games/{game_id}/started")

    async def mark_many_started(self, game_ids: Sequence[GameId]) -> None:
        """Tell the web service that ``game_ids`` started, in one request per
        ``MAX_STARTED_PER_REQUEST`` games; a web service without that call (an older version,
        during a rolling update) is told one game at a time, as it was before."""
        for first in range(0, len(game_ids), MAX_STARTED_PER_REQUEST):
            chunk = list(game_ids[first : first + MAX_STARTED_PER_REQUEST])
            body = orjson.dumps({"game_ids": chunk})
            try:
                await self._request("POST", "/internal/games/started", body)
                continue
            except (NotFoundError, MethodNotAllowedError):
                pass  # an older web service: one game at a time
            told = await asyncio.gather(
                *(self.mark_started(game_id) for game_id in chunk), return_exceptions=True
            )
            for failure in told:  # an unknown game is ignored, as the one call does
                if isinstance(failure, Exception) and not isinstance(failure, NotFoundError):
                    raise failure

    async def post_results(self, game_id: GameId, body: bytes) -> None:
        await self._request("POST", f"/internal/games/{game_id}/results", body)
