"""The relay the browser tests cut the network with behaves like a network: it passes bytes both
ways, keeps a quiet connection open, and drops and refuses connections only while cut."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.browser import relay as relay_module
from tests.browser.relay import Relay, run_relay


@contextlib.contextmanager
def echo_server() -> Iterator[int]:
    """A TCP server on loopback that sends back whatever it receives; yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            while chunk := conn.recv(65536):
                conn.sendall(chunk)

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()
        thread.join(5)


def round_trip(conn: socket.socket, data: bytes) -> bytes:
    conn.sendall(data)
    received = b""
    while len(received) < len(data):
        chunk = conn.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def connect(relay: Relay) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", relay.port), 5)
    conn.settimeout(5)
    return conn


def test_a_connection_quiet_for_longer_than_the_connect_timeout_stays_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(relay_module, "CONNECT_TIMEOUT_SECONDS", 0.2)
    with echo_server() as port, run_relay(port) as relay, connect(relay) as conn:
        assert round_trip(conn, b"hello") == b"hello"
        time.sleep(1.0)  # the game service says nothing for a while, as in a lobby
        assert round_trip(conn, b"still here") == b"still here"


def test_a_cut_drops_every_connection_and_refuses_new_ones_until_healed() -> None:
    with echo_server() as port, run_relay(port) as relay:
        with connect(relay) as conn:
            assert round_trip(conn, b"before") == b"before"
            relay.cut()
            assert conn.recv(1) == b""  # closed by the relay
        with connect(relay) as refused:
            assert refused.recv(1) == b""
        relay.heal()
        with connect(relay) as conn:
            assert round_trip(conn, b"after") == b"after"
