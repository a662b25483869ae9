"""Run compose.yaml with podman-compose inside a network namespace of the test's own.

Owns the command line (pinned podman-compose from the dev dependencies, podman through
hack/images/podman.sh, a unique project name, the .env that compose/init.sh wrote into a
temporary folder, images from this checkout's build), HTTP requests made from inside the
namespace (where the proxy's port is published), health checks run on demand (podman 4.3
schedules them only under systemd), and removing everything the project made.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.images.podman import PODMAN, REPO, image_ref, podman
from tests.netns import NetworkNamespace, network_namespace, processes_in

COMPOSE_FILE = REPO / "compose.yaml"
INIT = REPO / "compose" / "init.sh"
HTTP_PORT = 8080  # published inside the namespace only
PROJECT_LABEL = "io.podman.compose.project"


class ComposeError(RuntimeError):
    """A podman-compose command failed; the message carries its output."""


@dataclass
class Stack:
    project: str
    namespace: NetworkNamespace
    env_file: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{HTTP_PORT}"

    def compose(self, *args: str, timeout: float = 600, check: bool = True) -> str:
        """Run ``podman-compose <args>`` for this project; return its output."""
        command = [
            sys.executable, "-m", "podman_compose", "--podman-path", str(PODMAN),
            "--env-file", str(self.env_file), "-p", self.project, "-f", str(COMPOSE_FILE), *args,
        ]  # fmt: skip
        result = subprocess.run(
            self.namespace.command(*command),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, **self.env},
            cwd=REPO,
        )
        output = result.stdout + result.stderr
        if check and result.returncode != 0:
            raise ComposeError(f"podman-compose {' '.join(args)} exited {result.returncode}:\n"
                               f"{output[-4000:]}")  # fmt: skip
        return output

    def container(self, service: str, index: int = 1) -> str:
        return f"{self.project}_{service}_{index}"

    def containers(self) -> list[str]:
        listed = podman(
            "ps", "--all", "--filter", f"label={PROJECT_LABEL}={self.project}",
            "--format", "{{.Names}}",
        )  # fmt: skip
        return sorted(listed.stdout.split())

    def inspect(self, name: str) -> dict[str, Any]:
        return dict(json.loads(podman("inspect", name).stdout)[0])

    def healthcheck(self, name: str) -> subprocess.CompletedProcess[str]:
        """Run the container's compose health check now; 0 means healthy."""
        return podman("healthcheck", "run", name, timeout=60, check=False)

    def exec(self, service: str, *args: str) -> subprocess.CompletedProcess[str]:
        return podman("exec", self.container(service), *args, timeout=300, check=False)

    def logs(self, name: str, timestamps: bool = False) -> str:
        flags = ["--timestamps"] if timestamps else []
        result = podman("logs", *flags, name, check=False)
        return result.stdout + result.stderr

    def http(
        self, method: str, path: str, body: object = None, token: str | None = None
    ) -> tuple[int, Any]:
        """One request from inside the namespace through the proxy: (status, JSON or text)."""
        command = ["curl", "-sS", "-m", "20", "-X", method, "-o", "-", "-w", "\n%{http_code}"]
        if token is not None:
            command += ["-H", f"Authorization: Bearer {token}"]
        if body is not None:
            command += ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
        result = self.namespace.run(*command, f"{self.url}{path}", timeout=60)
        text, _, status = result.stdout.rpartition("\n")
        if not status.isdigit():
            return 0, result.stderr
        try:
            return int(status), json.loads(text) if text else None
        except json.JSONDecodeError:
            return int(status), text

    def remove_everything(self) -> None:
        """``down -v``, then whatever a failed command may have left with the project's label."""
        with contextlib.suppress(ComposeError, subprocess.TimeoutExpired):
            self.compose("down", "-v", "-t", "10", timeout=300, check=False)
        label = f"label={PROJECT_LABEL}={self.project}"
        leftovers = (
            (["ps", "--all"], "{{.Names}}", ["rm", "--force", "--time", "0"]),
            (["volume", "ls"], "{{.Name}}", ["volume", "rm", "--force"]),
            (["network", "ls"], "{{.Name}}", ["network", "rm", "--force"]),
        )
        for listing, template, remove in leftovers:
            listed = podman(*listing, "--filter", label, "--format", template, check=False)
            for name in listed.stdout.split():
                podman(*remove, name, check=False)


def image_env(version: str | None = None) -> dict[str, str]:
    """Compose variables that select this checkout's images (app and test images)."""
    web = image_ref("web")
    repo, _, tag = web.rpartition("/partyquiz-web:")
    return {
        "PARTYQUIZ_IMAGE_REPO": repo,
        "PARTYQUIZ_VERSION": version or tag,
        "PARTYQUIZ_POSTGRES_IMAGE": image_ref("test-postgres"),
        "PARTYQUIZ_REDIS_IMAGE": image_ref("test-redis"),
        "PARTYQUIZ_PROXY_IMAGE": image_ref("test-caddy"),
        "PARTYQUIZ_HTTP_PORT": str(HTTP_PORT),
        "PARTYQUIZ_HTTPS_PORT": "8443",
    }


def run_init(env_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(INIT), str(env_file)], capture_output=True, text=True, timeout=60, check=False
    )


@contextlib.contextmanager
def compose_stack(tmp: Path, env: Mapping[str, str]) -> Iterator[Stack]:
    """A namespace and a project name of their own; everything removed on exit."""
    with network_namespace("pq-compose") as namespace:
        stack = Stack(
            project=f"pqc{uuid.uuid4().hex[:8]}",
            namespace=namespace,
            env_file=tmp / ".env",
            env=dict(env),
        )
        try:
            yield stack
        finally:
            stack.remove_everything()
            # Helpers podman started for the project's network (its DNS server) go with it.
            for pid in processes_in(namespace):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
