"""``python -m sandbox``: help text and a real start/stop as a subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import ssl
import sys

import aiohttp

from tests import procs


async def test_help_lists_options_and_examples() -> None:
    result = await procs.run_module("sandbox", "--help", timeout=30)
    assert result.code == 0
    text = result.out
    for option in (
        "--generation",
        "--release",
        "--challenge",
        "--hard-block",
        "--rate-limit",
        "--port",
        "--host",
        "--tick-seconds",
        "--answer-bytes",
        "examples:",
    ):
        assert option in text


def _sandbox(*args: str) -> contextlib.AbstractAsyncContextManager[asyncio.subprocess.Process]:
    """``python -m sandbox ARGS`` on a free port, killed with its group if the test fails."""
    return procs.started(
        sys.executable,
        "-m",
        "sandbox",
        *args,
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_start_serve_and_stop() -> None:
    async with _sandbox("--generation", "legacy") as proc:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert "imitation" in line
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert match, line
        async with aiohttp.ClientSession() as http, http.get(match.group(0) + "/chat/") as resp:
            assert resp.status == 200
            assert "wpaicg-chat-shortcode" in await resp.text()
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0


async def test_tls_serves_https_and_prints_its_ca() -> None:
    async with _sandbox("--tls") as proc:
        assert proc.stdout is not None
        first = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        second = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        url = re.search(r"https://127\.0\.0\.1:\d+", first)
        ca = re.search(r"SSL_CERT_FILE=(\S+?)\)", second)
        assert url and ca, (first, second)
        ctx = ssl.create_default_context(cafile=ca.group(1))
        async with aiohttp.ClientSession() as http, http.get(url.group(0) + "/", ssl=ctx) as r:
            assert r.status == 200
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0


async def test_bad_value_is_reported() -> None:
    result = await procs.run_module("sandbox", "--generation", "modern", timeout=30)
    assert result.code == 2 and "invalid choice" in result.err


async def test_release_implies_its_generation() -> None:
    async with _sandbox("--release", "1.9.0") as proc:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert "(legacy, release 1.9.0, class L4)" in line, line
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0


async def test_release_of_another_generation_is_refused() -> None:
    result = await procs.run_module(
        "sandbox", "--generation", "aipkit", "--release", "1.9.0", "--port", "0", timeout=30
    )
    assert result.code == 2
    assert "belongs to the legacy generation" in result.err
