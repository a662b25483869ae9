"""Error codes: every code the core raises is in the one catalog the docs are checked against."""

from __future__ import annotations

import re
from pathlib import Path

import partyquiz_core
from partyquiz_core import errors


def test_every_code_raised_by_the_core_is_catalogued() -> None:
    package = Path(partyquiz_core.__file__).parent
    raised = {
        code
        for source in package.glob("*.py")
        for code in re.findall(r'code="([a-z_]+)"', source.read_text())
    }
    assert len(raised) > 15
    assert raised <= set(errors.ERROR_CODES)


def test_every_error_class_default_code_is_catalogued() -> None:
    classes = [
        cls
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.PartyQuizError)
    ]
    assert {cls.code for cls in classes} <= set(errors.ERROR_CODES)
    assert all(errors.ERROR_CODES.values())


def test_a_code_given_at_raise_time_overrides_the_class_default() -> None:
    err = errors.AnswerRejectedError("time is up", code="late")
    assert (err.code, err.message, str(err)) == ("late", "time is up", "time is up")
    assert errors.AnswerRejectedError("x").code == "answer_rejected"
    assert isinstance(err, errors.GameStateError)
