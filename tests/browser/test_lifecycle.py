"""The browser's life: found, started, cancelled, failed — and never left behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

import sandbox
from scraper.browser import _chromium, find_chromium, solve
from scraper.errors import (
    BrowserError,
    BrowserNotFoundError,
    ConfigurationError,
    ProviderTimeoutError,
)
from scraper.http import Deadline

Procs = Callable[..., set[int]]
WaitFor = Callable[[Callable[[], object], float, str], Awaitable[None]]
pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- cancellation


async def _start_solving(site: sandbox.Site, seconds: float = 30) -> asyncio.Task[object]:
    return asyncio.create_task(
        solve(site.url, site.url + "/chat/", proxy=None, deadline=Deadline(seconds))
    )


@pytest.mark.parametrize("when", ["launching", "on-the-page", "twice"])
async def test_cancelling_the_caller_closes_the_browser(
    when: str,
    chromium: str | None,
    no_leftover_browser: set[int],
    browser_processes: Procs,
    wait_for: WaitFor,
) -> None:
    before = no_leftover_browser
    # no_widget: the solve would wait for the whole deadline, so only a cancel ends it.
    async with sandbox.running(generation="aipkit", challenge=True, no_widget=True) as site:
        task = await _start_solving(site)
        # The first Chromium process shows while Playwright is still launching.
        await wait_for(lambda: browser_processes() - before, 15, "Chromium did not start")
        if when != "launching":
            await wait_for(lambda: site.hits["GET /chat/"] >= 1, 15, "the page never loaded")
        assert not task.done()
        task.cancel()
        if when == "twice":
            # Cancelled again while it is closing the browser: the close still completes.
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await wait_for(
            lambda: not (browser_processes() - before), 5, "Chromium outlived the cancelled call"
        )


async def test_cancelling_while_the_page_loads_closes_the_browser(
    chromium: str | None,
    no_leftover_browser: set[int],
    browser_processes: Procs,
    wait_for: WaitFor,
) -> None:
    before = no_leftover_browser
    # The site holds the page: the request arrived, no reply comes, so the cancel
    # lands while Chromium is still loading it (page.goto in flight).
    async with sandbox.running(generation="aipkit", hold_pages=True) as site:
        task = await _start_solving(site)
        await wait_for(lambda: site.hits["GET /chat/"] >= 1, 30, "the page was never asked for")
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # Checked the moment the call returned: closing is part of the cancel.
        assert not browser_processes() - before, "Chromium outlived the cancelled call"


async def test_cancelling_while_the_driver_starts_leaves_no_driver(
    chromium: str | None,
    no_leftover_browser: set[int],
    browser_processes: Procs,
    wait_for: WaitFor,
) -> None:
    before = no_leftover_browser
    task = asyncio.create_task(
        solve("http://127.0.0.1:9", "http://127.0.0.1:9/", proxy=None, deadline=Deadline(30))
    )
    await wait_for(
        lambda: browser_processes(("run-driver",)) - before, 15, "the driver did not start"
    )
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_for(lambda: not (browser_processes() - before), 5, "the driver outlived the call")


async def test_a_driver_that_outlives_playwrights_stop_is_ended_by_the_call(
    chromium: str | None,
    no_leftover_browser: set[int],
    browser_processes: Procs,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Playwright's stop may return while its Node.js driver still runs (before 1.65
    it did not wait for the process; under load it can give up): the call itself
    must still end the driver. Here the stop returns at once and does nothing."""
    from scraper.browser import _launch
    from scraper.browser._driver import api

    # The driver in use (patchright or Playwright): each has its own manager class.
    manager_class = type(api().async_playwright())

    async def returns_at_once(self: object, *args: object) -> None:
        return None

    monkeypatch.setattr(manager_class, "__aexit__", returns_at_once)
    monkeypatch.setattr(_launch, "_CLOSE_TIMEOUT", 1.0)  # how long it waits before the kill
    async with sandbox.running(generation="aipkit", challenge=True) as site:
        found = await solve(site.url, site.url + "/chat/", proxy=None, deadline=Deadline(60))
        # The very moment the call returns: no driver, no Chromium of ours.
        left = browser_processes() - no_leftover_browser
    assert found.nonce and found.source == "browser"
    assert not left, f"the call returned with these still running: {sorted(left)}"


async def test_an_outer_timeout_closes_the_browser(
    chromium: str | None,
    no_leftover_browser: set[int],
    browser_processes: Procs,
    wait_for: WaitFor,
) -> None:
    async with sandbox.running(generation="legacy", challenge=True, no_widget=True) as site:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(2.5):
                await solve(site.url, site.url + "/chat/", proxy=None, deadline=Deadline(30))
        await wait_for(
            lambda: not (browser_processes() - no_leftover_browser),
            5,
            "Chromium outlived the timed-out call",
        )


async def test_a_browser_crash_mid_solve_is_a_browser_error(
    chromium: str | None,
    no_leftover_browser: set[int],
    browser_processes: Procs,
    wait_for: WaitFor,
) -> None:
    before = no_leftover_browser
    async with sandbox.running(generation="aipkit", challenge=False, no_widget=True) as site:
        task = await _start_solving(site)
        await wait_for(lambda: site.hits["GET /chat/"] >= 1, 15, "the page never loaded")
        # Kill every Chromium process of this solve (ours, by pid): a crash.
        for pid in browser_processes(("chrome", "chromium")) - before:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with pytest.raises(BrowserError) as caught:
            await task
        assert type(caught.value) is BrowserError  # told, not left to the 30 s deadline
        assert "crashed or was closed" in str(caught.value)
        assert caught.value.__cause__ is None


# --------------------------------------------------------------------------- lookup


