"""The one place where errors become HTTP responses.

Maps the ``partyquiz_core.errors`` tree (plus the web-only leaves defined here: 401, 413,
429) and request-validation failures to statuses and one JSON body shape:
``{"code": str, "message": str, "errors": [{"path": str, "message": str}]}``.
Routes raise domain errors; they never build error responses themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from partyquiz_core.errors import (
    ConflictError,
    ForbiddenError,
    GameStateError,
    NotFoundError,
    PartyQuizError,
    ValidationError,
)
from partyquiz_web.images import ImageTooLargeError
from partyquiz_web.responses import OrjsonResponse

log = logging.getLogger(__name__)


class AuthenticationError(PartyQuizError):
    """Missing, malformed, expired or wrongly signed credentials."""

    code = "unauthenticated"


class RateLimitedError(PartyQuizError):
    """Too many attempts from one client in the current window."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class FieldErrorsError(ValidationError):
    """Input that fails validation in several places; ``errors`` carries each field path."""

    def __init__(self, message: str, errors: Sequence[tuple[str, str]]) -> None:
        super().__init__(message)
        self.errors = list(errors)


# Most specific first; the first class in an error's MRO that is listed decides.
_STATUS_BY_ERROR: dict[type[PartyQuizError], int] = {
    ImageTooLargeError: 413,
    AuthenticationError: 401,
    RateLimitedError: 429,
    ValidationError: 422,
    NotFoundError: 404,
    ForbiddenError: 403,
    ConflictError: 409,
    GameStateError: 409,
    PartyQuizError: 400,
}

_CODE_BY_STATUS = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
}


class FieldError(BaseModel):
    path: str
    message: str


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer of the API has this shape."""

    code: str
    message: str
    errors: list[FieldError] = []


_DESCRIPTIONS = {
    401: "Missing, invalid or expired token.",
    403: "Not allowed on this server.",
    404: "Not found (or not yours).",
    409: "Conflicts with existing data.",
    413: "Request body too large.",
    422: "Invalid input; `errors` lists each field path.",
    429: "Rate limited; see Retry-After.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` documenting the error body for ``statuses``."""
    return {
        status: {"model": ErrorBody, "description": _DESCRIPTIONS[status]} for status in statuses
    }


def status_for(error: PartyQuizError) -> int:
    """Return the HTTP status for a domain error."""
    for cls in type(error).__mro__:
        if cls in _STATUS_BY_ERROR:
            return _STATUS_BY_ERROR[cls]
    return 400


def field_path(loc: Iterable[Any]) -> str:
    """Turn a pydantic location into a dotted path (``questions.2.correct``)."""
    return ".".join(str(part) for part in loc) or "(root)"


def field_errors(errors: Iterable[Any]) -> list[tuple[str, str]]:
    """Turn pydantic error dicts into (path, message) pairs without echoing the input."""
    items = list(errors)
    locs = [tuple(item.get("loc", ())) for item in items]
    pairs = []
    for item, loc in zip(items, locs, strict=True):
        if item.get("type") == "too_short" and any(
            other[: len(loc)] == loc and len(other) > len(loc) for other in locs
        ):
            # "at least 1 item, not 0" only because the items below failed: noise.
            continue
        message = str(item.get("msg", "invalid value")).removeprefix("Value error, ")
        pairs.append((field_path(item.get("loc", ())), message))
    return pairs


def from_pydantic(exc: PydanticValidationError, *, prefix: Sequence[str] = ()) -> FieldErrorsError:
    errors = field_errors(
        {**e, "loc": (*prefix, *e["loc"])} for e in exc.errors(include_input=False)
    )
    return FieldErrorsError(_summary(errors), errors)


def _summary(errors: Sequence[tuple[str, str]]) -> str:
    if not errors:
        return "invalid request"
    path, message = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{path}: {message}{more}"


def _body(
    status: int, code: str, message: str, errors: Sequence[tuple[str, str]] = ()
) -> OrjsonResponse:
    content = {
        "code": code,
        "message": message,
        "errors": [{"path": p, "message": m} for p, m in errors],
    }
    return OrjsonResponse(content, status_code=status)


def render(error: PartyQuizError) -> OrjsonResponse:
    """Build the response for a domain error."""
    status = status_for(error)
    errors = error.errors if isinstance(error, FieldErrorsError) else []
    response = _body(status, error.code, error.message, errors)
    if isinstance(error, RateLimitedError):
        response.headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, AuthenticationError):
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into the shared body shape."""

    async def on_domain_error(_request: Request, exc: Exception) -> OrjsonResponse:
        assert isinstance(exc, PartyQuizError)
        return render(exc)

    async def on_request_validation(_request: Request, exc: Exception) -> OrjsonResponse:
        assert isinstance(exc, RequestValidationError)
        errors = field_errors(exc.errors())
        return _body(422, "invalid", _summary(errors), errors)

    async def on_http_exception(_request: Request, exc: Exception) -> OrjsonResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _CODE_BY_STATUS.get(exc.status_code, "error")
        response = _body(exc.status_code, code, str(exc.detail))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    async def on_unexpected(_request: Request, exc: Exception) -> OrjsonResponse:
        log.exception("unhandled error", exc_info=exc)
        return _body(500, "internal", "internal server error")

    app.add_exception_handler(PartyQuizError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_request_validation)
    app.add_exception_handler(StarletteHTTPException, on_http_exception)
    app.add_exception_handler(Exception, on_unexpected)
