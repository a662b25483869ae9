"""The whole PartyQuiz lifecycle on a real kubelet, with the project's own images.

One PartyQuiz (examples/minimal.yaml, images pointed at the local builds) lives through the
module the way it would in production: installed by the operator that `helm install` started,
played, upgraded with a pre-migration backup, disrupted mid-game, handed a broken release that
is rolled back, restored from a backup, deleted with and without its data. Each step is a
module fixture that runs once and records what happened; each test asserts what a user would
see. Real containers run every step: the migration Job migrates a real PostgreSQL pod, probes
hit real endpoints, Services resolve through CoreDNS and NetworkPolicies are enforced by
kube-router."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis
from tests.e2e.kube import Cluster, wait_for
from tests.realnode.conftest import delete_namespace, make_namespace, with_load
from tests.realnode.harness import (
    RealNode,
    pod_manifest,
    port_forward,
    run_to_completion,
    unique,
)
from tests.realnode.images import image_tag
from tests.realnode.partyquiz import (
    NAME,
    RELEASE,
    BotGame,
    Host,
    condition,
    create_game,
    create_quiz,
    example_manifest,
    game_detail,
    get_pq,
    install_operator,
    log_in,
    patch_spec,
    pods,
    psql,
    quiz_titles,
    ready,
    secret_value,
    sign_up,
    stored_answers,
    wait_for_phase,
    web_api,
)
from websockets.sync.client import connect

from partyquiz_operator.render import jobs

pytestmark = pytest.mark.timeout(900)

UPGRADE = "upgrade"
NEVER_READY = "never-ready"


@dataclass
class Deployment:
    """The PartyQuiz under test and what the steps so far have recorded."""

    cluster: Cluster
    namespace: str
    images: dict[str, str]
    version: str
    host: Host = field(
        default_factory=lambda: Host(email=f"host-{secrets.token_hex(3)}@example.com")
    )
    apply_to_ready_seconds: float = 0.0
    recorded: dict[str, Any] = field(default_factory=dict)

    def release_images(self, suffix: str) -> dict[str, str]:
        """spec.images of the later "release" ``<tag>-<suffix>``."""
        return {"web": self.tagged("web", suffix), "ws": self.tagged("ws", suffix)}

    def tagged(self, component: str, suffix: str) -> str:
        """The image ``component`` of a later "release" (``<tag>-<suffix>``)."""
        repository = self.images[component].rsplit(":", 1)[0]
        return f"{repository}:{image_tag()}-{suffix}"


@pytest.fixture(scope="module")
def deployment(
    node: RealNode, images: dict[str, str], report: dict[str, str]
) -> Iterator[Deployment]:
    """The operator installed by Helm and examples/minimal.yaml applied, up to Ready."""
    cluster = node.cluster
    namespace = make_namespace(cluster, "pq-rn-life")
    # The later "releases": the same code tagged again (ws) or the test images (web).
    node.tag_image(images["web-upgrade"], _tag(images["web"], UPGRADE))
    node.tag_image(images["ws"], _tag(images["ws"], UPGRADE))
    node.tag_image(images["web-never-ready"], _tag(images["web"], NEVER_READY))
    node.tag_image(images["ws"], _tag(images["ws"], NEVER_READY))
    install_operator(cluster, namespace, images["operator"])
    deployment = Deployment(cluster, namespace, images, version=image_tag())

    started = time.monotonic()
    cluster.apply(example_manifest(images, deployment.version), namespace)
    wait_for_phase(cluster, namespace, "Ready", timeout=600)
    deployment.apply_to_ready_seconds = round(time.monotonic() - started, 1)
    report["minimal.yaml apply -> Ready"] = with_load(deployment.apply_to_ready_seconds)
    try:
        yield deployment
    finally:
        cluster.helm(
            "uninstall", RELEASE, "-n", namespace, "--wait", "--timeout", "120s", check=False
        )
        delete_namespace(cluster, namespace)


def _tag(image: str, suffix: str) -> str:
    return f"{image.rsplit(':', 1)[0]}:{image_tag()}-{suffix}"


# --- 1. the chart's operator ------------------------------------------------------------------


def test_helm_install_runs_the_operator_image_as_a_pod_with_the_charts_rbac_only(
    deployment: Deployment,
) -> None:
    cluster, namespace = deployment.cluster, deployment.namespace
    selector = "app.kubernetes.io/name=partyquiz-operator"
    # The Deployment's pod, not one of the finalizer reaper's (a CronJob of the same chart).
    (pod,) = [
        p
        for p in cluster.get_json("pods", "-n", namespace, "-l", selector)["items"]
        if p["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
    ]
    account = pod["spec"]["serviceAccountName"]

    assert ready(pod)
    assert pod["spec"]["containers"][0]["image"] == deployment.images["operator"]
    assert pod["status"]["containerStatuses"][0]["imageID"]  # a container really ran it
    assert account != "default"
    who = f"system:serviceaccount:{namespace}:{account}"
    can = lambda *a: cluster.kubectl("auth", "can-i", "--as", who, *a, check=False).stdout.strip()  # noqa: E731
    assert can("create", "deployments", "-n", namespace) == "yes"
    assert can("get", "secrets", "-n", "kube-system") == "no"
    assert can("create", "clusterrolebindings") == "no"


# --- 2. minimal.yaml up to Ready, every pod really running --------------------------------------


def test_the_minimal_example_reaches_ready_with_every_pod_really_running(
    deployment: Deployment,
) -> None:
    cluster, namespace = deployment.cluster, deployment.namespace
    pq = get_pq(cluster, namespace)

    assert condition(pq, "Ready")["status"] == "True"
    for component, count in (("web", 2), ("ws", 2), ("database", 1), ("cache", 1)):
        running = [p for p in pods(cluster, namespace, component) if ready(p)]
        assert len(running) == count, (component, [p["metadata"]["name"] for p in running])
        for pod in running:
            (status,) = pod["status"]["containerStatuses"]
            assert "running" in status["state"], status
            assert status["restartCount"] == 0, status
    claims = cluster.get_json("pvc", "-n", namespace)["items"]
    data = {c["metadata"]["name"]: c for c in claims}
    for claim in (f"data-{NAME}-postgres-0", f"data-{NAME}-redis-0"):
        assert data[claim]["status"]["phase"] == "Bound"
        volume = cluster.get_json("pv", data[claim]["spec"]["volumeName"])
        assert volume["spec"]["local"]["path"]  # a real directory on the node
    (job,) = cluster.get_json(
        "jobs", "-n", namespace, "-l", "app.kubernetes.io/component=migration"
    )["items"]
    assert any(
        c["type"] == "Complete" and c["status"] == "True" for c in job["status"]["conditions"]
    )
    # The Job migrated the real database: the schema is there, at the packaged head.
    assert psql(cluster, namespace, "SELECT count(*) FROM alembic_version") == "1"
    assert "quizzes" in psql(cluster, namespace, "SELECT tablename FROM pg_tables").split()


# --- 3. a bot game through the Services ----------------------------------------------------------


@pytest.fixture(scope="module")
def played(deployment: Deployment) -> dict[str, Any]:
    """A full bot game through the Services, and what the web API then shows of it."""
    cluster, namespace = deployment.cluster, deployment.namespace
    with web_api(cluster, namespace) as api:
        readyz = api.get("/readyz")
        deployment.host = sign_up(api, deployment.host.email)
        quiz_id = create_quiz(api, deployment.host, "Played before the upgrade")
        game = create_game(api, deployment.host, quiz_id)
        bots = BotGame(cluster, namespace, deployment.images["ws"], game, max_delay=2)
        summary = bots.play()
        detail = game_detail(api, deployment.host, game["game_id"])
    replicas = {
        pod["metadata"]["name"]: _ws_metric(cluster, namespace, pod["metadata"]["name"])
        for pod in pods(cluster, namespace, "ws")
    }
    deployment.recorded["game"] = {"id": game["game_id"], "answers": stored_answers(detail)}
    return {"readyz": readyz, "summary": summary, "detail": detail, "replicas": replicas}


def _ws_metric(cluster: Cluster, namespace: str, pod: str) -> float:
    """Connections the game pod ``pod`` has accepted so far (its /metrics)."""
    with port_forward(cluster, namespace, f"pod/{pod}", 8001) as port:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("partyquiz_ws_connections_opened_total")
    )


def test_a_bot_game_through_the_services_is_stored_and_shown_by_the_web_api(
    played: dict[str, Any],
) -> None:
    summary, detail = played["summary"], played["detail"]

    assert played["readyz"].status_code == 200, played["readyz"].text
    assert summary["joined"] == summary["finished"] == 6, summary
    assert summary["errors"] == [], summary
    assert detail["status"] == "ended"
    assert len(detail["players"]) == 6
    # Every answer a player got a receipt for is in PostgreSQL, shown through the web API.
    assert stored_answers(detail) == summary["answers_accepted"] > 0
    # The players were spread over both game replicas, which share the game through Redis.
    assert len(played["replicas"]) == 2
    assert all(opened > 0 for opened in played["replicas"].values()), played["replicas"]


# --- 9. NetworkPolicies enforced by kube-router ---------------------------------------------------

# Tries each target for 3 s: "open" once a connection succeeds, "blocked" if none did. A new
# pod's first connections can be refused until the policy implementation has admitted its
# address, so one refusal proves nothing either way.
PROBE = (
    "import socket, sys, time\n"
    "for target in sys.argv[1:]:\n"
    "    host, port = target.rsplit(':', 1)\n"
    "    deadline, result = time.monotonic() + 3, 'blocked'\n"
    "    while time.monotonic() < deadline:\n"
    "        try:\n"
    "            socket.create_connection((host, int(port)), timeout=2).close()\n"
    "            result = 'open'\n"
    "            break\n"
    "        except OSError:\n"
    "            time.sleep(0.2)\n"
    "    print(target, result)\n"
)


def _reach(
    cluster: Cluster,
    namespace: str,
    targets: list[str],
    *,
    pod: str | None,
    image: str,
    labels: dict[str, str] | None = None,
) -> dict[str, str]:
    if pod is None:
        manifest = pod_manifest(
            unique("probe"), image, ["python3", "-c", PROBE, *targets], labels=labels
        )
        phase, log = run_to_completion(cluster, namespace, manifest, timeout=120)
        assert phase == "Succeeded", log
    else:
        log = cluster.kubectl(
            "exec", "-n", namespace, pod, "--", "python3", "-c", PROBE, *targets
        ).stdout
    return {line.split()[0]: line.split()[1] for line in log.splitlines() if line.strip()}


def test_only_partyquiz_clients_reach_postgres_and_redis_and_its_pods_reach_what_they_need(
    deployment: Deployment, played: dict[str, Any]
) -> None:
    cluster, namespace, image = deployment.cluster, deployment.namespace, deployment.images["ws"]
    postgres, rds, web = f"{NAME}-postgres:5432", f"{NAME}-redis:6379", f"{NAME}-web:8000"
    web_pod = pods(cluster, namespace, "web")[0]["metadata"]["name"]
    ws_pod = pods(cluster, namespace, "ws")[0]["metadata"]["name"]

    stranger = _reach(
        cluster, namespace, [postgres, rds, web], pod=None, image=image, labels={"app": "stranger"}
    )
    # A pod that claims to be PartyQuiz's but is of another instance is a stranger too.
    impostor = _reach(
        cluster, namespace, [postgres, rds], pod=None, image=image,
        labels={
            "app.kubernetes.io/name": "partyquiz",
            "app.kubernetes.io/instance": "other",
            "app.kubernetes.io/component": "web",
        },
    )  # fmt: skip
    from_web = _reach(cluster, namespace, [postgres, rds], pod=web_pod, image=image)
    from_ws = _reach(cluster, namespace, [postgres, rds, web], pod=ws_pod, image=image)

    assert stranger == {postgres: "blocked", rds: "blocked", web: "open"}
    assert impostor == {postgres: "blocked", rds: "blocked"}
    assert from_web == {postgres: "open", rds: "open"}
    assert from_ws == {postgres: "blocked", rds: "open", web: "open"}


# --- 4. upgrade: backup, migration, readiness-gated rollout --------------------------------------


def _jobs(cluster: Cluster, namespace: str, component: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = cluster.get_json(
        "jobs", "-n", namespace, "-l", f"app.kubernetes.io/component={component}"
    )["items"]
    return found


def _complete(job: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Complete" and c["status"] == "True"
        for c in job.get("status", {}).get("conditions", [])
    )


def _backups(deployment: Deployment) -> list[str]:
    """The dumps on the backup volume, with what pg_restore lists of the newest."""
    cluster, namespace = deployment.cluster, deployment.namespace
    lister = pod_manifest(
        unique("list-backups"), deployment.images["postgres"],
        ["sh", "-c", "ls -1 /backups; pg_restore --list \"$(ls -1 /backups/*.dump | tail -n 1)\""],
        labels={"app": "backup-reader"}, uid=999,
    )  # fmt: skip
    lister["spec"]["volumes"].append(
        {"name": "backups", "persistentVolumeClaim": {"claimName": f"{NAME}-backups"}}
    )
    lister["spec"]["containers"][0]["volumeMounts"].append(
        {"name": "backups", "mountPath": "/backups"}
    )
    phase, log = run_to_completion(cluster, namespace, lister, timeout=120)
    assert phase == "Succeeded", log
    return log.splitlines()


@pytest.fixture(scope="module")
def upgraded(deployment: Deployment, played: dict[str, Any]) -> dict[str, Any]:
    cluster, namespace = deployment.cluster, deployment.namespace
    before = get_pq(cluster, namespace)["status"]
    with web_api(cluster, namespace) as api:
        titles_before = quiz_titles(api, log_in(api, deployment.host.email))
    started = time.monotonic()
    # With it, shorter waits for the rest of the module (game pods drain for 5 s, not 30). The
    # progress deadline stays the default: on a busy machine a new pod can take more than 30 s.
    patch_spec(cluster, namespace, {
        "version": f"{deployment.version}-{UPGRADE}",
        "images": deployment.release_images(UPGRADE),
        "ws": {"drainSeconds": 5},
        "rollout": {"bakeSeconds": 5},
    })  # fmt: skip
    pq = wait_for_phase(cluster, namespace, "Ready", timeout=600)
    seconds = round(time.monotonic() - started, 1)
    with web_api(cluster, namespace) as api:
        host = log_in(api, deployment.host.email)
        titles_after = quiz_titles(api, host)
        detail = game_detail(api, host, deployment.recorded["game"]["id"])
        # Written after the pre-migration backup: a restore of that backup must drop it.
        create_quiz(api, host, "Written after the upgrade")
    deployment.version = f"{deployment.version}-{UPGRADE}"
    return {
        "before": before, "after": pq["status"], "seconds": seconds, "took": with_load(seconds),
        "titles": (titles_before, titles_after),
        "detail": detail, "backups": _backups(deployment),
    }  # fmt: skip


def test_an_upgrade_backs_up_migrates_and_rolls_out_without_losing_game_data(
    deployment: Deployment, upgraded: dict[str, Any], report: dict[str, str]
) -> None:
    cluster, namespace = deployment.cluster, deployment.namespace
    revision = upgraded["after"]["revisions"]["current"]
    report["upgrade (backup, migration, rollout) -> Ready"] = upgraded["took"]

    assert revision != upgraded["before"]["revisions"]["current"]
    (backup,) = [
        j for j in _jobs(cluster, namespace, "backup") if revision in j["metadata"]["name"]
    ]
    (migration,) = [
        j for j in _jobs(cluster, namespace, "migration") if revision in j["metadata"]["name"]
    ]
    assert _complete(backup)
    assert _complete(migration)
    # A real pg_dump of the database as it was: custom format, listing the tables.
    dumps = [line for line in upgraded["backups"] if line.startswith("pre-migration-")]
    assert any(revision in d for d in dumps), upgraded["backups"]
    assert any("TABLE public quizzes" in line for line in upgraded["backups"])
    # The new version's migration ran against the real database.
    assert (
        psql(cluster, namespace, "SELECT version_num FROM alembic_version") == "test_upgrade_probe"
    )
    assert (
        psql(cluster, namespace, "SELECT note FROM upgrade_probe")
        == "migrated by the upgrade test image"
    )
    # Web and ws run the new images, all ready; nothing played before is lost.
    for component in ("web", "ws"):
        running = [p for p in pods(cluster, namespace, component) if ready(p)]
        assert len(running) == 2
        assert {p["spec"]["containers"][0]["image"] for p in running} == {
            deployment.tagged(component, UPGRADE)
        }
    titles_before, titles_after = upgraded["titles"]
    assert titles_before <= titles_after
    assert stored_answers(upgraded["detail"]) == deployment.recorded["game"]["answers"]


# --- 6. losing the game's owner, then a rolling restart, mid-game ---------------------------------


def _lease_owner(cluster: Cluster, namespace: str, game_id: str) -> str | None:
    password = secret_value(cluster, namespace, f"{NAME}-credentials", "redis-password")
    with port_forward(cluster, namespace, f"pod/{NAME}-redis-0", 6379) as port:
        client = redis.Redis(port=port, password=password, socket_timeout=5)
        try:
            holder = client.get(f"pq:{{{game_id}}}:lease")
        finally:
            client.close()
    return holder.decode().rsplit("-", 1)[0] if holder else None


@dataclass
class Observer:
    """A player of the test's own, to know when a question is open and to hold a receipt."""

    url: str
    join_code: str
    receipts: list[int] = field(default_factory=list)

    def answer_question(self, index: int, timeout: float = 120) -> None:
        """Join, answer the first question from ``index`` on; return once it is receipted."""
        deadline = time.monotonic() + timeout
        # The code opens once the host (a bot) is connected; until then joins are refused.
        while True:
            with connect(self.url, open_timeout=30, close_timeout=2) as ws:
                ws.send(json.dumps({
                    "type": "join", "code": self.join_code, "nickname": "Observer",
                    "device_id": unique("device"),
                }))  # fmt: skip
                reply = json.loads(ws.recv(timeout=30))
                if reply["type"] == "welcome":
                    self._play(ws, index, deadline)
                    return
            assert reply.get("code") == "unknown_code", f"the game refused the observer: {reply}"
            assert time.monotonic() < deadline, "the game's code never opened"
            time.sleep(0.5)

    def _play(self, ws: Any, index: int, deadline: float) -> None:
        answer = ""
        send_at: float | None = None
        while time.monotonic() < deadline:
            if send_at is not None and time.monotonic() >= send_at:
                ws.send(answer)
                send_at = None
            try:
                message = json.loads(ws.recv(timeout=0.25))
            except TimeoutError:
                continue
            if message["type"] == "question" and message["index"] >= index:
                # Answers open after the read pause, at opens_at on the server's clock.
                read = max(0.0, message["opens_at"] - message["server_now"])
                send_at = time.monotonic() + read
                answer = json.dumps(
                    {"type": "answer", "question_index": message["index"], "choices": [0]}
                )
            elif message["type"] == "error" and message["code"] == "not_open":
                send_at = time.monotonic() + 0.25
            elif message["type"] == "error":
                raise AssertionError(f"the game refused the observer's answer: {message}")
            elif message["type"] == "answer_receipt":
                self.receipts.append(message["question_index"])
                return
        raise AssertionError(f"question {index} was not open in time")


