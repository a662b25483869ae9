"""Every Prometheus metric of the web service, in one registry per app.

Owns metric names, label sets and their zero initialisation. Labels never carry ids, join
codes or raw paths: ``handler`` is always a route template.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

JOIN_RESULTS: Final = ("found", "not_found", "rate_limited", "invalid")
DEPENDENCIES: Final = ("database", "redis")
UNMATCHED_HANDLER: Final = "<unmatched>"
CONTENT_TYPE: Final = CONTENT_TYPE_LATEST

_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class WebMetrics:
    """The metrics of one app instance, registered in its own ``CollectorRegistry``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "http_requests_total",
            "HTTP requests served, by route template, method and status code.",
            ("handler", "method", "status"),
            registry=self.registry,
        )
        self.http_request_duration = Histogram(
            "http_request_duration_seconds",
            "Time from receiving a request to sending its last byte.",
            ("handler", "method"),
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.join_attempts = Counter(
            "partyquiz_web_join_attempts_total",
            "Join-code lookups by players, by result.",
            ("result",),
            registry=self.registry,
        )
        self.dependency_up = Gauge(
            "partyquiz_web_dependency_up",
            "1 when the last readiness check reached the dependency, else 0.",
            ("dependency",),
            registry=self.registry,
        )
        for result in JOIN_RESULTS:
            self.join_attempts.labels(result=result)
        # CPU, memory and file descriptors for the dashboard's resources row.
        ProcessCollector(registry=self.registry)

    def initialise_routes(self, routes: Iterable[tuple[str, str, int]]) -> None:
        """Create zero-valued series for each (route template, method, usual status)."""
        for handler, method, status in routes:
            self.http_requests.labels(handler=handler, method=method, status=str(status))
            self.http_request_duration.labels(handler=handler, method=method)

    def initialise_dependencies(self, dependencies: Iterable[str]) -> None:
        for dependency in dependencies:
            self.dependency_up.labels(dependency=dependency).set(0)

    def observe_request(self, handler: str, method: str, status: int, seconds: float) -> None:
        self.http_requests.labels(handler=handler, method=method, status=str(status)).inc()
        self.http_request_duration.labels(handler=handler, method=method).observe(seconds)

    def count_join_attempt(self, result: str) -> None:
        self.join_attempts.labels(result=result).inc()

    def set_dependency_up(self, dependency: str, up: bool) -> None:
        self.dependency_up.labels(dependency=dependency).set(1 if up else 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
