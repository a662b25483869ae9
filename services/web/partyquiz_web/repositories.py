"""All SQL of the web service: one repository per aggregate over an ``AsyncSession``.

Repositories read and stage writes; they never commit (the route owning the unit of work
does). "Not yours" and "does not exist" look the same from outside: both raise
``NotFoundError``, so ids of other hosts' things cannot be probed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from partyquiz_core.errors import NotFoundError
from partyquiz_web.models import Game, GameAnswer, GamePlayer, Host, ImageRecord, QuizRecord
from partyquiz_web.schemas import GameResults

# Ids are uuid4 hex; anything else cannot exist, so it is "not found" without a query.
_ID = re.compile(r"[0-9a-f]{32}")
_DIGEST = re.compile(r"[0-9a-f]{64}")


def is_id(value: str) -> bool:
    return _ID.fullmatch(value) is not None


class HostRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def add(self, host: Host) -> None:
        self._session.add(host)

    async def by_email(self, email: str) -> Host | None:
        result = await self._session.scalars(sa.select(Host).where(Host.email == email))
        return result.first()

    async def by_id(self, host_id: str) -> Host | None:
        return await self._session.get(Host, host_id) if is_id(host_id) else None


class ImageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, image: ImageRecord) -> bool:
        """Stage ``image`` unless its content is stored already; return whether it was new."""
        if await self._session.get(ImageRecord, image.digest) is not None:
            return False
        self._session.add(image)
        return True

    async def get(self, digest: str) -> ImageRecord:
        image = await self._session.get(ImageRecord, digest) if _DIGEST.fullmatch(digest) else None
        if image is None:
            raise NotFoundError(f"image {digest} not found")
        return image

    async def missing(self, digests: set[str]) -> set[str]:
        """Which of ``digests`` name no stored image."""
        if not digests:
            return set()
        query = sa.select(ImageRecord.digest).where(ImageRecord.digest.in_(digests))
        return digests - set((await self._session.scalars(query)).all())


class QuizRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def add(self, quiz: QuizRecord) -> None:
        self._session.add(quiz)

    async def list_for(
        self, owner_id: str, *, limit: int | None = None, offset: int = 0
    ) -> Sequence[QuizRecord]:
        query = (
            sa.select(QuizRecord)
            .where(QuizRecord.owner_id == owner_id)
            .order_by(QuizRecord.updated_at.desc(), QuizRecord.id)
            .limit(limit)
            .offset(offset)
        )
        return (await self._session.scalars(query)).all()

    async def get_owned(self, quiz_id: str, owner_id: str) -> QuizRecord:
        quiz = await self._session.get(QuizRecord, quiz_id) if is_id(quiz_id) else None
        if quiz is None or quiz.owner_id != owner_id:
            raise NotFoundError(f"quiz {quiz_id} not found")
        return quiz

    async def delete(self, quiz: QuizRecord) -> None:
        await self._session.delete(quiz)


class GameRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def add(self, game: Game) -> None:
        self._session.add(game)

    async def code_in_use(self, join_code: str) -> bool:
        query = sa.select(sa.exists().where(Game.join_code == join_code, Game.status != "ended"))
        return bool(await self._session.scalar(query))

    async def by_id(self, game_id: str) -> Game:
        game = await self._session.get(Game, game_id) if is_id(game_id) else None
        if game is None:
            raise NotFoundError(f"game {game_id} not found")
        return game

    async def mark_running(self, game_ids: Sequence[str], now: datetime) -> None:
        """Move those of ``game_ids`` that are created games to running, in one statement;
        unknown ids and games in any other state are left alone."""
        await self._session.execute(
            sa.update(Game)
            .where(Game.id.in_(game_ids), Game.status == "created")
            .values(status="running", started_at=now)
            .execution_options(synchronize_session=False)
        )

    async def claim_for_results(self, game_id: str, ended_at: datetime) -> bool:
        """Mark the game ended unless it already is; True when this caller did it.

        One conditional UPDATE decides between concurrent posts: PostgreSQL serialises them
        on the row lock, SQLite on its write lock, and only one sees a row to change.
        """
        result = await self._session.execute(
            sa.update(Game)
            .where(Game.id == game_id, Game.status != "ended")
            .values(
                status="ended",
                ended_at=ended_at,
                started_at=sa.func.coalesce(Game.started_at, ended_at),
            )
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def get_owned(self, game_id: str, host_id: str) -> Game:
        game = await self._session.get(Game, game_id) if is_id(game_id) else None
        if game is None or game.host_id != host_id:
            raise NotFoundError(f"game {game_id} not found")
        return game

    async def by_code(self, join_code: str) -> Game:
        """The game a code points at: the one not ended, else the most recent one."""
        query = (
            sa.select(Game)
            .where(Game.join_code == join_code)
            .order_by((Game.status == "ended").asc(), Game.created_at.desc())
            .limit(1)
        )
        game = (await self._session.scalars(query)).first()
        if game is None:
            raise NotFoundError(f"no game with code {join_code}")
        return game

    async def list_for(
        self, host_id: str, *, limit: int | None = None, offset: int = 0
    ) -> Sequence[tuple[Game, int]]:
        players = (
            sa.select(GamePlayer.game_id, sa.func.count().label("n"))
            .group_by(GamePlayer.game_id)
            .subquery()
        )
        query = (
            sa.select(Game, sa.func.coalesce(players.c.n, 0))
            .outerjoin(players, players.c.game_id == Game.id)
            .where(Game.host_id == host_id)
            .order_by(Game.created_at.desc(), Game.id)
            .limit(limit)
            .offset(offset)
        )
        rows = (await self._session.execute(query)).all()
        return [(game, int(count)) for game, count in rows]

    async def delete(self, game: Game) -> None:
        await self._session.delete(game)

    async def players(self, game_id: str) -> Sequence[GamePlayer]:
        query = (
            sa.select(GamePlayer)
            .where(GamePlayer.game_id == game_id)
            .order_by(GamePlayer.rank, GamePlayer.nickname, GamePlayer.player_id)
        )
        return (await self._session.scalars(query)).all()

    async def answers(self, game_id: str) -> Sequence[GameAnswer]:
        query = (
            sa.select(GameAnswer)
            .where(GameAnswer.game_id == game_id)
            .order_by(GameAnswer.question_index, GameAnswer.id)
        )
        return (await self._session.scalars(query)).all()

    async def store_results(self, game_id: str, results: GameResults) -> None:
        """Stage the final standings and every answer with two bulk inserts."""
        if results.players:
            await self._session.execute(
                sa.insert(GamePlayer),
                [
                    {
                        "game_id": game_id,
                        "player_id": p.player_id,
                        "nickname": p.nickname,
                        "score": p.score,
                        "rank": p.rank,
                    }
                    for p in results.players
                ],
            )
        if results.answers:
            await self._session.execute(
                sa.insert(GameAnswer),
                [
                    {
                        "game_id": game_id,
                        "player_id": a.player_id,
                        "question_index": a.question_index,
                        "choices": list(a.choices),
                        "elapsed": a.elapsed,
                        "correct": a.correct,
                        "points": a.points,
                        "text": a.text,
                        "value": a.value,
                    }
                    for a in results.answers
                ],
            )
