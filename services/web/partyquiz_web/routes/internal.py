"""The internal API the game service calls (service token required; not in the public schema).

Implements the web ⇄ game-service contract: look a game up by join code, mark it (or many
games at once) started, store its final results once (idempotent).
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Response, status

from partyquiz_core.codes import normalize_join_code
from partyquiz_core.errors import NotFoundError, ValidationError
from partyquiz_core.quiz import read_stored_quiz
from partyquiz_web.dependencies import RuntimeDep, SessionDep, require_service_token
from partyquiz_web.http_errors import FieldErrorsError
from partyquiz_web.repositories import GameRepository
from partyquiz_web.schemas import GameResults, InternalGame, StartedGames

router = APIRouter(
    prefix="/internal/games",
    include_in_schema=False,
    dependencies=[Depends(require_service_token)],
)


@router.get("/{join_code}")
async def get_game_by_code(join_code: str, session: SessionDep) -> InternalGame:
    try:
        code = normalize_join_code(join_code)
    except ValidationError:
        raise NotFoundError(f"no game with code {join_code!r}") from None
    game = await GameRepository(session).by_code(code)
    return InternalGame(
        game_id=game.id,
        join_code=game.join_code,
        status=game.status,
        quiz=read_stored_quiz(game.quiz_snapshot),
        host_id=game.host_id,
    )


@router.post("/started", status_code=status.HTTP_204_NO_CONTENT)
async def mark_many_started(
    started: StartedGames, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Mark many games running in one call (a replica whose games started together sends
    them so, not one request each); ids of unknown games are ignored."""
    await GameRepository(session).mark_running(started.game_ids, runtime.now())
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{game_id}/started", status_code=status.HTTP_204_NO_CONTENT)
async def mark_started(game_id: str, session: SessionDep, runtime: RuntimeDep) -> Response:
    games = GameRepository(session)
    await games.by_id(game_id)  # 404 for an unknown game
    await games.mark_running([game_id], runtime.now())
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _check_results(results: GameResults, question_count: int) -> None:
    errors: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, player in enumerate(results.players):
        if player.player_id in seen:
            errors.append((f"players.{i}.player_id", "repeats an earlier player"))
        seen.add(player.player_id)
    answered: set[tuple[str, int]] = set()
    for i, answer in enumerate(results.answers):
        if answer.question_index >= question_count:
            errors.append(
                (f"answers.{i}.question_index", f"the quiz has {question_count} questions")
            )
        key = (answer.player_id, answer.question_index)
        if key in answered:
            errors.append((f"answers.{i}", "a second answer of one player to one question"))
        answered.add(key)
    if errors:
        raise FieldErrorsError(f"{errors[0][0]}: {errors[0][1]}", errors)


@router.post("/{game_id}/results", status_code=status.HTTP_204_NO_CONTENT)
async def store_results(game_id: str, results: GameResults, session: SessionDep) -> Response:
    games = GameRepository(session)
    game = await games.by_id(game_id)
    if game.status == "ended":
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    _check_results(results, len(read_stored_quiz(game.quiz_snapshot).questions))
    try:
        ended_at = datetime.fromtimestamp(results.ended_at, UTC)
    except (OverflowError, OSError, ValueError):
        raise FieldErrorsError(
            "ended_at: not a valid time", [("ended_at", "not a valid epoch time")]
        ) from None
    # End the read-only part so the claim below starts a fresh transaction on every backend.
    await session.rollback()
    if await games.claim_for_results(game_id, ended_at):
        await games.store_results(game_id, results)
        await session.commit()
    else:
        await session.rollback()  # another post stored the results first
    return Response(status_code=status.HTTP_204_NO_CONTENT)
