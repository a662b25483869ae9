"""The PartyQuiz domain error tree.

Every error a rule of the game can raise lives here, each with a stable machine-readable
``code``. The web service maps these to HTTP statuses in one place, the game service maps
them to ``error`` frames; neither invents codes of its own for domain failures.

    PartyQuizError
    ├── ValidationError        input that breaks a domain rule (bad quiz, bad nickname ...)
    ├── NotFoundError          a referenced thing does not exist (unknown player, question ...)
    ├── ConflictError          the request clashes with current state (nickname taken ...)
    ├── ForbiddenError         the caller may not do this (not the host, banned device ...)
    └── GameStateError         illegal in the current phase
        ├── IllegalTransitionError   a host command the phase does not allow
        └── AnswerRejectedError      an answer that does not count (late, duplicate, invalid)
"""

from __future__ import annotations


class PartyQuizError(Exception):
    """Base of every domain error; ``code`` is stable and documented in docs/protocol.md."""

    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ValidationError(PartyQuizError):
    code = "invalid"


class NotFoundError(PartyQuizError):
    code = "not_found"


class ConflictError(PartyQuizError):
    code = "conflict"


class ForbiddenError(PartyQuizError):
    code = "forbidden"


class GameStateError(PartyQuizError):
    code = "wrong_phase"


class IllegalTransitionError(GameStateError):
    code = "illegal_transition"


class AnswerRejectedError(GameStateError):
    """An answer that is not counted; ``code`` says why (late, duplicate, invalid ...)."""

    code = "answer_rejected"
