"""Micro-benchmark of a fan-out's cost per socket: ``send_text`` over real WebSocket connections.

This process serves N WebSocket connections (``websockets``, compression off, as the game
service runs) that a client process opens on loopback and reads; it then writes one 375-byte
text frame to all of them with ``partyquiz_ws.fanout.send_text``, ``--rounds`` times, and
prints the server thread's CPU per socket (user and system: on loopback the kernel delivers
the frame to the reader's socket in the writer's system call). ``--loop uvloop`` runs the same
on uvloop's event loop, as ``partyquiz-ws`` does. ``--profile`` prints cProfile's account of
one more round: what Python does per socket besides the system call.
Run: ``uv run --frozen --all-extras python -m bench.fanout_socket [--sockets N] [--loop L]``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import statistics
import sys
import time

from websockets.asyncio.server import ServerConnection, serve

from partyquiz_ws.fanout import send_text

# The client process: opens N connections and reads every frame until it is killed.
_CLIENT = """
import asyncio, sys
from websockets.asyncio.client import connect

async def reader(url):
    async with connect(url, compression=None, max_queue=None, ping_interval=None) as ws:
        async for _ in ws:
            pass

async def main(url, n):
    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(reader(url)))
        if i % 200 == 199:
            await asyncio.sleep(0.05)
    await asyncio.gather(*tasks, return_exceptions=True)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""

PAYLOAD = b'{"type":"question","version":12,"question_index":3,"text":"' + b"x" * 312 + b'"}'


async def run(sockets: int, rounds: int, profile: bool) -> list[float]:
    conns: list[ServerConnection] = []

    async def handler(conn: ServerConnection) -> None:
        conns.append(conn)
        await conn.wait_closed()

    async with serve(handler, "127.0.0.1", 0, compression=None, ping_interval=None) as server:
        port = server.sockets[0].getsockname()[1]
        client = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _CLIENT, f"ws://127.0.0.1:{port}", str(sockets)
        )
        try:
            while len(conns) < sockets:
                if client.returncode is not None:
                    raise SystemExit(f"the client process exited with {client.returncode}")
                await asyncio.sleep(0.1)
            per_socket = []
            for _ in range(rounds):
                start = time.thread_time()
                sent = send_text(conns, PAYLOAD)
                per_socket.append((time.thread_time() - start) / sent)
                await asyncio.sleep(0.2)  # the reader drains its sockets
            if profile:
                profiler = cProfile.Profile()
                profiler.runcall(send_text, conns, PAYLOAD)
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(8)
                print(out.getvalue().strip())
            return per_socket
        finally:
            client.kill()
            await client.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    factory = None
    if args.loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        per_socket = runner.run(run(args.sockets, args.rounds, args.profile))
    print(
        f"{args.loop}: {args.sockets} sockets, {args.rounds} rounds: CPU per socket "
        f"{statistics.median(per_socket) * 1e6:.2f} us median "
        f"({min(per_socket) * 1e6:.2f} to {max(per_socket) * 1e6:.2f})"
    )


if __name__ == "__main__":
    main()
