"""The library's own counts: credential refreshes, single-flight waits, store fallbacks.

Plain numbers, process-wide, counted by every store (file or Redis) whoever
calls it; ``GET /metrics`` of :mod:`provider.serve` exports them in Prometheus
format beside the server's own. Counting costs a dict update, and the library
never imports prometheus-client itself (its import alone takes ~0.1 s).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from scraper.errors import BrowserError, ChallengeError


@dataclass
class Counts:
    #: (source, outcome) → refreshes that ran: source http / browser, outcome ok / error / cancelled
    refreshes: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: scope → calls that waited on a refresh already running: task (this process),
    #: lock (another process or host)
    single_flight_waits: Counter[str] = field(default_factory=Counter)
    #: store operations the file store served because Redis was unreachable
    store_fallbacks: int = 0


COUNTS = Counts()


def refreshed(source: str) -> None:
    COUNTS.refreshes[(source, "ok")] += 1


def refresh_failed(exc: BaseException) -> None:
    # A failed refresh has no Credentials to say where it came from: a browser
    # or challenge error means the browser ran, anything else stopped at HTTP.
    source = "browser" if isinstance(exc, BrowserError | ChallengeError) else "http"
    outcome = "error" if isinstance(exc, Exception) else "cancelled"
    COUNTS.refreshes[(source, outcome)] += 1


def waited(scope: str) -> None:
    COUNTS.single_flight_waits[scope] += 1


def fell_back() -> None:
    COUNTS.store_fallbacks += 1
