"""Backups round-trip: the backup pod's own script dumps a migrated database; pg_restore loads it.

The dump runs the exact script the operator puts in its backup pods (``render.jobs.backup_script``)
with real pg_dump/pg_restore against a real PostgreSQL; the restore follows the procedure in
docs/operations.md ("Upgrades, rollbacks, backups and restore on Kubernetes").
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.servers import PG_BIN, Postgres

from partyquiz_operator.render import jobs as backup

pytestmark = pytest.mark.timeout(180)

SEED = """
INSERT INTO hosts (id, email, display_name, password_hash, created_at)
VALUES ('h1', 'host@example.com', 'Quiz Host', 'x', now());
INSERT INTO quizzes (id, owner_id, title, question_count, content, created_at, updated_at)
VALUES ('q1', 'h1', 'Capitals of Europe', 2, '{"title": "Capitals of Europe"}', now(), now());
INSERT INTO images (digest, media_type, width, height, content, created_at)
VALUES (encode(sha256('\\x89504e470d0a1a0a00ff'::bytea), 'hex'), 'image/png', 1, 1,
        '\\x89504e470d0a1a0a00ff'::bytea, now());
"""


def _libpq_env(postgres: Postgres, database: str) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{PG_BIN}:{os.environ['PATH']}",
        "PGHOST": "127.0.0.1",
        "PGPORT": str(postgres.port),
        "PGUSER": postgres.user,
        "PGDATABASE": database,
    }


def _psql(postgres: Postgres, database: str, sql: str) -> str:
    done = subprocess.run(
        [str(PG_BIN / "psql"), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql],
        env=_libpq_env(postgres, database),
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def _migrate(postgres: Postgres, database: str) -> subprocess.CompletedProcess[str]:
    web = shutil.which("partyquiz-web")
    assert web is not None
    env = {**os.environ, "PARTYQUIZ_WEB_DATABASE_URL": postgres.url(database)}
    return subprocess.run([web, "migrate"], env=env, capture_output=True, text=True, check=False)


def _run_backup_script(postgres: Postgres, database: str, target: Path, tag: str) -> Path:
    """Run the backup pod's script with its /backups directory moved to ``target``."""
    script = backup.backup_script(backup.PRE_MIGRATION_PREFIX, retain=3)
    script = script.replace(backup.BACKUP_DIR, str(target))
    env = {**_libpq_env(postgres, database), "DUMP_TAG": tag}
    sh = shutil.which("sh")
    assert sh is not None
    done = subprocess.run([sh, "-c", script], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    dumps = sorted(target.glob(f"{backup.PRE_MIGRATION_PREFIX}-*{backup.DUMP_SUFFIX}"))
    assert dumps, done.stdout
    return dumps[-1]


def test_a_dump_made_by_the_backup_script_restores_into_a_fresh_database(
    postgres: Postgres, tmp_path: Path
) -> None:
    source = postgres.create_database()
    migrated = _migrate(postgres, source)
    assert migrated.returncode == 0, migrated.stderr
    _psql(postgres, source, SEED)
    head = _psql(postgres, source, "SELECT version_num FROM alembic_version")

    dump = _run_backup_script(postgres, source, tmp_path, tag="abc123")
    assert dump.name.startswith(f"{backup.PRE_MIGRATION_PREFIX}-")
    assert dump.name.endswith(f"-abc123{backup.DUMP_SUFFIX}")
    assert dump.read_bytes()[:5] == b"PGDMP"  # custom format, what pg_restore expects
    assert not list(tmp_path.glob("*.partial"))

    # Data written after the backup is what a restore rolls back.
    _psql(postgres, source, "DELETE FROM quizzes")

    restored = postgres.create_database()
    done = subprocess.run(
        [*backup.pg_restore_args(restored), str(dump)],
        env=_libpq_env(postgres, restored),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr

    assert _psql(postgres, restored, "SELECT email, display_name FROM hosts") == (
        "host@example.com|Quiz Host"
    )
    assert _psql(postgres, restored, "SELECT title, content->>'title' FROM quizzes") == (
        "Capitals of Europe|Capitals of Europe"
    )
    # Quiz pictures live in the database: the dump carries them, byte for byte.
    assert _psql(
        postgres, restored, "SELECT digest = encode(sha256(content), 'hex'), media_type FROM images"
    ) == ("t|image/png")
    assert _psql(postgres, restored, "SELECT count(*) FROM images") == "1"
    assert _psql(postgres, restored, "SELECT version_num FROM alembic_version") == head
    again = _migrate(postgres, restored)
    assert again.returncode == 0, again.stderr


def test_restoring_over_a_live_database_replaces_its_contents(
    postgres: Postgres, tmp_path: Path
) -> None:
    database = postgres.create_database()
    assert _migrate(postgres, database).returncode == 0
    _psql(postgres, database, SEED)
    dump = _run_backup_script(postgres, database, tmp_path, tag="r1")

    _psql(postgres, database, "UPDATE quizzes SET title = 'Edited after the backup'")
    _psql(
        postgres,
        database,
        "INSERT INTO hosts (id, email, display_name, password_hash, created_at) "
        "VALUES ('h2', 'late@example.com', 'Late', 'x', now())",
    )
    done = subprocess.run(
        [*backup.pg_restore_args(database), str(dump)],
        env=_libpq_env(postgres, database),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert _psql(postgres, database, "SELECT title FROM quizzes") == "Capitals of Europe"
    assert _psql(postgres, database, "SELECT count(*) FROM hosts") == "1"


def test_backup_script_keeps_the_configured_number_of_dumps(
    postgres: Postgres, tmp_path: Path
) -> None:
    database = postgres.create_database()
    assert _migrate(postgres, database).returncode == 0
    for stamp in ("20240101T000000Z", "20240102T000000Z", "20240103T000000Z"):
        (tmp_path / f"{backup.PRE_MIGRATION_PREFIX}-{stamp}-old{backup.DUMP_SUFFIX}").write_bytes(
            b"old"
        )
    newest = _run_backup_script(postgres, database, tmp_path, tag="new")
    kept = sorted(p.name for p in tmp_path.glob(f"*{backup.DUMP_SUFFIX}"))
    assert len(kept) == 3
    assert newest.name in kept
    assert f"{backup.PRE_MIGRATION_PREFIX}-20240101T000000Z-old{backup.DUMP_SUFFIX}" not in kept


def _run_restore_script(
    postgres: Postgres, database: str, dump: Path, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    """Run the restore pod's script (docs/operations.md, step 3) on ``dump``."""
    script = backup.restore_script().replace(backup.RESTORE_SQL, str(tmp_path / "restore.sql"))
    sh = shutil.which("sh")
    assert sh is not None
    return subprocess.run(
        [sh, "-c", script, "sh", str(dump)],
        env=_libpq_env(postgres, database),
        capture_output=True,
        text=True,
        check=False,
    )


def test_restoring_a_dump_from_before_a_migration_removes_what_the_migration_added(
    postgres: Postgres, tmp_path: Path
) -> None:
    database = postgres.create_database()
    assert _migrate(postgres, database).returncode == 0
    _psql(postgres, database, SEED)
    head = _psql(postgres, database, "SELECT version_num FROM alembic_version")
    (tmp_path / "backups").mkdir()
    dump = _run_backup_script(postgres, database, tmp_path / "backups", tag="before")
    # What a later release's migration does: a new table, a new revision, more data.
    _psql(postgres, database, "CREATE TABLE upgrade_probe (id integer PRIMARY KEY)")
    _psql(postgres, database, "UPDATE alembic_version SET version_num = 'later'")
    _psql(postgres, database, "UPDATE quizzes SET title = 'Edited after the backup'")

    done = _run_restore_script(postgres, database, dump, tmp_path)

    assert done.returncode == 0, done.stderr
    assert _psql(postgres, database, "SELECT to_regclass('upgrade_probe') IS NULL") == "t"
    assert _psql(postgres, database, "SELECT version_num FROM alembic_version") == head
    assert _psql(postgres, database, "SELECT title FROM quizzes") == "Capitals of Europe"
    # The version the dump belongs to runs on it, and the later migration could run again.
    assert _migrate(postgres, database).returncode == 0
    assert not list(tmp_path.glob("restore.sql"))


def test_a_dump_that_cannot_be_read_leaves_the_database_as_it_was(
    postgres: Postgres, tmp_path: Path
) -> None:
    database = postgres.create_database()
    assert _migrate(postgres, database).returncode == 0
    _psql(postgres, database, SEED)
    broken = tmp_path / "broken.dump"
    broken.write_bytes(b"PGDMP" + b"\0" * 64)

    done = _run_restore_script(postgres, database, broken, tmp_path)

    assert done.returncode != 0
    assert _psql(postgres, database, "SELECT title FROM quizzes") == "Capitals of Europe"
