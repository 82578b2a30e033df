"""Fixtures for the OpenAI-compatible server: the server in-process, in front of a
sandbox site, and a real ``openai.AsyncOpenAI`` client pointed at it."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest

import sandbox
from provider import serve
from tests.conftest import provider_for

KEY = "test-key-0123456789"
USER = [{"role": "user", "content": "Hello sandbox"}]
ANSWER = "You said: Hello sandbox"


@dataclass
class Served:
    site: sandbox.Site
    server: serve.Server
    client: openai.AsyncOpenAI


@pytest.fixture(autouse=True)
def no_api_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(serve.ENV_API_KEY, raising=False)


@pytest.fixture
def served(cache_dir: Path) -> Callable[..., contextlib.AbstractAsyncContextManager[Served]]:
    """``async with served(generation=..., timeout=..., **knobs) as s``: a sandbox, the
    server in front of it (with ``KEY``), and an OpenAI client without retries."""

    @contextlib.asynccontextmanager
    async def start(
        generation: str = "aipkit",
        *,
        timeout: float = 30,
        api_key: str | None = KEY,
        browser: str = "never",
        url: str | None = None,
        **knobs: Any,
    ) -> AsyncIterator[Served]:
        async with sandbox.running(generation=generation, **knobs) as site:  # type: ignore[arg-type]
            provider = provider_for(url or site.url, cache_dir, browser=browser)
            async with serve.running(provider, api_key=api_key, timeout=timeout) as server:
                client = openai.AsyncOpenAI(
                    base_url=server.base_url, api_key=api_key or "unused", max_retries=0
                )
                try:
                    yield Served(site, server, client)
                finally:
                    await client.close()

    return start


async def _holds(value: object) -> object:
    return await value if inspect.isawaitable(value) else value


async def wait_until(condition: Callable[[], object], seconds: float, what: str) -> None:
    """Poll ``condition`` (a plain or an async callable) until it holds, within ``seconds``."""
    deadline = time.monotonic() + seconds
    while not await _holds(condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        await asyncio.sleep(0.02)


def established_to(port: int) -> int:
    """TCP connections of this host in ESTABLISHED state towards ``port`` (Linux)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                remote, state = fields[2], fields[3]
                if state == "01" and int(remote.rsplit(":", 1)[1], 16) == port:
                    count += 1
    return count
