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
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.fleet.redis_server import RedisServer, redis_server

HOST = Path(__file__).with_name("host.py")
#: In every host's environment, inherited by its Playwright driver and Chromium:
#: how a host's leftovers are found after it was SIGKILLed (they are re-parented
#: to init, so the process tree no longer leads to them).
MARK_ENV = "FLEET_TEST_MARK"
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


def marked(mark: str) -> list[int]:
    """Live processes whose environment carries ``MARK_ENV=mark`` (ours by construction)."""
    needle = f"{MARK_ENV}={mark}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            if needle in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                found.append(int(entry))
        except OSError:
            continue
    return found


@dataclass
class Fleet:
    tmp: Path
    hosts: list[Host] = field(default_factory=list)
    mark: str = field(default_factory=lambda: uuid.uuid4().hex)
    #: what stop() had to end itself (should stay empty)
    leftovers: list[int] = field(default_factory=list)

    async def start(self, site: str, store: str, *args: str, count: int = 1) -> list[Host]:
        started = []
        for _ in range(count):
            name = f"host{len(self.hosts)}"
            env = {
                **os.environ,
                "PROVIDER_CACHE_DIR": str(self.tmp / name),
                MARK_ENV: self.mark,
            }
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
        # A killed host's Playwright driver and Chromium: give them a moment to go
        # by themselves, then end what is left (found by our mark, never by name).
        deadline = time.monotonic() + 5
        while (left := marked(self.mark)) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.leftovers = left


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[Fleet]:
    group = Fleet(tmp_path)
    try:
        yield group
    finally:
        await group.stop()
