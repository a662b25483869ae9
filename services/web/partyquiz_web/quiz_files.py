"""Quiz files: the JSON a host exports and imports, with the quiz's pictures inside.

Format 1 is the quiz as it is (``partyquiz_core.quiz.Quiz``). Format 2 is the same object with
``format_version: 2`` and an ``images`` map from each picture's SHA-256 to its content type and
base64 bytes, so a file restores on another installation. A quiz without pictures exports as
format 1, which every version imports. An imported picture goes through the same checks as an
upload (``partyquiz_web.images``); its re-encoded bytes may name it differently, so the quiz's
references are rewritten to what was stored. Nothing here touches the database.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError

from partyquiz_core.errors import PartyQuizError
from partyquiz_core.quiz import Quiz
from partyquiz_web.http_errors import FieldErrorsError, from_pydantic
from partyquiz_web.images import StoredImage, prepare_image

WITH_IMAGES: Final = 2
MAX_IMPORT_BYTES: Final = 32 * 1024 * 1024
"""Largest quiz file accepted: room for its pictures (each at most 5 MB, as uploads)."""


class InlineImage(BaseModel):
    """A picture inside a format 2 file."""

    model_config = ConfigDict(extra="forbid")

    media_type: str  # image/png, image/jpeg, image/webp or image/gif
    data: str  # the bytes, base64


class QuizFileWithImages(Quiz):
    """A format 2 file: the quiz, and every picture it shows by its SHA-256 (the schema of an
    export with pictures)."""

    format_version: Literal[2] = 2
    images: dict[str, InlineImage]


@dataclass(frozen=True, slots=True)
class QuizFile:
    """An imported file: the quiz (its pictures named as stored) and the pictures to store."""

    quiz: Quiz
    images: list[StoredImage]


def export_document(quiz: Quiz, images: dict[str, tuple[str, bytes]]) -> dict[str, Any]:
    """The file for ``quiz``: format 1 without pictures, format 2 with ``images`` (digest to
    media type and bytes) inline."""
    document: dict[str, Any] = quiz.model_dump(mode="json")
    if not quiz.pictures():
        return document
    document["format_version"] = WITH_IMAGES
    document["images"] = {
        digest: {"media_type": media_type, "data": base64.b64encode(content).decode()}
        for digest, (media_type, content) in sorted(images.items())
    }
    return document


def _users(document: dict[str, Any], key: str) -> list[str]:
    """Where a file's quiz shows the picture ``key``: ``cover``, ``questions.2.image``."""
    found = [] if document.get("cover") != key else ["cover"]
    questions = document.get("questions")
    if isinstance(questions, list):
        for number, question in enumerate(questions):
            if isinstance(question, dict) and question.get("image") in (key, f"/images/{key}"):
                found.append(f"questions.{number}.image")
    return found


def _place(path: str) -> str:
    return "the cover" if path == "cover" else f"question {int(path.split('.')[1]) + 1}'s picture"


def _read_images(document: dict[str, Any]) -> tuple[list[StoredImage], dict[str, str]]:
    """Check every inline picture; return them and how each file digest is named as stored."""
    inline = document.pop("images", None)
    if inline is None:
        return [], {}
    if not isinstance(inline, dict):
        raise FieldErrorsError("images: must be an object", [("images", "must be an object")])
    errors: list[tuple[str, str]] = []
    prepared: list[StoredImage] = []
    renamed: dict[str, str] = {}
    for key, entry in inline.items():
        users = _users(document, key) or [f"images.{key}"]
        problem: str | None = None
        data = entry.get("data") if isinstance(entry, dict) else None
        if not isinstance(data, str):
            problem = "has no base64 data"
        else:
            try:
                raw = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                problem = "is not valid base64"
            else:
                try:
                    image = prepare_image(raw)
                except PartyQuizError as exc:
                    problem = f"cannot be used: {exc.message}"
                else:
                    prepared.append(image)
                    renamed[key] = image.digest
        if problem is not None:
            for path in users:
                where = _place(path) if path != f"images.{key}" else f"image {key}"
                errors.append((path, f"{where} in the file {problem}"))
    if errors:
        raise FieldErrorsError(f"{errors[0][0]}: {errors[0][1]}", errors)
    return prepared, renamed


def _rename(document: dict[str, Any], renamed: dict[str, str]) -> None:
    def stored(ref: Any) -> Any:
        if isinstance(ref, str):
            key = ref.removeprefix("/images/")
            return renamed.get(key, ref)
        return ref

    if "cover" in document:
        document["cover"] = stored(document["cover"])
    for question in document.get("questions") or []:
        if isinstance(question, dict) and "image" in question:
            question["image"] = stored(question["image"])


def read_quiz_file(raw: bytes) -> QuizFile:
    """Parse an uploaded quiz file (format 1 or 2); errors carry field paths
    (``questions.2.correct``), and a bad picture names the question that shows it."""
    try:
        document: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise FieldErrorsError(
            f"the file is not valid JSON: {exc}", [("(root)", f"not valid JSON: {exc}")]
        ) from None
    if not isinstance(document, dict):
        raise FieldErrorsError(
            "a quiz file is a JSON object", [("(root)", "must be a JSON object")]
        )
    images: list[StoredImage] = []
    if document.get("format_version") == WITH_IMAGES:
        images, renamed = _read_images(document)
        _rename(document, renamed)
        document["format_version"] = 1
    elif "images" in document:
        raise FieldErrorsError(
            "images: only a format_version 2 file carries images",
            [("images", "only a format_version 2 file carries images")],
        )
    try:
        quiz = Quiz.model_validate(document)
    except PydanticValidationError as exc:
        raise from_pydantic(exc) from None
    return QuizFile(quiz=quiz, images=images)
