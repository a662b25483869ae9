"""A TCP relay between the browsers and the game service, so a test can cut the network.

``cut()`` drops every relayed connection and refuses new ones, as a phone losing its signal
would; ``heal()`` lets connections through again. Bytes are passed on untouched.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

CONNECT_TIMEOUT_SECONDS = 5.0


class Relay:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = False
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name="relay", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def cut(self) -> None:
        """Drop every connection now and refuse new ones until ``heal``."""
        with self._lock:
            self._cut = True
            sockets, self._open = self._open, set()
        for sock in sockets:
            _close(sock)

    def heal(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        _close(self._listener)
        self._thread.join(5)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                refused = self._cut
            if refused:
                _close(client)
                continue
            try:
                upstream = socket.create_connection(
                    ("127.0.0.1", self.upstream_port), CONNECT_TIMEOUT_SECONDS
                )
            except OSError:
                _close(client)
                continue
            # The bound is for connecting only: a quiet connection is not a lost one (a timeout
            # left on it dropped every connection the game service was silent on for 5 s).
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, target), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(source)
                self._open.discard(target)
            _close(source)
            _close(target)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


@contextlib.contextmanager
def run_relay(upstream_port: int) -> Iterator[Relay]:
    relay = Relay(upstream_port)
    relay.start()
    try:
        yield relay
    finally:
        relay.close()
