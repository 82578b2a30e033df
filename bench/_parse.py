"""Benchmark 8: parsing the page — what it costs, and what the event loop does meanwhile.

* parse time: ``scraper.page.parse_page`` (BeautifulSoup on the lxml builder)
  on a 150 KB and a 1 MB page of dense markup with the captured aipkit widget
  at the end, interleaved with lxml building the same page's tree alone (the
  floor of any parser on libxml2; what the project used before BeautifulSoup).
* loop lag: 100 chats stream long, paced answers from the sandbox (its own
  process) while ``scraper.obtain.obtain`` fetches a 5 MB page from a static
  server (its own process) and parses it; a ticker on the loop sleeps 5 ms at
  a time and records how late it wakes. Reference: the same streams, no page.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from lxml import etree  # type: ignore[import-untyped]  # lxml ships no type information

from bench._chat import provider_for
from bench._server import RemoteSite
from bench._stats import Row, median, rotate
from provider import ChatgptFree
from scraper.http import MAX_PAGE_BYTES, Deadline
from scraper.obtain import obtain
from scraper.page import parse_page

ROOT = Path(__file__).resolve().parent.parent
WIDGET = (ROOT / "tests" / "captures" / "aipkit-widget.html").read_text(encoding="utf-8").strip()
STREAMS = 100
TICK_S = 0.005
PAGE_URL = "http://127.0.0.1:8082/chat/"  # resolves the widget's relative URLs; never fetched


def page_of(size: int) -> bytes:
    """A page of about ``size`` bytes: dense post markup, then the widget."""
    head = '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Chat</title></head><body>'
    tail = WIDGET + "</div></body></html>"
    parts: list[str] = [head]
    total = len(head) + len(tail)
    i = 0
    while total < size:
        post = (
            f'<div class="post p{i}"><p>Lorem ipsum <a href="/x/{i}">link</a> dolor</p>'
            f'<span data-x="{i}">sit amet</span></div>\n'
        )
        parts.append(post)
        total += len(post)
        i += 1
    parts.append(tail)
    return "".join(parts).encode()


def _ours(data: bytes) -> None:
    parse_page(data, PAGE_URL).primary()


def _lxml_tree(data: bytes) -> None:
    etree.fromstring(data, etree.HTMLParser(encoding="utf-8", huge_tree=True))


def parse_times(runs: int, log: Callable[[str], None]) -> tuple[list[Row], dict[str, Any]]:
    rows: list[Row] = []
    info: dict[str, Any] = {}
    for label, size in (("150 KB", 150_000), ("1 MB", 1_000_000)):
        data = page_of(size)
        sides: dict[str, Callable[[], None]] = {
            "bs4": partial(_ours, data),
            "lxml": partial(_lxml_tree, data),
        }
        for run in sides.values():  # settle
            run()
        log(f"parse time, {label} page, {runs} runs")
        times: dict[str, list[float]] = {k: [] for k in sides}
        for turn in range(runs):
            for name in rotate(list(sides), turn):
                t0 = time.perf_counter()
                sides[name]()
                times[name].append(time.perf_counter() - t0)
        info[label] = {"bytes": len(data), **{k: [t * 1e3 for t in v] for k, v in times.items()}}
        rows.append(
            Row(
                "8 page parse",
                f"parse a {label} page",
                "ms",
                median(times["bs4"]) * 1e3,
                median(times["lxml"]) * 1e3,
                "lxml tree alone",
                "info",
                note=f"{len(data):,} bytes; BeautifulSoup (lxml builder, strained to the "
                "widgets and scripts) + the search, in a worker thread when called from obtain",
            )
        )
    return rows, info


@contextlib.contextmanager
def static_server(folder: Path) -> Iterator[str]:
    """``python -m http.server`` on a free loopback port, serving ``folder``; stopped by its PID."""
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1"],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        found = re.search(r"port (\d+)", proc.stdout.readline())
        if found is None:
            raise RuntimeError("the static page server did not start")
        yield f"http://127.0.0.1:{found.group(1)}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class Streams:
    """Chats streaming from one site, every chunk counted (``on_chunk`` sees each count)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.chunks = 0
        self.started = 0
        self.all_started = asyncio.Event()
        self.on_chunk: Callable[[int], None] = lambda count: None

    async def consume(self, provider: type[ChatgptFree]) -> None:
        messages = [{"role": "user", "content": "Tell me a long story"}]
        first = True
        async for _ in provider.create_async_generator("", messages, timeout=60):
            self.chunks += 1
            if first:
                first = False
                self.started += 1
                if self.started == self.n:
                    self.all_started.set()
            self.on_chunk(self.chunks)


