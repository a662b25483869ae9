"""compose/backup.sh, the compose stack's backup command, against a real PostgreSQL.

The script runs on the host with the server binaries the tests use; the compose tier runs it in
its container. These cover what a one-off run there would not: retention, a failed dump, the
health check, and refusing bad settings.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.servers import PG_BIN, Postgres

SCRIPT = Path(__file__).resolve().parents[2] / "compose" / "backup.sh"


def _run(
    postgres: Postgres, backups: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {
        **os.environ,
        "PATH": f"{PG_BIN}:{os.environ['PATH']}",
        "PGHOST": "127.0.0.1",
        "PGPORT": str(postgres.port),
        "PGUSER": postgres.user,
        "PGDATABASE": "postgres",
        "PARTYQUIZ_BACKUP_DIR": str(backups),
        **env,
    }
    return subprocess.run(
        ["sh", str(SCRIPT), *args], env=environ, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def test_a_dump_keeps_the_newest_of_its_kind_and_leaves_other_kinds_alone(
    postgres: Postgres, tmp_path: Path
) -> None:
    older = ["manual-20240101T000000Z.dump", "manual-20240102T000000Z.dump"]
    scheduled = "scheduled-20230101T000000Z.dump"
    for name in [*older, scheduled]:
        (tmp_path / name).write_bytes(b"old")
    result = _run(postgres, tmp_path, "now", PARTYQUIZ_BACKUP_RETAIN="2")
    assert result.returncode == 0, result.stderr
    kept = sorted(p.name for p in tmp_path.glob("*.dump"))
    assert older[0] not in kept
    assert older[1] in kept
    assert scheduled in kept  # another kind's retention is its own
    new = [name for name in kept if name not in (*older, scheduled)]
    assert len(new) == 1
    assert new[0].startswith("manual-")
    assert (tmp_path / new[0]).stat().st_mode & 0o077 == 0  # dumps are readable by root only
    assert _run(postgres, tmp_path, "check").returncode == 0


def test_a_failed_dump_leaves_no_file_and_turns_the_health_check_red(
    postgres: Postgres, tmp_path: Path
) -> None:
    result = _run(postgres, tmp_path, "now", PGDATABASE="no_such_database")
    assert result.returncode != 0
    assert list(tmp_path.glob("*.dump*")) == []
    assert _run(postgres, tmp_path, "check").returncode != 0
    # The next good dump makes it healthy again.
    assert _run(postgres, tmp_path, "now").returncode == 0
    assert _run(postgres, tmp_path, "check").returncode == 0


def test_schedule_refuses_a_time_that_is_not_a_time_of_day(
    postgres: Postgres, tmp_path: Path
) -> None:
    result = _run(postgres, tmp_path, "schedule", PARTYQUIZ_BACKUP_TIME="25:99")
    assert result.returncode == 2
    assert "PARTYQUIZ_BACKUP_TIME=25:99 is not a time of day" in result.stderr
    result = _run(postgres, tmp_path, "schedule", PARTYQUIZ_BACKUP_RETAIN="0")
    assert result.returncode == 2
    assert "PARTYQUIZ_BACKUP_RETAIN=0" in result.stderr
