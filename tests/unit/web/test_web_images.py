"""Uploaded images: the type from the bytes, metadata gone, sizes bounded, bombs refused."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from partyquiz_web.images import (
    MAX_SIDE,
    MAX_UPLOAD_BYTES,
    ImageRefusedError,
    ImageTooLargeError,
    prepare_image,
)

GPS_IFD = 0x8825
ORIENTATION = 0x0112


def encoded(image: Image.Image, kind: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, kind, **options)
    return out.getvalue()


def photo_with_gps(size: tuple[int, int] = (40, 20), orientation: int = 1) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[0x010F] = "PhoneMaker"  # camera make
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (47.0, 22.0, 0.0), 3: "E", 4: (8.0, 32.0, 0.0)})
    return encoded(image, "JPEG", exif=exif, comment=b"secret note")


def opened(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def test_a_phone_photo_loses_its_gps_position_and_every_other_metadata() -> None:
    upload = photo_with_gps()
    assert b"PhoneMaker" in upload
    assert b"secret note" in upload
    stored = prepare_image(upload)
    assert stored.media_type == "image/jpeg"
    with opened(stored.content) as image:
        assert image.format == "JPEG"
        assert dict(image.getexif()) == {}
        assert "comment" not in image.info
    assert b"PhoneMaker" not in stored.content
    assert b"secret note" not in stored.content


def test_a_png_loses_its_exif_and_text_chunks() -> None:
    text = PngInfo()
    text.add_text("Author", "someone@example.org")
    exif = Image.Exif()
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (47.0, 22.0, 0.0)})
    upload = encoded(Image.new("RGB", (8, 8)), "PNG", exif=exif, pnginfo=text)
    stored = prepare_image(upload)
    with opened(stored.content) as image:
        assert dict(image.getexif()) == {}
        assert "Author" not in image.info
    assert b"someone@example.org" not in stored.content


def test_a_photo_taken_sideways_is_stored_upright() -> None:
    # Orientation 6: the camera was turned; viewers rotate by 90 degrees to show it.
    stored = prepare_image(photo_with_gps(size=(40, 20), orientation=6))
    assert (stored.width, stored.height) == (20, 40)


@pytest.mark.parametrize(
    ("kind", "media_type"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp"), ("GIF", "image/gif")],
)
def test_each_supported_type_is_told_from_its_bytes(kind: str, media_type: str) -> None:
    stored = prepare_image(encoded(Image.new("RGB", (30, 10), (0, 90, 200)), kind))
    assert stored.media_type == media_type
    assert (stored.width, stored.height) == (30, 10)
    with opened(stored.content) as image:
        assert image.format == kind
    assert stored.digest == hashlib.sha256(stored.content).hexdigest()


def test_the_same_upload_is_stored_under_the_same_name() -> None:
    upload = encoded(Image.new("RGB", (16, 16), (1, 2, 3)), "PNG")
    assert prepare_image(upload).digest == prepare_image(upload).digest


def test_a_large_picture_is_shrunk_to_the_longest_side_allowed() -> None:
    stored = prepare_image(encoded(Image.new("RGB", (4 * MAX_SIDE, MAX_SIDE)), "PNG"))
    assert (stored.width, stored.height) == (MAX_SIDE, MAX_SIDE // 4)


def test_transparency_is_kept() -> None:
    stored = prepare_image(encoded(Image.new("RGBA", (8, 8), (0, 0, 0, 0)), "PNG"))
    with opened(stored.content) as image:
        assert image.convert("RGBA").getpixel((0, 0)) == (0, 0, 0, 0)


def test_an_animated_gif_keeps_its_frames() -> None:
    frames = [Image.new("RGB", (12, 12), colour) for colour in ((255, 0, 0), (0, 255, 0))]
    upload = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=200)
    stored = prepare_image(upload)
    with opened(stored.content) as image:
        assert getattr(image, "n_frames", 1) == 2


@pytest.mark.parametrize(
    "upload",
    [
        b"%PDF-1.7 not a picture",
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        b"",
    ],
)
def test_what_is_not_a_supported_picture_is_refused_whatever_it_is_called(upload: bytes) -> None:
    with pytest.raises(ImageRefusedError, match="only PNG, JPEG, WebP and GIF"):
        prepare_image(upload)


def test_a_damaged_picture_is_refused_as_damaged() -> None:
    upload = encoded(Image.new("RGB", (64, 64)), "PNG")
    with pytest.raises(ImageRefusedError, match="damaged"):
        prepare_image(upload[: len(upload) // 2])


def _png_declaring(width: int, height: int) -> bytes:
    """A small PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 1024, 9)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def test_a_decompression_bomb_is_refused_before_it_is_decoded() -> None:
    bomb = _png_declaring(50_000, 50_000)
    assert len(bomb) < 1000
    with pytest.raises(ImageRefusedError, match="million pixels"):
        prepare_image(bomb)


def test_an_upload_over_the_limit_is_refused_as_too_large() -> None:
    with pytest.raises(ImageTooLargeError, match="at most 5 MB"):
        prepare_image(b"\x89PNG\r\n\x1a\n" + b"\x00" * MAX_UPLOAD_BYTES)