@contextlib.asynccontextmanager
async def streaming(url: str, cache: str | Path, n: int) -> AsyncIterator[Streams]:
    """``n`` chats streaming from ``url``, each past its first chunk; cancelled on exit."""
    streams = Streams(n)
    provider = provider_for(url, cache)
    # One refresh before the burst, so the chats start streaming together.
    await provider.refresh_credentials(browser="never")
    tasks = [asyncio.create_task(streams.consume(provider)) for _ in range(n)]
    try:
        async with asyncio.timeout(120):
            await streams.all_started.wait()
        yield streams
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _worst_lag_during(work: Callable[[], Any]) -> tuple[float, float]:
    """(worst wake-up delay of a 5 ms ticker, seconds) while ``await work()`` runs."""
    lags: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            t0 = time.perf_counter()
            await asyncio.sleep(TICK_S)
            lags.append(time.perf_counter() - t0 - TICK_S)

    tick = asyncio.create_task(ticker())
    t0 = time.perf_counter()
    try:
        await work()
    finally:
        took = time.perf_counter() - t0
        done.set()
        await tick
    return max(lags, default=0.0), took


async def loop_lag(runs: int, log: Callable[[str], None]) -> tuple[list[Row], dict[str, Any]]:
    # Just under the fetch limit, so the real call site accepts it.
    data = page_of(min(5_000_000, MAX_PAGE_BYTES - 4096))
    load = os.getloadavg()[0]
    worst: list[float] = []
    quiet: list[float] = []
    took: list[float] = []
    flowed: list[int] = []
    with (
        tempfile.TemporaryDirectory() as pages,
        tempfile.TemporaryDirectory() as cache,
        # 16-character deltas every 20 ms: each stream flows for about 50 s.
        RemoteSite(generation="aipkit", answer_bytes=40_000, chunk_delay=0.02) as site,
    ):
        (Path(pages) / "chat").mkdir()
        (Path(pages) / "chat" / "index.html").write_bytes(data)
        with static_server(Path(pages)) as origin:
            for run in range(runs):
                log(f"loop lag, {len(data):,} byte page, {STREAMS} streams: run {run + 1}/{runs}")
                async with streaming(site.url, cache, STREAMS) as streams:

                    async def refresh(origin: str = origin) -> None:
                        creds = await obtain(
                            origin,
                            [origin + "/chat/"],
                            proxy=None,
                            deadline=Deadline(120),
                            browser="never",
                        )
                        assert creds.bot_id == 5

                    before = streams.chunks
                    lag, seconds = await _worst_lag_during(refresh)
                    flowed.append(streams.chunks - before)
                    worst.append(lag)
                    took.append(seconds)
                    # The same streams, the same span, no page: the loop's own jitter.
                    base, _ = await _worst_lag_during(partial(asyncio.sleep, seconds))
                    quiet.append(base)
    # For scale, not a target: the same parse on the loop (what a thread avoids).
    t0 = time.perf_counter()
    _ours(data)
    on_loop = time.perf_counter() - t0
    info = {
        "page_bytes": len(data),
        "streams": STREAMS,
        "worst_lag_ms": [x * 1e3 for x in worst],
        "quiet_worst_lag_ms": [x * 1e3 for x in quiet],
        "obtain_s": took,
        "chunks_during": flowed,
        "parse_alone_s": on_loop,
        "load_avg_1min": [load, os.getloadavg()[0]],
    }
    row = Row(
        "8 page parse",
        f"loop lag, 5 MB parse + {STREAMS} streams",
        "ms",
        median(worst) * 1e3,
        median(quiet) * 1e3,
        "streams alone",
        "value<=",
        50.0,
        note=f"median of {runs} runs (each run's worst; all: "
        + ", ".join(f"{x * 1e3:.0f}" for x in worst)
        + f" ms); fetch + parse took {median(took):.2f} s, the streams delivered "
        f"{int(median(flowed)):,} chunks meanwhile; the same parse alone, on an idle loop, "
        f"{on_loop:.2f} s: the lag it would cause on the loop; load average {load:.1f} "
        f"at the start ({os.cpu_count()} cores: above that, the loop waits for a core too)",
    )
    return [row], info


async def measure(runs: int, log: Callable[[str], None]) -> tuple[list[Row], dict[str, Any]]:
    rows, info = parse_times(runs, log)
    lag_rows, lag_info = await loop_lag(max(1, min(runs, 5)), log)
    return rows + lag_rows, {"parse_ms": info, "loop_lag": lag_info}
