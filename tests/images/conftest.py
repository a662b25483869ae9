"""Images tier: skipped with the reason when podman cannot run here; images built once up front.

The build (hack/images/build.sh, layer-cached: the app images and the PostgreSQL, Redis and
Caddy test images) runs before any test and outside per-test timeouts, like the control-plane
build of the e2e tier. PARTYQUIZ_IMAGES_PREBUILT=1 uses the images as they are (``make
images-smoke`` builds them first). Sizes and start-to-healthy times
measured by the tests are printed at the end of the run.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.images.podman import (
    BUILD,
    NAMES,
    TEST_NAMES,
    image_ref,
    podman,
    podman_unusable_reason,
)

IMAGES_DIR = Path(__file__).resolve().parent
_REPORT = pytest.StashKey[dict[str, str]]()
_UNUSABLE = pytest.StashKey[str | None]()


def _selected(session: pytest.Session) -> bool:
    return any(IMAGES_DIR in item.path.resolve().parents for item in session.items)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build the images before the first test runs, unless podman is unusable or told not to."""
    if session.config.option.collectonly or not _selected(session):
        return
    reason = podman_unusable_reason()
    session.config.stash[_UNUSABLE] = reason
    if reason is not None or os.environ.get("PARTYQUIZ_IMAGES_PREBUILT") == "1":
        return
    capture = session.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        result = subprocess.run([str(BUILD), *NAMES, *TEST_NAMES], check=False)
    if result.returncode != 0:
        raise pytest.UsageError("hack/images/build.sh failed, so the images are missing (above)")


@pytest.fixture(scope="session")
def images(request: pytest.FixtureRequest) -> dict[str, str]:
    """Image references by name (web, ws, operator); skips the tier when podman is unusable."""
    reason = request.config.stash.get(_UNUSABLE, None) or podman_unusable_reason()
    if reason is not None:
        pytest.skip(reason)
    return _built(NAMES, "make images")


def _built(names: tuple[str, ...], target: str) -> dict[str, str]:
    refs = {name: image_ref(name) for name in names}
    missing = [
        ref for ref in refs.values() if podman("image", "exists", ref, check=False).returncode
    ]
    if missing:
        pytest.fail(f"images not built: {missing}; run `{target}`")
    return refs


@pytest.fixture(scope="session")
def test_images(request: pytest.FixtureRequest) -> dict[str, str]:
    """The PostgreSQL, Redis and Caddy test images by name (test-postgres, ...)."""
    reason = request.config.stash.get(_UNUSABLE, None) or podman_unusable_reason()
    if reason is not None:
        pytest.skip(reason)
    return _built(TEST_NAMES, "make images-test")


@pytest.fixture(scope="session")
def image_report(request: pytest.FixtureRequest) -> dict[str, str]:
    """Measurements to print at the end of the run, keyed by what was measured."""
    return request.config.stash.setdefault(_REPORT, {})


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    report = config.stash.get(_REPORT, {})
    if not report:
        return
    terminalreporter.section("PartyQuiz images")
    width = max(len(key) for key in report)
    for key in sorted(report):
        terminalreporter.write_line(f"{key:<{width}}  {report[key]}")
