"""SQLAlchemy 2 table models of the web service and their naming convention.

Owns the relational schema that the alembic migrations create; a change here needs a new
migration (a test runs ``alembic check``). Migrations are expand/contract: code of version N
must keep working on the schema of version N+1. No queries live here; see ``repositories``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

GAME_STATUSES = ("created", "running", "ended")


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite drops the offset)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: sa.JSON()}


class Host(Base):
    """A host account: someone who builds quizzes and runs games."""

    __tablename__ = "hosts"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(80))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[datetime]


class QuizRecord(Base):
    """A stored quiz; ``content`` is the ``partyquiz_core.quiz.Quiz`` JSON."""

    __tablename__ = "quizzes"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    owner_id: Mapped[str] = mapped_column(sa.ForeignKey("hosts.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(sa.String(120))
    question_count: Mapped[int]
    content: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Game(Base):
    """One run of a quiz; it plays the quiz as it was when the game was created."""

    __tablename__ = "games"
    __table_args__ = (
        sa.CheckConstraint("status IN ('created', 'running', 'ended')", name="status_known"),
        # A join code identifies at most one game that has not ended.
        sa.Index(
            "uq_games_active_join_code",
            "join_code",
            unique=True,
            postgresql_where=sa.text("status <> 'ended'"),
            sqlite_where=sa.text("status <> 'ended'"),
        ),
    )

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    join_code: Mapped[str] = mapped_column(sa.String(16))
    host_id: Mapped[str] = mapped_column(sa.ForeignKey("hosts.id", ondelete="CASCADE"), index=True)
    quiz_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("quizzes.id", ondelete="SET NULL"), index=True
    )
    quiz_title: Mapped[str] = mapped_column(sa.String(120))
    quiz_snapshot: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]


class GamePlayer(Base):
    """A player's final standing in an ended game."""

    __tablename__ = "game_players"
    __table_args__ = (sa.UniqueConstraint("game_id", "player_id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    game_id: Mapped[str] = mapped_column(sa.ForeignKey("games.id", ondelete="CASCADE"))
    player_id: Mapped[str] = mapped_column(sa.String(64))
    nickname: Mapped[str] = mapped_column(sa.String(64))
    score: Mapped[int]
    rank: Mapped[int]


class GameAnswer(Base):
    """One recorded answer of one player to one question of an ended game."""

    __tablename__ = "game_answers"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    game_id: Mapped[str] = mapped_column(sa.ForeignKey("games.id", ondelete="CASCADE"), index=True)
    player_id: Mapped[str] = mapped_column(sa.String(64))
    question_index: Mapped[int]
    choices: Mapped[list[int]] = mapped_column(sa.JSON())
    elapsed: Mapped[float] = mapped_column(sa.Float())
    correct: Mapped[bool]
    points: Mapped[int]
    text: Mapped[str | None] = mapped_column(sa.String(60))  # what was typed (type answer)
    value: Mapped[float | None] = mapped_column(sa.Float())  # the number picked (slider)


class ImageRecord(Base):
    """An uploaded image as served: re-encoded bytes named by their SHA-256 (see ``images``).

    Kept in the database, so backups and restores carry them with the quizzes that show them.
    One row per distinct content: two hosts uploading the same picture share it.
    """

    __tablename__ = "images"

    digest: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # SHA-256, hex
    media_type: Mapped[str] = mapped_column(sa.String(32))
    width: Mapped[int]
    height: Mapped[int]
    content: Mapped[bytes] = mapped_column(sa.LargeBinary())
    created_at: Mapped[datetime]
