"""Domain errors map to HTTP statuses in one place, with one body shape."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError as PydanticValidationError

from partyquiz_core.errors import (
    AnswerRejectedError,
    ConflictError,
    ForbiddenError,
    IllegalTransitionError,
    NotFoundError,
    PartyQuizError,
    ValidationError,
)
from partyquiz_core.quiz import Quiz
from partyquiz_web.http_errors import (
    AuthenticationError,
    RateLimitedError,
    from_pydantic,
    render,
    status_for,
)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ValidationError("bad"), 422),
        (NotFoundError("gone"), 404),
        (ConflictError("taken", code="nickname_taken"), 409),
        (ForbiddenError("no"), 403),
        (IllegalTransitionError("not now"), 409),
        (AnswerRejectedError("late", code="late"), 409),
        (AuthenticationError("who?"), 401),
        (RateLimitedError("slow down", retry_after=3), 429),
        (PartyQuizError("other"), 400),
    ],
)
def test_each_domain_error_class_has_its_status(error: PartyQuizError, status: int) -> None:
    assert status_for(error) == status


def test_body_carries_the_stable_code_and_message() -> None:
    response = render(ConflictError("nickname taken", code="nickname_taken"))
    assert response.status_code == 409
    assert orjson.loads(response.body) == {
        "code": "nickname_taken",
        "message": "nickname taken",
        "errors": [],
    }


def test_rate_limited_tells_when_to_retry() -> None:
    response = render(RateLimitedError("slow down", retry_after=7))
    assert response.headers["retry-after"] == "7"


def test_authentication_error_asks_for_a_bearer_token() -> None:
    assert render(AuthenticationError("no")).headers["www-authenticate"] == "Bearer"


def test_invalid_quiz_lists_every_field_path() -> None:
    document = {
        "title": "",
        "questions": [{"text": "Q", "choices": [{"text": "a"}, {"text": "b"}], "correct": [5]}],
    }
    with pytest.raises(PydanticValidationError) as info:
        Quiz.model_validate(document)
    response = render(from_pydantic(info.value))
    body = orjson.loads(response.body)
    assert response.status_code == 422
    assert body["code"] == "invalid"
    paths = [e["path"] for e in body["errors"]]
    assert paths == ["title", "questions.0"]
    assert "between 0 and 1" in body["errors"][1]["message"]
