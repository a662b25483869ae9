"""A failed browser test's evidence holds what each page showed and what it heard."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.browser.evidence import RECORDER
from tests.browser.flows import api, launch_game


def test_the_evidence_of_a_page_is_its_picture_its_text_and_its_socket_frames(
    host_page: Page, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    api(
        host_page,
        "POST",
        "/api/quizzes",
        {
            "title": "Evidence",
            "questions": [
                {
                    "kind": "single",
                    "text": "Which?",
                    "choices": [{"text": "This"}, {"text": "That"}],
                    "correct": [0],
                }
            ],
        },
    )
    code = launch_game(host_page, "Evidence")
    recorder, stack = request.node.stash[RECORDER]
    recorder.save(tmp_path, stack.logs)

    assert (tmp_path / "1-screen.png").read_bytes().startswith(b"\x89PNG")
    assert code in (tmp_path / "1-screen.txt").read_text()
    log = (tmp_path / "1-screen.log").read_text()
    assert "/screen" in log.splitlines()[0]
    assert '-> {"type":"host"' in log
    assert '<- {"version":0,"type":"host_welcome"' in log
    assert (tmp_path / "ws.log").read_text() == (stack.logs / "ws.log").read_text()