def _ws_pods(cluster: Cluster, namespace: str) -> set[str]:
    return {p["metadata"]["name"] for p in pods(cluster, namespace, "ws") if ready(p)}


@pytest.fixture(scope="module")
def disrupted(deployment: Deployment, upgraded: dict[str, Any]) -> dict[str, Any]:
    """One game during which its owning ws pod is deleted with grace 0 while a question is open,
    and later the ws Deployment is restarted (`kubectl rollout restart`)."""
    cluster, namespace = deployment.cluster, deployment.namespace
    with web_api(cluster, namespace) as api:
        host = log_in(api, deployment.host.email)
        quiz_id = create_quiz(api, host, "Disrupted", questions=4, time_limit=20)
        game = create_game(api, host, quiz_id)
    # Slow answers over long questions: a question stays open with answers still to come.
    bots = BotGame(
        cluster, namespace, deployment.images["ws"], game, min_delay=2, max_delay=12, host_pause=1
    )
    bots.start()
    with port_forward(cluster, namespace, f"svc/{NAME}-ws", 8001) as port:
        observer = Observer(f"ws://127.0.0.1:{port}/ws", str(game["join_code"]))
        observer.answer_question(1)
    owner = wait_for(
        lambda: _lease_owner(cluster, namespace, game["game_id"]),
        timeout=30,
        message="the game's lease",
    )
    cluster.kubectl("delete", "pod", owner, "-n", namespace, "--grace-period=0", "--force")
    # The Deployment replaces it; then every game pod is replaced, one at a time.
    wait_for(
        lambda: len(survivors := _ws_pods(cluster, namespace)) == 2 and owner not in survivors,
        timeout=180,
        message="a replacement for the killed game pod",
    )
    before_restart = _ws_pods(cluster, namespace)
    cluster.kubectl("rollout", "restart", f"deployment/{NAME}-ws", "-n", namespace)
    cluster.kubectl(
        "rollout", "status", f"deployment/{NAME}-ws", "-n", namespace, "--timeout=300s",
        timeout=330,
    )  # fmt: skip
    summary = bots.finish(timeout=300)
    after_restart = _ws_pods(cluster, namespace)
    with web_api(cluster, namespace) as api:
        detail = game_detail(api, log_in(api, deployment.host.email), game["game_id"])
    return {
        "owner": owner, "summary": summary, "detail": detail, "observer": observer.receipts,
        "restarted": (before_restart, after_restart),
    }  # fmt: skip


