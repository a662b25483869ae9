"""The PostgreSQL and Redis test images run the pods the operator renders, as the official do.

Each container is the operator's own rendering (StatefulSet or backup Job) run with podman the
way a restricted pod runs: its uid, a read-only root with only the paths the pod mounts
writable, no capabilities. Clients connect from an address of a private network namespace that
is not loopback, so PostgreSQL asks them for the password like any other host's client.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from partyquiz_operator import api
from partyquiz_operator.render import jobs, stores
from partyquiz_operator.render.common import Instance
from tests.images.podman import image_config, podman
from tests.images.pods import (
    RenderedPod,
    Running,
    pod_spec,
    podman_volume,
    run_pod_to_completion,
    running_pod,
)
from tests.netns import NetworkNamespace, netns_unusable_reason, network_namespace

# An address on the namespace's loopback: a client connecting to it is not 127.0.0.1.
ADDRESS = "10.254.0.1"
PASSWORD = "first-password-1f3a9c"
NEW_PASSWORD = "second-password-7b2e4d"
READY_WITHIN_SECONDS = 120
TEXT = "Ünïcødé quiz 🎉"
STORE_TEXT = "CREATE TABLE kept (t text); INSERT INTO kept VALUES ('Ünïcødé quiz 🎉')"
READ_TEXT = "SELECT t FROM kept"
ENCODING = "SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'partyquiz'"


@pytest.fixture
def namespace() -> Iterator[NetworkNamespace]:
    reason = netns_unusable_reason()
    if reason is not None:
        pytest.skip(reason)
    with network_namespace("pq-images", ADDRESS) as created:
        yield created


@pytest.fixture
def instance(test_images: dict[str, str]) -> Instance:
    spec = api.parse_spec(
        {
            "version": "1.4.0",
            "database": {"managed": {"image": test_images["test-postgres"]}},
            "redis": {"managed": {"image": test_images["test-redis"]}},
        }
    )
    return Instance(name="quiz", namespace="games", uid="uid-1", spec=spec)


def _postgres(inst: Instance, volume: str, password: str) -> RenderedPod:
    return RenderedPod(
        spec=pod_spec(stores.build_postgres_statefulset(inst)),
        secrets={stores.KEY_POSTGRES_PASSWORD: password},
        claims={stores.DATA_VOLUME: volume},
    )


def _redis(inst: Instance, volume: str, password: str) -> RenderedPod:
    return RenderedPod(
        spec=pod_spec(stores.build_redis_statefulset(inst)),
        secrets={stores.KEY_REDIS_PASSWORD: password},
        claims={stores.DATA_VOLUME: volume},
    )


def _sql(server: Running, query: str, password: str) -> tuple[int, str]:
    """Run ``query`` as the operator's database user over TCP from the namespace's address."""
    result = server.exec(
        "psql", "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "-tA",
        "-h", ADDRESS, "-U", stores.DATABASE_USER, "-d", stores.DATABASE_NAME, "-c", query,
        env={"PGPASSWORD": password},
    )  # fmt: skip
    return result.returncode, (result.stdout + result.stderr).strip()


def _redis_cli(server: Running, password: str | None, *command: str) -> str:
    auth = ["-a", password, "--no-auth-warning"] if password is not None else []
    result = server.exec("redis-cli", "-h", ADDRESS, *auth, *command)
    return (result.stdout + result.stderr).strip()


def _assert_probes_pass(server: Running) -> None:
    """Run the container's startup, liveness and readiness probes as the kubelet would."""
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        command = server.pod.container[probe]["exec"]["command"]
        result = server.exec(*command)
        assert result.returncode == 0, f"{probe}: {result.stdout}{result.stderr}"


@pytest.mark.parametrize(("name", "uid"), [("test-postgres", 999), ("test-redis", 999)])
def test_data_store_image_runs_as_the_uid_the_operator_gives_it(
    name: str, uid: int, test_images: dict[str, str]
) -> None:
    config = image_config(test_images[name])["Config"]
    assert isinstance(config, dict)
    assert config["User"] == f"{uid}:{uid}"
    assert config["Entrypoint"] == ["docker-entrypoint.sh"]


def test_postgres_initialises_an_empty_volume_with_the_given_user_password_and_database(
    instance: Instance, namespace: NetworkNamespace
) -> None:
    with (
        podman_volume() as volume,
        running_pod(_postgres(instance, volume, PASSWORD), namespace) as db,
    ):
        db.wait_ready(READY_WITHIN_SECONDS)
        code, out = _sql(db, "SELECT current_user, current_database()", PASSWORD)
        assert (code, out) == (0, "partyquiz|partyquiz")
        # Text the players type survives: the database is UTF8, as in the official image.
        assert _sql(db, ENCODING, PASSWORD) == (0, "UTF8")
        assert _sql(db, STORE_TEXT, PASSWORD)[0] == 0
        assert _sql(db, READ_TEXT, PASSWORD) == (0, TEXT)
        code, out = _sql(db, "SELECT 1", "not-the-password")
        assert code != 0
        assert 'password authentication failed for user "partyquiz"' in out
        # The server process itself runs as the operator's uid, not only the entrypoint.
        status = db.exec("cat", "/proc/1/status").stdout
        assert any(line.split()[:3] == ["Uid:", "999", "999"] for line in status.splitlines())
        assert "PostgreSQL init process complete" in db.logs()
        _assert_probes_pass(db)


