"""``GET /metrics``: what the server does, in Prometheus text format (prometheus-client).

Each app has its own registry (requests, first-chunk latency, chats in flight,
errors); the library's own counts (credential refreshes, single-flight waits,
store fallbacks, see :mod:`provider._metrics`) are process-wide and read at
each scrape by a collector in that registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from provider import _metrics

#: First-chunk latency buckets: from a warm loopback chat to a cold browser solve.
FIRST_CHUNK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class ServerMetrics:
    """One app's metrics."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "provider_serve_requests",
            "HTTP requests answered, by route and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.first_chunk = Histogram(
            "provider_serve_first_chunk_seconds",
            "From a chat request's arrival to the first chunk of its answer",
            buckets=FIRST_CHUNK_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "provider_serve_chats_in_flight",
            "Upstream chats open right now",
            registry=self.registry,
        )
        self.registry.register(LibraryCollector())
        self.errors = Counter(
            "provider_serve_errors",
            "Errors answered (before or during a stream), by type",
            ["type"],
            registry=self.registry,
        )

    def error(self, exc: BaseException) -> None:
        # An APIError is our own refusal: its code says more than its class.
        code = getattr(exc, "code", None) if type(exc).__name__ == "APIError" else None
        self.errors.labels(type=code or type(exc).__name__).inc()

    def count_in_flight(self, read: Callable[[], int]) -> None:
        self.in_flight.set_function(read)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class LibraryCollector(Collector):
    """The library's process-wide counts, as Prometheus counters, read at each scrape."""

    def collect(self) -> Iterator[CounterMetricFamily]:
        counts = _metrics.COUNTS
        refreshes = CounterMetricFamily(
            "provider_credential_refreshes",
            "Credential refreshes that ran (a page read over HTTP, or a browser solve), by outcome",
            labels=["source", "outcome"],
        )
        for (source, outcome), n in sorted(counts.refreshes.items()):
            refreshes.add_metric([source, outcome], n)
        yield refreshes
        waits = CounterMetricFamily(
            "provider_single_flight_waits",
            "Calls that waited for a refresh already running: in this process (task) or "
            "in another process or host (lock)",
            labels=["scope"],
        )
        for scope, n in sorted(counts.single_flight_waits.items()):
            waits.add_metric([scope], n)
        yield waits
        yield CounterMetricFamily(
            "provider_store_fallbacks",
            "Store operations served by the file store because Redis was unreachable",
            value=counts.store_fallbacks,
        )