def test_killing_the_game_owner_mid_question_and_restarting_the_game_service_loses_nothing(
    disrupted: dict[str, Any],
) -> None:
    summary, detail = disrupted["summary"], disrupted["detail"]
    before_restart, after_restart = disrupted["restarted"]

    assert disrupted["observer"] == [1]  # a receipted answer to the question open at the kill
    assert before_restart.isdisjoint(after_restart)
    assert len(after_restart) == 2
    # Every player finished the game: through the other replica after the kill, and resumed on
    # new pods after the restart told them to reconnect.
    assert summary["finished"] == summary["joined"] == 6, summary
    assert summary["errors"] == [], summary
    assert summary["reconnects"] > 0, summary
    assert detail["status"] == "ended"
    # Every receipted answer, the observer's included, is in PostgreSQL.
    assert stored_answers(detail) == summary["answers_accepted"] + len(disrupted["observer"])


# --- 5. a release that never becomes ready is rolled back -----------------------------------------


@pytest.fixture(scope="module")
def rolled_back(deployment: Deployment, disrupted: dict[str, Any]) -> dict[str, Any]:
    cluster, namespace = deployment.cluster, deployment.namespace
    good = get_pq(cluster, namespace)["status"]
    jobs_before = {j["metadata"]["name"] for j in _jobs(cluster, namespace, "migration")}
    # Its pods never become ready however long they get: a short deadline only ends the wait.
    patch_spec(cluster, namespace, {
        "version": f"{image_tag()}-{NEVER_READY}",
        "images": deployment.release_images(NEVER_READY),
        "rollout": {"progressDeadlineSeconds": 30},
    })  # fmt: skip
    pq = wait_for_phase(cluster, namespace, "Degraded", timeout=600, reason="RolledBack")
    web_after = [p for p in pods(cluster, namespace, "web") if ready(p)]
    jobs_after = {j["metadata"]["name"] for j in _jobs(cluster, namespace, "migration")}
    events = cluster.get_json(
        "events", "-n", namespace, "--field-selector", f"involvedObject.name={NAME}"
    )["items"]
    # Going back to the running version recovers at once (the deadline back to its default).
    patch_spec(cluster, namespace, {
        "version": deployment.version,
        "images": deployment.release_images(UPGRADE),
        "rollout": {"progressDeadlineSeconds": None},
    })  # fmt: skip
    recovered = wait_for_phase(cluster, namespace, "Ready", timeout=300)
    jobs_end = {j["metadata"]["name"] for j in _jobs(cluster, namespace, "migration")}
    return {
        "good": good, "pq": pq, "web": web_after, "jobs": (jobs_before, jobs_after, jobs_end),
        "events": events, "recovered": recovered,
    }  # fmt: skip


