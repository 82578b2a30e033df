"""Benchmark 4: 1000 concurrent chats in one process, run in a child process of its own.

``python -m bench._concurrency <json options>`` prints one JSON object. A child
process keeps ``ru_maxrss`` (peak RSS) about this benchmark alone. The sandbox
runs in yet another process (``_server``), so its CPU and memory are not
counted; its hit counter still says how many credential fetches happened.

* burst: N chats started at once with an empty credential store — every call
  must succeed with the right answer, and the page must be fetched exactly once
  (single-flight). Wall time, peak RSS; the minimal client does the same burst
  (with stored credentials) for reference.
* open streams: N chats held open mid-answer (``stall_after_deltas=1``); the RSS
  growth from before they start to when all have their first chunk, divided by N.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from bench._chat import provider_for
from bench._minimal import chat_for
from bench._server import RemoteSite

PROMPT = "Hello there"
MESSAGES = [{"role": "user", "content": PROMPT}]
ANSWER = "You said: " + PROMPT


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # KiB on Linux


def raise_fd_limit(need: int) -> tuple[int, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need and soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


async def _collect(make: Callable[[], AsyncIterator[str]]) -> str:
    return "".join([chunk async for chunk in make()])


async def _burst(n: int, make: Callable[[], AsyncIterator[str]]) -> dict[str, Any]:
    t0 = time.perf_counter()
    results = await asyncio.gather(*(_collect(make) for _ in range(n)), return_exceptions=True)
    wall = time.perf_counter() - t0
    errors = [f"{type(r).__name__}: {r}"[:200] for r in results if isinstance(r, BaseException)]
    wrong = sum(1 for r in results if isinstance(r, str) and r != ANSWER)
    return {
        "n": n,
        "wall_s": wall,
        "ok": n - len(errors) - wrong,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "wrong_answers": wrong,
    }


async def _hold_open(n: int, make: Callable[[], AsyncIterator[str]]) -> dict[str, Any]:
    """RSS growth with ``n`` streams open, each past its first chunk."""
    gc.collect()
    before = rss_mb()
    opened = 0
    all_open = asyncio.Event()
    release = asyncio.Event()

    async def one() -> None:
        nonlocal opened
        agen = make()
        try:
            await agen.__anext__()
            opened += 1
            if opened == n:
                all_open.set()
            await release.wait()
        finally:
            await agen.aclose()  # type: ignore[attr-defined]

    t0 = time.perf_counter()
    tasks = [asyncio.create_task(one()) for _ in range(n)]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_open.wait(), 120)
    t_open = time.perf_counter() - t0
    gc.collect()
    during = rss_mb()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "n": n,
        "opened": opened,
        "open_s": t_open,
        "rss_before_mb": before,
        "rss_open_mb": during,
        "kb_per_stream": (during - before) * 1e3 / max(1, opened),
    }


async def main(opts: dict[str, Any]) -> dict[str, Any]:
    """``mode`` ``burst``, or ``open-ours`` / ``open-minimal`` (each in a fresh process)."""
    n = int(opts.get("n", 1000))
    mode = opts.get("mode", "burst")
    out: dict[str, Any] = {"mode": mode, "fd_limit": raise_fd_limit(n * 3 + 100)}
    with (
        RemoteSite(generation=opts.get("generation", "aipkit")) as site,
        tempfile.TemporaryDirectory() as cache,
    ):
        local = provider_for(site.url, cache)
        # Unbounded, as the minimal client is: holding N streams at once needs N
        # connections (the default bound, 100 per site, would queue the rest).
        local.max_connections = 0
        gc.collect()
        out["rss_start_mb"] = rss_mb()
        if mode == "burst":
            site.reset_hits()
            out["ours"] = await _burst(n, lambda: local.create_async_generator("", MESSAGES))
            hits = site.hits()
            out["ours"]["page_fetches"] = hits.get("GET /chat/", 0) + hits.get("GET /", 0)
            out["ours"]["hits"] = dict(hits)
            out["ours"]["peak_rss_mb"] = peak_rss_mb()
        else:
            await _collect(lambda: local.create_async_generator("", MESSAGES))
        creds = local.stored_credentials()
        assert creds is not None
        minimal = chat_for(creds)
        if mode == "burst":
            out["minimal"] = await _burst(n, lambda: minimal(creds, PROMPT))
        else:
            await _collect(lambda: minimal(creds, PROMPT))  # imports, first connection
            site.set(stall_after_deltas=1)
            make: Callable[[], AsyncIterator[str]] = (
                (lambda: local.create_async_generator("", MESSAGES))
                if mode == "open-ours"
                else (lambda: minimal(creds, PROMPT))
            )
            out["open"] = await _hold_open(n, make)
        out["peak_rss_mb"] = peak_rss_mb()
    return out


if __name__ == "__main__":
    options = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    print(json.dumps(asyncio.run(main(options))))