def test_browser_env_pointing_at_a_missing_file_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PROVIDER_BROWSER", str(tmp_path / "no-such-chromium"))
    with pytest.raises(ConfigurationError) as caught:
        find_chromium()
    assert "PROVIDER_BROWSER" in str(caught.value)


def test_browser_env_pointing_at_a_non_executable_file_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    plain = tmp_path / "chromium"
    plain.write_text("not a program")
    monkeypatch.setenv("PROVIDER_BROWSER", str(plain))
    with pytest.raises(ConfigurationError, match="PROVIDER_BROWSER"):
        find_chromium()


async def test_solve_refuses_a_bad_browser_env_before_starting_anything(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PROVIDER_BROWSER", str(tmp_path / "missing"))
    with pytest.raises(ConfigurationError, match="PROVIDER_BROWSER"):
        await solve("http://127.0.0.1:9", "http://127.0.0.1:9/", proxy=None, deadline=Deadline(5))


def _nothing_installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PROVIDER_BROWSER", raising=False)
    monkeypatch.setattr(
        _chromium, "_playwright_executables", lambda: (tmp_path / "shell", tmp_path / "chrome")
    )
    monkeypatch.setattr(shutil, "which", lambda name: None)


async def test_no_chromium_anywhere_names_the_ways_to_install_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _nothing_installed(monkeypatch, tmp_path)
    with pytest.raises(BrowserNotFoundError) as caught:
        find_chromium()
    message = str(caught.value)
    assert "python -m playwright install chromium" in message
    assert "apt-get install chromium" in message
    assert "PROVIDER_BROWSER=/path" in message
    with pytest.raises(BrowserNotFoundError):
        await solve("http://127.0.0.1:9", "http://127.0.0.1:9/", proxy=None, deadline=Deadline(5))


def test_lookup_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _nothing_installed(monkeypatch, tmp_path)
    system = tmp_path / "system-chromium"
    system.write_text("#!/bin/sh\n")
    system.chmod(0o755)
    monkeypatch.setattr(
        shutil, "which", lambda name: str(system) if name == "google-chrome" else None
    )
    assert find_chromium() == str(system)  # the system's, last resort

    full = tmp_path / "chrome"
    full.write_text("")
    assert find_chromium() == str(full)  # Playwright's full build, passed explicitly

    (tmp_path / "shell").write_text("")
    assert find_chromium() is None  # Playwright's headless shell: Playwright finds it itself

    env = tmp_path / "env-chromium"
    env.write_text("#!/bin/sh\n")
    env.chmod(0o755)
    monkeypatch.setenv("PROVIDER_BROWSER", str(env))
    assert find_chromium() == str(env)  # the variable wins


def test_playwright_registry_path_matches_the_driver() -> None:
    """Our cheap reading of Playwright's registry agrees with the driver's own answer."""
    from playwright.sync_api import sync_playwright

    shell, full = _chromium._playwright_executables()
    with sync_playwright() as p:
        assert str(full) == p.chromium.executable_path
    assert shell is not None and "chromium_headless_shell-" in str(shell)


def test_finding_chromium_starts_no_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Looked up "without starting anything": Playwright's registry is read from its
    files, not asked of its Node.js driver (a process start on every lookup)."""
    started: list[object] = []

    class Recorded(subprocess.Popen):  # type: ignore[type-arg]
        def __init__(self, args: object, *rest: object, **kwargs: object) -> None:
            started.append(args)
            super().__init__(args, *rest, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(subprocess, "Popen", Recorded)
    find_chromium()
    assert started == []


# --------------------------------------------------------------------------- a broken browser


async def test_a_browser_that_cannot_start_is_a_browser_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    broken = tmp_path / "chromium"
    broken.write_text("#!/bin/sh\necho 'cannot open display' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setenv("PROVIDER_BROWSER", str(broken))
    with pytest.raises(BrowserError) as caught:
        await solve(
            "http://127.0.0.1:9", "http://127.0.0.1:9/chat/", proxy=None, deadline=Deadline(20)
        )
    assert type(caught.value) is BrowserError
    assert "could not start" in str(caught.value)
    assert caught.value.__cause__ is None


async def test_a_browser_that_hangs_at_start_times_out(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, wait_for: WaitFor
) -> None:
    stuck = tmp_path / "chromium"
    stuck.write_text("#!/bin/sh\nexec sleep 61.2345\n")
    stuck.chmod(0o755)
    monkeypatch.setenv("PROVIDER_BROWSER", str(stuck))
    started = time.monotonic()
    with pytest.raises(ProviderTimeoutError):
        await solve("http://127.0.0.1:9", "http://127.0.0.1:9/", proxy=None, deadline=Deadline(2))
    assert time.monotonic() - started < 4
    # (the leak check looks for Chromium; this "browser" is a sleep, so look for that)
    await wait_for(lambda: not _processes_running("61.2345"), 5, "the stuck browser outlived")


def _processes_running(marker: str) -> bool:
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                return True
        except OSError:
            continue
    return False


# --------------------------------------------------------------------------- import walls


#: Imported only when needed: the browser, the sandbox (``--sandbox``), the fleet's
#: store, the server's metrics. ``.importlinter`` names each such lazy import.
LAZY = ("playwright", "sandbox", "redis", "prometheus_client")


def test_importing_the_provider_imports_no_lazy_dependency() -> None:
    # No fallback: if `import provider` fails, this test fails with it.
    code = (
        "import sys\n"
        "import provider, provider.store, scraper.obtain, scraper.browser, scraper.inpage\n"
        "import provider.commands.cli, provider.commands.__main__\n"
        "import provider.commands.refresh, provider.commands.health\n"
        "from provider import ChatgptFree\n"
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {LAZY!r})\n"
        "print(ChatgptFree.__name__, loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ChatgptFree []"
