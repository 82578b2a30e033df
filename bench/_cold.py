"""Benchmark 5: cold start — credentials over plain HTTP, and through the browser.

* plain HTTP: ``refresh_credentials(force=True)`` (page fetch, block verdict,
  parse, store write) against a raw aiohttp GET of the same page plus
  ``scraper.page.parse_page``, interleaved per run.
* browser: a fresh credential store per run against ``challenge=True``; the
  page answers with the challenge and headless Chromium passes it — driver
  start and browser launch included. Beside it, the parts measured alone:
  starting Playwright's driver, and launching + closing Chromium.
* before and after issue 26: one cold solve per fresh process
  (``bench/cold_solve.py``), today's tree against the scraper of the commit
  before the browser stopped showing automation (:data:`BEFORE`: stock
  Playwright, Playwright's ``--headless`` default, the emulated 1280x720
  viewport, polling in the page's main world), checked out with ``git archive``;
  and today's tree under each driver, patchright against stock Playwright.
  Interleaved per run; afterwards no Chromium of theirs may be left.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from bench._chat import provider_for
from bench._server import ROOT, RemoteSite
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


#: The scraper as it was before issue 26 (the parent of the commit that made the
#: browser show no automation): the baseline of the before/after rows.
BEFORE = "cc4423b98646e39625d5337e3cd21f55541a934a"
_MARK_ENV = "BENCH_COLD_SOLVE_MARK"


def _before_tree(into: str) -> str | None:
    """``scraper/`` of :data:`BEFORE` extracted under ``into``; None (and why) when git cannot."""
    try:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", BEFORE, "scraper"],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def _inherited() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PROVIDER_DRIVER", "PYTHONPATH")}


def _one_solve(url: str, tree: str, env: dict[str, str]) -> dict[str, Any]:
    """One cold solve in a fresh process running ``tree``'s scraper."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "cold_solve.py"), url],
        # The library's default driver unless the variant names one.
        env={**_inherited(), "PYTHONPATH": tree, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[len("RESULT ") :])
            if not result["scraper"].startswith(tree):
                raise RuntimeError(f"the solve ran {result['scraper']}, not {tree}")
            return result
    raise RuntimeError(f"the solve failed: {(proc.stderr or proc.stdout)[-500:]}")


def _left_marked(mark: str) -> list[int]:
    """Live processes (Chromium, a driver) that still carry this run's marker."""
    token = f"{_MARK_ENV}={mark}".encode()
    left = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        proc = Path("/proc", entry)
        try:
            if token not in (proc / "environ").read_bytes().split(b"\0"):
                continue
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X"):
            left.append(int(entry))
    return left


async def before_after(runs: int, log: Callable[[str], None]) -> tuple[list[Row], dict[str, Any]]:
    """Today's cold solve beside the one before issue 26, and patchright beside stock."""
    import asyncio
    import importlib.util

    mark = uuid.uuid4().hex
    env = {_MARK_ENV: mark}
    with tempfile.TemporaryDirectory() as scratch:
        before = _before_tree(scratch)
        variants: dict[str, tuple[str, dict[str, str]]] = {
            "today": (str(ROOT), env),
            "today, stock Playwright": (str(ROOT), {**env, "PROVIDER_DRIVER": "playwright"}),
        }
        if before is not None:
            variants["before"] = (before, env)
        with RemoteSite(generation="aipkit", challenge=True) as site:
            log(f"cold solve before/after issue 26, {len(variants)} variants x {runs} runs (+1)")
            times: dict[str, list[float]] = {name: [] for name in variants}
            cpus: dict[str, list[float]] = {name: [] for name in variants}
            for turn in range(runs + 1):
                for name in rotate(list(variants), turn):
                    tree, extra = variants[name]
                    got = await asyncio.to_thread(_one_solve, site.url, tree, extra)
                    if got["source"] != "browser":
                        raise RuntimeError(f"{name}: credentials from {got['source']}")
                    if turn:  # the first round settles the disk cache
                        times[name].append(got["seconds"])
                        cpus[name].append(got["cpu"])
        left = _left_marked(mark)
    patchright = importlib.util.find_spec("patchright") is not None
    info: dict[str, Any] = {
        "before_commit": BEFORE,
        "solve_s": times,
        "solve_cpu_s": cpus,
        "left_pids": left,
        "load_avg": os.getloadavg(),
    }
    stock = "today, stock Playwright"
    missing = "" if before is not None else "unavailable: git archive failed"
    before_name = f"before ({BEFORE[:7]})"
    rows = [
        Row(
            "5 cold start (challenge)",
            "browser solve, today vs before issue 26",
            "s",
            median(times["today"]),
            median(times.get("before", [])),
            before_name,
            "ratio<=",
            1.2,
            note="one solve per fresh process; before: stock Playwright, --headless, "
            "1280x720 viewport, main-world polling",
            status=missing,
        ),
        Row(
            "5 cold start (challenge)",
            "browser solve CPU (all processes), today vs before",
            "s",
            median(cpus["today"]),
            median(cpus.get("before", [])),
            before_name,
            "info",
            note="CPU of Python, the driver and Chromium: what a solve costs, whatever the load",
            status=missing,
        ),
        Row(
            "5 cold start (challenge)",
            "browser solve, patchright vs stock Playwright",
            "s",
            median(times["today"]),
            median(times[stock]),
            "stock Playwright (today)",
            "info",
            note=f"CPU {median(cpus['today']):.2f} s against {median(cpus[stock]):.2f} s",
            status="" if patchright else "unavailable: patchright not installed",
        ),
        Row(
            "5 cold start (challenge)",
            "no Chromium left after the solves",
            "",
            0.0 if left else 1.0,
            goal="ok",
            note=f"left: {left}" if left else "",
        ),
    ]
    return rows, info