def test_postgres_restart_keeps_the_data_and_ignores_a_new_password_like_the_official_image(
    instance: Instance, namespace: NetworkNamespace
) -> None:
    with podman_volume() as volume:
        with running_pod(_postgres(instance, volume, PASSWORD), namespace) as first:
            first.wait_ready(READY_WITHIN_SECONDS)
            code, out = _sql(first, STORE_TEXT, PASSWORD)
            assert code == 0, out
            # SIGINT (the image's STOPSIGNAL) is PostgreSQL's fast, clean shutdown.
            assert first.stop() == 0, first.logs()[-2000:]
        with running_pod(_postgres(instance, volume, NEW_PASSWORD), namespace) as second:
            second.wait_ready(READY_WITHIN_SECONDS)
            assert "Skipping initialization" in second.logs()
            assert _sql(second, READ_TEXT, PASSWORD) == (0, TEXT)
            code, out = _sql(second, "SELECT 1", NEW_PASSWORD)
            assert code != 0
            assert "password authentication failed" in out


def test_postgres_refuses_to_initialise_without_a_password(
    instance: Instance, namespace: NetworkNamespace
) -> None:
    with podman_volume() as volume:
        pod = _postgres(instance, volume, "")
        result = run_pod_to_completion(pod, namespace)
    assert result.returncode != 0
    assert "superuser password is not specified" in result.stderr


def test_backup_job_dumps_with_the_test_image_and_the_dump_restores(
    instance: Instance, namespace: NetworkNamespace
) -> None:
    with (
        podman_volume() as data,
        podman_volume() as backups,
        running_pod(_postgres(instance, data, PASSWORD), namespace) as db,
    ):
        db.wait_ready(READY_WITHIN_SECONDS)
        assert _sql(db, STORE_TEXT, PASSWORD)[0] == 0
        job = RenderedPod(
            spec=pod_spec(jobs.build_backup_job(instance, "rev1")),
            secrets={stores.KEY_POSTGRES_PASSWORD: PASSWORD},
            claims={jobs.BACKUP_VOLUME: backups},
            # The Service name stands for the database's address; there is no DNS here.
            env_overrides={"PGHOST": ADDRESS},
        )
        dumped = run_pod_to_completion(job, namespace)
        assert dumped.returncode == 0, dumped.stdout + dumped.stderr
        assert "wrote /backups/pre-migration-" in dumped.stdout
        dump = dumped.stdout.split("wrote ", 1)[1].split()[0]
        assert dump.endswith("-rev1.dump")
        assert _sql(db, "DROP TABLE kept", PASSWORD)[0] == 0
        restore = RenderedPod(
            spec={
                **job.spec,
                "containers": [
                    {**job.container, "command": [*jobs.pg_restore_args("partyquiz"), dump]}
                ],
            },
            secrets=job.secrets,
            claims=job.claims,
            env_overrides=job.env_overrides,
        )
        restored = run_pod_to_completion(restore, namespace)
        assert restored.returncode == 0, restored.stdout + restored.stderr
        assert _sql(db, READ_TEXT, PASSWORD) == (0, TEXT)


def test_redis_asks_for_the_password_and_keeps_its_data_across_a_restart(
    instance: Instance, namespace: NetworkNamespace
) -> None:
    with podman_volume() as volume:
        with running_pod(_redis(instance, volume, PASSWORD), namespace) as first:
            first.wait_ready(READY_WITHIN_SECONDS)
            assert "NOAUTH" in _redis_cli(first, None, "GET", "game")
            assert _redis_cli(first, PASSWORD, "SET", "game", TEXT) == "OK"
            assert _redis_cli(first, PASSWORD, "CONFIG", "GET", "appendonly") == "appendonly\nyes"
            status = first.exec("cat", "/proc/1/status").stdout
            assert any(line.split()[:3] == ["Uid:", "999", "999"] for line in status.splitlines())
            # The password is on no command line: not in what the runtime started (what
            # `crictl inspect` shows on a node) nor in any process's arguments (`ps`).
            started = podman("inspect", "--format", "{{json .Path}} {{json .Args}}", first.name)
            assert "redis-server" in started.stdout
            assert PASSWORD not in started.stdout
            lines = first.exec("sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '").stdout
            assert PASSWORD not in lines
            _assert_probes_pass(first)
            assert first.stop() == 0, first.logs()[-2000:]
        # The password is configuration, not data: a new one applies, as in the official image.
        with running_pod(_redis(instance, volume, NEW_PASSWORD), namespace) as second:
            second.wait_ready(READY_WITHIN_SECONDS)
            assert _redis_cli(second, NEW_PASSWORD, "GET", "game") == TEXT
            assert "WRONGPASS" in _redis_cli(second, PASSWORD, "GET", "game")
