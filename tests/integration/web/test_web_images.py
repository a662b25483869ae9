"""Image uploads against real databases: stored once by content, served with cache headers,
refused clearly when too big, not a picture, or a decompression bomb."""

from __future__ import annotations

import io
import random
import struct
import zlib

from PIL import Image
from tests.integration.web.conftest import Web

from partyquiz_web.images import MAX_UPLOAD_BYTES


def png(size: tuple[int, int] = (64, 32), colour: tuple[int, int, int] = (10, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def noisy_png(min_bytes: int) -> bytes:
    """A PNG that does not compress: random pixels, at least ``min_bytes`` long."""
    side = int((min_bytes / 3) ** 0.5) + 1
    pixels = random.Random(7).randbytes(side * side * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), pixels).save(out, "PNG")
    return out.getvalue()


def bomb() -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    header = struct.pack(">IIBBBBB", 60_000, 60_000, 8, 2, 0, 0, 0)
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 4096, 9))
    return b"\x89PNG\r\n\x1a\n" + chunks + chunk(b"IEND", b"")


async def test_an_uploaded_image_is_served_at_an_address_that_never_changes(web: Web) -> None:
    auth = await web.register_and_login()
    # A misleading name and type: the bytes decide.
    headers = {**auth, "Content-Type": "text/plain"}
    created = await web.client.post("/api/images", content=png(), headers=headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["media_type"], body["width"], body["height"]) == ("image/png", 64, 32)
    assert body["url"] == f"/images/{body['id']}"

    served = await web.client.get(body["url"])
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert served.headers["etag"] == f'"{body["id"]}"'
    assert served.headers["x-content-type-options"] == "nosniff"
    with Image.open(io.BytesIO(served.content)) as image:
        assert image.size == (64, 32)

    again = await web.client.get(body["url"], headers={"If-None-Match": served.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""

    # The same picture again is the same image, stored once.
    repeat = await web.client.post("/api/images", content=png(), headers=auth)
    assert repeat.status_code == 200
    assert repeat.json()["id"] == body["id"]


async def test_uploading_needs_a_login_and_unknown_images_are_404(web: Web) -> None:
    refused = await web.client.post("/api/images", content=png())
    assert refused.status_code == 401
    missing = await web.client.get("/images/" + "0" * 64)
    assert missing.status_code == 404
    assert (await web.client.get("/images/not-a-digest")).status_code == 404


async def test_what_is_not_a_picture_and_decompression_bombs_are_refused_with_why(
    web: Web,
) -> None:
    auth = await web.register_and_login()
    text = await web.client.post("/api/images", content=b"<svg/>", headers=auth)
    assert text.status_code == 422
    assert text.json()["code"] == "image_refused"
    assert "PNG, JPEG, WebP and GIF" in text.json()["message"]
    exploding = await web.client.post("/api/images", content=bomb(), headers=auth)
    assert exploding.status_code == 422
    assert "million pixels" in exploding.json()["message"]


async def test_uploads_take_up_to_the_image_limit_and_other_requests_keep_theirs(
    web: Web,
) -> None:
    auth = await web.register_and_login()
    big = noisy_png(2 * 1024 * 1024)  # over the 1 MB every other request may send
    assert len(big) < MAX_UPLOAD_BYTES
    accepted = await web.client.post("/api/images", content=big, headers=auth)
    assert accepted.status_code == 201, accepted.text
    assert max(accepted.json()["width"], accepted.json()["height"]) <= 1920

    too_big = await web.client.post(
        "/api/images", content=b"\x89PNG\r\n\x1a\n" + bytes(MAX_UPLOAD_BYTES), headers=auth
    )
    assert too_big.status_code == 413
    quiz = await web.client.post("/api/quizzes", content=b" " * (2 * 1024 * 1024), headers=auth)
    assert quiz.status_code == 413
