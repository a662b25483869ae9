"""Run PartyQuiz's images with podman the way a restricted Kubernetes pod runs them.

Owns the podman command line (through hack/images/podman.sh, which selects runc and lowered
ulimits), the hardening flags every container gets, and explicit waits on conditions. It knows
nothing about what the services do; the tests say that.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PODMAN = REPO / "hack" / "images" / "podman.sh"
BUILD = REPO / "hack" / "images" / "build.sh"
NAMES = ("web", "ws", "operator")
# Stand-ins for the official postgres, redis and caddy images (hack/images/test/).
TEST_NAMES = ("test-postgres", "test-redis", "test-caddy")
USER = "10001:10001"

# Every container: no writable root, a small writable /tmp, a numeric non-root user, no
# capabilities, no privilege escalation; host network reaches the loopback test servers.
HARDENING = (
    "--read-only",
    "--tmpfs", "/tmp:rw,nosuid,nodev,size=64m",
    "--user", USER,
    "--cap-drop", "ALL",
    "--security-opt", "no-new-privileges",
    "--network", "host",
    "--ulimit", "nofile=1024:4096",
    "--ulimit", "nproc=1024:2048",
)  # fmt: skip

# podman 4 schedules HEALTHCHECKs with systemd timers; without systemd it logs this per run.
_PODMAN_NOISE = re.compile(r'^time=".*" level=error msg=".*(systemd|healthcheck).*"$')


class PodmanError(RuntimeError):
    """A podman command failed; the message carries its output."""


def project_version() -> str:
    text = (REPO / "pyproject.toml").read_text()
    match = re.search(r'^version = "([^"]+)"$', text, re.MULTILINE)
    assert match is not None
    return match.group(1)


def image_ref(name: str) -> str:
    """The reference hack/images/build.sh tags the image ``name`` with."""
    repo = os.environ.get("PARTYQUIZ_IMAGE_REPO", "localhost")
    tag = os.environ.get("PARTYQUIZ_IMAGE_TAG", project_version())
    return f"{repo}/partyquiz-{name}:{tag}"


def clean_stderr(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not _PODMAN_NOISE.match(line))


def podman(
    *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(PODMAN), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    result.stderr = clean_stderr(result.stderr)
    if check and result.returncode != 0:
        raise PodmanError(
            f"podman {' '.join(args[:3])} ... exited {result.returncode}\n"
            f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        )
    return result


def podman_unusable_reason() -> str | None:
    """Why podman cannot run containers here, or None when it can."""
    if shutil.which("podman") is None:
        return "podman is not installed (hack/images/bootstrap.sh installs it)"
    try:
        info = podman("info", "--format", "{{.Host.OCIRuntime.Name}}", timeout=60, check=False)
    except subprocess.TimeoutExpired:
        return "podman info did not answer within 60 s"
    if info.returncode != 0:
        return f"podman info failed: {info.stderr.strip().splitlines()[-1:]}"
    return None


def _env_args(env: Mapping[str, str]) -> list[str]:
    args: list[str] = []
    for key, value in env.items():
        args += ["--env", f"{key}={value}"]
    return args


def run_once(
    image: str,
    *args: str,
    env: Mapping[str, str] | None = None,
    entrypoint: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run a hardened container to completion and return its exit code and output.

    On timeout the container is removed too (killing the podman client alone leaves it running).
    """
    name = f"pq-images-once-{uuid.uuid4().hex[:8]}"
    extra = ["--entrypoint", entrypoint] if entrypoint else []
    try:
        return podman(
            "run", "--rm", "--name", name, *HARDENING, *extra, *_env_args(env or {}), image,
            *args, timeout=timeout, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        logs = podman("logs", name, check=False)
        podman("rm", "--force", "--time", "0", name, check=False)
        raise PodmanError(
            f"{image} {' '.join(args)} did not finish within {timeout:.0f} s:\n"
            f"{logs.stdout[-3000:]}\n{clean_stderr(logs.stderr)[-3000:]}"
        ) from None


@dataclass
class Container:
    name: str
    started_at: float  # time.monotonic() just before `podman run`
    waiter: subprocess.Popen[bytes]  # `podman wait`: returns once the container has exited

    def logs(self) -> str:
        result = podman("logs", self.name, check=False)
        return result.stdout + clean_stderr(result.stderr)

    def signal(self, sig: str) -> None:
        podman("kill", "--signal", sig, self.name)

    def exit_code(self, timeout: float) -> int:
        """Wait until the container has exited and return its exit code."""
        result = podman("wait", self.name, timeout=timeout)
        return int(result.stdout.strip().splitlines()[-1])

    def has_exited(self) -> bool:
        return self.waiter.poll() is not None

    def cpu_seconds(self) -> float | None:
        """CPU time the container has used so far (cgroup v1 or v2), None when unreadable."""
        path = podman("inspect", "--format", "{{.State.CgroupPath}}", self.name).stdout.strip()
        v1 = Path("/sys/fs/cgroup/cpuacct") / path.lstrip("/") / "cpuacct.usage"
        v2 = Path("/sys/fs/cgroup") / path.lstrip("/") / "cpu.stat"
        with contextlib.suppress(OSError, ValueError):
            if v1.exists():
                return int(v1.read_text()) / 1e9
            for line in v2.read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) / 1e6
        return None

    def health_status(self) -> str:
        result = podman("inspect", "--format", "{{.State.Health.Status}}", self.name)
        return result.stdout.strip()

    def healthcheck(self) -> subprocess.CompletedProcess[str]:
        """Run the image's HEALTHCHECK command inside the container now."""
        return podman("healthcheck", "run", self.name, timeout=30, check=False)

    def remove(self) -> None:
        podman("rm", "--force", "--time", "0", self.name, check=False)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.waiter.wait(timeout=30)


