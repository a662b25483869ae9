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


# Every code the core raises, with what it tells the user; docs/protocol.md and the HTTP error
# mapping can be checked against this one list.
ERROR_CODES: dict[str, str] = {
    # class defaults
    "error": "an unexpected domain error",
    "invalid": "the input breaks a domain rule",
    "not_found": "the referenced thing does not exist",
    "conflict": "the request clashes with the current state",
    "forbidden": "the caller may not do this",
    "wrong_phase": "not possible in the game's current phase",
    "illegal_transition": "the host command does not fit the game's current phase",
    "stale_command": "the host command was issued from a view of an earlier phase",
    "answer_rejected": "the answer does not count",
    # frames and codes (protocol, codes)
    "bad_frame": "the frame is not a valid client message",
    "too_large": "the frame is larger than 4 KiB",
    "invalid_join_code": "a join code is 6 characters from the join-code alphabet",
    "not_a_command": "the message is not a game command (host, resume, ping)",
    "not_a_player": "only a player's connection can join or answer",
    # joining (game)
    "invalid_nickname": "a nickname is 1-20 visible characters",
    "nickname_taken": "another player already has this nickname (case-insensitive)",
    "player_exists": "this player id is already in the game",
    "banned": "this device was kicked from the game",
    "joining_locked": "the host has locked joining",
    "game_full": "the game has reached its player limit",
    "game_over": "the game is at the podium or has ended",
    "unknown_player": "no such player in this game (never joined or kicked)",
    "no_players": "the game cannot start before someone joins",
    # answering (game)
    "closed": "no question is open",
    "not_open": "answers to the question are not open yet (it is being read)",
    "wrong_question": "the answer is for another question than the open one",
    "paused": "the game is paused",
    "late": "the question's time was up",
    "duplicate": "the player already answered this question",
    "invalid_choice": "the choices do not fit the question",
}
