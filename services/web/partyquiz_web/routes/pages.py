"""The pages people see: the player's phone page, the host's app, and the join QR code.

Owns the URLs of the HTML shells (``/join/{code}``, ``/host/...``) and the QR image of a join
link. The pages themselves are static files (plain ES modules, no build step); every piece of
data they show comes from the JSON API and the game service. No business rules here.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Final

import segno
from fastapi import APIRouter, Request, Response
from starlette.responses import FileResponse

from partyquiz_core.codes import normalize_join_code
from partyquiz_web.dependencies import RuntimeDep

router = APIRouter(include_in_schema=False)

STATIC_DIR: Final = Path(__file__).resolve().parent.parent / "static"
_PLAYER_PAGE: Final = STATIC_DIR / "play.html"
_HOST_PAGE: Final = STATIC_DIR / "host.html"
# Shells change with every release; browsers must revalidate them (assets are cheap to refetch).
# The pages load only their own scripts and styles; the game socket may live on another host
# or port (PARTYQUIZ_WEB_PUBLIC_WS_URL), hence ws:/wss: for connections.
_SHELL_HEADERS: Final = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; connect-src 'self' ws: wss:; object-src 'none'; "
        "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


@router.get("/favicon.ico")
async def favicon() -> FileResponse:
    """The site icon, for browsers that ask for it before reading a page."""
    return FileResponse(
        STATIC_DIR / "favicon.svg",
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@router.get("/join")
async def join_page() -> FileResponse:
    """The player's page without a code: the code field is empty."""
    return FileResponse(_PLAYER_PAGE, headers=_SHELL_HEADERS)


@router.get("/join/{code}", name="join_with_code")
async def join_page_with_code(code: str) -> FileResponse:
    """The player's page with the code prefilled (the link behind the QR code)."""
    del code  # read by the page from its own URL
    return FileResponse(_PLAYER_PAGE, headers=_SHELL_HEADERS)


@router.get("/host")
async def host_home() -> FileResponse:
    """The host's app: login, quizzes, editor, big screen, results (routed in the browser)."""
    return FileResponse(_HOST_PAGE, headers=_SHELL_HEADERS)


@router.get("/host/{rest:path}")
async def host_page(rest: str) -> FileResponse:
    """Any deeper host URL serves the same app, so reloads and bookmarks work."""
    del rest
    return FileResponse(_HOST_PAGE, headers=_SHELL_HEADERS)


@router.get("/qr/{code}.svg")
async def join_qr_code(code: str, request: Request, runtime: RuntimeDep) -> Response:
    """An SVG QR code of the join link for ``code`` at the address players use (422 for a
    malformed code)."""
    canonical = normalize_join_code(code)
    url = runtime.join_url(request, canonical)
    qr = segno.make(url, error="m", micro=False)
    buffer = io.BytesIO()
    qr.save(
        buffer,
        kind="svg",
        scale=1,
        border=4,
        xmldecl=False,
        omitsize=True,
        title=f"QR code: join PartyQuiz game {canonical}",
        dark="#000000",
        light="#ffffff",
    )
    return Response(
        buffer.getvalue(),
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=3600"},
    )
