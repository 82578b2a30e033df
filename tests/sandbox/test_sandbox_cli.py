"""``python -m sandbox``: help text and a real start/stop as a subprocess."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

import aiohttp

from tests import procs


async def test_help_lists_options_and_examples() -> None:
    result = await procs.run_module("sandbox", "--help", timeout=30)
    assert result.code == 0
    text = result.out
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


async def test_start_serve_and_stop() -> None:
    async with procs.started(
        sys.executable,
        "-m",
        "sandbox",
        "--generation",
        "legacy",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    ) as proc:
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


async def test_bad_value_is_reported() -> None:
    result = await procs.run_module("sandbox", "--generation", "modern", timeout=30)
    assert result.code == 2 and "invalid choice" in result.err
