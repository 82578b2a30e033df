"""Fixtures for the headless-Chromium tests: a browser or a skip, and a leak check.

Every test here is checked at teardown for Chromium processes it left behind.
A process counts as ours when its parent chain leads to this test process, or
when it carries this session's marker in its environment (children inherit
the environment, so the marker also finds a Chromium that was orphaned and
re-parented to init after its driver died).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from scraper.browser import find_chromium
from scraper.errors import ProviderError

MARK_ENV = "SCRAPER_BROWSER_TEST_MARK"
_MARK = f"{MARK_ENV}={uuid.uuid4().hex}".encode()
os.environ[MARK_ENV] = _MARK.split(b"=", 1)[1].decode()

_BROWSER_WORDS = ("chrome", "chromium", "headless_shell", "headless-shell")
#: Playwright's Node.js driver (``node …/cli.js run-driver``), which must go too.
_DRIVER_WORDS = ("run-driver",)

#: How long a test may take to see its processes go after the call returned.
SETTLE_SECONDS = 5.0


def _stat(pid: int) -> tuple[str, str, int] | None:
    """(comm, state, ppid) of ``pid``, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    state, ppid = raw[raw.rindex(")") + 2 :].split()[:2]
    return comm, state, int(ppid)


def list_browser_processes(words: tuple[str, ...] = _BROWSER_WORDS + _DRIVER_WORDS) -> set[int]:
    """Live (not zombie) Chromium and Playwright-driver processes started by this test process."""
    me = os.getpid()
    table: dict[int, tuple[str, str, int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (info := _stat(int(entry))) is not None:
            table[int(entry)] = info
    found: set[int] = set()
    for pid, (comm, state, _) in table.items():
        if pid == me or state in ("Z", "X"):
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        text = (comm + " " + cmdline.decode(errors="replace")).lower()
        if not any(word in text for word in words):
            continue
        if _descends_from(pid, me, table) or _marked(pid):
            found.add(pid)
    return found


def _descends_from(pid: int, ancestor: int, table: dict[int, tuple[str, str, int]]) -> bool:
    seen: set[int] = set()
    while pid in table and pid not in seen:
        seen.add(pid)
        pid = table[pid][2]
        if pid == ancestor:
            return True
    return False


def _marked(pid: int) -> bool:
    try:
        return _MARK in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


async def wait_until(condition: Callable[[], object], seconds: float, what: str) -> None:
    """Await ``condition()`` becoming true, polling for at most ``seconds``."""
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"{what}: not within {seconds} s")
        await asyncio.sleep(0.02)


@pytest.fixture(autouse=True)
def no_leftover_browser() -> Iterator[set[int]]:
    """Fail the test if a Chromium (or driver) process it started is still alive after it."""
    before = list_browser_processes()
    yield before
    end = time.monotonic() + SETTLE_SECONDS
    left = list_browser_processes() - before
    while left and time.monotonic() < end:
        time.sleep(0.05)
        left = list_browser_processes() - before
    assert not left, f"Chromium processes left behind: {sorted(left)}"


@pytest.fixture
def browser_processes() -> Callable[..., set[int]]:
    """``browser_processes(words=...)``: this test process's live Chromium/driver pids."""
    return list_browser_processes


@pytest.fixture
def wait_for() -> Callable[[Callable[[], object], float, str], Awaitable[None]]:
    """``await wait_for(condition, seconds, what)``: a bounded poll, failing the test past it."""
    return wait_until


@pytest.fixture(scope="session")
def chromium() -> str | None:
    """The Chromium the tests drive (``None``: Playwright's own), or skip."""
    try:
        return find_chromium()
    except ProviderError as exc:
        pytest.skip(f"no Chromium to drive: {exc}")


@pytest.fixture
def browser_launches(
    chromium: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[], int]:
    """Count real Chromium launches: ``PROVIDER_BROWSER`` becomes a wrapper that notes
    each start in a file, then execs the Chromium the tests drive. Returns a counter."""
    from scraper.browser._chromium import _playwright_executables

    real = chromium or str(_playwright_executables()[0])
    log = tmp_path / "launches.log"
    wrapper = tmp_path / "counted-chromium"
    # `--version` (the User-Agent is derived from it) is a look, not a launch.
    wrapper.write_text(
        f'#!/bin/sh\n[ "$1" = --version ] || echo launch >> "{log}"\nexec "{real}" "$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("PROVIDER_BROWSER", str(wrapper))
    return lambda: log.read_text().count("launch") if log.exists() else 0
