"""Migrations: an empty database reaches head, re-running is a no-op, models match head."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from tests.servers import Postgres, free_port

from partyquiz_web.database import build_engine
from partyquiz_web.migrating import (
    alembic_config,
    check_for_drift,
    current_revision,
    head_revision,
    run_with_connection,
    upgrade_to_head,
)


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'partyquiz.db'}"
    return str(request.getfixturevalue("fresh_postgres_url"))


async def _tables(url: str) -> set[str]:
    engine = build_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_empty_database_is_upgraded_to_head(empty_database_url: str) -> None:
    assert await current_revision(empty_database_url) is None
    await upgrade_to_head(empty_database_url)
    assert await current_revision(empty_database_url) == head_revision()
    assert await _tables(empty_database_url) == {
        "alembic_version",
        "hosts",
        "quizzes",
        "games",
        "game_players",
        "game_answers",
        "images",
    }


async def test_models_and_migrations_do_not_drift(empty_database_url: str) -> None:
    await upgrade_to_head(empty_database_url)
    await check_for_drift(empty_database_url)


def _cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "partyquiz_web.cli", *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _web_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARTYQUIZ_WEB_")}
    env.update({f"PARTYQUIZ_WEB_{k.upper()}": v for k, v in values.items()})
    return env


def test_migrate_command_twice_is_a_no_op_the_second_time(
    postgres: Postgres, tmp_path: Path
) -> None:
    url = postgres.url(postgres.create_database())
    env = _web_env(database_url=url)
    first = _cli("migrate", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert f"upgraded from empty to {head_revision()} (head)" in first.stdout
    second = _cli("migrate", env=env, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "nothing to do" in second.stdout


def test_migrate_defaults_to_sqlite_in_the_working_directory(tmp_path: Path) -> None:
    result = _cli("migrate", env=_web_env(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "partyquiz.db").exists()


def test_migrate_reports_an_unreachable_database_in_one_line(tmp_path: Path) -> None:
    port = free_port()
    env = _web_env(database_url=f"postgresql+asyncpg://quiz:s3cret@127.0.0.1:{port}/quiz")
    result = _cli("migrate", env=env, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        f"partyquiz-web: migrate failed on postgresql+asyncpg://quiz:***@127.0.0.1:{port}/quiz"
    )
    assert "s3cret" not in result.stderr


def test_serve_refuses_a_weak_secret_in_one_line(tmp_path: Path) -> None:
    result = _cli("serve", env=_web_env(jwt_secret="changeme"), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "partyquiz-web: PARTYQUIZ_WEB_JWT_SECRET: must be at least 32 bytes (got 8) outside "
        "ENVIRONMENT=development"
    ]


def test_migrate_on_a_database_from_a_newer_release_fails_in_one_line(tmp_path: Path) -> None:
    env = _web_env()
    assert _cli("migrate", env=env, cwd=tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / "partyquiz.db") as db:
        db.execute("UPDATE alembic_version SET version_num = '9999'")
    result = _cli("migrate", env=env, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "9999" in lines[0]
    assert f"(head here is {head_revision()})" in lines[0]


def test_serve_on_a_busy_port_fails_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = _web_env(jwt_secret="k3Jx9-p2Qw8zR4tY7uV1bN5mA6sD0fG3hL2jK9pQ")
        result = _cli("serve", "--port", str(port), env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"partyquiz-web: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]


# What a release writes into each table, column by column (every column any release has had;
# each revision's own columns are picked from it). Inserted in this order.
_ROWS: dict[str, dict[str, object]] = {
    "hosts": {
        "id": "h" * 32,
        "email": "host@example.org",
        "display_name": "Host",
        "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
    },
    "quizzes": {
        "id": "q" * 32,
        "owner_id": "h" * 32,
        "title": "Old quiz",
        "question_count": 1,
        "content": {"title": "Old quiz", "questions": []},
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
        "updated_at": datetime(2026, 1, 1, tzinfo=UTC),
    },
    "games": {
        "id": "g" * 32,
        "join_code": "ABCDEF",
        "host_id": "h" * 32,
        "quiz_id": "q" * 32,
        "quiz_title": "Old quiz",
        "quiz_snapshot": {"title": "Old quiz", "questions": []},
        "status": "ended",
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
        "started_at": datetime(2026, 1, 1, tzinfo=UTC),
        "ended_at": datetime(2026, 1, 1, tzinfo=UTC),
    },
    "game_players": {
        "game_id": "g" * 32,
        "player_id": "p1",
        "nickname": "Ann",
        "score": 900,
        "rank": 1,
    },
    "game_answers": {
        "game_id": "g" * 32,
        "player_id": "p1",
        "question_index": 0,
        "choices": [1],
        "elapsed": 1.5,
        "correct": True,
        "points": 900,
    },
}


def _revisions() -> list[str]:
    script = ScriptDirectory.from_config(alembic_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


async def _schema(url: str) -> dict[str, dict[str, dict[str, object]]]:
    engine = build_engine(url)
    try:
        async with engine.connect() as conn:

            def read(sync_conn: sa.Connection) -> dict[str, dict[str, dict[str, object]]]:
                inspector = sa.inspect(sync_conn)
                return {
                    table: {c["name"]: c for c in inspector.get_columns(table)}
                    for table in inspector.get_table_names()
                    if table != "alembic_version"
                }

            return await conn.run_sync(read)
    finally:
        await engine.dispose()


async def _write_and_read_as(
    url: str, schema: dict[str, dict[str, dict[str, object]]], written: dict[str, list[str]]
) -> None:
    """Do what a release with ``schema`` does: insert with its columns only, read them back.
    ``written`` collects the ids of the rows, so foreign keys point at existing ones."""
    engine = build_engine(url)
    try:
        async with engine.begin() as conn:
            for table in (t for t in _ROWS if t in schema):
                row = {k: v for k, v in _ROWS[table].items() if k in schema[table]}
                if "id" in row:
                    row["id"] = uuid.uuid4().hex
                    written.setdefault(table, []).append(str(row["id"]))
                columns = [sa.column(name, c["type"]) for name, c in schema[table].items()]
                target = sa.table(table, *columns)
                await conn.execute(sa.insert(target), [_linked(table, row, written)])
                found = (await conn.execute(sa.select(*columns).select_from(target))).all()
                assert found, table
    finally:
        await engine.dispose()


def _linked(table: str, row: dict[str, object], written: dict[str, list[str]]) -> dict[str, object]:
    """Point foreign keys at the rows written last; make unique values unique."""
    links = {"owner_id": "hosts", "host_id": "hosts", "quiz_id": "quizzes", "game_id": "games"}
    for column, parent in links.items():
        if column in row and written.get(parent):
            row[column] = written[parent][-1]
    if table == "hosts":
        row["email"] = f"host-{row['id']}@example.org"
    if table == "games":
        row["join_code"] = uuid.uuid4().hex[:6].upper()
    if table == "game_players":
        row["player_id"] = uuid.uuid4().hex
    return row


async def test_every_migration_only_adds_so_the_release_before_it_runs_on_its_schema(
    empty_database_url: str,
) -> None:
    # Expand/contract: a rollback never runs a down-migration, so the previous release must
    # read and write the new schema. Each migration keeps every table and column (same type,
    # never newly required), and an insert and a read made with the previous schema's columns
    # work after it, on rows written before and after.
    revisions = _revisions()
    assert revisions[-1] == head_revision()
    before: dict[str, dict[str, dict[str, object]]] = {}
    written: dict[str, list[str]] = {}
    for revision in revisions:
        await run_with_connection(
            empty_database_url, lambda config, rev=revision: command.upgrade(config, rev)
        )
        after = await _schema(empty_database_url)
        for table, columns in before.items():
            assert table in after, f"{revision} drops table {table}"
            for name, column in columns.items():
                assert name in after[table], f"{revision} drops {table}.{name}"
                new = after[table][name]
                assert type(new["type"]) is type(column["type"]), f"{revision} retypes {name}"
                assert new["nullable"] or not column["nullable"], f"{revision} requires {name}"
            for name, column in after[table].items():
                if name not in columns:
                    assert column["nullable"] or column["default"] is not None, (
                        f"{revision} adds {table}.{name} that the previous release cannot fill"
                    )
            await _write_and_read_as(empty_database_url, before, written)
        await _write_and_read_as(empty_database_url, after, written)
        before = after
