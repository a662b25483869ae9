"""The ``partyquiz-web`` command: ``serve`` runs the app with uvicorn, ``migrate`` the schema.

Owns argument parsing, building the settings once from the environment, and turning start-up
failures into one line on stderr with a non-zero exit code (2: configuration, 1: runtime).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
from collections.abc import Sequence

import uvicorn
from alembic.util import CommandError
from fastapi import FastAPI
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from partyquiz_web.migrating import current_revision, head_revision, upgrade_to_head
from partyquiz_web.settings import SettingsError, WebSettings, load_settings

PROG = "partyquiz-web"


def _fail(message: str, code: int) -> int:
    print(f"{PROG}: {' '.join(message.split())}", file=sys.stderr)
    return code


def _redacted(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable url>"


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip() or type(exc).__name__
    return text.splitlines()[0]


async def _migrate(settings: WebSettings) -> tuple[str | None, str | None]:
    before = await current_revision(settings.database_url)
    await upgrade_to_head(settings.database_url)
    return before, await current_revision(settings.database_url)


def run_migrate(settings: WebSettings) -> int:
    """Apply pending migrations; print the revision the database ends at."""
    target = _redacted(settings.database_url)
    try:
        before, after = asyncio.run(_migrate(settings))
    except (OSError, TimeoutError, SQLAlchemyError) as exc:
        return _fail(f"migrate failed on {target}: {_first_line(exc)}", 1)
    except CommandError as exc:
        # Typically a database migrated by a newer release: this one does not know its revision.
        return _fail(
            f"migrate failed on {target}: {_first_line(exc)} (head here is {head_revision()})", 1
        )
    if after != head_revision():
        return _fail(f"migrate left {target} at {after}, expected {head_revision()}", 1)
    if before == after:
        print(f"{PROG}: database {target} already at revision {after} (head); nothing to do")
    else:
        print(f"{PROG}: database {target} upgraded from {before or 'empty'} to {after} (head)")
    return 0


def run_serve(settings: WebSettings) -> int:
    """Serve the app until SIGINT/SIGTERM."""
    from partyquiz_web.app import create_app

    def factory() -> FastAPI:
        return create_app(settings)

    config = uvicorn.Config(
        factory,
        factory=True,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        server_header=False,
        timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
    )
    # Bind here so a busy port is one clear line, not a log of a half-started server.
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((settings.host, settings.port))
    except OSError as exc:
        listener.close()
        return _fail(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}", 1)
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[listener])
    finally:
        listener.close()
    return 0 if server.started else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="PartyQuiz web service. Configure with PARTYQUIZ_WEB_* variables."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--host", help="address to bind (default PARTYQUIZ_WEB_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="TCP port (default PARTYQUIZ_WEB_PORT or 8000)")
    commands.add_parser("migrate", help="apply database migrations (idempotent)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides: dict[str, object] = {}
    if args.command == "serve":
        if args.host is not None:
            overrides["host"] = args.host
        if args.port is not None:
            overrides["port"] = args.port
    try:
        settings = load_settings(None, secret_optional=args.command == "migrate", **overrides)
    except SettingsError as exc:
        return _fail(str(exc), 2)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s %(message)s"
    )
    if args.command == "migrate":
        # alembic narrates every step at INFO; the summary line above says what matters.
        logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.root.level))
        return run_migrate(settings)
    return run_serve(settings)


if __name__ == "__main__":
    sys.exit(main())
