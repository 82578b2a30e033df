"""Benchmarks 1-3: warm chat and throughput, ours beside the minimal client and g4f.

For each plugin generation a sandbox runs in its own process (``_server``), so
only client work is on this process's clock. Per iteration the clients run one
after the other in a rotating order (ABC, BCA, CAB…) to cancel drift; medians.

* warm: a short answer (3 deltas) with credentials already stored; time to
  first chunk and whole-answer time, measured from the call.
* throughput: a 10 MB answer (``answer_bytes``), MB/s of answer text over the
  stream phase (first chunk to last): the sandbox builds the whole reply before
  its first byte, which is the sandbox's cost, not a client's.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._g4f import G4FClient
from bench._minimal import chat_for
from bench._server import RemoteSite
from bench._stats import Row, median, p90, rotate
from provider import ChatgptFree

PROMPT = "Hello there"
MESSAGES = [{"role": "user", "content": PROMPT}]
ANSWER_BYTES = 10_000_000


@dataclass
class Sample:
    ttfc: float
    total: float
    stream: float
    cpu_stream: float
    size: int
    error: str | None = None


async def timed(make: Callable[[], AsyncIterator[str]]) -> Sample:
    t0 = time.perf_counter()
    first = last = 0.0
    cpu0 = 0.0
    size = 0
    async for chunk in make():
        now = time.perf_counter()
        if not first:
            first = now
            cpu0 = time.process_time()
        last = now
        size += len(chunk.encode())
    end = time.perf_counter()
    return Sample(first - t0, end - t0, last - first, time.process_time() - cpu0, size)


def provider_for(url: str, cache_dir: str | Path) -> type[ChatgptFree]:
    """``ChatgptFree`` pointed at the sandbox, with a private credential store."""
    return type("BenchSite", (ChatgptFree,), {"url": url, "cache_dir": cache_dir})


Runner = Callable[[], Awaitable[Sample]]


async def _g4f_sample(client: G4FClient) -> Sample:
    r = await asyncio.to_thread(client.chat)
    return Sample(
        r["ttfc"] or 0.0,
        r["total"],
        r["stream"] or 0.0,
        r["cpu_stream"] or 0.0,
        r["bytes"],
        r["error"],
    )


async def _series(runners: dict[str, Runner], runs: int) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {name: [] for name in runners}
    for turn in range(runs):
        for name in rotate(list(runners), turn):
            out[name].append(await runners[name]())
    return out


async def measure(
    generation: str,
    *,
    warm_runs: int,
    tp_runs: int,
    delta_chars: int,
    g4f_python: Path | None,
    g4f_status: str,
    log: Callable[[str], None],
) -> tuple[list[Row], dict[str, Any]]:
    rows: list[Row] = []
    info: dict[str, Any] = {"generation": generation}
    with RemoteSite(generation=generation) as site, tempfile.TemporaryDirectory() as cache:
        local = provider_for(site.url, cache)
        async for _ in local.create_async_generator("", MESSAGES):  # warms the store
            pass
        creds = local.stored_credentials()
        assert creds is not None
        minimal = chat_for(creds)
        runners: dict[str, Runner] = {
            "ours": lambda: timed(lambda: local.create_async_generator("", MESSAGES)),
            "minimal": lambda: timed(lambda: minimal(creds, PROMPT)),
        }
        use_g4f = generation == "legacy" and g4f_python is not None
        g4f_cm = G4FClient(g4f_python, site.url) if use_g4f and g4f_python else None
        if g4f_cm is not None:
            g4f_cm.__enter__()
            info["g4f"] = g4f_cm.info
            warm = await _g4f_sample(g4f_cm)  # its first call reads the page, as ours did
            if warm.error:
                log(f"g4f: first call failed: {warm.error}")
            runners["g4f"] = lambda: _g4f_sample(g4f_cm)
        try:
            for _ in range(2):  # settle: imports, caches, first connections
                for run in runners.values():
                    await run()
            log(f"{generation}: warm chat, {warm_runs} runs")
            warm_samples = await _series(runners, warm_runs)
            site.set(answer_bytes=ANSWER_BYTES, delta_chars=delta_chars)
            log(f"{generation}: {ANSWER_BYTES / 1e6:g} MB answer, {tp_runs} runs")
            cpu0 = site.cpu()
            tp_samples = await _series(runners, tp_runs)
            info["server_cpu_per_answer_s"] = (site.cpu() - cpu0) / max(1, tp_runs * len(runners))
        finally:
            if g4f_cm is not None:
                g4f_cm.__exit__(None, None, None)

    rows += _warm_rows(generation, warm_samples, g4f_status)
    rows += _throughput_rows(generation, tp_samples, delta_chars, g4f_status)
    info["warm"] = _summary(warm_samples)
    info["throughput"] = _summary(tp_samples)
    return rows, info


def _summary(samples: dict[str, list[Sample]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, xs in samples.items():
        ok = [s for s in xs if not s.error]
        out[name] = {
            "runs": len(xs),
            "errors": sorted({s.error for s in xs if s.error}),
            "ttfc_ms": {
                "median": median([s.ttfc * 1e3 for s in ok]),
                "p90": p90([s.ttfc * 1e3 for s in ok]),
            },
            "total_ms": {
                "median": median([s.total * 1e3 for s in ok]),
                "p90": p90([s.total * 1e3 for s in ok]),
            },
            "stream_s": [s.stream for s in ok],
            "cpu_stream_s": [s.cpu_stream for s in ok],
            "bytes": [s.size for s in xs],
        }
    return out


def _ok(xs: list[Sample]) -> list[Sample]:
    return [s for s in xs if not s.error and s.size > 0]


def _g4f_problem(xs: list[Sample] | None, status: str, expect: int) -> str:
    if status:
        return status
    if xs is None:
        return "unavailable: not run"
    errors = sorted({s.error for s in xs if s.error})
    if errors:
        return f"failed: {errors[0][:80]}"
    if any(s.size != expect for s in xs):
        return f"wrong answer: {xs[0].size} bytes, expected {expect}"
    return ""


def _warm_rows(gen: str, s: dict[str, list[Sample]], g4f_status: str) -> list[Row]:
    rows = []
    for metric, pick in (("time to first chunk", "ttfc"), ("whole answer", "total")):
        ours = median([getattr(x, pick) * 1e3 for x in _ok(s["ours"])])
        mini = median([getattr(x, pick) * 1e3 for x in _ok(s["minimal"])])
        rows.append(
            Row(
                f"1 warm chat ({gen})", metric, "ms", ours, mini, "minimal aiohttp", "ratio<=", 1.10
            )
        )
        if gen == "legacy":
            g4f = s.get("g4f")
            problem = _g4f_problem(g4f, g4f_status, len("You said: " + PROMPT))
            ref = None if problem or g4f is None else median([getattr(x, pick) * 1e3 for x in g4f])
            rows.append(
                Row(
                    f"3 vs g4f 0.5.3.1 ({gen})",
                    f"warm {metric}",
                    "ms",
                    ours,
                    ref,
                    "g4f ChatgptFree",
                    "ahead-lower",
                    status=problem,
                )
            )
    return rows


def _throughput_rows(
    gen: str, s: dict[str, list[Sample]], delta_chars: int, g4f_status: str
) -> list[Row]:
    def mbps(xs: list[Sample]) -> float:
        return median([x.size / 1e6 / x.stream for x in xs if x.stream > 0])

    def cpu_mbps(xs: list[Sample]) -> float:
        return median([x.size / 1e6 / x.cpu_stream for x in xs if x.cpu_stream > 0])

    ours, mini = _ok(s["ours"]), _ok(s["minimal"])
    note = (
        f"{delta_chars}-char deltas; over CPU time ours {cpu_mbps(ours):.2f} MB/s, "
        f"minimal {cpu_mbps(mini):.2f} MB/s"
    )
    rows = [
        Row(
            f"2 throughput ({gen})",
            "10 MB answer",
            "MB/s",
            mbps(ours),
            mbps(mini),
            "minimal aiohttp",
            "ratio>=",
            0.90,
            note=note,
        )
    ]
    if gen == "legacy":
        g4f = s.get("g4f")
        problem = _g4f_problem(g4f, g4f_status, ANSWER_BYTES)
        rows.append(
            Row(
                f"3 vs g4f 0.5.3.1 ({gen})",
                "10 MB answer",
                "MB/s",
                mbps(ours),
                None if problem or g4f is None else mbps(g4f),
                "g4f ChatgptFree",
                "ahead-higher",
                status=problem,
                note=f"g4f CPU-time MB/s {cpu_mbps(g4f):.2f}" if g4f and not problem else "",
            )
        )
    return rows
