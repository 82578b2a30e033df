"""Launching Chromium and closing it again on every way out, cancellation included."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes.util
import functools
import logging
import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from scraper.browser._driver import api
from scraper.errors import ConfigurationError
from scraper.http import Proxy
from scraper.request import Deadline

if TYPE_CHECKING:  # types only: the runtime import stays inside the functions
    from playwright.async_api import Browser, Playwright


__all__ = ["LANGUAGE", "LAUNCH_ARGS", "has_real_gl"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Without these Chromium keeps calling home (updates, sync, field trials): slow
#: and noisy behind a proxy, and useless for one page.
LAUNCH_ARGS = (
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # What a challenge page reads as automation (PROTOCOL.md, "What a challenge page
    # looks at"), each fixed by the browser's own setting rather than a patched value:
    # navigator.webdriver is true under the driver's --remote-debugging-pipe unless
    # this Blink feature is off.
    "--disable-blink-features=AutomationControlled",
    # A desktop's window and screen. Headless draws no browser UI, yet with the window
    # sized (and no viewport emulation, see _context_options) the page sees
    # outerHeight > innerHeight and a screen larger than the viewport, not 800x600.
    "--window-size=1920,1080",
    "--screen-info={1920x1080}",
)

#: The browser's language: --lang reaches navigator.languages, Accept-Language and
#: workers alike (a context's ``locale`` does not reach workers under either driver).
LANGUAGE = "en-US"

#: A real renderer (Mesa's llvmpipe through EGL) instead of SwiftShader, the software
#: rasteriser only headless hosts show; in the page and in workers alike. The page is
#: composited in software, as Chrome does on a GPU it blocklists: WebGL keeps llvmpipe
#: (the page and its workers read the same renderer), while compositing every frame
#: of the 1920x1080 window through llvmpipe cost about 0.2 s of a cold solve.
_GL_ARGS = (
    "--use-gl=angle",
    "--use-angle=gl-egl",
    "--ignore-gpu-blocklist",
    "--disable-gpu-compositing",
)

#: The OS part of Chrome's reduced User-Agent, per platform.
_UA_PLATFORM = {
    "linux": "X11; Linux x86_64",
    "darwin": "Macintosh; Intel Mac OS X 10_15_7",
    "win32": "Windows NT 10.0; Win64; x64",
}


#: Seconds a close (browser or driver) may take before we stop waiting for it;
#: the driver's exit then takes the browser down with it.
_CLOSE_TIMEOUT = 5.0


@functools.cache
def has_real_gl() -> bool:
    """Whether Mesa's EGL is installed, so WebGL can run on llvmpipe instead of SwiftShader."""
    return sys.platform != "linux" or ctypes.util.find_library("EGL_mesa") is not None


def user_agent_for(major: str | int) -> str:
    """Chrome's own (reduced) User-Agent for a major version: what a person's browser sends."""
    os_part = _UA_PLATFORM.get(sys.platform, _UA_PLATFORM["linux"])
    return (
        f"Mozilla/5.0 ({os_part}) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{major}.0.0.0 Safari/537.36"
    )


_versions: dict[str, str | None] = {}


