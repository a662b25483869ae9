"""A websockets connection whose transport is a sink, for the micro-benchmarks without a network.

``partyquiz_ws.fanout`` reads three things of a connection: its protocol's state (and
extensions), its transport, and whether a send is in progress. The micro-benchmarks run the
real fan-out on these, with a transport of their own that keeps or counts what it is given.
"""

from __future__ import annotations

from typing import Any, Protocol

from websockets.protocol import OPEN


class Transport(Protocol):
    """What the fan-out writes a frame into."""

    def write(self, data: bytes) -> None: ...


class _OpenProtocol:
    state = OPEN
    extensions: list[Any] = []


class SinkConnection:
    """What ``fanout`` reads of a websockets connection, always open, writing to ``transport``."""

    def __init__(self, transport: Transport) -> None:
        self.protocol = _OpenProtocol()
        self.transport = transport
        self.send_in_progress = None