def test_a_release_whose_pods_never_become_ready_is_rolled_back_and_reverting_recovers(
    deployment: Deployment, rolled_back: dict[str, Any]
) -> None:
    good, pq = rolled_back["good"], rolled_back["pq"]
    failed = pq["status"]["revisions"]["failed"]
    message = condition(pq, "Ready")["message"]

    assert failed
    assert failed != good["revisions"]["current"]
    assert pq["status"]["revisions"]["current"] == good["revisions"]["current"]
    # Conditions and events say why, and where it went back to.
    assert condition(pq, "Degraded")["status"] == "True"
    assert f"revision {failed} failed" in message
    assert f"rolled back to revision {good['revisions']['current']}" in message
    warnings = {e["reason"]: e["message"] for e in rolled_back["events"] if e["type"] == "Warning"}
    assert f"revision {failed} failed" in warnings["RevisionFailed"]
    assert "rolled back" in warnings["RevisionFailed"]
    # The known-good pods serve again, on the known-good images.
    assert len(rolled_back["web"]) == 2
    images = {p["spec"]["containers"][0]["image"] for p in rolled_back["web"]}
    assert images == {deployment.tagged("web", UPGRADE)}
    # No migration ran for the rollback: the only new Job is the broken release's own.
    before, after, end = rolled_back["jobs"]
    (new,) = after - before
    assert failed in new
    assert end == after
    # Going back to the version that runs is Ready again at once.
    assert (
        rolled_back["recovered"]["status"]["revisions"]["current"] == (good["revisions"]["current"])
    )


