"""compose.yaml on one server: what a self-hoster does with it, run with podman-compose.

The stack runs this checkout's web and ws images and the PostgreSQL, Redis and Caddy test images
in a network namespace of its own, under a project name of its own; every request goes through
the proxy's published port, as a browser's would. The steps share one stack because each one
starts from what the previous left (that is the point: data survives down/up, an upgrade and a
restore), and they run in file order.
"""

from __future__ import annotations

import json
import secrets
import shlex
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from partyquiz_operator.render import jobs
from partyquiz_web.migrating import head_revision
from tests.images.compose import COMPOSE_FILE, Stack, compose_stack, image_env, run_init
from tests.images.podman import REPO, image_ref, podman, project_version, wait_for
from tests.netns import netns_unusable_reason

READY_SECONDS = 300
SERVICES = ("postgres", "redis", "backup", "web", "ws", "proxy")
UPGRADE_TAG = "compose-upgrade"
UPGRADE_REVISION = "9001_compose_upgrade_check"
PLAYERS = 6

QUIZ = {
    "title": "Kept across restarts",
    "questions": [
        {"text": "Two plus two?", "choices": [{"text": "4"}, {"text": "5"}], "correct": [0]},
        {"text": "Capital of France?", "choices": [{"text": "Paris"}, {"text": "Rome"}],
         "correct": [0]},
    ],
}  # fmt: skip


def _build_upgrade_images(tmp: Path) -> None:
    """``web`` and ``ws`` at a new tag; the web one carries one more (additive) migration."""
    migration = f'''"""A table only the upgrade test's release has.

Revision ID: {UPGRADE_REVISION}
Revises: {head_revision()}
"""

import sqlalchemy as sa
from alembic import op

revision = "{UPGRADE_REVISION}"
down_revision = "{head_revision()}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("compose_upgrade_check", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("compose_upgrade_check")
'''
    (tmp / f"{UPGRADE_REVISION}.py").write_text(migration)
    (tmp / "Containerfile").write_text(
        f"FROM {image_ref('web')}\n"
        "USER 0\n"
        f"COPY {UPGRADE_REVISION}.py /tmp/\n"
        "RUN versions=$(python3 -c 'import partyquiz_web, pathlib; "
        'print(pathlib.Path(partyquiz_web.__file__).parent / "migrations" / "versions")\') '
        f'&& mv /tmp/{UPGRADE_REVISION}.py "$versions/"\n'
        "USER 10001:10001\n"
    )
    repo = image_ref("web").rpartition("/partyquiz-web:")[0]
    tag = f"{repo}/partyquiz-web:{UPGRADE_TAG}"
    podman("build", "--pull=never", "--network", "none", "--tag", tag, str(tmp), timeout=600)
    podman("tag", image_ref("ws"), f"{repo}/partyquiz-ws:{UPGRADE_TAG}")


