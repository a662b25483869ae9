"""Adds the upgrade test image's one extra migration after the packaged head.

Run at image build time with the image's own Python: finds the head of the migrations shipped
in partyquiz_web, writes an additive migration on top of it (table ``upgrade_probe`` with one
row) and compiles it, because the image runs on a read-only root without writing bytecode.
"""

from __future__ import annotations

import compileall

from partyquiz_web.migrating import MIGRATIONS_DIR, head_revision

REVISION = "test_upgrade_probe"
MIGRATION = '''"""Test image only: an additive table, so an upgrade has a schema change to run.

Revision ID: {revision}
Revises: {down}
"""

import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "upgrade_probe",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("note", sa.String(length=80), nullable=False),
    )
    op.bulk_insert(table, [{{"id": 1, "note": "migrated by the upgrade test image"}}])


def downgrade() -> None:
    op.drop_table("upgrade_probe")
'''

down = head_revision()
path = MIGRATIONS_DIR / "versions" / f"{REVISION}.py"
path.write_text(MIGRATION.format(revision=REVISION, down=down))
if not compileall.compile_file(str(path), quiet=1):
    raise SystemExit(f"could not compile {path}")
print(f"added migration {REVISION} on top of {down}")
