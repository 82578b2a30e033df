"""Benchmark 8: the browser transport (the chat runs inside the page that passed the challenge).

* First chunk, side by side in one run (ABAB…): a browser-transport chat with
  the browser already up (a :class:`provider.WarmBrowser`) against a plain-HTTP
  chat with stored credentials, on the same sandbox (its own process). As in
  benchmark 7, the target (≤ 1.5) is on a site with 0.2 s latency, standing in
  for the real site's (0.5-2 s to its first chunk); the 0-latency row shows the
  absolute cost of the hops through the page (evaluate, fetch, one binding call
  per read).
* 50 concurrent browser-transport chats through one browser: all answered, the
  wall time, and the browser's memory — the proportional set size (PSS, shared
  pages split between the processes that share them) of every Chromium process
  this process started, sampled during the burst.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._chat import MESSAGES, provider_for
from bench._server import RemoteSite
from bench._stats import Row, median, p90
from provider import WarmBrowser


async def _first_chunk(provider: Any) -> float:
    start = time.perf_counter()
    chunks = provider.create_async_generator("", MESSAGES, timeout=60)
    try:
        async for _chunk in chunks:
            return time.perf_counter() - start
    finally:
        await chunks.aclose()
    raise RuntimeError("the chat yielded nothing")


def browser_memory_mb() -> tuple[float, float, int]:
    """(PSS MB, RSS MB, process count) of the Chromium processes descended from this one."""
    import os

    me = os.getpid()
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        names[int(entry)] = raw[raw.index("(") + 1 : raw.rindex(")")]
        parents[int(entry)] = int(raw[raw.rindex(")") + 2 :].split()[1])

    def ours(pid: int) -> bool:
        seen = set()
        while pid in parents and pid not in seen:
            seen.add(pid)
            pid = parents[pid]
            if pid == me:
                return True
        return False

    pss = rss = 0.0
    count = 0
    for pid, name in names.items():
        if "chrom" not in name.lower() or not ours(pid):
            continue
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1]) / 1024
                elif line.startswith("Rss:"):
                    rss += int(line.split()[1]) / 1024
        except OSError:
            continue
        count += 1
    return pss, rss, count


async def _latency_rows(runs: int, log: Callable[[str], None]) -> tuple[list[Row], dict[str, Any]]:
    rows: list[Row] = []
    details: dict[str, Any] = {}
    for latency in (0.2, 0.0):
        log(f"browser transport: first chunk, site latency {latency:g} s, {runs} runs")
        with (
            RemoteSite(generation="aipkit", first_byte_delay=latency) as site,
            tempfile.TemporaryDirectory() as http_cache,
            tempfile.TemporaryDirectory() as browser_cache,
        ):
            http = provider_for(site.url, Path(http_cache))
            http.transport = "http"
            browser = provider_for(site.url, Path(browser_cache))
            browser.transport = "browser"
            await http.refresh_credentials()
            over_http: list[float] = []
            in_page: list[float] = []
            async with WarmBrowser():
                await _first_chunk(browser)  # the browser up, the page loaded
                await _first_chunk(http)
                for turn in range(runs):
                    pair = [("http", http), ("browser", browser)]
                    for name, provider in pair if turn % 2 == 0 else reversed(pair):
                        took = await _first_chunk(provider)
                        (over_http if name == "http" else in_page).append(took)
        details[f"latency_{latency:g}"] = {
            "http": over_http,
            "browser": in_page,
            "http_p90": p90(over_http),
            "browser_p90": p90(in_page),
        }
        ours, ref = median(in_page) * 1000, median(over_http) * 1000
        rows.append(
            Row(
                "10 browser transport",
                f"first chunk, browser up, site latency {latency:g} s",
                "ms",
                ours,
                ref,
                "plain HTTP, stored creds",
                goal="ratio<=" if latency else "info",
                bound=1.5 if latency else None,
                note=f"the page adds {ours - ref:.1f} ms (median) per chat",
            )
        )
    return rows, details


async def _concurrent_rows(n: int, log: Callable[[str], None]) -> tuple[list[Row], dict[str, Any]]:
    log(f"browser transport: {n} concurrent chats through one browser")
    peak = [0.0, 0.0, 0]
    with (
        RemoteSite(generation="aipkit", chunk_delay=0.01, answer_bytes=2000) as site,
        tempfile.TemporaryDirectory() as cache,
    ):
        provider = provider_for(site.url, Path(cache))
        provider.transport = "browser"

        async def chat() -> str:
            return "".join([c async for c in provider.create_async_generator("", MESSAGES)])

        async with WarmBrowser() as warm:
            await chat()
            idle = browser_memory_mb()
            done = asyncio.Event()

            async def sample() -> None:
                while not done.is_set():
                    now = await asyncio.to_thread(browser_memory_mb)
                    if now[0] > peak[0]:
                        peak[:] = list(now)
                    await asyncio.sleep(0.1)

            sampler = asyncio.create_task(sample())
            start = time.perf_counter()
            results = await asyncio.gather(*(chat() for _ in range(n)), return_exceptions=True)
            wall = time.perf_counter() - start
            done.set()
            await sampler
            launches = warm.launches
    ok = sum(1 for r in results if isinstance(r, str) and len(r.encode()) >= 2000)
    errors = [r for r in results if isinstance(r, BaseException)]
    details = {
        "ok": ok,
        "errors": len(errors),
        "first_error": repr(errors[0]) if errors else None,
        "wall_s": wall,
        "launches": launches,
        "idle_pss_mb": idle[0],
        "idle_rss_mb": idle[1],
        "peak_pss_mb": peak[0],
        "peak_rss_mb": peak[1],
        "processes": peak[2],
    }
    rows = [
        Row(
            "10 browser transport",
            f"{n} concurrent chats through one browser: all answered",
            "",
            1.0 if ok == n and launches == 1 else 0.0,
            goal="ok",
            note=f"{ok}/{n} answered, {len(errors)} errors, {launches} browser launch(es), "
            f"wall {wall:.2f} s (2 kB answers, 10 ms between deltas)",
        ),
        Row(
            "10 browser transport",
            f"browser memory during {n} chats (PSS)",
            "MB",
            peak[0],
            idle[0],
            "same browser idle",
            "info",
            note=f"RSS sum {peak[1]:.0f} MB over {int(peak[2])} Chromium processes "
            f"(idle {idle[1]:.0f} MB); PSS splits shared pages",
        ),
    ]
    return rows, details


async def measure(runs: int, log: Callable[[str], None]) -> tuple[list[Row], dict[str, Any]]:
    rows, details = await _latency_rows(runs, log)
    more, concurrent = await _concurrent_rows(50, log)
    details["concurrent"] = concurrent
    return rows + more, details