@pytest.fixture(scope="module")
def upgrade_images(
    images: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    _build_upgrade_images(tmp_path_factory.mktemp("upgrade"))
    repo = image_ref("web").rpartition("/partyquiz-web:")[0]
    try:
        yield
    finally:
        for name in ("web", "ws"):
            podman("rmi", f"{repo}/partyquiz-{name}:{UPGRADE_TAG}", check=False)


@pytest.fixture(scope="module")
def stack(
    images: dict[str, str],
    test_images: dict[str, str],
    upgrade_images: None,  # made first, so they are removed after the stack's containers
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    reason = netns_unusable_reason()
    if reason is not None:
        pytest.skip(reason)
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    with compose_stack(tmp_path_factory.mktemp("compose"), image_env()) as created:
        yield created


@pytest.fixture(scope="module")
def host(stack: Stack) -> dict[str, str]:
    """A host account made on the first stack: email, password and a token."""
    return {"email": f"host-{secrets.token_hex(4)}@example.com", "password": secrets.token_hex(12)}


def _wait_ready(stack: Stack) -> None:
    """Wait until the proxy serves a ready web service and every health check passes."""

    def ready() -> bool:
        status, _ = stack.http("GET", "/readyz")
        return status == 200

    try:
        wait_for(ready, READY_SECONDS, "web ready through the proxy", interval=1.0)
    except TimeoutError as exc:
        logs = {name: stack.logs(name)[-1500:] for name in stack.containers()}
        raise TimeoutError(f"{exc}\n{json.dumps(logs, indent=1)}") from None
    for name in stack.containers():
        if "_migrate_" in name:
            continue

        def healthy(name: str = name) -> bool:
            return stack.healthcheck(name).returncode == 0

        wait_for(healthy, READY_SECONDS, f"{name}'s health check", interval=1.0)


def _login(stack: Stack, host: dict[str, str]) -> str:
    status, body = stack.http("POST", "/api/auth/login", host)
    assert status == 200, body
    return str(body["access_token"])


def _play(stack: Stack, host: dict[str, str]) -> dict[str, Any]:
    bots = shutil.which("partyquiz-bots")
    assert bots is not None
    result = stack.namespace.run(
        bots, "--web-url", stack.url, "--email", host["email"], "--password", host["password"],
        "--players", str(PLAYERS), "--min-delay", "0.05", "--max-delay", "0.3",
        "--host-pause", "0.2", "--seed", "24", timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    summary: dict[str, Any] = json.loads(result.stdout)
    summary["join_code"] = result.stderr.split("created game ", 1)[1].split()[0]
    return summary


def _connections_served(stack: Stack, replica: int) -> float:
    script = (
        "import urllib.request; print(urllib.request.urlopen("
        "'http://127.0.0.1:8001/metrics', timeout=5).read().decode())"
    )
    metrics = podman("exec", stack.container("ws", replica), "python3", "-c", script).stdout
    total = 0.0
    for line in metrics.splitlines():
        if (
            line.startswith("partyquiz_ws_connections_opened_total{")
            and 'result="accepted"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_init_writes_secrets_once_and_never_overwrites_them(stack: Stack) -> None:
    first = run_init(stack.env_file)
    assert first.returncode == 0, first.stderr
    written = stack.env_file.read_text()
    again = run_init(stack.env_file)
    assert again.returncode == 0, again.stderr
    assert "keeping it" in again.stdout
    assert stack.env_file.read_text() == written
    assert stack.env_file.stat().st_mode & 0o077 == 0  # only the owner reads the secrets
    values = dict(
        line.split("=", 1) for line in written.splitlines() if line and not line.startswith("#")
    )
    assert set(values) == {
        "PARTYQUIZ_JWT_SECRET",
        "PARTYQUIZ_POSTGRES_PASSWORD",
        "PARTYQUIZ_REDIS_PASSWORD",
    }
    assert len(values["PARTYQUIZ_JWT_SECRET"]) >= 64
    assert len(set(values.values())) == 3


def test_up_serves_a_bot_game_through_the_proxy_on_both_game_replicas(
    stack: Stack, host: dict[str, str]
) -> None:
    stack.compose("up", "-d")
    _wait_ready(stack)
    names = stack.containers()
    assert {name.split("_")[1] for name in names} == {*SERVICES, "migrate"}
    assert stack.container("ws", 2) in names
    # Only the proxy has a published port; PostgreSQL and Redis are reachable only inside.
    published = {n: podman("port", n, check=False).stdout.strip() for n in names}
    assert {n for n, ports in published.items() if ports} == {stack.container("proxy")}, published
    migrate = stack.inspect(stack.container("migrate"))
    assert migrate["State"]["ExitCode"] == 0
    assert "upgraded from empty to" in stack.logs(stack.container("migrate"))
    # Web runs two worker processes in its one container.
    assert "Started parent process" in stack.logs(stack.container("web"))

    status, body = stack.http("POST", "/api/auth/register", host)
    assert status == 201, body
    token = _login(stack, host)
    status, body = stack.http("POST", "/api/quizzes", QUIZ, token=token)
    assert status == 201, body
    summary = _play(stack, host)
    assert summary["joined"] == summary["finished"] == PLAYERS
    assert summary["errors"] == []
    assert summary["answers_accepted"] > 0
    # The page tells browsers to open the game socket on the same origin, through the proxy.
    status, found = stack.http("GET", f"/api/games/code/{summary['join_code']}")
    assert status == 200, found
    assert found["ws_url"] == f"ws://127.0.0.1:{stack.url.rsplit(':', 1)[1]}/ws"
    assert _connections_served(stack, 1) > 0
    assert _connections_served(stack, 2) > 0


def test_down_and_up_again_keeps_hosts_quizzes_and_results(
    stack: Stack, host: dict[str, str]
) -> None:
    stack.compose("down")
    assert stack.containers() == []
    stack.compose("up", "-d")
    _wait_ready(stack)
    token = _login(stack, host)
    status, quizzes = stack.http("GET", "/api/quizzes", token=token)
    assert status == 200
    assert QUIZ["title"] in [quiz["title"] for quiz in quizzes]
    status, games = stack.http("GET", "/api/games", token=token)
    assert status == 200
    assert any(game["status"] == "ended" for game in games), games
    # The migration found nothing to do on the kept database.
    assert "nothing to do" in stack.logs(stack.container("migrate"))


def _started(stack: Stack, name: str) -> datetime:
    return datetime.fromisoformat(stack.inspect(name)["State"]["StartedAt"][:26])


def test_upgrade_to_a_new_tag_migrates_first_then_runs_the_new_images(
    stack: Stack, host: dict[str, str]
) -> None:
    stack.env["PARTYQUIZ_VERSION"] = UPGRADE_TAG
    stack.compose("up", "-d")
    _wait_ready(stack)
    for service in ("migrate", "web", "ws"):
        image = stack.inspect(stack.container(service))["ImageName"]
        assert image.endswith(f":{UPGRADE_TAG}"), (service, image)
    log = stack.logs(stack.container("migrate"), timestamps=True)
    upgraded = next(line for line in log.splitlines() if f"to {UPGRADE_REVISION} (head)" in line)
    migrated_at = datetime.fromisoformat(upgraded.split()[0][:26])
    # web and the game service started only after the migration had finished.
    for name in (stack.container("web"), stack.container("ws", 1), stack.container("ws", 2)):
        assert _started(stack, name) > migrated_at, name
    # The new release works on the kept data.
    token = _login(stack, host)
    status, quizzes = stack.http("GET", "/api/quizzes", token=token)
    assert status == 200
    assert QUIZ["title"] in [quiz["title"] for quiz in quizzes]
    summary = _play(stack, host)
    assert summary["finished"] == PLAYERS


def test_restore_from_a_backup_brings_back_what_was_deleted(
    stack: Stack, host: dict[str, str]
) -> None:
    dumped = stack.exec("backup", "partyquiz-backup", "now")
    assert dumped.returncode == 0, dumped.stdout + dumped.stderr
    dump = dumped.stdout.split("wrote /backups/", 1)[1].split()[0]
    assert dump.startswith("manual-")
    assert dump.endswith(".dump")
    assert dump in stack.exec("backup", "partyquiz-backup", "list").stdout
    token = _login(stack, host)
    _, quizzes = stack.http("GET", "/api/quizzes", token=token)
    for quiz in quizzes:
        assert stack.http("DELETE", f"/api/quizzes/{quiz['id']}", token=token)[0] == 204
    assert stack.http("GET", "/api/quizzes", token=token) == (200, [])

    # The procedure of docs/operations.md: stop the writers, restore, start them again.
    stack.compose("stop", "web", "ws")
    restored = stack.exec("backup", "partyquiz-backup", "restore", dump)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "nothing to do" in stack.compose("run", "--rm", "migrate")
    stack.compose("start", "web", "ws")
    _wait_ready(stack)
    token = _login(stack, host)
    status, quizzes = stack.http("GET", "/api/quizzes", token=token)
    assert status == 200
    assert QUIZ["title"] in [quiz["title"] for quiz in quizzes]


def test_compose_file_defaults_to_the_published_images_of_this_release() -> None:
    text = COMPOSE_FILE.read_text()
    version = project_version()
    assert f"ghcr.io/partyquiz}}/partyquiz-web:${{PARTYQUIZ_VERSION:-{version}}}" in text
    assert f"ghcr.io/partyquiz}}/partyquiz-ws:${{PARTYQUIZ_VERSION:-{version}}}" in text


def test_backup_script_uses_the_operators_dump_and_restore_command_lines() -> None:
    script = (REPO / "compose" / "backup.sh").read_text()
    assert shlex.join(jobs.pg_dump_args()) in script
    restore = jobs.pg_restore_args("x")
    assert " ".join(restore[: restore.index("--dbname")]) in script.replace(
        " \\\n            ", " "
    )
