"""Migrations: an empty database reaches head, re-running is a no-op, models match head."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.servers import Postgres, free_port

from partyquiz_web.database import build_engine
from partyquiz_web.migrating import (
    check_for_drift,
    current_revision,
    head_revision,
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
