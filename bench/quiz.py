"""The quiz every server plays in the benchmarks, in PartyQuiz's import format.

Pure: builds the quiz document, the correct answers the load generator sends, and the question
message the raw floor writes (shaped like PartyQuiz's ``question`` frame so every server moves
about the same payload bytes). No I/O.
"""

from __future__ import annotations

from typing import Any

import orjson

CHOICES = ("Mercury", "Venus", "Mars", "Jupiter")
TIME_LIMIT_SECONDS = 20


def bench_quiz(questions: int) -> dict[str, Any]:
    """Return a quiz of ``questions`` single-choice questions; question i's answer is i % 4."""
    if not 1 <= questions <= 100:
        raise ValueError("a quiz has 1 to 100 questions")
    return {
        "format_version": 1,
        "title": "Benchmark quiz",
        "settings": {"get_ready_seconds": 0},
        "description": "Played by the benchmark suite; every player answers correctly.",
        "questions": [
            {
                "kind": "single",
                "text": f"Question {i + 1}: which planet is this fact about? "
                "It has the shortest year in the solar system.",
                "choices": [{"text": c} for c in CHOICES],
                "correct": [i % len(CHOICES)],
                "time_limit_seconds": TIME_LIMIT_SECONDS,
                "read_seconds": 0,
                "points": "standard",
            }
            for i in range(questions)
        ],
    }


def correct_choices(quiz: dict[str, Any]) -> list[list[int]]:
    """Return each question's correct choice indices, in order."""
    return [list(q["correct"]) for q in quiz["questions"]]


def question_message(quiz: dict[str, Any], index: int, now: float) -> bytes:
    """Return the ``question`` frame payload for question ``index`` opened at ``now``."""
    q = quiz["questions"][index]
    return orjson.dumps(
        {
            "version": 1000 + index,
            "type": "question",
            "index": index,
            "total": len(quiz["questions"]),
            "text": q["text"],
            "kind": q["kind"],
            "choices": [c["text"] for c in q["choices"]],
            "time_limit": q["time_limit_seconds"],
            "points": q["points"],
            "deadline": now + q["time_limit_seconds"],
            "server_now": now,
            "opens_at": now,
            "shows_at": now,
        }
    )
