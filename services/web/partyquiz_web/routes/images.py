"""Quiz images: hosts upload them, anyone with the address reads them.

An upload is checked and re-encoded (``partyquiz_web.images``) and stored under the SHA-256 of
what is stored, so an address never changes what it shows: responses are cached for a year
and revalidated by ETag. Reading needs no login (phones and the big screen fetch them).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response, status
from sqlalchemy.exc import IntegrityError

from partyquiz_core.quiz import image_url
from partyquiz_web.dependencies import CurrentHost, RuntimeDep, SessionDep
from partyquiz_web.http_errors import error_responses
from partyquiz_web.images import prepare_image
from partyquiz_web.models import ImageRecord
from partyquiz_web.repositories import ImageRepository
from partyquiz_web.schemas import ImagePublic

router = APIRouter(tags=["images"])

IMMUTABLE = "public, max-age=31536000, immutable"


@router.post(
    "/api/images",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 413, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            # The body is the picture as it is; its type is read from its bytes.
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def upload_image(
    request: Request,
    response: Response,
    host: CurrentHost,
    session: SessionDep,
    runtime: RuntimeDep,
) -> ImagePublic:
    """Upload a PNG, JPEG, WebP or GIF (at most 5 MB); 201 when new, 200 when stored already."""
    prepared = prepare_image(await request.body())
    record = ImageRecord(
        digest=prepared.digest,
        media_type=prepared.media_type,
        width=prepared.width,
        height=prepared.height,
        content=prepared.content,
        created_at=runtime.now(),
    )
    new = await ImageRepository(session).add(record)
    if new:
        try:
            await session.commit()
        except IntegrityError:  # the same picture, uploaded at the same moment elsewhere
            await session.rollback()
            new = False
    if not new:
        response.status_code = status.HTTP_200_OK
    return ImagePublic(
        id=prepared.digest,
        url=image_url(prepared.digest),
        media_type=prepared.media_type,
        width=prepared.width,
        height=prepared.height,
    )


@router.get("/images/{digest}", responses=error_responses(404))
async def read_image(
    digest: str,
    session: SessionDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """An uploaded image; cached for a year, since its address names its content."""
    etag = f'"{digest}"'
    headers = {
        "Cache-Control": IMMUTABLE,
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    image = await ImageRepository(session).get(digest)
    if if_none_match is not None and etag in {t.strip() for t in if_none_match.split(",")}:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(content=image.content, media_type=image.media_type, headers=headers)
