"""The sample library: a few ready-made quizzes (original content) every host can copy.

Owns reading the quiz files shipped in ``samples/`` (the quiz format, validated once per
process) and their stable names (the file name without ``.json``). It stores nothing: a copy
becomes the host's own quiz through the quiz routes.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Final

from partyquiz_core.errors import NotFoundError
from partyquiz_core.quiz import Quiz

SAMPLES_DIR: Final = Path(__file__).resolve().parent / "samples"


@functools.cache
def sample_quizzes() -> dict[str, Quiz]:
    """Every sample quiz by its name, in a stable order."""
    return {
        path.stem: Quiz.model_validate_json(path.read_bytes())
        for path in sorted(SAMPLES_DIR.glob("*.json"))
    }


def sample_quiz(name: str) -> Quiz:
    """The sample called ``name``; ``NotFoundError`` for any other name."""
    quiz = sample_quizzes().get(name)
    if quiz is None:
        raise NotFoundError(f"no sample quiz called {name!r}")
    return quiz
