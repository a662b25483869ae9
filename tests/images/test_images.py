"""What every image is, before any service runs: size, user, signals, labels, contents."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.images.podman import image_config, image_size_bytes, project_version, run_once

SIZE_BUDGET_BYTES = 250_000_000
# What each image must hold, and what it must not (the other components' code and commands).
OWN_PACKAGES = {
    "web": ({"partyquiz_core", "partyquiz_web"}, {"partyquiz_ws", "partyquiz_operator"}),
    "ws": ({"partyquiz_core", "partyquiz_ws"}, {"partyquiz_web", "partyquiz_operator"}),
    "operator": ({"partyquiz_operator"}, {"partyquiz_web", "partyquiz_ws"}),
}
CONSOLE_SCRIPTS = {
    "web": ({"partyquiz-web"}, {"partyquiz-ws", "partyquiz-bots", "partyquiz-operator"}),
    "ws": ({"partyquiz-ws", "partyquiz-bots"}, {"partyquiz-web", "partyquiz-operator"}),
    "operator": ({"partyquiz-operator"}, {"partyquiz-web", "partyquiz-ws", "partyquiz-bots"}),
}
HEALTH_PORTS = {"web": "8000", "ws": "8001", "operator": "8081"}

_PROBE = """
import importlib.util, json, os, shutil, sys
names = ["partyquiz_core", "partyquiz_web", "partyquiz_ws", "partyquiz_operator"]
scripts = ["partyquiz-web", "partyquiz-ws", "partyquiz-bots", "partyquiz-operator"]
paths = ["/etc/ssl/certs/ca-certificates.crt", "/usr/local/share/ca-certificates",
         "/run/secrets", "/src", "/opt/uv", "/root/.cache", "/var/cache/uv"]
paths += [os.path.join("/var/lib/apt/lists", n) for n in os.listdir("/var/lib/apt/lists")
          if n not in ("lock", "partial", "auxfiles")]
print(json.dumps({
    "packages": [n for n in names if importlib.util.find_spec(n)],
    "scripts": [s for s in scripts if shutil.which(s)],
    "present": [p for p in paths if os.path.exists(p)],
    "python": sys.executable, "real_python": os.path.realpath(sys.executable),
    "uid": os.getuid(), "gid": os.getgid(),
}))
"""


def _probe(image: str) -> dict[str, object]:
    result = run_once(image, "-c", _PROBE, entrypoint="python3")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


@pytest.mark.parametrize("name", ["web", "ws", "operator"])
def test_image_fits_the_size_budget(
    name: str, images: dict[str, str], image_report: dict[str, str]
) -> None:
    size = image_size_bytes(images[name])
    image_report[f"size {name}"] = f"{size / 1e6:.1f} MB (budget {SIZE_BUDGET_BYTES / 1e6:.0f} MB)"
    assert size < SIZE_BUDGET_BYTES


@pytest.mark.parametrize("name", ["web", "ws", "operator"])
def test_image_runs_unprivileged_stops_on_sigterm_and_is_labelled(
    name: str, images: dict[str, str]
) -> None:
    inspected = image_config(images[name])
    config = inspected["Config"]
    assert isinstance(config, dict)
    assert config["User"] == "10001:10001"
    assert config["StopSignal"] == "SIGTERM"
    # Exec form: tini is PID 1 and runs the console script directly, no shell in between.
    assert config["Entrypoint"] == ["/usr/bin/tini", "--", f"partyquiz-{name}"]
    assert "PYTHONDONTWRITEBYTECODE=1" in config["Env"]
    # podman keeps HEALTHCHECK beside the OCI config (images are built in docker format).
    health = inspected["Healthcheck"]["Test"]  # type: ignore[index]
    assert health[:2] == ["CMD", "python3"]
    assert f"{HEALTH_PORTS[name]}') + '/healthz'" in health[-1]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == project_version()
    assert labels["org.opencontainers.image.revision"] not in ("", "unknown")
    assert "org.opencontainers.image.source" in labels
    assert labels["org.opencontainers.image.title"] == f"partyquiz-{name}"


@pytest.mark.parametrize("name", ["web", "ws", "operator"])
def test_image_holds_only_its_own_code_and_no_build_leftovers(
    name: str, images: dict[str, str]
) -> None:
    probe = _probe(images[name])
    wanted, unwanted = OWN_PACKAGES[name]
    assert wanted <= set(probe["packages"])  # type: ignore[arg-type]
    assert not unwanted & set(probe["packages"])  # type: ignore[arg-type]
    wanted_scripts, unwanted_scripts = CONSOLE_SCRIPTS[name]
    assert wanted_scripts <= set(probe["scripts"])  # type: ignore[arg-type]
    assert not unwanted_scripts & set(probe["scripts"])  # type: ignore[arg-type]
    # No CA bundle, build secret, sources, uv or package caches reached the image.
    assert probe["present"] == []
    # The venv runs on Debian's own interpreter, as the non-root user.
    assert probe["python"] == "/opt/venv/bin/python3"
    assert probe["real_python"].startswith("/usr/bin/python3")  # type: ignore[union-attr]
    assert (probe["uid"], probe["gid"]) == (10001, 10001)


def test_operator_image_answers_help_and_version(images: dict[str, str]) -> None:
    version = run_once(images["operator"], "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"partyquiz-operator {project_version()}"
    help_ = run_once(images["operator"], "--help")
    assert help_.returncode == 0, help_.stderr
    assert "usage: partyquiz-operator" in help_.stdout
    assert "{run,crd" in help_.stdout


def test_operator_image_prints_the_crd(images: dict[str, str]) -> None:
    crd = run_once(images["operator"], "crd")
    assert crd.returncode == 0, crd.stderr
    assert "kind: CustomResourceDefinition" in crd.stdout
    assert "partyquizzes.partyquiz.dev" in crd.stdout


def test_web_image_without_a_secret_refuses_to_serve_with_one_line(images: dict[str, str]) -> None:
    result: subprocess.CompletedProcess[str] = run_once(
        images["web"], "serve", env={"PARTYQUIZ_WEB_ENVIRONMENT": "production"}
    )
    assert result.returncode == 2
    assert "PARTYQUIZ_WEB_JWT_SECRET" in result.stderr
    assert "Traceback" not in result.stderr