# --- 8. restore from a backup the operator took, as docs/operations.md says -----------------------


def _restore_overrides(deployment: Deployment) -> str:
    """Step 2's --overrides of docs/operations.md, with this run's PostgreSQL image."""
    image = deployment.images["postgres"]
    secret = {"secretKeyRef": {"name": f"{NAME}-credentials", "key": "postgres-password"}}
    container = {
        "name": "restore",
        "image": image,
        "imagePullPolicy": "Never",
        "command": ["sleep", "3600"],
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        "env": [
            {"name": "PGHOST", "value": f"{NAME}-postgres"},
            {"name": "PGUSER", "value": "partyquiz"},
            {"name": "PGDATABASE", "value": "partyquiz"},
            {"name": "PGPASSWORD", "valueFrom": secret},
        ],
        "volumeMounts": [{"name": "backups", "mountPath": "/backups"}],
    }
    security = {
        "runAsNonRoot": True,
        "runAsUser": 999,
        "runAsGroup": 999,
        "fsGroup": 999,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    claim = {"claimName": f"{NAME}-backups"}
    return json.dumps(
        {
            "spec": {
                "securityContext": security,
                "containers": [container],
                "volumes": [{"name": "backups", "persistentVolumeClaim": claim}],
            }
        }
    )


@pytest.fixture(scope="module")
def restored(
    deployment: Deployment, rolled_back: dict[str, Any], upgraded: dict[str, Any]
) -> dict[str, Any]:
    cluster, namespace = deployment.cluster, deployment.namespace
    ns = ["-n", namespace]
    # 1. Stop writers.
    patch_spec(cluster, namespace, {"suspend": True})
    wait_for_phase(cluster, namespace, "Suspended", timeout=120)
    cluster.kubectl("scale", *ns, "deployment", f"{NAME}-web", f"{NAME}-ws", "--replicas=0")
    # 2. A shell next to the dumps.
    pod = f"{NAME}-restore"
    cluster.kubectl(
        "run", *ns, pod, "--restart=Never", f"--image={deployment.images['postgres']}",
        f"--labels=app.kubernetes.io/name=partyquiz,app.kubernetes.io/instance={NAME},app.kubernetes.io/component=backup",
        f"--overrides={_restore_overrides(deployment)}",
    )  # fmt: skip
    cluster.wait(f"pod/{pod}", "condition=Ready", namespace, timeout=120)
    listing = cluster.kubectl("exec", *ns, pod, "--", "ls", "-1", "/backups").stdout.split()
    # The dump taken before the upgrade's migration: the data as it was before the upgrade.
    revision = upgraded["after"]["revisions"]["current"]
    (dump,) = [n for n in listing if n.startswith("pre-migration-") and revision in n]
    # 3. Restore it, with the runbook's script.
    restore = ["sh", "-c", jobs.restore_script(), "sh", f"/backups/{dump}"]
    cluster.kubectl("exec", *ns, pod, "--", *restore, timeout=300)
    cluster.kubectl("delete", *ns, "pod", pod)
    # 4. The version the dump belongs to (the one before the upgrade), 5. resume.
    base = image_tag()
    patch_spec(cluster, namespace, {
        "version": base, "images": {"web": deployment.images["web"], "ws": deployment.images["ws"]},
        "suspend": False,
    })  # fmt: skip
    pq = wait_for_phase(cluster, namespace, "Ready", timeout=600)
    deployment.version = base
    with web_api(cluster, namespace) as api:
        host = log_in(api, deployment.host.email)
        titles = quiz_titles(api, host)
        detail = game_detail(api, host, deployment.recorded["game"]["id"])
    return {"dump": dump, "pq": pq, "titles": titles, "detail": detail}


def test_a_restore_from_the_operators_backup_as_the_runbook_says_brings_back_that_data(
    deployment: Deployment, restored: dict[str, Any], upgraded: dict[str, Any]
) -> None:
    cluster, namespace = deployment.cluster, deployment.namespace
    titles_before_upgrade, _ = upgraded["titles"]

    assert restored["titles"] == titles_before_upgrade
    assert "Written after the upgrade" not in restored["titles"]
    assert stored_answers(restored["detail"]) == deployment.recorded["game"]["answers"]
    # The schema is the dump's: before the upgrade's migration.
    assert psql(cluster, namespace, "SELECT to_regclass('upgrade_probe') IS NULL") == "t"
    assert len([p for p in pods(cluster, namespace, "web") if ready(p)]) == 2


# --- 7. deleting the PartyQuiz, with and without its data ----------------------------------------


def _instance_objects(cluster: Cluster, namespace: str) -> list[str]:
    kinds = "pvc,secret,statefulset,deployment,service,job,pod,networkpolicy,configmap"
    result = cluster.kubectl(
        "get", kinds, "-n", namespace, "-l", f"app.kubernetes.io/instance={NAME}", "-o", "name"
    )
    return sorted(result.stdout.split())


def _delete_and_wait(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("delete", "partyquiz", NAME, "-n", namespace, "--timeout=300s", timeout=330)
    wait_for(
        lambda: not [p for p in _instance_objects(cluster, namespace) if p.startswith("pod/")],
        timeout=180,
        message="the instance's pods to go",
    )


@pytest.fixture(scope="module")
def deleted_and_recreated(deployment: Deployment, restored: dict[str, Any]) -> dict[str, Any]:
    cluster, namespace = deployment.cluster, deployment.namespace
    volumes = {
        c["metadata"]["name"]: c["spec"]["volumeName"]
        for c in cluster.get_json("pvc", "-n", namespace)["items"]
    }
    _delete_and_wait(cluster, namespace)
    kept = _instance_objects(cluster, namespace)
    kept_volumes = {
        c["metadata"]["name"]: c["spec"]["volumeName"]
        for c in cluster.get_json("pvc", "-n", namespace)["items"]
    }
    cluster.apply(example_manifest(deployment.images, deployment.version), namespace)
    wait_for_phase(cluster, namespace, "Ready", timeout=600)
    with web_api(cluster, namespace) as api:
        titles = quiz_titles(api, log_in(api, deployment.host.email))
    # Now without the data.
    patch_spec(cluster, namespace, {"retainDataOnDelete": False})
    claims = [c["spec"]["volumeName"] for c in cluster.get_json("pvc", "-n", namespace)["items"]]
    _delete_and_wait(cluster, namespace)
    wait_for(
        lambda: not _instance_objects(cluster, namespace),
        timeout=180,
        message="every object of the instance to go",
    )
    wait_for(
        lambda: all(cluster.kubectl("get", "pv", v, check=False).returncode for v in claims),
        timeout=180, message="the volumes to be deleted",
    )  # fmt: skip
    return {
        "volumes": volumes,
        "kept": kept,
        "kept_volumes": kept_volumes,
        "titles": titles,
        "left": _instance_objects(cluster, namespace),
    }


def test_deleting_keeps_the_data_when_asked_and_a_new_partyquiz_of_that_name_finds_it(
    deleted_and_recreated: dict[str, Any], upgraded: dict[str, Any]
) -> None:
    result = deleted_and_recreated
    titles_before_upgrade, _ = upgraded["titles"]

    assert result["kept_volumes"] == result["volumes"]  # the same claims on the same volumes
    assert {o for o in result["kept"] if not o.startswith("persistentvolumeclaim/")} == {
        f"secret/{NAME}-credentials"
    }
    assert titles_before_upgrade <= result["titles"]
    # Without retainDataOnDelete nothing of the instance is left, volumes included.
    assert result["left"] == []
