"""Benchmark 8: fleets sharing one Redis.

* Warm first chunk with the Redis store against the file store, side by side
  (ABAB…), credentials stored in both; a third, informational side turns the
  store's short in-process cache off, so every chat asks Redis.
* A cold fleet burst: P host processes (``tests/fleet/host.py``, each with its
  own cache folder) × C concurrent chats on an empty Redis, released at once;
  wall time from the release to the last answer, and what the sandbox counted:
  page reads, and (behind a challenge) browser solves.

redis-server (Debian's) runs on a free loopback port, the sandbox in its own
process; both are stopped by PID.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._serve import _direct as _first_chunk  # the same measure: call to first chunk
from bench._server import RemoteSite
from bench._stats import Row, median, p90, rotate
from provider import ChatgptFree
from provider.store import redis as redis_store
from tests.fleet.redis_server import redis_server

ROOT = Path(__file__).resolve().parent.parent
HOST = ROOT / "tests" / "fleet" / "host.py"


def _provider(url: str, cache: Path, store: str | None = None) -> type[ChatgptFree]:
    return type("BenchFleet", (ChatgptFree,), {"url": url, "cache_dir": cache, "store": store})


async def warm(runs: int, log: Callable[[str], None]) -> tuple[list[Row], dict[str, Any]]:
    log(f"fleet: warm first chunk, Redis store vs file store, {runs} runs")
    with (
        redis_server() as redis,
        RemoteSite(generation="aipkit") as site,
        tempfile.TemporaryDirectory() as tmp,
    ):
        files = _provider(site.url, Path(tmp) / "f")
        shared = _provider(site.url, Path(tmp) / "r", redis.url)
        # Its own store instance (another folder), with its short cache off.
        uncached = _provider(site.url, Path(tmp) / "u", redis.url)
        await files.refresh_credentials()
        await shared.refresh_credentials()
        await uncached.refresh_credentials()
        from provider.store import store_for

        no_cache = store_for(Path(tmp) / "u", redis.url)
        assert isinstance(no_cache, redis_store.RedisStore)
        no_cache.local_seconds = 0
        samples: dict[str, list[float]] = {"file": [], "redis": [], "redis, no local cache": []}
        sides = [("file", files), ("redis", shared), ("redis, no local cache", uncached)]
        for side in sides:  # warm every path once
            await _first_chunk(side[1])
        for turn in range(runs):
            for name, provider in rotate(sides, turn):
                samples[name].append(await _first_chunk(provider))
        for store in (store_for(Path(tmp) / "r", redis.url), no_cache):
            await store.aclose()  # before redis-server stops: no outage to report
    ms = {name: median(values) * 1000 for name, values in samples.items()}
    rows = [
        Row(
            "11 fleet",
            "warm first chunk, Redis store",
            "ms",
            ms["redis"],
            ms["file"],
            "file store",
            goal="ratio<=",
            bound=1.05,
            note="the store's in-process cache answers; Redis is asked when it runs out",
        ),
        Row(
            "11 fleet",
            "warm first chunk, Redis asked every chat",
            "ms",
            ms["redis, no local cache"],
            ms["file"],
            "file store",
            goal="info",
            note="the local cache turned off: one GET to Redis per chat",
        ),
    ]
    details = {name: {"samples": values, "p90": p90(values)} for name, values in samples.items()}
    return rows, details


async def _burst(
    hosts: int, chats: int, challenge: bool, log: Callable[[str], None]
) -> dict[str, Any]:
    log(f"fleet: cold burst, {hosts} hosts x {chats} chats, challenge={challenge}")
    with (
        redis_server() as redis,
        RemoteSite(generation="aipkit", challenge=challenge) as site,
        tempfile.TemporaryDirectory() as tmp,
    ):
        procs = []
        try:
            for n in range(hosts):
                env = {**os.environ, "PROVIDER_CACHE_DIR": str(Path(tmp) / f"host{n}")}
                env.pop("PROVIDER_STORE", None)
                procs.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable,
                        str(HOST),
                        site.url,
                        redis.url,
                        "--chats",
                        str(chats),
                        stdin=asyncio.subprocess.PIPE,
                        stdout=asyncio.subprocess.PIPE,
                        env=env,
                    )
                )
            for proc in procs:
                assert proc.stdout is not None
                line = await asyncio.wait_for(proc.stdout.readline(), 120)
                assert line.strip() == b"ready", line
            start = time.perf_counter()
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write(b"go\n")
                await proc.stdin.drain()
            results = []
            for proc in procs:
                assert proc.stdout is not None
                results.append(json.loads(await asyncio.wait_for(proc.stdout.readline(), 300)))
            wall = time.perf_counter() - start
        finally:
            for proc in procs:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        hits = site.hits()
    return {
        "wall_s": wall,
        "answers": sum(r["answers"] for r in results),
        "errors": [e for r in results for e in r["errors"]][:3],
        "page_reads": hits["GET /chat/"],
        "browser_solves": hits["clearance"],
        "host_seconds": [r["seconds"] for r in results],
    }


async def burst(
    hosts: int, chats: int, log: Callable[[str], None]
) -> tuple[list[Row], dict[str, Any]]:
    rows: list[Row] = []
    details: dict[str, Any] = {}
    total = hosts * chats
    for challenge in (False, True):
        try:
            got = await _burst(hosts, chats, challenge, log)
        except Exception as exc:  # no Chromium or no redis-server: say so in the table
            rows.append(
                Row(
                    "11 fleet",
                    f"cold burst {hosts}x{chats}{' (challenge)' if challenge else ''}",
                    "s",
                    None,
                    status=f"unavailable: {type(exc).__name__}: {exc}"[:120],
                )
            )
            continue
        details["challenge" if challenge else "plain"] = got
        label = f"cold burst {hosts} hosts x {chats}{', challenge' if challenge else ''}"
        counted = "browser solves" if challenge else "page reads"
        once = got["browser_solves"] if challenge else got["page_reads"]
        rows.append(
            Row(
                "11 fleet",
                f"{label}: wall time",
                "s",
                got["wall_s"],
                goal="info",
                note=f"{got['answers']}/{total} answered, page reads {got['page_reads']}, "
                f"browser solves {got['browser_solves']}",
            )
        )
        rows.append(
            Row(
                "11 fleet",
                f"{label}: {counted} fleet-wide",
                "",
                1.0 if once == 1 and got["answers"] == total else 0.0,
                goal="ok",
                note=f"{counted}: {once}, answers {got['answers']}/{total}"
                + (f", first errors {got['errors']}" if got["errors"] else ""),
            )
        )
    return rows, details
