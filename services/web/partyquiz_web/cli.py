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
import time
from collections.abc import Sequence

import uvicorn
from alembic.util import CommandError
from fastapi import FastAPI
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from uvicorn.supervisors import Multiprocess

from partyquiz_web.migrating import current_revision, head_revision, upgrade_to_head
from partyquiz_web.settings import SettingsError, WebSettings, load_settings

PROG = "partyquiz-web"
WAIT_RETRY_SECONDS = 1.0
# uvicorn loads this in each worker process when `serve` runs more than one.
APP_FACTORY = "partyquiz_web.app:create_app_from_environment"
# How long the supervisor waits for a worker to answer its liveness ping before replacing it. A
# new worker answers only once its imports are done, which takes seconds on a busy machine, so
# uvicorn's 5 s default would kill healthy workers in a loop.
WORKER_HEALTHCHECK_SECONDS = 30


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


async def _migrate(settings: WebSettings, wait_seconds: float) -> tuple[str | None, str | None]:
    before = await _current_revision_when_reachable(settings.database_url, wait_seconds)
    await upgrade_to_head(settings.database_url)
    return before, await current_revision(settings.database_url)


async def _current_revision_when_reachable(url: str, wait_seconds: float) -> str | None:
    """Read the revision, trying again for ``wait_seconds`` while the database does not answer.

    A database container started at the same time as the migration (compose, a first install)
    refuses connections until it has initialised; any failure to connect or query counts, and
    the last one is raised when the time is up.
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return await current_revision(url)
        except (OSError, TimeoutError, SQLAlchemyError) as exc:
            if time.monotonic() + WAIT_RETRY_SECONDS > deadline:
                raise
            print(
                f"{PROG}: database not reachable yet ({_first_line(exc)}); trying again",
                file=sys.stderr,
            )
            await asyncio.sleep(WAIT_RETRY_SECONDS)


def run_migrate(settings: WebSettings, wait_seconds: float = 0.0) -> int:
    """Apply pending migrations; print the revision the database ends at."""
    target = _redacted(settings.database_url)
    try:
        before, after = asyncio.run(_migrate(settings, wait_seconds))
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
        factory if settings.workers == 1 else APP_FACTORY,
        factory=True,
        workers=settings.workers,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
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
    if settings.workers > 1:
        # The supervisor forwards SIGTERM to every worker, each of which shuts down gracefully.
        try:
            Multiprocess(config, sockets=[listener]).run()
        finally:
            listener.close()
        return 0
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[listener])
    except KeyboardInterrupt:
        # uvicorn shuts down gracefully on Ctrl-C and then raises it again: nothing is left to do.
        pass
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
    migrate = commands.add_parser("migrate", help="apply database migrations (idempotent)")
    migrate.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="keep trying this long while the database does not answer yet (default 0)",
    )
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
        return run_migrate(settings, wait_seconds=args.wait)
    return run_serve(settings)


if __name__ == "__main__":
    sys.exit(main())
