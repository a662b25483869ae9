"""Build-time check of the web image: one picture of every accepted format goes through the
upload path (sniffed, decoded, re-encoded by Pillow), so an image whose compiled libraries were
damaged fails its build instead of its first upload."""

from __future__ import annotations

import io

from PIL import Image

from partyquiz_web.images import MEDIA_TYPES, prepare_image


def encoded(kind: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, kind)
    return out.getvalue()


for kind in MEDIA_TYPES:
    stored = prepare_image(encoded(kind))
    size = f"{stored.width}x{stored.height}"
    print(f"{kind}: {size} {stored.media_type}, {len(stored.content)} bytes")