@contextlib.contextmanager
def running(
    image: str,
    *args: str,
    env: Mapping[str, str] | None = None,
    volumes: Mapping[str, str] | None = None,
    prefix: str = "pq-images",
) -> Iterator[Container]:
    """Start a hardened container in the background; remove it on exit, whatever happened.

    ``volumes`` maps host paths to container paths; they are mounted read-only.
    """
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    mounts = [f"--volume={host}:{inside}:ro" for host, inside in (volumes or {}).items()]
    started_at = time.monotonic()
    podman(
        "run", "--detach", "--name", name, *HARDENING, *mounts, *_env_args(env or {}), image,
        *args,
    )  # fmt: skip
    # One long-lived `podman wait` instead of polling podman, which would steal CPU from the
    # container being timed.
    waiter = subprocess.Popen(
        [str(PODMAN), "wait", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    container = Container(name=name, started_at=started_at, waiter=waiter)
    try:
        yield container
    finally:
        container.remove()


def http_status(url: str, timeout: float = 1.0) -> int | None:
    """The HTTP status of a GET on ``url``, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, TimeoutError):
        return None


def wait_for(
    condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05
) -> float:
    """Poll ``condition`` until it holds; return the seconds it took or raise TimeoutError."""
    start = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


def wait_healthy(container: Container, url: str, timeout: float) -> float:
    """Wait for ``url`` to answer 200; return seconds since the container was started."""

    def healthy() -> bool:
        if http_status(url, timeout=0.5) == 200:
            return True
        if container.has_exited():
            raise PodmanError(f"{container.name} exited early:\n{container.logs()[-3000:]}")
        return False

    try:
        wait_for(healthy, timeout, f"{url} answering 200")
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}\n{container.logs()[-3000:]}") from None
    return time.monotonic() - container.started_at


def image_size_bytes(image: str) -> int:
    return int(podman("image", "inspect", "--format", "{{.Size}}", image).stdout.strip())


def image_config(image: str) -> dict[str, object]:
    data = json.loads(podman("image", "inspect", image).stdout)
    return dict(data[0])


def build_images(names: Sequence[str] = NAMES) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BUILD), *names], capture_output=True, text=True, check=False, timeout=3600
    )
