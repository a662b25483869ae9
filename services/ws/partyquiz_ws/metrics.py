"""Every Prometheus metric of the game service, in one registry per process.

Owns metric names, help texts and label sets. Labels carry only bounded values (message type,
result, reason, close code); never a game id, join code or player id.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

ANSWER_RESULTS = ("accepted", "late", "duplicate", "invalid")
HANDSHAKE_RESULTS = ("accepted", "rejected_origin", "draining")
COMMAND_RESULTS = ("ok", "rejected")
LIMITS = (
    "connections_per_address",
    "hello_timeout",
    "hello_frames",
    "flood_notice",
    "flood_closed",
    "wrong_codes",
    "joins_per_address",
    "joins_per_game",
    "banned",
)


class WsMetrics:
    """The metrics of one game-service process; pass it to whoever records."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # Label children by message type: ``labels()`` costs more than the increment itself.
        self._sent: dict[str, Counter] = {}
        self._received: dict[str, Counter] = {}
        self.connections = Gauge(
            "partyquiz_ws_connections", "Open WebSocket connections.", registry=r
        )
        self.connections_opened = Counter(
            "partyquiz_ws_connections_opened_total",
            "WebSocket handshakes by result (accepted, rejected_origin, draining, ...).",
            ["result"],
            registry=r,
        )
        self.connections_closed = Counter(
            "partyquiz_ws_connections_closed_total",
            "Closed WebSocket connections by close code.",
            ["code"],
            registry=r,
        )
        self.messages_received = Counter(
            "partyquiz_ws_messages_received_total",
            "Client messages received by type (unknown for unparseable frames).",
            ["type"],
            registry=r,
        )
        self.messages_sent = Counter(
            "partyquiz_ws_messages_sent_total",
            "Server messages sent by type (a broadcast counts once per recipient).",
            ["type"],
            registry=r,
        )
        self.messages_rejected = Counter(
            "partyquiz_ws_messages_rejected_total",
            "Client messages answered with an error frame, by error code.",
            ["reason"],
            registry=r,
        )
        self.broadcast_duration = Histogram(
            "partyquiz_ws_broadcast_duration_seconds",
            "Time to fan one published batch out to the local connections of a game.",
            buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=r,
        )
        self.answer_durable = Histogram(
            "partyquiz_ws_answer_durable_seconds",
            "From an answer frame being parsed to its inbox entry being stored: the "
            "window in which a crash of this replica loses the answer.",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=r,
        )
        self.answers = Counter(
            "partyquiz_ws_answers_total",
            "Answers by result: accepted, late, duplicate, invalid.",
            ["result"],
            registry=r,
        )
        self.active_games = Gauge(
            "partyquiz_ws_active_games", "Games with connections on this replica.", registry=r
        )
        self.owned_games = Gauge(
            "partyquiz_ws_owned_games", "Games whose owner lease this replica holds.", registry=r
        )
        self.active_players = Gauge(
            "partyquiz_ws_active_players", "Players connected to this replica.", registry=r
        )
        self.pubsub_lag = Histogram(
            "partyquiz_ws_pubsub_lag_seconds",
            "Delay between the owner publishing a batch and this replica receiving it.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0),
            registry=r,
        )
        self.lease_takeovers = Counter(
            "partyquiz_ws_lease_takeovers_total",
            "Games this replica started owning after another owner (or none) held them.",
            registry=r,
        )
        self.commands_applied = Counter(
            "partyquiz_ws_commands_applied_total",
            "Inbox commands applied by the owner, by result (ok, rejected).",
            ["result"],
            registry=r,
        )
        self.limits = Counter(
            "partyquiz_ws_limited_total",
            "Connections closed and joins refused by a protective limit, by limit "
            "(connections_per_address, hello_timeout, hello_frames, flood_notice, "
            "flood_closed, wrong_codes, joins_per_address, joins_per_game, banned).",
            ["limit"],
            registry=r,
        )
        self.results_deliveries = Counter(
            "partyquiz_ws_results_deliveries_total",
            "Attempts to deliver final results to the web service, by result.",
            ["result"],
            registry=r,
        )
        for result in ANSWER_RESULTS:
            self.answers.labels(result)
        for result in HANDSHAKE_RESULTS:
            self.connections_opened.labels(result)
        for result in COMMAND_RESULTS:
            self.commands_applied.labels(result)
        for limit in LIMITS:
            self.limits.labels(limit)
        # CPU, memory and file descriptors for the dashboard's resources row.
        ProcessCollector(registry=r)

    def sent(self, msg_type: str, count: int = 1) -> None:
        """Count ``count`` server messages of ``msg_type`` (the per-frame hot path)."""
        _child(self._sent, self.messages_sent, msg_type).inc(count)

    def received(self, msg_type: str) -> None:
        """Count one client message of ``msg_type`` (the per-frame hot path)."""
        _child(self._received, self.messages_received, msg_type).inc()

    def limited(self, limit: str) -> None:
        """Count one connection or join stopped by ``limit`` (one of ``LIMITS``)."""
        self.limits.labels(limit).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _child(children: dict[str, Counter], counter: Counter, label: str) -> Counter:
    """``counter.labels(label)``, looked up once per label and kept in ``children``."""
    child = children.get(label)
    if child is None:
        child = children[label] = counter.labels(label)
    return child
