"""Fleet fixtures: a real redis-server per test, and host processes that share it.

Each host is ``tests/fleet/host.py`` in its own process with its own
``PROVIDER_CACHE_DIR``; the sandbox runs in the test process, so its hit
counters see the whole fleet.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.fleet.redis_server import RedisServer, redis_server

HOST = Path(__file__).with_name("host.py")
#: Start-up (imports) and one round of chats, each; generous for a loaded machine.
STEP_SECONDS = 120.0


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@dataclass
class Host:
    name: str
    process: asyncio.subprocess.Process

    async def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"go\n")
        await self.process.stdin.drain()

    async def line(self) -> str:
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), STEP_SECONDS)
        if not raw:
            raise AssertionError(f"host {self.name} ended (exit {await self.process.wait()})")
        return raw.decode().strip()

    async def result(self) -> dict[str, Any]:
        outcome: dict[str, Any] = json.loads(await self.line())
        return outcome

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)


@dataclass
class Fleet:
    tmp: Path
    hosts: list[Host] = field(default_factory=list)

    async def start(self, site: str, store: str, *args: str, count: int = 1) -> list[Host]:
        started = []
        for _ in range(count):
            name = f"host{len(self.hosts)}"
            env = {**os.environ, "PROVIDER_CACHE_DIR": str(self.tmp / name)}
            env.pop("PROVIDER_STORE", None)
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(HOST),
                site,
                store,
                *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=env,
            )
            host = Host(name, process)
            self.hosts.append(host)
            started.append(host)
        for host in started:
            assert await host.line() == "ready"
        return started

    async def stop(self) -> None:
        for host in self.hosts:
            if host.process.returncode is None:
                host.kill()
                await asyncio.wait_for(host.process.wait(), 30)


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[Fleet]:
    group = Fleet(tmp_path)
    try:
        yield group
    finally:
        await group.stop()
