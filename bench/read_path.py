"""Micro-benchmark of websockets' read path per incoming frame, over real connections.

This process serves N WebSocket connections (``websockets`` on uvloop, compression off, as the
game service runs) that a client process opens on loopback; once all are open the client sends
one 52-byte answer frame on each, 16 per event-loop turn, and this process prints its own CPU
per frame (user and system) from the first frame to the last. ``--to handler``: each frame
wakes its connection's handler task, which reads it with ``async for`` (what every frame did
before answers were taken at the parser); ``--to parser``: ``partyquiz_ws.server.
GameConnection`` offers each complete text frame to a callback where websockets parsed it,
which takes it. Neither does anything with the frame but count it, so the figure is the cost
of getting a frame to the game service's code, not of handling it.
Run: ``uv run --frozen --all-extras python -m bench.read_path [--sockets N] [--to T]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import sys

import uvloop
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from partyquiz_ws.server import GameConnection

# The client process: opens N connections, waits for "go" on stdin, sends one frame on each.
_CLIENT = """
import asyncio, sys
from websockets.asyncio.client import connect

FRAME = '{"type":"answer","question_index":0,"choices":[1]}'

async def main(url, n):
    conns = []
    for i in range(n):
        conns.append(await connect(url, compression=None, ping_interval=None))
    print("open", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for i, conn in enumerate(conns):
        await conn.send(FRAME)
        if i % 16 == 15:
            await asyncio.sleep(0)
    await asyncio.sleep(3600)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def _cpu() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


async def run(sockets: int, to: str) -> tuple[float, float]:
    received = 0
    first: tuple[float, float] | None = None
    done = asyncio.Event()

    def count(_text: str) -> bool:
        nonlocal received, first
        if first is None:
            first = _cpu()
        received += 1
        if received == sockets:
            done.set()
        return True

    async def handler(conn: ServerConnection) -> None:
        if to == "parser":
            assert isinstance(conn, GameConnection)
            conn.take_text = count
        with contextlib.suppress(ConnectionClosed):  # the client process is killed at the end
            async for message in conn:
                assert isinstance(message, str)
                count(message)

    async with serve(
        handler,
        "127.0.0.1",
        0,
        compression=None,
        ping_interval=None,
        max_queue=32,
        create_connection=GameConnection,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        client = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _CLIENT,
            f"ws://127.0.0.1:{port}",
            str(sockets),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert client.stdin is not None
        assert client.stdout is not None
        try:
            if await client.stdout.readline() != b"open\n":
                raise SystemExit("the client process could not open its connections")
            client.stdin.write(b"go\n")
            await client.stdin.drain()
            await asyncio.wait_for(done.wait(), 120)
            last = _cpu()
        finally:
            client.kill()
            await client.wait()
    assert first is not None
    return (last[0] - first[0]) / sockets, (last[1] - first[1]) / sockets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=4000)
    parser.add_argument("--to", choices=("handler", "parser"), default="parser")
    args = parser.parse_args()
    user, system = uvloop.run(run(args.sockets, args.to))
    print(f"frames                {args.sockets} (one per connection, to the {args.to})")
    print(f"CPU per frame, user   {user * 1e6:6.1f} us")
    print(f"CPU per frame, system {system * 1e6:6.1f} us")


if __name__ == "__main__":
    main()
