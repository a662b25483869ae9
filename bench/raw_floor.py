"""Raw floor for PartyQuiz's benchmarks: the least work a Python server can do per fan-out.

It completes the WebSocket handshake itself and, on each host command, writes one pre-built frame
to every socket with ``transport.write`` - no parsing, no JSON, no per-client framing. Nothing
below it but the event loop and the kernel, so it shows this machine's limit for the payload.
It must never grow protocol logic: it is a yardstick, not a peer.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import signal
import struct
import sys
from pathlib import Path

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_MAX_REQUEST = 8192


def encode_text_frame(payload: bytes) -> bytes:
    """Return one unmasked, final WebSocket text frame carrying ``payload``."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x81, n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 127, n)
    return header + payload


def accept_key(client_key: bytes) -> bytes:
    """Return the Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1(client_key + _GUID).digest())  # noqa: S324 - RFC 6455


def parse_client_frames(buf: bytearray) -> list[tuple[int, bytes]]:
    """Consume the complete client frames at the start of ``buf``; return (opcode, payload)."""
    frames: list[tuple[int, bytes]] = []
    while len(buf) >= 2:
        opcode, length, pos = buf[0] & 0x0F, buf[1] & 0x7F, 2
        masked = bool(buf[1] & 0x80)
        if length == 126:
            if len(buf) < 4:
                break
            length, pos = struct.unpack_from("!H", buf, 2)[0], 4
        elif length == 127:
            if len(buf) < 10:
                break
            length, pos = struct.unpack_from("!Q", buf, 2)[0], 10
        key = b""
        if masked:
            if len(buf) < pos + 4:
                break
            key, pos = bytes(buf[pos : pos + 4]), pos + 4
        if len(buf) < pos + length:
            break
        payload = bytes(buf[pos : pos + length])
        if masked and any(key):
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        del buf[: pos + length]
        frames.append((opcode, payload))
    return frames


class Floor:
    """All open sockets of the one game, and the pre-built frames written to them."""

    def __init__(self, question: bytes) -> None:
        self.players: set[asyncio.Transport] = set()
        self.question = encode_text_frame(question)
        self.welcome = encode_text_frame(b'{"type":"welcome","version":0,"player_id":"p"}')
        self.host_welcome = encode_text_frame(b'{"type":"host_welcome","version":0}')

    def fan_out(self) -> None:
        frame = self.question
        for transport in self.players:
            transport.write(frame)


class FloorProtocol(asyncio.Protocol):
    def __init__(self, floor: Floor) -> None:
        self.floor = floor
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.open = False
        self.is_host = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buf += data
        if not self.open:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > _MAX_REQUEST:
                    self.transport.close()
                return
            self._handshake(bytes(self.buf[:end]))
            del self.buf[: end + 4]
        for opcode, payload in parse_client_frames(self.buf):
            if opcode == 0x8:
                self.transport.close()
                return
            if opcode == 0x1:
                self._on_text(payload)

    def _handshake(self, request: bytes) -> None:
        assert self.transport is not None
        key = b""
        for line in request.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"sec-websocket-key":
                key = value.strip()
        if not key:
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            self.transport.close()
            return
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept_key(key) + b"\r\n\r\n"
        )
        self.open = True

    def _on_text(self, payload: bytes) -> None:
        assert self.transport is not None
        if b'"type":"join"' in payload:
            self.floor.players.add(self.transport)
            self.transport.write(self.floor.welcome)
        elif b'"type":"host"' in payload:
            self.is_host = True
            self.transport.write(self.floor.host_welcome)
        elif self.is_host:
            self.floor.fan_out()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.floor.players.discard(self.transport)


async def serve(port: int, question: bytes) -> None:
    floor = Floor(question)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    server = await loop.create_server(lambda: FloorProtocol(floor), "127.0.0.1", port, backlog=1024)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    async with server:
        await stop


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--payload", type=Path, required=True, help="question message JSON file")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port, args.payload.read_bytes().strip()))


if __name__ == "__main__":
    main()
