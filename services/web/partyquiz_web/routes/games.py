"""Games: create from a quiz (join code + host token), history, results, CSV; code lookup."""

from __future__ import annotations

import uuid
from typing import Annotated, Final

from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy.exc import IntegrityError

from partyquiz_core.codes import generate_join_code, normalize_join_code
from partyquiz_core.errors import ConflictError, GameStateError, NotFoundError, ValidationError
from partyquiz_core.quiz import Quiz, read_stored_quiz
from partyquiz_web.dependencies import ClientIp, CurrentHost, RuntimeDep, SessionDep
from partyquiz_web.http_errors import RateLimitedError, error_responses
from partyquiz_web.models import Game
from partyquiz_web.repositories import GameRepository, QuizRepository
from partyquiz_web.results import AnswerRow, PlayerRow, player_results, question_results, render_csv
from partyquiz_web.schemas import (
    CodeLookup,
    GameCreate,
    GameCreated,
    GameDetail,
    GameStatus,
    GameSummary,
    HostToken,
)

router = APIRouter(
    prefix="/api/games", tags=["games"], responses=error_responses(401, 404, 409, 413, 422, 429)
)

MAX_CODE_ATTEMPTS: Final = 20


def _status(game: Game) -> GameStatus:
    value = game.status
    assert value in ("created", "running", "ended")
    return value  # type: ignore[return-value]


def _summary(game: Game, player_count: int) -> GameSummary:
    return GameSummary(
        game_id=game.id,
        join_code=game.join_code,
        quiz_id=game.quiz_id,
        quiz_title=game.quiz_title,
        status=_status(game),
        player_count=player_count,
        created_at=game.created_at,
        started_at=game.started_at,
        ended_at=game.ended_at,
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_game(
    body: GameCreate, request: Request, host: CurrentHost, session: SessionDep, runtime: RuntimeDep
) -> GameCreated:
    """Create a game from one of your quizzes: a join code for players, a token for you."""
    # Plain values: a rollback after a code collision expires every loaded object.
    host_id = host.id
    record = await QuizRepository(session).get_owned(body.quiz_id, host_id)
    quiz_id, title, snapshot = record.id, record.title, dict(record.content)
    games = GameRepository(session)
    for _ in range(MAX_CODE_ATTEMPTS):
        code = generate_join_code(runtime.rng)
        if await games.code_in_use(code):
            continue
        game = Game(
            id=uuid.uuid4().hex,
            join_code=code,
            host_id=host_id,
            quiz_id=quiz_id,
            quiz_title=title,
            quiz_snapshot=snapshot,
            status="created",
            created_at=runtime.now(),
        )
        games.add(game)
        try:
            await session.commit()
        except IntegrityError:
            # Another game took the code between the check and the insert.
            await session.rollback()
            continue
        token = runtime.tokens.issue_host_token(host_id, game.id, code, runtime.clock())
        return GameCreated(
            game_id=game.id,
            join_code=code,
            status="created",
            host_token=token,
            ws_url=runtime.ws_url(request),
            join_url=runtime.join_url(request, code),
            created_at=game.created_at,
        )
    raise ConflictError("no free join code found; try again", code="join_codes_exhausted")


@router.get("")
async def list_games(
    host: CurrentHost,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[GameSummary]:
    """Your games, newest first, a page at a time."""
    rows = await GameRepository(session).list_for(host.id, limit=limit, offset=offset)
    return [_summary(g, n) for g, n in rows]


@router.get("/code/{join_code}")
async def look_up_code(
    join_code: str, request: Request, session: SessionDep, runtime: RuntimeDep, ip: ClientIp
) -> CodeLookup:
    """Public: find the game a join code belongs to and where to connect to play it."""
    metrics = runtime.metrics
    try:
        await runtime.limiter.check(runtime.lookup_limit, ip)
    except RateLimitedError:
        metrics.count_join_attempt("rate_limited")
        raise
    try:
        code = normalize_join_code(join_code)
    except ValidationError:
        metrics.count_join_attempt("invalid")
        raise
    try:
        game = await GameRepository(session).by_code(code)
    except NotFoundError:
        metrics.count_join_attempt("not_found")
        raise
    metrics.count_join_attempt("found")
    return CodeLookup(
        game_id=game.id,
        join_code=game.join_code,
        status=_status(game),
        ws_url=runtime.ws_url(request),
    )


async def _detail(game: Game, games: GameRepository) -> tuple[Quiz, GameDetail]:
    players = [
        PlayerRow(p.player_id, p.nickname, p.score, p.rank) for p in await games.players(game.id)
    ]
    answers = [
        AnswerRow(
            a.player_id,
            a.question_index,
            a.choices,
            a.elapsed,
            a.correct,
            a.points,
            a.text,
            a.value,
        )
        for a in await games.answers(game.id)
    ]
    quiz = read_stored_quiz(game.quiz_snapshot)
    detail = GameDetail(
        **_summary(game, len(players)).model_dump(),
        players=player_results(players, answers),
        questions=question_results(quiz, answers),
    )
    return quiz, detail


@router.get("/{game_id}")
async def get_game(game_id: str, host: CurrentHost, session: SessionDep) -> GameDetail:
    """One game with per-player and per-question results (empty until it has ended)."""
    games = GameRepository(session)
    _, detail = await _detail(await games.get_owned(game_id, host.id), games)
    return detail


@router.post("/{game_id}/host-token")
async def reissue_host_token(
    game_id: str, request: Request, host: CurrentHost, session: SessionDep, runtime: RuntimeDep
) -> HostToken:
    """A fresh host token for a game that has not ended (after a reload or on another screen)."""
    game = await GameRepository(session).get_owned(game_id, host.id)
    if game.status == "ended":
        raise GameStateError("the game has ended", code="game_ended")
    token = runtime.tokens.issue_host_token(host.id, game.id, game.join_code, runtime.clock())
    return HostToken(
        game_id=game.id,
        join_code=game.join_code,
        host_token=token,
        ws_url=runtime.ws_url(request),
        join_url=runtime.join_url(request, game.join_code),
    )


@router.delete("/{game_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_game(game_id: str, host: CurrentHost, session: SessionDep) -> Response:
    """Delete a game that is not running (a game never started, or one from history)."""
    games = GameRepository(session)
    game = await games.get_owned(game_id, host.id)
    if game.status == "running":
        raise GameStateError("a running game cannot be deleted; end it first", code="game_running")
    await games.delete(game)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{game_id}/results.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def export_results_csv(game_id: str, host: CurrentHost, session: SessionDep) -> Response:
    """Final standings as CSV: one row per player, points per question."""
    games = GameRepository(session)
    game = await games.get_owned(game_id, host.id)
    quiz, detail = await _detail(game, games)
    return Response(
        render_csv(quiz, detail.players),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="results-{game.join_code}.csv"'},
    )
