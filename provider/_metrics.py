"""The library's own counters, in a Prometheus registry of their own.

Every store (file or Redis) counts into them, whoever calls it; ``GET /metrics``
of :mod:`provider.serve` serves them beside the server's own. Imported when a
refresh first runs, not with the library: a warm chat never touches them.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from scraper.errors import BrowserError, ChallengeError

REGISTRY = CollectorRegistry(auto_describe=True)

REFRESHES = Counter(
    "provider_credential_refreshes",
    "Credential refreshes that ran (a page read over HTTP, or a browser solve), by outcome",
    ["source", "outcome"],
    registry=REGISTRY,
)
SINGLE_FLIGHT_WAITS = Counter(
    "provider_single_flight_waits",
    "Calls that waited for a refresh already running: in this process (task) or in another "
    "process or host (lock)",
    ["scope"],
    registry=REGISTRY,
)
STORE_FALLBACKS = Counter(
    "provider_store_fallbacks",
    "Store operations served by the file store because Redis was unreachable",
    registry=REGISTRY,
)


def refreshed(source: str) -> None:
    REFRESHES.labels(source=source, outcome="ok").inc()


def refresh_failed(exc: BaseException) -> None:
    # A failed refresh has no Credentials to say where it came from: a browser
    # or challenge error means the browser ran, anything else stopped at HTTP.
    source = "browser" if isinstance(exc, BrowserError | ChallengeError) else "http"
    outcome = "error" if isinstance(exc, Exception) else "cancelled"
    REFRESHES.labels(source=source, outcome=outcome).inc()
