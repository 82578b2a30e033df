"""Benchmark 7: the OpenAI-compatible endpoint's overhead over a direct library call.

Time to first chunk with stored credentials, side by side in one run (ABAB…):
the library called directly, and the same chat through ``provider.serve`` read
by a minimal streaming HTTP client (plain aiohttp, not the openai SDK, whose own
cost is not the server's). The sandbox runs in its own process; its
``first_byte_delay`` stands in for the site's own latency (the real site takes
0.5-2 s to its first chunk). The target (≤ 1.2) is on a 0.2 s site; the
0-latency row shows the absolute cost of the extra HTTP hop.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from bench._chat import MESSAGES, provider_for
from bench._server import RemoteSite
from bench._stats import Row, median, p90
from provider import serve


async def _direct(provider: Any) -> float:
    start = time.perf_counter()
    chunks = provider.create_async_generator("", MESSAGES)
    try:
        async for _chunk in chunks:
            return time.perf_counter() - start
    finally:
        await chunks.aclose()
    raise RuntimeError("the direct call yielded nothing")


async def _through(session: aiohttp.ClientSession, base_url: str) -> float:
    start = time.perf_counter()
    body = {"model": "", "messages": MESSAGES, "stream": True}
    async with session.post(f"{base_url}/chat/completions", json=body) as resp:
        resp.raise_for_status()
        async for line in resp.content:
            if line.startswith(b"data: {"):
                delta = json.loads(line[6:])["choices"][0]["delta"]
                if delta.get("content"):
                    return time.perf_counter() - start
    raise RuntimeError("the server streamed no text")


async def measure(runs: int, log: Callable[[str], None]) -> tuple[list[Row], dict[str, Any]]:
    rows: list[Row] = []
    details: dict[str, Any] = {}
    for latency in (0.2, 0.0):
        log(f"serve overhead: site latency {latency:g} s, {runs} runs")
        with (
            RemoteSite(generation="aipkit", first_byte_delay=latency) as site,
            tempfile.TemporaryDirectory() as cache,
        ):
            provider = provider_for(site.url, Path(cache))
            await provider.refresh_credentials()
            direct: list[float] = []
            through: list[float] = []
            async with serve.running(provider) as server, aiohttp.ClientSession() as session:
                await _through(session, server.base_url)  # warm both paths once
                await _direct(provider)
                for turn in range(runs):
                    pair = [
                        ("direct", _direct(provider)),
                        ("through", _through(session, server.base_url)),
                    ]
                    for name, run in pair if turn % 2 == 0 else reversed(pair):
                        (direct if name == "direct" else through).append(await run)
        key = f"latency_{latency:g}"
        details[key] = {
            "direct": direct,
            "through": through,
            "direct_p90": p90(direct),
            "through_p90": p90(through),
        }
        ours, ref = median(through) * 1000, median(direct) * 1000
        rows.append(
            Row(
                "7 serve overhead",
                f"first chunk, site latency {latency:g} s",
                "ms",
                ours,
                ref,
                "direct library call",
                goal="ratio<=" if latency else "info",
                bound=1.2 if latency else None,
                note=f"the server adds {ours - ref:.1f} ms (median) per chat",
            )
        )
    return rows, details
