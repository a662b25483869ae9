"""Uploaded pictures: checked and re-encoded before a quiz may show them.

Owns the rules for an uploaded image: PNG, JPEG, WebP or GIF, told apart by their first bytes
(never by a file name or a declared type); at most ``MAX_UPLOAD_BYTES`` in; refused before
decoding when the header promises more than ``MAX_PIXELS`` (a decompression bomb); decoded
with Pillow, turned upright, shrunk to at most ``MAX_SIDE`` pixels a side and re-encoded, so
nothing of the upload's metadata (EXIF, GPS positions, comments, ICC tricks) is kept. What is
stored is named by the SHA-256 of its bytes. Bytes in, bytes out: no I/O, no database.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from typing import Final

from PIL import Image, ImageOps, UnidentifiedImageError

from partyquiz_core.errors import PartyQuizError, ValidationError

MAX_UPLOAD_BYTES: Final = 5 * 1024 * 1024
"""Largest upload accepted (bytes); what is stored is usually much smaller."""
MAX_SIDE: Final = 1920
"""Longest side of a stored image (pixels): sharp on a 1080p screen, small on a phone."""
MAX_PIXELS: Final = 40_000_000
"""Most pixels an upload may declare (all frames of an animation together)."""
MAX_FRAMES: Final = 100
"""Most frames of an animated GIF or WebP."""

_SIGNATURES: Final = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
)
MEDIA_TYPES: Final = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "GIF": "image/gif",
}


class ImageTooLargeError(PartyQuizError):
    """More bytes than ``MAX_UPLOAD_BYTES`` (HTTP 413)."""

    code = "image_too_large"


class ImageRefusedError(ValidationError):
    """Not a picture of a supported type, damaged, or too many pixels (HTTP 422)."""

    code = "image_refused"


@dataclass(frozen=True, slots=True)
class StoredImage:
    """An image as it is stored and served: its bytes, their type and their SHA-256 (hex)."""

    content: bytes
    media_type: str
    width: int
    height: int
    digest: str


def sniff_format(data: bytes) -> str | None:
    """The format ``data`` starts like (``PNG``, ``JPEG``, ``GIF``, ``WEBP``), or None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for signature, name in _SIGNATURES:
        if data.startswith(signature):
            return name
    return None


def prepare_image(data: bytes) -> StoredImage:
    """Check an upload and return what to store, or raise ``ImageTooLargeError`` or
    ``ImageRefusedError`` saying why not."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageTooLargeError(
            f"an image is at most {MAX_UPLOAD_BYTES // (1024 * 1024)} MB; this one is "
            f"{len(data) / (1024 * 1024):.1f} MB"
        )
    kind = sniff_format(data)
    if kind is None:
        raise ImageRefusedError("only PNG, JPEG, WebP and GIF images can be uploaded")
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb check warns below its limit; ours is stricter and raises.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[kind]) as image:
                return _reencoded(image, kind)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRefusedError(_too_many_pixels()) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRefusedError(f"this {kind} image is damaged and cannot be read") from exc


def _too_many_pixels() -> str:
    return f"an image has at most {MAX_PIXELS // 1_000_000} million pixels"


def _reencoded(image: Image.Image, kind: str) -> StoredImage:
    frames = getattr(image, "n_frames", 1)
    width, height = image.size
    # Checked on the header, before any pixel is decoded.
    if width * height * min(frames, MAX_FRAMES) > MAX_PIXELS or width < 1 or height < 1:
        raise ImageRefusedError(_too_many_pixels())
    if frames > MAX_FRAMES:
        raise ImageRefusedError(f"an animated image has at most {MAX_FRAMES} frames")
    out = io.BytesIO()
    if frames > 1:
        _save_animation(image, kind, out)
    else:
        _save_still(image, kind, out)
    content = out.getvalue()
    with Image.open(io.BytesIO(content)) as stored:
        size = stored.size
    return StoredImage(
        content=content,
        media_type=MEDIA_TYPES[kind],
        width=size[0],
        height=size[1],
        digest=hashlib.sha256(content).hexdigest(),
    )


def _bounded(image: Image.Image) -> Image.Image:
    """A copy at most ``MAX_SIDE`` a side, with none of the upload's metadata: encoders
    write what ``info`` holds (EXIF, comments, ICC profiles, text chunks)."""
    image = image.copy()
    image.info = {}
    if max(image.size) > MAX_SIDE:
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return image


def _save_still(image: Image.Image, kind: str, out: io.BytesIO) -> None:
    upright = ImageOps.exif_transpose(image)  # a phone photo's rotation, before EXIF goes
    if kind == "JPEG":
        _bounded(upright.convert("RGB")).save(out, "JPEG", quality=85, optimize=True)
    elif kind == "WEBP":
        mode = (
            "RGBA"
            if upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info
            else "RGB"
        )
        _bounded(upright.convert(mode)).save(out, "WEBP", quality=85)
    elif kind == "GIF":
        _bounded(upright.convert("RGBA")).save(out, "GIF")
    else:
        mode = "RGBA" if upright.mode not in ("RGB", "L") else upright.mode
        _bounded(upright.convert(mode)).save(out, "PNG", optimize=True)


def _save_animation(image: Image.Image, kind: str, out: io.BytesIO) -> None:
    frames: list[Image.Image] = []
    durations: list[int] = []
    for index in range(image.n_frames):  # type: ignore[attr-defined]
        image.seek(index)
        frames.append(_bounded(image.convert("RGBA")))
        durations.append(int(image.info.get("duration", 100)) or 100)
    first, rest = frames[0], frames[1:]
    if kind == "WEBP":
        first.save(out, "WEBP", save_all=True, append_images=rest, duration=durations, loop=0)
    else:
        first.save(
            out, "GIF", save_all=True, append_images=rest, duration=durations, loop=0, disposal=2
        )
