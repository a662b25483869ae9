"""A host's quizzes: CRUD, duplicate, JSON import and export. Others' quizzes are 404."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status

from partyquiz_core.quiz import Quiz, read_stored_quiz
from partyquiz_web.dependencies import CurrentHost, RuntimeDep, SessionDep
from partyquiz_web.http_errors import FieldErrorsError, error_responses
from partyquiz_web.kahoot import quiz_from_kahoot_xlsx
from partyquiz_web.models import ImageRecord, QuizRecord
from partyquiz_web.quiz_files import QuizFileWithImages, export_document, read_quiz_file
from partyquiz_web.repositories import ImageRepository, QuizRepository
from partyquiz_web.responses import OrjsonResponse
from partyquiz_web.samples import sample_quiz, sample_quizzes
from partyquiz_web.schemas import QuizPublic, QuizSummary, SampleSummary

router = APIRouter(
    prefix="/api/quizzes", tags=["quizzes"], responses=error_responses(401, 404, 413, 422)
)

_TITLE_MAX = 120


def _summary(record: QuizRecord) -> QuizSummary:
    return QuizSummary(
        id=record.id,
        title=record.title,
        question_count=record.question_count,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def _public(record: QuizRecord) -> QuizPublic:
    return QuizPublic(**_summary(record).model_dump(), quiz=read_stored_quiz(record.content))


def _new_record(quiz: Quiz, owner_id: str, runtime: RuntimeDep) -> QuizRecord:
    now = runtime.now()
    return QuizRecord(
        id=uuid.uuid4().hex,
        owner_id=owner_id,
        title=quiz.title,
        question_count=len(quiz.questions),
        content=quiz.model_dump(mode="json"),
        created_at=now,
        updated_at=now,
    )


def _nul_paths(value: Any, path: str) -> list[str]:
    if isinstance(value, str):
        return [path] if "\x00" in value else []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _nul_paths(v, f"{path}.{k}" if path else k)]
    if isinstance(value, list | tuple):
        return [p for i, v in enumerate(value) for p in _nul_paths(v, f"{path}.{i}")]
    return []


def ensure_storable(quiz: Quiz) -> Quiz:
    """Refuse text the database cannot store (NUL characters), naming each field."""
    paths = _nul_paths(quiz.model_dump(mode="json"), "")
    if paths:
        errors = [(p, "must not contain NUL characters") for p in paths]
        raise FieldErrorsError(f"{paths[0]}: must not contain NUL characters", errors)
    return quiz


def _where(path: str) -> str:
    if path == "cover":
        return "the cover"
    return f"question {int(path.split('.')[1]) + 1}'s picture"


async def ensure_images_exist(quiz: Quiz, session: SessionDep) -> Quiz:
    """Refuse pictures that name no uploaded image, naming each question that shows one."""
    shown = quiz.pictures()
    missing = await ImageRepository(session).missing({digest for _, digest in shown})
    errors = [
        (path, f"{_where(path)} names no uploaded image ({digest}); upload it first")
        for path, digest in shown
        if digest in missing
    ]
    if errors:
        raise FieldErrorsError(f"{errors[0][0]}: {errors[0][1]}", errors)
    return quiz


@router.get("")
async def list_quizzes(
    host: CurrentHost,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[QuizSummary]:
    """The host's quizzes, most recently changed first, a page at a time."""
    records = await QuizRepository(session).list_for(host.id, limit=limit, offset=offset)
    return [_summary(q) for q in records]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_quiz(
    quiz: Quiz, host: CurrentHost, session: SessionDep, runtime: RuntimeDep
) -> QuizPublic:
    """Create a quiz from the quiz format (see docs/quiz-format.md)."""
    await ensure_images_exist(ensure_storable(quiz), session)
    record = _new_record(quiz, host.id, runtime)
    QuizRepository(session).add(record)
    await session.commit()
    return _public(record)


@router.post(
    "/import",
    status_code=status.HTTP_201_CREATED,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Quiz"}}},
        }
    },
)
async def import_quiz(
    request: Request, host: CurrentHost, session: SessionDep, runtime: RuntimeDep
) -> QuizPublic:
    """Import an exported quiz file (JSON, format 1 or 2 with its pictures inside); every
    problem is listed with its field path, and nothing is stored unless all is well."""
    file = read_quiz_file(await request.body())
    quiz = ensure_storable(file.quiz)
    images = ImageRepository(session)
    for image in {image.digest: image for image in file.images}.values():
        await images.add(
            ImageRecord(
                digest=image.digest,
                media_type=image.media_type,
                width=image.width,
                height=image.height,
                content=image.content,
                created_at=runtime.now(),
            )
        )
    await ensure_images_exist(quiz, session)
    record = _new_record(quiz, host.id, runtime)
    QuizRepository(session).add(record)
    await session.commit()
    return _public(record)