async def _major_version(executable: str | None, limit: float) -> str | None:
    """The Chromium's major version, from ``--version`` (about 50 ms, once per process).

    Waited for at most ``limit`` seconds (what is left of the caller's timeout); a
    browser that does not answer in time is not remembered as versionless.
    """
    if executable is None:
        return None  # Playwright's own build: its version comes from the driver after launch
    if executable not in _versions:
        found: str | None = None
        try:
            process = await asyncio.create_subprocess_exec(
                executable,
                "--version",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            try:
                out, _ = await asyncio.wait_for(
                    process.communicate(), min(_CLOSE_TIMEOUT, max(limit, 0.0))
                )
            except TimeoutError:
                process.kill()
                await process.wait()
                return None  # too slow this time: the launch, under the same bound, says why
            except asyncio.CancelledError:
                process.kill()  # a dropped probe leaves no process behind (asyncio reaps it)
                raise
            match = re.search(rb"\b(\d{2,4})\.\d+\.\d+\.\d+", out)
            found = match.group(1).decode() if match else None
        except OSError:
            found = None
        _versions[executable] = found
    return _versions[executable]


async def _identity_args(
    executable: str | None, user_agent: str | None, deadline: Deadline
) -> tuple[list[str], str | None]:
    """Launch flags for the User-Agent, the language and WebGL, and the UA they set.

    The UA is the browser's own with ``HeadlessChrome`` read as ``Chrome`` (or the
    one a stored clearance was earned with), set by flag so the page, its workers,
    the HTTP header and the client hints all carry the same one.
    """
    args = [f"--lang={LANGUAGE}"]
    if has_real_gl():
        args.extend(_GL_ARGS)
    if user_agent is None:
        major = await _major_version(executable, deadline.remaining("starting the browser"))
        user_agent = user_agent_for(major) if major else None
    if user_agent is not None:
        args.append(f"--user-agent={user_agent}")
    return args, user_agent


def _probing(
    executable: str | None, user_agent: str | None, deadline: Deadline
) -> asyncio.Future[tuple[list[str], str | None]]:
    """:func:`_identity_args`, started now so it runs while the driver starts.

    The version probe is a process of its own (about 0.1 s, mostly waiting), which
    a cold solve need not add to the driver's start. Refused at once, before
    anything starts, when the deadline is already spent. End it with :func:`_dropped`.
    """
    deadline.remaining("starting the browser")
    return asyncio.ensure_future(_identity_args(executable, user_agent, deadline))


async def _dropped(probe: asyncio.Future[Any]) -> None:
    """A probe nobody awaits any more (an error before it was needed): cancelled, its end read."""
    if not probe.done():
        probe.cancel()
        await asyncio.wait({probe})
    if not probe.cancelled():
        probe.exception()  # read, so asyncio does not log it as never retrieved


def _launch_options(executable: str | None, proxy: Proxy | None) -> dict[str, Any]:
    # PROVIDER_HEADFUL=1: a visible window, for a site whose protection refuses headless.
    headful = os.environ.get("PROVIDER_HEADFUL", "").strip() not in ("", "0")
    options: dict[str, Any] = {"headless": not headful, "args": list(LAUNCH_ARGS)}
    if executable is not None:
        options["executable_path"] = executable
    if proxy is None:
        # No proxy decided (none given, none in the environment, NO_PROXY, or the
        # caller's explicit no-proxy): Chromium on Linux would otherwise read
        # http_proxy/https_proxy/all_proxy itself and go around our decision.
        options["args"].append("--no-proxy-server")
    else:
        if proxy.is_socks and proxy.auth is not None:
            raise ConfigurationError(
                f"the proxy {proxy.redacted} is a SOCKS proxy with a user name and password, "
                "which Chromium cannot use: the browser fallback needs an http:// proxy, or a "
                "SOCKS proxy without authentication"
            )
        # "<-loopback>": Chromium sends loopback traffic around any proxy unless
        # told not to; the plain-HTTP layer sends everything through it, so must this.
        # Chromium's socks5 always resolves names at the proxy: it has no "socks5h".
        url = proxy.url.replace("socks5h://", "socks5://", 1)
        server: dict[str, str] = {"server": url, "bypass": "<-loopback>"}
        if proxy.auth is not None:
            server["username"] = proxy.auth.login
            server["password"] = proxy.auth.password
        options["proxy"] = server
    return options


@contextlib.asynccontextmanager
async def _playwright() -> AsyncIterator[Playwright]:
    """``async with async_playwright()``, with the driver's start and stop shielded
    from cancellation so a cancelled call never leaves the driver (or its browser) running."""
    manager = api().async_playwright()

    async def stop(_: object = None) -> None:
        await _stop_driver(manager)

    playwright = await _start(manager.__aenter__(), stop)
    try:
        yield playwright
    finally:
        await _shielded(stop())


async def _stop_driver(manager: Any) -> None:
    """Stop Playwright's driver (``async_playwright()``'s exit), and make sure its
    Node.js process is gone when this returns.

    Playwright's own stop may return while the driver is still shutting down
    (before 1.65 it did not wait for the process), or give up here after
    ``_CLOSE_TIMEOUT`` under load; either way a driver would outlive the call
    that started it. So its process is waited for within the same bound, then
    killed: the browser it launched was closed before, and a Chromium whose
    driver pipe closes exits by itself.
    """
    process = _driver_process(manager)
    try:
        await asyncio.wait_for(manager.__aexit__(None, None, None), _CLOSE_TIMEOUT)
    finally:
        if process is not None and process.returncode is None:
            try:
                await asyncio.wait_for(asyncio.shield(process.wait()), _CLOSE_TIMEOUT)
            except TimeoutError:
                log.debug("Playwright's driver did not exit: killing it")
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), _CLOSE_TIMEOUT)


