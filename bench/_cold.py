"""Benchmark 5: cold start — credentials over plain HTTP, and through the browser.

* plain HTTP: ``refresh_credentials(force=True)`` (page fetch, block verdict,
  parse, store write) against a raw aiohttp GET of the same page plus
  ``scraper.page.parse_page``, interleaved per run.
* browser: a fresh credential store per run against ``challenge=True``; the
  page answers with the challenge and headless Chromium passes it — driver
  start and browser launch included. Beside it, the parts measured alone:
  starting Playwright's driver, and launching + closing Chromium.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from bench._chat import provider_for
from bench._server import RemoteSite
from bench._stats import Row, median, p90, rotate
from provider import ChatgptFree
from scraper.http import DEFAULT_USER_AGENT
from scraper.page import parse_page


async def _timed(run: Callable[[], Awaitable[Any]]) -> float:
    t0 = time.perf_counter()
    await run()
    return time.perf_counter() - t0


async def plain_http(runs: int, log: Callable[[str], None]) -> tuple[list[Row], dict[str, Any]]:
    rows: list[Row] = []
    info: dict[str, Any] = {}
    for generation in ("aipkit", "legacy"):
        with RemoteSite(generation=generation) as site, tempfile.TemporaryDirectory() as cache:
            local = provider_for(site.url, cache)
            page_url = site.url + "/chat/"

            async def ours(local: type[ChatgptFree] = local) -> None:
                await local.refresh_credentials(force=True, browser="never")

            async def raw(page_url: str = page_url) -> None:
                async with (
                    aiohttp.ClientSession(
                        connector=aiohttp.TCPConnector(force_close=True)
                    ) as session,
                    session.get(page_url, headers={"User-Agent": DEFAULT_USER_AGENT}) as resp,
                ):
                    body = await resp.read()
                parse_page(body, str(resp.url)).primary()

            runners: dict[str, Callable[[], Awaitable[None]]] = {"ours": ours, "raw": raw}
            for run in runners.values():  # settle
                await run()
            log(f"cold start over plain HTTP ({generation}), {runs} runs")
            times: dict[str, list[float]] = {k: [] for k in runners}
            for turn in range(runs):
                for name in rotate(list(runners), turn):
                    times[name].append(await _timed(runners[name]))
            info[generation] = {
                k: {"median_ms": median(v) * 1e3, "p90_ms": p90(v) * 1e3} for k, v in times.items()
            }
            rows.append(
                Row(
                    f"5 cold start ({generation})",
                    "credentials over HTTP",
                    "ms",
                    median(times["ours"]) * 1e3,
                    median(times["raw"]) * 1e3,
                    "raw GET + parse_page",
                    "info",
                    note="ours adds the block verdict and the store write (fsync)",
                )
            )
    return rows, info


class _SolveLog(logging.Handler):
    """Catches scraper.browser's "solved in X s (launch Y s)" record."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.launch: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "solved in the browser" in str(record.msg) and isinstance(record.args, tuple):
            self.launch.append(float(str(record.args[2])))


async def browser(runs: int, log: Callable[[str], None]) -> tuple[list[Row], dict[str, Any]]:
    from playwright.async_api import async_playwright

    from scraper.browser import LAUNCH_ARGS, find_chromium

    info: dict[str, Any] = {"chromium": find_chromium()}
    catcher = _SolveLog()
    browser_log = logging.getLogger("scraper.browser")
    old_level = browser_log.level
    browser_log.setLevel(logging.INFO)
    browser_log.addHandler(catcher)
    solves: list[float] = []
    drivers: list[float] = []
    launches: list[float] = []
    sources: list[str] = []
    try:
        with RemoteSite(generation="aipkit", challenge=True) as site:
            log(f"cold start through the browser, {runs} runs (+1 to settle)")
            for i in range(runs + 1):
                with tempfile.TemporaryDirectory() as cache:
                    local = provider_for(site.url, cache)
                    t0 = time.perf_counter()
                    creds = await local.refresh_credentials(force=True, timeout=60)
                    if i:
                        solves.append(time.perf_counter() - t0)
                        sources.append(creds.source)
            info["hits"] = dict(site.hits())
        executable = find_chromium()
        for _ in range(runs):
            t0 = time.perf_counter()
            pw = await async_playwright().start()
            t1 = time.perf_counter()
            options: dict[str, Any] = {"headless": True, "args": list(LAUNCH_ARGS)}
            if executable:
                options["executable_path"] = executable
            chromium = await pw.chromium.launch(**options)
            t2 = time.perf_counter()
            await chromium.close()
            await pw.stop()
            drivers.append(t1 - t0)
            launches.append(t2 - t1)
    finally:
        browser_log.removeHandler(catcher)
        browser_log.setLevel(old_level)
    info.update(
        solve_s=solves,
        sources=sources,
        launch_in_solve_s=catcher.launch[1:],
        driver_start_s=drivers,
        launch_alone_s=launches,
    )
    note = (
        f"of which driver start {median(drivers):.2f} s, Chromium launch {median(launches):.2f} s"
        f" (measured alone); launch inside the solve {median(catcher.launch[1:]):.2f} s"
    )
    ok = all(s == "browser" for s in sources) and len(solves) == runs
    row = Row(
        "5 cold start (challenge)",
        "credentials via browser",
        "s",
        median(solves) if ok else None,
        None,
        "",
        "value<=",
        1.5,
        note=note,
        status="" if ok else f"failed: sources {sources}",
    )
    return [row], info
