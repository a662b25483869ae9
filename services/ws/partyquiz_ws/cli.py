"""Entry point of ``partyquiz-ws``: build settings, pick the backend, serve, drain on SIGTERM.

Owns process concerns only: configuration errors become one line on stderr and exit code 2;
logging; signal handling. Everything else is built here and passed down.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable

from pydantic import ValidationError as PydanticValidationError

from partyquiz_ws.backends import Backend
from partyquiz_ws.memory_backend import memory_backend
from partyquiz_ws.metrics import WsMetrics
from partyquiz_ws.redis_backend import redis_backend
from partyquiz_ws.server import GameService, run_service
from partyquiz_ws.settings import WsSettings, describe_settings_error
from partyquiz_ws.webclient import WebClient

log = logging.getLogger("partyquiz_ws")


def build_backend(settings: WsSettings) -> Backend:
    if settings.redis_url is None:
        return memory_backend()
    return redis_backend(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        pool_timeout=settings.redis_pool_timeout_seconds,
        replica_id=settings.replica_id,
    )


async def _main(settings: WsSettings) -> None:
    backend = build_backend(settings)
    if not backend.replicated:
        log.warning(
            "no PARTYQUIZ_WS_REDIS_URL: embedded mode, single replica; games live in this "
            "process only"
        )
    web = WebClient(settings.web_internal_url, settings.jwt_secret.get_secret_value())
    service = GameService(settings, backend, WsMetrics(), web)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await run_service(service, stop)
    finally:
        await web.aclose()
        await backend.close()


def main(argv: list[str] | None = None) -> int:
    """Run the game service until SIGTERM/SIGINT; configuration comes from the environment."""
    del argv
    try:
        settings = WsSettings()
    except PydanticValidationError as exc:
        print(f"partyquiz-ws: {describe_settings_error(exc)}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # One line per connection or internal request drowns everything else at party scale.
    for noisy in ("websockets.server", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_main(settings))
    return 0


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (always, with the ``ws`` extra), else asyncio's.

    Its transports read and write in C: the game service's work is mostly per-connection
    frames (every answer read, one write per player for every broadcast), and asyncio's
    Python transports add their bookkeeping to each of them.
    """
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":
    sys.exit(main())