def _driver_process(manager: Any) -> asyncio.subprocess.Process | None:
    """The driver's process behind a started ``async_playwright()``, if it can be seen.

    Playwright has no public handle on it; its pipe transport keeps it as
    ``_proc``, held by the manager's ``_client`` (1.65) or ``_connection``
    (before). Read defensively: another transport, or a release that renames
    them, gives None, and the stop then relies on Playwright alone.
    """
    holder = getattr(manager, "_client", None) or getattr(manager, "_connection", None)
    transport = getattr(holder, "_transport", None)
    process = getattr(transport, "_proc", None)
    return process if isinstance(process, asyncio.subprocess.Process) else None


async def _start(starting: Coroutine[Any, Any, T], undo: Callable[[T], Awaitable[None]]) -> T:
    """Await ``starting``; if the caller is cancelled meanwhile, let it finish, undo it, re-raise.

    Cancelling a Playwright call mid-flight does not stop the driver from
    finishing it (a launched browser nobody holds would live until the driver
    exits), so the start runs as its own task and is taken back down.
    """
    task = asyncio.ensure_future(starting)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await _settle(task, _CLOSE_TIMEOUT)
        if task.done() and not task.cancelled() and task.exception() is None:
            await _settle(asyncio.ensure_future(_quietly(undo(task.result()))), _CLOSE_TIMEOUT)
        elif not task.done():
            task.cancel()
        raise


async def _shielded(closing: Coroutine[Any, Any, None]) -> None:
    """Run a cleanup to its end even when the caller is cancelled during it (then re-raise)."""
    task = asyncio.ensure_future(_quietly(closing))
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await _settle(task, _CLOSE_TIMEOUT * 2)
        raise


async def _settle(task: asyncio.Future[Any], patience: float) -> None:
    """Wait up to ``patience`` s for ``task``, sitting out further cancellations of the caller.

    The caller re-raises its CancelledError afterwards: the cancellation is
    delayed by at most ``patience``, never lost.
    """
    loop = asyncio.get_running_loop()
    end = loop.time() + patience
    while not task.done():
        left = end - loop.time()
        if left <= 0:
            log.warning("browser cleanup did not finish within %.0f s", patience)
            return
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait({task}, timeout=left)
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as never retrieved


async def _quietly(closing: Awaitable[None]) -> None:
    """A cleanup step whose failure must not replace the error being raised."""
    try:
        await closing
    except Exception as exc:  # a crashed browser or a dead driver cannot be closed twice
        log.debug("browser cleanup: %s", type(exc).__name__)


async def _close_browser(browser: Browser) -> None:
    await asyncio.wait_for(browser.close(), _CLOSE_TIMEOUT)


async def _context_options(browser: Browser, user_agent: str | None) -> tuple[dict[str, Any], str]:
    """The context: no viewport emulation (the window's own size, see LAUNCH_ARGS), and the
    User-Agent the launch set, returned too since the clearance is bound to it.

    Only when the launch could not set one (Playwright's own Chromium, whose version
    is known after the launch) is it set here, from ``browser.version``.
    """
    options: dict[str, Any] = {"no_viewport": True}
    if user_agent is None:
        user_agent = user_agent_for(browser.version.split(".")[0])
        options["user_agent"] = user_agent
    return options, user_agent
