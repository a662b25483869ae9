"""docs/quiz-format.md stays true: its example imports, and it is the demo's sample quiz."""

from __future__ import annotations

import json
import re
from pathlib import Path

from partyquiz_core.quiz import Choice, Question, QuestionKind, Quiz, QuizSettings, Slider
from partyquiz_web.demo import SAMPLE_QUIZ

DOC = Path(__file__).parents[3] / "docs" / "quiz-format.md"


def _example() -> str:
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    return str(blocks[0])


def test_documented_example_is_a_valid_quiz_with_every_kind() -> None:
    quiz = Quiz.model_validate_json(_example())
    assert {q.kind for q in quiz.questions} == set(QuestionKind)


def test_documented_example_is_the_demo_sample_quiz() -> None:
    assert json.loads(_example()) == json.loads(SAMPLE_QUIZ.read_text())


def test_every_question_field_is_documented() -> None:
    text = DOC.read_text()
    fields = set(Quiz.model_fields) | set(Question.model_fields) | set(Choice.model_fields)
    fields |= set(QuizSettings.model_fields) | set(Slider.model_fields)
    assert all(f"`{name}`" in text for name in fields)


def test_documented_picture_example_is_a_valid_quiz_with_pictures() -> None:
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    quiz = Quiz.model_validate_json(blocks[1])
    assert quiz.cover is not None
    assert [q.image for q in quiz.questions] == [quiz.questions[1].image] * 2
    assert quiz.pictures()[0] == ("cover", quiz.cover)
