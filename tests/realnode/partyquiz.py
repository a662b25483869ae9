"""Driving one PartyQuiz on the real node the way its users do: Helm, manifests, the web API,
bots in a pod, and the operator's status.

Owns the operator release (the chart, installed with `helm install`), the PartyQuiz manifest
built from examples/minimal.yaml with image overrides, waits on the operator's status, a
client for the web API through `kubectl port-forward`, and the bot game run as a pod. Tests
say what must hold; this module only knows how to get there.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import yaml
from tests.e2e.kube import Cluster, wait_for
from tests.realnode.harness import (
    REPO,
    delete_pod,
    pod_manifest,
    port_forward,
    unique,
    wait_finished,
)

CHART = REPO / "charts" / "partyquiz-operator"
EXAMPLE = REPO / "examples" / "minimal.yaml"
RELEASE = "partyquiz-operator"
NAME = "quiz"  # examples/minimal.yaml's
PASSWORD = "a-long-enough-password"


def quiz(title: str, questions: int, time_limit: int) -> dict[str, Any]:
    """A quiz whose questions open at once (no read pause, no get-ready countdown)."""
    return {
        "title": title,
        "settings": {"get_ready_seconds": 0},
        "questions": [
            {
                "text": f"Question {i + 1}: which planet is closest to the sun?",
                "choices": [{"text": "Mercury"}, {"text": "Venus"}, {"text": "Mars"}],
                "correct": [0],
                "time_limit_seconds": time_limit,
                "read_seconds": 0,
            }
            for i in range(questions)
        ],
    }


def install_operator(cluster: Cluster, namespace: str, image: str) -> None:
    """`helm install` the chart into ``namespace`` running ``image``; wait until it is ready."""
    repository, tag = image.rsplit(":", 1)
    cluster.helm(
        "install",
        RELEASE,
        str(CHART),
        "-n",
        namespace,
        "--set",
        f"image.repository={repository}",
        "--set",
        f"image.tag={tag}",
        "--set",
        "image.pullPolicy=Never",
        "--set",
        "operator.resyncSeconds=10",
        "--wait",
        "--timeout",
        "180s",
        timeout=240,
    )


def example_manifest(images: Mapping[str, str], version: str) -> dict[str, Any]:
    """examples/minimal.yaml with its images pointed at the locally built ones."""
    (doc,) = [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d]
    spec = doc["spec"]
    spec["version"] = version
    spec["images"] = {"web": images["web"], "ws": images["ws"], "pullPolicy": "Never"}
    spec["database"]["managed"]["image"] = images["postgres"]
    spec["redis"]["managed"]["image"] = images["redis"]
    return dict(doc)


def get_pq(cluster: Cluster, namespace: str) -> dict[str, Any]:
    result: dict[str, Any] = cluster.get_json("partyquiz", NAME, "-n", namespace)
    return result


def condition(pq: Mapping[str, Any], type_: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        (c for c in pq.get("status", {}).get("conditions", []) if c["type"] == type_), {}
    )
    return found


def wait_for_phase(
    cluster: Cluster, namespace: str, phase: str, *, timeout: float, reason: str | None = None
) -> dict[str, Any]:
    """Wait until the PartyQuiz reports ``phase`` (and Ready's ``reason``) for its generation."""
    last: dict[str, Any] = {}

    def reached() -> dict[str, Any] | None:
        nonlocal last
        last = get_pq(cluster, namespace)
        status = last.get("status", {})
        if status.get("observedGeneration") != last["metadata"]["generation"]:
            return None
        if status.get("phase") != phase:
            return None
        if reason is not None and condition(last, "Ready").get("reason") != reason:
            return None
        return last

    def describe() -> str:
        pods = cluster.kubectl("get", "pods", "-n", namespace, "-o", "wide", check=False).stdout
        return (
            f"PartyQuiz {namespace}/{NAME} phase {phase}; last status: "
            f"{json.dumps(last.get('status'))[:3000]}\npods:\n{pods}"
        )

    return wait_for(reached, timeout=timeout, interval=1.0, message=describe)


def patch_spec(cluster: Cluster, namespace: str, patch: Mapping[str, Any]) -> None:
    cluster.kubectl(
        "patch", "partyquiz", NAME, "-n", namespace, "--type=merge", "-p",
        json.dumps({"spec": patch}),
    )  # fmt: skip


def pods(cluster: Cluster, namespace: str, component: str) -> list[dict[str, Any]]:
    selector = f"app.kubernetes.io/instance={NAME},app.kubernetes.io/component={component}"
    found: list[dict[str, Any]] = cluster.get_json("pods", "-n", namespace, "-l", selector)["items"]
    return found


def ready(pod: Mapping[str, Any]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in pod.get("status", {}).get("conditions", [])
    )


def secret_value(cluster: Cluster, namespace: str, name: str, key: str) -> str:
    import base64

    data = cluster.get_json("secret", name, "-n", namespace)["data"]
    return base64.b64decode(data[key]).decode()


def psql(cluster: Cluster, namespace: str, sql: str) -> str:
    """Run ``sql`` in the PostgreSQL pod (as its own user over the local socket)."""
    result = cluster.kubectl(
        "exec", "-n", namespace, f"{NAME}-postgres-0", "-c", "postgres", "--",
        "psql", "-U", "partyquiz", "-d", "partyquiz", "-At", "-c", sql,
    )  # fmt: skip
    return result.stdout.strip()


@dataclass
class Host:
    """A host account on the deployment, used through the web API."""

    email: str
    token: str = ""

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@contextlib.contextmanager
def web_api(cluster: Cluster, namespace: str) -> Iterator[httpx.Client]:
    """An HTTP client for the web Service, through `kubectl port-forward`."""
    with (
        port_forward(cluster, namespace, f"svc/{NAME}-web", 8000) as port,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client,
    ):
        yield client


def sign_up(api: httpx.Client, email: str) -> Host:
    created = api.post("/api/auth/register", json={"email": email, "password": PASSWORD})
    assert created.status_code in (200, 201), created.text
    return log_in(api, email)


def log_in(api: httpx.Client, email: str) -> Host:
    login = api.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return Host(email=email, token=login.json()["access_token"])


def create_quiz(
    api: httpx.Client, host: Host, title: str, *, questions: int = 3, time_limit: int = 5
) -> str:
    body = quiz(title, questions, time_limit)
    created = api.post("/api/quizzes", json=body, headers=host.headers())
    assert created.status_code in (200, 201), created.text
    return str(created.json()["id"])


def quiz_titles(api: httpx.Client, host: Host) -> set[str]:
    listed = api.get("/api/quizzes", headers=host.headers())
    assert listed.status_code == 200, listed.text
    body = listed.json()
    items = body["items"] if isinstance(body, dict) else body
    return {str(q["title"]) for q in items}


def create_game(api: httpx.Client, host: Host, quiz_id: str) -> dict[str, Any]:
    game = api.post("/api/games", json={"quiz_id": quiz_id}, headers=host.headers())
    assert game.status_code in (200, 201), game.text
    body: dict[str, Any] = game.json()
    return body


def game_detail(api: httpx.Client, host: Host, game_id: str) -> dict[str, Any]:
    detail = api.get(f"/api/games/{game_id}", headers=host.headers())
    assert detail.status_code == 200, detail.text
    body: dict[str, Any] = detail.json()
    return body


def stored_answers(detail: Mapping[str, Any]) -> int:
    return sum(len(p["answers"]) for p in detail["players"])


@dataclass
class BotGame:
    """A game played by `partyquiz-bots` in a pod of the namespace, through the Services."""

    cluster: Cluster
    namespace: str
    image: str
    game: Mapping[str, Any]
    players: int = 6
    min_delay: float = 0.5
    max_delay: float = 4.0
    host_pause: float = 1.0
    name: str = field(default_factory=lambda: unique("bots"))

    def manifest(self) -> dict[str, Any]:
        command = [
            "partyquiz-bots",
            "--web-url", f"http://{NAME}-web:8000",
            "--ws-url", f"ws://{NAME}-ws:8001/ws",
            "--join-code", str(self.game["join_code"]),
            "--host-token", str(self.game["host_token"]),
            "--players", str(self.players),
            "--min-delay", str(self.min_delay),
            "--max-delay", str(self.max_delay),
            "--host-pause", str(self.host_pause),
            "--lobby-timeout", "60",
        ]  # fmt: skip
        return pod_manifest(self.name, self.image, command)

    def start(self) -> None:
        self.cluster.apply(self.manifest(), self.namespace)

    def finish(self, timeout: float = 300) -> dict[str, Any]:
        """Wait for the bots to finish; return their JSON summary. The pod goes afterwards."""
        try:
            phase, log = wait_finished(self.cluster, self.namespace, self.name, timeout=timeout)
        finally:
            delete_pod(self.cluster, self.namespace, self.name)
        return self._summary(phase, log)

    def play(self, timeout: float = 300) -> dict[str, Any]:
        """Start the bots and wait until the game is over; return their summary."""
        self.start()
        return self.finish(timeout)

    @staticmethod
    def _summary(phase: str, log: str) -> dict[str, Any]:
        start = log.find("{")
        assert phase == "Succeeded", f"bots ended {phase}:\n{log[-4000:]}"
        assert start >= 0, f"bots printed no summary:\n{log[-4000:]}"
        summary: dict[str, Any] = json.loads(log[start:])
        return summary


def seconds_since(start: float) -> float:
    return round(time.monotonic() - start, 1)
