"""``python -m sandbox``: help text and a real start/stop as a subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[2]


async def test_help_lists_options_and_examples() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox",
        "--help",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0
    text = out.decode()
    for option in (
        "--generation",
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


@contextlib.asynccontextmanager
async def sandbox_process(*args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python -m sandbox ARGS`` on a free port, stopped with Ctrl-C's signal; exit 0 expected."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox",
        *args,
        "--port",
        "0",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            raise
    assert proc.returncode == 0


async def test_start_serve_and_stop() -> None:
    async with sandbox_process("--generation", "legacy") as proc:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert "imitation" in line
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert match, line
        async with aiohttp.ClientSession() as http, http.get(match.group(0) + "/chat/") as resp:
            assert resp.status == 200
            assert "wpaicg-chat-shortcode" in await resp.text()


async def test_tls_serves_https_and_prints_its_ca() -> None:
    async with sandbox_process("--tls") as proc:
        assert proc.stdout is not None
        first = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        second = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        url = re.search(r"https://127\.0\.0\.1:\d+", first)
        ca = re.search(r"SSL_CERT_FILE=(\S+?)\)", second)
        assert url and ca, (first, second)
        ctx = ssl.create_default_context(cafile=ca.group(1))
        async with aiohttp.ClientSession() as http, http.get(url.group(0) + "/", ssl=ctx) as r:
            assert r.status == 200


async def test_bad_value_is_reported() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox",
        "--generation",
        "modern",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2 and b"invalid choice" in err
