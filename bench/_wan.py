"""Benchmark 8: warm chats over a real link's latency, on HTTPS.

The sandbox serves TLS (a certificate from a CA made at start) with connections
kept alive, as a site behind a CDN does, in its own process behind a latency
relay (``bench/_relay.py``, 40 ms round trip by default): every round trip a
client makes costs what it would on the internet, so a TCP or TLS handshake
saved shows. Side by side, in a rotating order, warm (credentials stored, one
chat done before the runs):

* ours: ``ChatgptFree`` (trusting the CA through ``SSL_CERT_FILE``, as a user
  behind a TLS-inspecting network would);
* the limit: the minimal client's exact requests on one kept session
  (:class:`bench._minimal.KeptAlive`);
* g4f 0.5.3.1 (legacy only): the original client, a new session per call
  (the driver hands each of its requests the CA file).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench._chat import MESSAGES, PROMPT, Runner, Sample, _g4f_sample, _series, provider_for, timed
from bench._g4f import G4FClient
from bench._minimal import KeptAlive
from bench._server import RemoteSite
from bench._stats import Row, median


async def measure(
    generation: str,
    *,
    runs: int,
    rtt_ms: float,
    g4f_python: Path | None,
    g4f_status: str,
    log: Callable[[str], None],
) -> tuple[list[Row], dict[str, Any]]:
    info: dict[str, Any] = {"generation": generation, "rtt_ms": rtt_ms}
    with (
        RemoteSite(
            generation=generation, tls=True, keep_alive=True, relay_rtt=rtt_ms / 1e3
        ) as site,
        tempfile.TemporaryDirectory() as cache,
        _trusting(site),
    ):
        kept: KeptAlive | None = None
        g4f: G4FClient | None = None
        try:
            kept, runners = await _warm(site, cache)
            if generation == "legacy" and g4f_python is not None:
                g4f = G4FClient(g4f_python, site.url, site.ca_file).__enter__()
                info["g4f"] = g4f.info
                first = await _g4f_sample(g4f)  # its first call reads the page, as ours did
                if first.error:
                    log(f"g4f (WAN): first call failed: {first.error}")
                driver = g4f
                runners["g4f"] = lambda: _g4f_sample(driver)
            for run in runners.values():  # settle: first connections, imports
                await run()
            log(f"{generation}: WAN warm chat, {rtt_ms:g} ms RTT, TLS, {runs} runs")
            samples = await _series(runners, runs)
        finally:
            if kept is not None:
                await kept.close()
            if g4f is not None:
                g4f.__exit__(None, None, None)
    return _rows(generation, samples, rtt_ms, g4f_status), {**info, "samples": _summary(samples)}


@contextlib.contextmanager
def _trusting(site: RemoteSite) -> Iterator[None]:
    """Ours trusts the site's CA through ``SSL_CERT_FILE``, as a user behind a
    TLS-inspecting network would (restored afterwards)."""
    assert site.ca_file is not None
    saved = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = site.ca_file
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("SSL_CERT_FILE", None)
        else:
            os.environ["SSL_CERT_FILE"] = saved


async def _warm(site: RemoteSite, cache: str) -> tuple[KeptAlive, dict[str, Runner]]:
    """One cold chat of ours (it stores the credentials), then ours and the keep-alive
    client (the same requests on one kept session) as runners of warm chats."""
    local = provider_for(site.url, cache)
    async for _ in local.create_async_generator("", MESSAGES):  # warms the store
        pass
    creds = local.stored_credentials()
    assert creds is not None
    kept = KeptAlive(creds, site.ca_file)
    runners: dict[str, Runner] = {
        "ours": lambda: timed(lambda: local.create_async_generator("", MESSAGES)),
        "keep-alive": lambda: timed(lambda: kept.chat(PROMPT)),
    }
    return kept, runners


#: Seconds between the answer's last event and the body's end in the late-end case:
#: a site whose script keeps working after its last flush.
LATE_END = 0.05


async def late_end(
    generation: str, *, runs: int, rtt_ms: float, log: Callable[[str], None]
) -> tuple[list[Row], dict[str, Any]]:
    """Warm chats over TLS behind the relay, each body ending :data:`LATE_END` s after
    the answer: new connections per warm chat (the relay counts them) and the whole
    answer's time, ours against the keep-alive client (which reads each reply to its
    end before it returns, so both pay for the late end once per chat).

    Each client runs its chats back to back, in blocks that take turns, as a caller
    chatting sequentially does: ours starts each chat while the last body's end is
    still on its way."""
    block = max(1, runs // 2)
    with (
        RemoteSite(
            generation=generation,
            tls=True,
            keep_alive=True,
            framing="chunked",
            end_delay=LATE_END,
            relay_rtt=rtt_ms / 1e3,
        ) as site,
        tempfile.TemporaryDirectory() as cache,
        _trusting(site),
    ):
        kept: KeptAlive | None = None
        try:
            kept, runners = await _warm(site, cache)
            await runners["keep-alive"]()  # its first connection
            log(
                f"{generation}: WAN warm chat, body's end {LATE_END * 1e3:g} ms late, "
                f"{rtt_ms:g} ms RTT, TLS, {2 * block} runs each"
            )
            samples: dict[str, list[Sample]] = {name: [] for name in runners}
            opened = dict.fromkeys(runners, 0)
            for turn in range(4):
                name = list(runners)[turn % 2]
                before = site.connections()
                for _ in range(block):
                    samples[name].append(await runners[name]())
                opened[name] += site.connections() - before
        finally:
            if kept is not None:
                await kept.close()
    chats = {name: len(xs) for name, xs in samples.items()}
    bench = f"13 WAN {rtt_ms:g} ms RTT, TLS, body's end {LATE_END * 1e3:g} ms late ({generation})"
    rows = [
        Row(
            bench,
            "new connections per warm chat",
            "per chat",
            opened["ours"] / chats["ours"],
            opened["keep-alive"] / chats["keep-alive"],
            "minimal, kept session",
            "value<=",
            1 / 20,  # the bound: at most 1 over 20 warm chats
        ),
        Row(
            bench,
            "warm whole answer",
            "ms",
            _ms(samples["ours"], "total"),
            _ms(samples["keep-alive"], "total"),
            "minimal, kept session",
            "ratio<=",
            1.10,
        ),
    ]
    info = {
        "generation": generation,
        "rtt_ms": rtt_ms,
        "end_delay_s": LATE_END,
        "new_connections": opened,
        "chats": chats,
        "samples": _summary(samples),
    }
    return rows, info


def _ms(xs: list[Sample], pick: str) -> float:
    return median([getattr(x, pick) * 1e3 for x in xs if not x.error and x.size > 0])


def _rows(gen: str, s: dict[str, list[Sample]], rtt_ms: float, g4f_status: str) -> list[Row]:
    bench = f"9 WAN {rtt_ms:g} ms RTT, TLS ({gen})"
    rows = [
        Row(
            bench,
            f"warm {metric}",
            "ms",
            _ms(s["ours"], pick),
            _ms(s["keep-alive"], pick),
            "minimal, kept session",
            "ratio<=",
            1.05,
        )
        for metric, pick in (("time to first chunk", "ttfc"), ("whole answer", "total"))
    ]
    if gen == "legacy":
        g4f = s.get("g4f")
        errors = sorted({x.error for x in g4f or [] if x.error})
        problem = g4f_status or ("unavailable: not run" if g4f is None else "")
        if not problem and errors:
            problem = f"failed: {errors[0][:80]}"
        rows.append(
            Row(
                bench,
                "warm time to first chunk vs g4f 0.5.3.1",
                "ms",
                _ms(s["ours"], "ttfc"),
                None if problem or g4f is None else _ms(g4f, "ttfc"),
                "g4f ChatgptFree",
                "faster>=",
                1.8,
                status=problem,
            )
        )
    return rows


def _summary(samples: dict[str, list[Sample]]) -> dict[str, Any]:
    return {
        name: {
            "runs": len(xs),
            "errors": sorted({x.error for x in xs if x.error}),
            "ttfc_ms": [x.ttfc * 1e3 for x in xs],
            "total_ms": [x.total * 1e3 for x in xs],
        }
        for name, xs in samples.items()
    }