@router.post(
    "/import/kahoot",
    status_code=status.HTTP_201_CREATED,
    openapi_extra={
        "requestBody": {
            "required": True,
            # The body is the .xlsx file as it is, whatever its declared type.
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def import_kahoot_spreadsheet(
    request: Request,
    host: CurrentHost,
    session: SessionDep,
    runtime: RuntimeDep,
    title: Annotated[str, Query(min_length=1, max_length=_TITLE_MAX)] = "Imported from Kahoot!",
) -> QuizPublic:
    """Import a filled-in Kahoot! quiz spreadsheet (.xlsx); bad rows are listed by number and
    nothing is imported until every row is good."""
    quiz = ensure_storable(quiz_from_kahoot_xlsx(await request.body(), title))
    record = _new_record(quiz, host.id, runtime)
    QuizRepository(session).add(record)
    await session.commit()
    return _public(record)


@router.get("/samples")
async def list_samples(host: CurrentHost) -> list[SampleSummary]:
    """The sample library: ready-made quizzes to copy into your own."""
    del host  # for hosts only, like the rest of the quiz API
    return [
        SampleSummary(
            name=name,
            title=quiz.title,
            description=quiz.description,
            question_count=len(quiz.questions),
        )
        for name, quiz in sample_quizzes().items()
    ]


@router.post("/samples/{name}", status_code=status.HTTP_201_CREATED)
async def copy_sample(
    name: str, host: CurrentHost, session: SessionDep, runtime: RuntimeDep
) -> QuizPublic:
    """Copy a sample quiz into your quizzes, to play or edit."""
    record = _new_record(sample_quiz(name), host.id, runtime)
    QuizRepository(session).add(record)
    await session.commit()
    return _public(record)


@router.get("/{quiz_id}")
async def get_quiz(quiz_id: str, host: CurrentHost, session: SessionDep) -> QuizPublic:
    return _public(await QuizRepository(session).get_owned(quiz_id, host.id))


@router.put("/{quiz_id}")
async def replace_quiz(
    quiz_id: str, quiz: Quiz, host: CurrentHost, session: SessionDep, runtime: RuntimeDep
) -> QuizPublic:
    """Replace a quiz's content; games already created keep the version they started with."""
    record = await QuizRepository(session).get_owned(quiz_id, host.id)
    await ensure_images_exist(ensure_storable(quiz), session)
    record.title = quiz.title
    record.question_count = len(quiz.questions)
    record.content = quiz.model_dump(mode="json")
    record.updated_at = runtime.now()
    await session.commit()
    return _public(record)


@router.delete("/{quiz_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_quiz(quiz_id: str, host: CurrentHost, session: SessionDep) -> Response:
    """Delete a quiz; the history of games played with it is kept."""
    quizzes = QuizRepository(session)
    await quizzes.delete(await quizzes.get_owned(quiz_id, host.id))
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{quiz_id}/duplicate", status_code=status.HTTP_201_CREATED)
async def duplicate_quiz(
    quiz_id: str, host: CurrentHost, session: SessionDep, runtime: RuntimeDep
) -> QuizPublic:
    """Copy a quiz under the title "Copy of …"."""
    quizzes = QuizRepository(session)
    original = read_stored_quiz((await quizzes.get_owned(quiz_id, host.id)).content)
    title = f"Copy of {original.title}"[:_TITLE_MAX].rstrip()
    record = _new_record(original.model_copy(update={"title": title}), host.id, runtime)
    quizzes.add(record)
    await session.commit()
    return _public(record)


@router.get(
    "/{quiz_id}/export",
    response_model=Quiz | QuizFileWithImages,
    responses={200: {"description": "The quiz file, as a download."}},
)
async def export_quiz(quiz_id: str, host: CurrentHost, session: SessionDep) -> OrjsonResponse:
    """Download the quiz in the import format, its pictures inside (format 2) if it has any."""
    record = await QuizRepository(session).get_owned(quiz_id, host.id)
    quiz = read_stored_quiz(record.content)
    images = ImageRepository(session)
    inline = {}
    for digest in {digest for _, digest in quiz.pictures()}:
        image = await images.get(digest)
        inline[digest] = (image.media_type, image.content)
    slug = re.sub(r"[^a-z0-9]+", "-", quiz.title.lower()).strip("-")[:60] or "quiz"
    return OrjsonResponse(
        export_document(quiz, inline),
        headers={"Content-Disposition": f'attachment; filename="{slug}.quiz.json"'},
    )
