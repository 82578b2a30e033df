"""scripts/apt-get-wait, which scripts/setup installs Chromium through: a lock held by
another apt-get is waited for, bounded; any other failure returns at once.

A stand-in ``apt-get`` on PATH takes a real flock(2) lock on a file, as apt takes
its lock files, so the tests never touch the machine's own package locks."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import procs

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "apt-get-wait"

FAKE_APT_GET = """#!/usr/bin/env bash
echo "$*" >> "$FAKE_LOG"
if [ -n "${FAKE_FAIL:-}" ]; then echo "E: Unable to locate package chromium" >&2; exit 100; fi
exec 9>>"$FAKE_LOCK"
if ! flock -n 9; then
    echo "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 1 (apt-get)" >&2
    echo "E: Unable to lock directory /var/lib/apt/lists/" >&2
    exit 100
fi
echo "fake apt-get ran: $*"
"""


@pytest.fixture
def fake(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    apt_get = bin_dir / "apt-get"
    apt_get.write_text(FAKE_APT_GET)
    apt_get.chmod(0o755)
    return {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_LOG": str(tmp_path / "calls.log"),
        "FAKE_LOCK": str(tmp_path / "lock"),
    }


@pytest.fixture
def held(fake: dict[str, str]) -> Iterator[int]:
    """The lock, held by this process (as another apt-get would) until released."""
    fd = os.open(fake["FAKE_LOCK"], os.O_CREAT | os.O_WRONLY, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield fd
    finally:
        os.close(fd)


def calls(env: dict[str, str]) -> list[str]:
    path = Path(env["FAKE_LOG"])
    return path.read_text().splitlines() if path.exists() else []


def start(
    env: dict[str, str], *args: str
) -> contextlib.AbstractAsyncContextManager[asyncio.subprocess.Process]:
    """The script as a child of its own group, killed with it if the test fails."""
    return procs.started(
        str(SCRIPT),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_a_held_lock_is_waited_for_then_the_command_runs(
    fake: dict[str, str], held: int
) -> None:
    async with start({**fake, "APT_LOCK_WAIT": "60"}, "update", "-qq") as proc:
        end = time.monotonic() + 20
        while len(calls(fake)) < 2:  # refused at least twice: it is waiting, not failing
            assert proc.returncode is None, "gave up while the lock was held"
            assert time.monotonic() < end, "apt-get was not retried"
            await asyncio.sleep(0.1)
        fcntl.flock(held, fcntl.LOCK_UN)  # the other apt-get finishes
        out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err
    assert out.decode().startswith("fake apt-get ran: -o DPkg::Lock::Timeout=")
    assert out.decode().rstrip().endswith("update -qq")
    assert err.decode().count("another apt-get holds the package lock; waiting up to 60 s") == 1


async def test_the_wait_is_bounded(fake: dict[str, str], held: int) -> None:
    started = time.monotonic()
    async with start({**fake, "APT_LOCK_WAIT": "3"}, "install", "-y", "chromium") as proc:
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 100
    assert time.monotonic() - started < 3 + 5
    assert "still held after 3 s" in err.decode()
    assert "Could not get lock" in err.decode()  # apt's own words are kept


async def test_another_failure_returns_at_once(fake: dict[str, str]) -> None:
    async with start({**fake, "FAKE_FAIL": "1"}, "install", "-y", "chromium") as proc:
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 100
    assert "Unable to locate package" in err.decode()
    assert "waiting" not in err.decode()
    assert len(calls(fake)) == 1
