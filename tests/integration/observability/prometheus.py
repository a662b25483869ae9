"""A real Prometheus (Debian's /usr/bin/prometheus) for tests, plus promtool and dashboard helpers.

Runs its own process with a config and data directory in a temporary directory on a free
loopback port; never the system service. Scrape targets are static, with the labels the
PartyQuiz ServiceMonitor would add (``namespace``, ``partyquiz``, ``component``).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from tests.servers import free_port

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
START_SECONDS = 60.0
SCRAPE_INTERVAL = "1s"
# What Grafana substitutes for the dashboard's variables when "All" is selected.
VARIABLES = {"$namespace": ".*", "$instance": ".*", "$__rate_interval": "15s", "${datasource}": ""}


@dataclass(frozen=True)
class Target:
    """One scrape target: a job name, host:port and the labels every series of it gets."""

    job: str
    address: str
    labels: Mapping[str, str]
    honor_labels: bool = False


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Return the instant-query result of ``expr`` (raises with Prometheus' error)."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            raise AssertionError(f"query {expr!r} failed: {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for(
        self, expr: str, timeout: float = 60.0, accept: Callable[[list[Any]], bool] = bool
    ) -> list[dict[str, Any]]:
        """Poll ``expr`` until ``accept`` takes its result; fail with the last one otherwise."""
        deadline = time.monotonic() + timeout
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            result = self.query(expr)
            if accept(result):
                return result
            time.sleep(0.25)
        raise AssertionError(f"{expr!r} did not return what was expected in {timeout}s: {result}")

    def targets_up(self) -> dict[str, str]:
        """Return scrape URL -> health of every active target."""
        body = httpx.get(f"{self.url}/api/v1/targets", timeout=10).json()
        return {t["scrapeUrl"]: t["health"] for t in body["data"]["activeTargets"]}


def _config(targets: list[Target]) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "scrape_configs": [
            {
                "job_name": target.job,
                "honor_labels": target.honor_labels,
                "static_configs": [{"targets": [target.address], "labels": dict(target.labels)}],
            }
            for target in targets
        ],
    }


@contextlib.contextmanager
def run_prometheus(targets: list[Target]) -> Iterator[Prometheus]:
    """Start Prometheus scraping ``targets``; stop it and remove its data afterwards."""
    if not Path(PROMETHEUS).exists():
        raise RuntimeError("prometheus is missing: run `hack/bootstrap.sh test` (Debian package)")
    root = Path(tempfile.mkdtemp(prefix="pq-prom-"))
    config = root / "prometheus.yml"
    config.write_text(yaml.safe_dump(_config(targets)))
    port = free_port()
    log = root / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={root / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.enable-lifecycle",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    prometheus = Prometheus(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {log.read_text(errors='replace')[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{prometheus.url}/-/ready", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"prometheus not ready: {log.read_text(errors='replace')}")
            time.sleep(0.1)
        yield prometheus
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)


def check_metrics(exposition: bytes) -> subprocess.CompletedProcess[str]:
    """Run ``promtool check metrics`` on an exposition (what a /metrics endpoint returned)."""
    return subprocess.run(
        [PROMTOOL, "check", "metrics"],
        input=exposition.decode(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def substitute(expr: str) -> str:
    """Replace the dashboard variables the way Grafana does with "All" selected."""
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    leftover = re.findall(r"\$\{?\w+", expr)
    if leftover:
        raise AssertionError(f"unknown dashboard variable(s) {leftover} in {expr!r}")
    return expr


def dashboard_expressions(path: Path) -> list[str]:
    """Return every query expression of the dashboard JSON at ``path``, variables substituted."""
    dashboard = json.loads(path.read_text())
    found: list[str] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            found.extend(substitute(t["expr"]) for t in panel.get("targets", []) if t.get("expr"))
            walk(panel.get("panels", []))

    walk(dashboard["panels"])
    return found
