"""Answers keep what was typed (type answer) and the number picked (slider).

Expand only: two nullable columns, so the previous release, which never writes them, runs on
this schema unchanged.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("game_answers") as table:
        table.add_column(sa.Column("text", sa.String(length=60), nullable=True))
        table.add_column(sa.Column("value", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("game_answers") as table:
        table.drop_column("value")
        table.drop_column("text")
