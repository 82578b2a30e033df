"""The headless-Chromium fallback: pass a bot-protection challenge and read the chat credentials.

Plain HTTP (:mod:`scraper.obtain`) comes here only when the site answered with a
challenge. :func:`solve` drives headless Chromium through Playwright's async API:
it opens the page, lets the challenge's own JavaScript earn the clearance cookie
and reload, waits for the chat widget of either plugin generation, and returns
:class:`~scraper.credentials.Credentials` holding the rendered page's nonce, the
browser's cookies and the browser's exact User-Agent (a clearance is bound to
it, so the plain-HTTP layer must send the very same one afterwards).

>>> creds = await solve("https://chatgptfree.ai", "https://chatgptfree.ai/chat/",
...                     proxy=None, deadline=Deadline(60))        # doctest: +SKIP
>>> creds.source, "cf_clearance" in {c.name for c in creds.cookies}  # doctest: +SKIP
('browser', True)

Which Chromium (see :func:`find_chromium`): ``PROVIDER_BROWSER`` (a path to a
Chromium binary), else the one ``python -m playwright install chromium`` put in
Playwright's cache, else the system's (``chromium``, ``chromium-browser``,
``google-chrome``, ``google-chrome-stable`` on ``PATH``).

Process hygiene: the browser is closed on every way out of :func:`solve` —
success, error, timeout, and cancellation of the calling task. Starting the
driver, launching the browser and closing both run as shielded tasks: a
cancellation that lands mid-launch lets the launch finish and then closes what it
started, and a second cancellation during the close does not cut the close short
(it is re-raised once the close is done, within a few seconds).

Playwright is imported here only, and only inside functions, so importing the
scraper or the provider never needs Playwright or a browser.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import os
import platform
import shutil
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from scraper.credentials import Cookie, Credentials
from scraper.errors import (
    BlockedError,
    BrowserError,
    BrowserNotFoundError,
    ChallengeError,
    ConfigurationError,
    NetworkError,
    ProviderError,
    RateLimitedError,
    redact_url,
)
from scraper.http import Deadline, Proxy
from scraper.obtain import credentials_from, read_widget

if TYPE_CHECKING:  # types only: the runtime import stays inside the functions
    from playwright._impl._api_structures import SetCookieParam  # the add_cookies entry type
    from playwright.async_api import Browser, BrowserContext, Playwright
    from playwright.async_api import Page as PlaywrightPage

    from scraper.inpage import PageSession

__all__ = [
    "BROWSER_ENV",
    "LAUNCH_ARGS",
    "SYSTEM_BROWSERS",
    "WIDGET_SELECTOR",
    "find_chromium",
    "solve",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Environment variable naming the Chromium binary to drive.
BROWSER_ENV = "PROVIDER_BROWSER"

#: Names of a system Chromium on ``PATH``, in the order tried.
SYSTEM_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

#: Without these Chromium keeps calling home (updates, sync, field trials): slow
#: and noisy behind a proxy, and useless for one page.
LAUNCH_ARGS = (
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)

#: The widget markup of both generations (PROTOCOL.md, "Page markup"). It shows
#: only once the challenge is passed and the page has reloaded to the real one.
WIDGET_SELECTOR = (
    "div.wpaicg-chat-shortcode, div.wpaicg-chatbox, "
    ".aipkit_chat_container[data-config], .aipkit_popup_wrapper[data-config]"
)

#: What the page shows, checked in the page on every animation frame (so no
#: sleep on our side): the widget, a rate limit (Cloudflare 1015), a hard block
#: (a browser does not help), or ``false`` while a challenge or a half-loaded
#: page is up.
_PAGE_STATE_JS = """(selector) => {
  if (document.querySelector(selector)) return "widget";
  const title = (document.title || "").trim();
  const codeEl = document.querySelector(".cf-error-code");
  const code = codeEl ? (codeEl.textContent || "").trim() : "";
  const text = document.body ? (document.body.textContent || "").slice(0, 20000) : "";
  if (code === "1015" || /\\berror\\s*(code:?\\s*)?1015\\b/i.test(text))
    return "ratelimited: Cloudflare error 1015";
  if (title === "Access denied" || title.startsWith("Access denied |") ||
      title.startsWith("Attention Required! | Cloudflare"))
    return "blocked: " + title;
  if (code) return "blocked: Cloudflare error " + code;
  const found = /error code:?\\s*(1020|1006|1007|1008|1009)\\b/i.exec(text);
  if (found) return "blocked: error code " + found[1];
  return false;
}"""

#: Seconds a close (browser or driver) may take before we stop waiting for it;
#: the driver's exit then takes the browser down with it.
_CLOSE_TIMEOUT = 5.0

#: Seconds of the deadline kept for closing the browser (at most a tenth of it);
#: a close takes about 0.2 s here.
_CLEANUP_RESERVE = 0.5

#: A challenge reloads the page once or twice; past this it is looping.
_MAX_RELOADS = 20

_WHAT = "solving the challenge in the browser"

_INSTALL_HINT = (
    "install one with `python -m playwright install chromium`, or on Debian/Ubuntu "
    "`apt-get install chromium`, or point PROVIDER_BROWSER=/path at a Chromium binary"
)


# ---------------------------------------------------------------------------
# Finding a Chromium
# ---------------------------------------------------------------------------


def find_chromium() -> str | None:
    """The Chromium binary to launch, or ``None`` for Playwright's own install.

    Looked up, without starting anything: ``PROVIDER_BROWSER`` (a path; set but
    not an executable file raises :class:`ConfigurationError`), then the Chromium
    that ``python -m playwright install chromium`` downloaded, then a system one
    on ``PATH``. Raises :class:`BrowserNotFoundError` when there is none.

    >>> find_chromium()  # doctest: +SKIP
    '/usr/bin/chromium'
    """
    configured = os.environ.get(BROWSER_ENV, "").strip()
    if configured:
        path = Path(configured).expanduser()
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
        found = shutil.which(configured) if os.sep not in configured else None
        if found:
            return found
        raise ConfigurationError(
            f"{BROWSER_ENV}={configured!r} is not an executable file: "
            "point it at a Chromium binary (e.g. /usr/bin/chromium) or unset it"
        )
    shell, full = _playwright_executables()
    if shell is not None and shell.is_file():
        return None  # Playwright launches its own headless shell by itself
    if full is not None and full.is_file():
        return str(full)  # only the full build is there: Playwright would look for the shell
    for name in SYSTEM_BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    raise BrowserNotFoundError(
        "no Chromium found for the browser fallback (needed to pass the site's "
        f"bot-protection challenge): {_INSTALL_HINT}"
    )


#: Where Playwright's registry puts its Chromium builds, per platform
#: (playwright-core's EXECUTABLE_PATHS): (headless shell, full Chromium).
_EXECUTABLE_PATHS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "linux-x64": (
        ("chrome-headless-shell-linux64", "chrome-headless-shell"),
        ("chrome-linux64", "chrome"),
    ),
    "linux-arm64": (
        ("chrome-headless-shell-linux-arm64", "chrome-headless-shell"),
        ("chrome-linux-arm64", "chrome"),
    ),
    "mac-x64": (
        ("chrome-headless-shell-mac-x64", "chrome-headless-shell"),
        (
            "chrome-mac-x64",
            "Google Chrome for Testing.app",
            "Contents",
            "MacOS",
            "Google Chrome for Testing",
        ),
    ),
    "mac-arm64": (
        ("chrome-headless-shell-mac-arm64", "chrome-headless-shell"),
        (
            "chrome-mac-arm64",
            "Google Chrome for Testing.app",
            "Contents",
            "MacOS",
            "Google Chrome for Testing",
        ),
    ),
    "win-x64": (
        ("chrome-headless-shell-win64", "chrome-headless-shell.exe"),
        ("chrome-win64", "chrome.exe"),
    ),
}


def _playwright_executables() -> tuple[Path | None, Path | None]:
    """Where Playwright's own headless shell and full Chromium would be, if installed.

    Read from the installed package's ``browsers.json`` and the registry
    directory rules, instead of asking the Node.js driver (which costs a
    process start) — the same answer as ``playwright.chromium.executable_path``.
    """
    spec = importlib.util.find_spec("playwright")
    if spec is None or not spec.submodule_search_locations:
        return None, None
    package_root = Path(next(iter(spec.submodule_search_locations))) / "driver" / "package"
    try:
        described = json.loads((package_root / "browsers.json").read_text("utf-8"))
        revisions = {
            entry["name"]: str(entry["revision"]) for entry in described.get("browsers", [])
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None, None
    tokens = _EXECUTABLE_PATHS.get(_short_platform())
    registry = _registry_dir(package_root)
    if tokens is None or registry is None:
        return None, None
    shell_rev = revisions.get("chromium-headless-shell")
    full_rev = revisions.get("chromium")
    shell = registry / f"chromium_headless_shell-{shell_rev}" / Path(*tokens[0])
    full = registry / f"chromium-{full_rev}" / Path(*tokens[1])
    return (shell if shell_rev else None), (full if full_rev else None)


def _short_platform() -> str:
    arm = platform.machine().lower() in ("arm64", "aarch64")
    if sys.platform.startswith("linux"):
        return "linux-arm64" if arm else "linux-x64"
    if sys.platform == "darwin":
        return "mac-arm64" if arm else "mac-x64"
    if sys.platform == "win32":
        return "win-x64"
    return "<unknown>"


def _registry_dir(package_root: Path) -> Path | None:
    configured = os.environ.get("PLAYWRIGHT_BROWSERS_PATH")
    if configured == "0":
        return package_root / ".local-browsers"
    if configured:
        return Path(configured).resolve()
    home = Path.home()
    if sys.platform.startswith("linux"):
        cache = Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache")
    elif sys.platform == "darwin":
        cache = home / "Library" / "Caches"
    elif sys.platform == "win32":
        cache = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
    else:
        return None
    return cache / "ms-playwright"


# ---------------------------------------------------------------------------
# Solving
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Progress:
    """Where a solve is, for the timeout message and the timings in the log."""

    phase: str = "starting the browser"
    launched_in: float | None = None
    last_status: int | None = None
    retry_after: float | None = None
    challenged: bool = False


async def solve(
    site: str,
    url: str,
    *,
    proxy: Proxy | None,
    deadline: Deadline,
    cookies: Sequence[Cookie] = (),
    bot_id: int | None = None,
) -> Credentials:
    """Open ``url`` in headless Chromium, pass the challenge, and read the chat credentials.

    ``site`` is the origin the credentials are for, ``cookies`` the caller's
    (put in the browser before the page loads; returned only when the site
    changed them). Everything, launch included, sits under ``deadline``.

    Raises :class:`BlockedError` (hard block page), :class:`RateLimitedError`,
    :class:`ProviderTimeoutError`
    (the widget did not show in time, e.g. the challenge never passed),
    :class:`NoChatWidgetError`, :class:`NetworkError`, :class:`BrowserError`,
    :class:`BrowserNotFoundError` or :class:`ConfigurationError`.
    """
    # Everything that can be refused without starting a process is refused first.
    executable = find_chromium()
    launch_options = _launch_options(executable, proxy)
    progress = _Progress()
    started = time.monotonic()
    home: Path | None = None
    try:
        async with _translated(deadline, progress, url, proxy, cookies):
            home, env = await _trust_home()
            if env is not None:
                launch_options["env"] = env
            creds = await _solve(
                site, url, proxy, deadline, cookies, bot_id, launch_options, progress
            )
    finally:
        if home is not None:  # after the browser closed: it reads its HOME to the end
            shutil.rmtree(home, ignore_errors=True)
    log.info(
        "challenge at %s solved in the browser in %.2f s (launch %.2f s), %s generation",
        site,
        time.monotonic() - started,
        progress.launched_in or 0.0,
        creds.generation,
    )
    return creds


@contextlib.asynccontextmanager
async def _translated(
    deadline: Deadline,
    progress: _Progress,
    url: str,
    proxy: Proxy | None,
    cookies: Sequence[Cookie],
) -> AsyncIterator[None]:
    """Run a browser step under the deadline (minus the time closing needs) and turn
    Playwright's errors into the project's, with no secret in the text."""
    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import TimeoutError as PlaywrightTimeoutError

    remaining = deadline.remaining(_WHAT)
    # Stop waiting a little early, so closing the browser fits in the budget too.
    budget = remaining - min(_CLEANUP_RESERVE, remaining * 0.1)
    try:
        async with asyncio.timeout(budget):
            yield
    except ProviderError:
        raise
    except (TimeoutError, PlaywrightTimeoutError):
        raise deadline.error(f"{_WHAT} ({progress.phase})") from None
    except PlaywrightError as exc:
        raise _translate(exc, progress, url, proxy, cookies) from None
    except OSError as exc:  # the Node.js driver could not start
        raise BrowserError(
            f"the Playwright driver could not start ({type(exc).__name__}: {exc.strerror or exc}): "
            "reinstall playwright (pip install --force-reinstall playwright)"
        ) from None
    except Exception as exc:
        # Playwright raises a bare Exception when its driver dies ("Connection
        # closed while reading from the driver"); anything else is a bug: let it be.
        if type(exc) is not Exception:
            raise
        raise BrowserError(
            f"the Playwright driver failed while {progress.phase}: "
            f"{_scrub(str(exc), proxy, cookies)[:300]}; retry, or reinstall playwright"
        ) from None


def _launch_options(executable: str | None, proxy: Proxy | None) -> dict[str, Any]:
    options: dict[str, Any] = {"headless": True, "args": list(LAUNCH_ARGS)}
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


async def _solve(
    site: str,
    url: str,
    proxy: Proxy | None,
    deadline: Deadline,
    cookies: Sequence[Cookie],
    bot_id: int | None,
    launch_options: dict[str, Any],
    progress: _Progress,
) -> Credentials:
    async with _playwright() as playwright:
        log.info(
            "launching headless Chromium (%s)%s to pass the challenge at %s",
            launch_options.get("executable_path", "Playwright's own"),
            f" through {proxy.redacted}" if proxy else "",
            site,
        )
        t0 = time.monotonic()
        browser = await _start(
            playwright.chromium.launch(**launch_options, timeout=_ms(deadline)), _close_browser
        )
        try:
            progress.launched_in = time.monotonic() - t0
            log.debug("Chromium %s up in %.2f s", browser.version, progress.launched_in)
            context = await browser.new_context(**await _context_options(browser))
            context.set_default_timeout(_ms(deadline))
            await context.add_cookies(_to_playwright_cookies(cookies, site))
            page = await context.new_page()
            return await _read_page(
                page, context, site, url, proxy, deadline, cookies, bot_id, progress
            )
        finally:
            await _shielded(_close_browser(browser))


@contextlib.asynccontextmanager
async def _playwright() -> AsyncIterator[Playwright]:
    """``async with async_playwright()``, with the driver's start and stop shielded
    from cancellation so a cancelled call never leaves the driver (or its browser) running."""
    from playwright.async_api import async_playwright

    manager = async_playwright()

    async def stop(_: object = None) -> None:
        await asyncio.wait_for(manager.__aexit__(None, None, None), _CLOSE_TIMEOUT)

    playwright = await _start(manager.__aenter__(), stop)
    try:
        yield playwright
    finally:
        await _shielded(stop())


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


async def _context_options(browser: Browser) -> dict[str, Any]:
    """Announce the browser as ``Chrome``, not ``HeadlessChrome``: the latter is a
    bot flag. The page then reports that same UA, which is what we hand back
    (the clearance is bound to it), so both sides stay consistent."""
    options: dict[str, Any] = {"locale": "en-US"}
    try:
        session = await browser.new_browser_cdp_session()
        try:
            version = await session.send("Browser.getVersion")
        finally:
            await session.detach()
    except Exception as exc:  # no CDP (not Chromium): keep the browser's own UA
        log.debug("could not read the browser's User-Agent: %s", type(exc).__name__)
        return options
    user_agent = str(version.get("userAgent", ""))
    if "HeadlessChrome/" in user_agent:
        options["user_agent"] = user_agent.replace("HeadlessChrome/", "Chrome/")
    return options


async def _read_page(
    page: PlaywrightPage,
    context: BrowserContext,
    site: str,
    url: str,
    proxy: Proxy | None,
    deadline: Deadline,
    cookies: Sequence[Cookie],
    bot_id: int | None,
    progress: _Progress,
) -> Credentials:
    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import Response
    from playwright.async_api import TimeoutError as PlaywrightTimeoutError

    def on_response(response: Response) -> None:
        # Main-frame documents only: tells "still on the challenge" from "no widget".
        if response.frame is not page.main_frame or not response.request.is_navigation_request():
            return
        progress.last_status = response.status
        with contextlib.suppress(ValueError):
            progress.retry_after = float(response.headers.get("retry-after", ""))
        mitigated = response.headers.get("cf-mitigated", "").lower() == "challenge"
        if mitigated:
            progress.challenged = True
            progress.phase = "still on the bot-protection challenge page"
        else:
            progress.phase = f"the page (HTTP {response.status}) shows no chat widget yet"

    page.on("response", on_response)
    progress.phase = f"loading {redact_url(url)}"
    t0 = time.monotonic()
    await page.goto(url, wait_until="commit", timeout=_ms(deadline))

    reloads = 0
    while True:
        try:
            handle = await page.wait_for_function(
                _PAGE_STATE_JS, arg=WIDGET_SELECTOR, timeout=_ms(deadline), polling="raf"
            )
            state = await handle.json_value()
            if state == "widget":
                html = await page.content()
                page_url = page.url
                break
        except PlaywrightTimeoutError:
            raise
        except PlaywrightError as exc:
            # The challenge reloading the page destroys the context the check runs
            # in; wait for the next document and look again.
            if page.is_closed() or "closed" in type(exc).__name__.lower():
                raise
            reloads += 1
            if reloads > _MAX_RELOADS:
                raise ChallengeError(
                    f"the challenge at {redact_url(url)} kept reloading the page "
                    f"({_MAX_RELOADS} times) without showing the chat: it cannot be "
                    "passed headless; pass a cf_clearance cookie from a real browser"
                ) from None
            log.debug("page state check interrupted (%s), looking again", type(exc).__name__)
            await page.wait_for_load_state("domcontentloaded", timeout=_ms(deadline))
            continue
        kind, _, title = str(state).partition(": ")
        if kind == "ratelimited":
            raise RateLimitedError(
                f"{redact_url(page.url)} is rate limiting this client ({title}): wait"
                + (f" {progress.retry_after:g} s" if progress.retry_after else "")
                + " before retrying, or use another proxy",
                retry_after=progress.retry_after,
            )
        raise BlockedError(
            f"{redact_url(page.url)} shows a hard block page ({title}): a browser does not "
            "help; use another network or proxy"
        )

    widget = await read_widget(html, page_url, bot_id, deadline)
    jar = await context.cookies()
    user_agent = str(await page.evaluate("navigator.userAgent"))
    log.debug(
        "widget shown %.2f s after navigation%s",
        time.monotonic() - t0,
        " (challenge passed)" if progress.challenged else "",
    )
    return credentials_from(
        widget,
        site=site,
        page_url=page_url,
        cookies=_from_playwright_cookies(jar, cookies),
        user_agent=user_agent,
        source="browser",
        proxy=proxy,
    )


# ---------------------------------------------------------------------------
# A browser kept open on the chat page: the browser transport
# ---------------------------------------------------------------------------


class LivePage:
    """Headless Chromium kept open on a site's chat page, carrying the chat itself.

    For sites whose clearance will not travel to plain HTTP (bound to the
    browser's TLS fingerprint or HTTP version): :meth:`open` launches Chromium,
    loads the chat page (passing a challenge the way :func:`solve` does) and
    reads the credentials from it; :meth:`session` then runs the protocols'
    requests in that page (:class:`scraper.inpage.PageSession`), any number at
    once. Whoever opens one must :meth:`close` it — ``provider`` does, at the end
    of a call or of a warm-browser block.

    >>> live = await LivePage.open(site, url, proxy=None, deadline=Deadline(60))  # doctest: +SKIP
    >>> try:
    ...     async with live.session().post(live.credentials.ajax_url, data=form) as reply: ...
    ... finally:
    ...     await live.close()
    """

    def __init__(
        self,
        site: str,
        url: str,
        proxy: Proxy | None,
        cookies: Sequence[Cookie],
        callers: Sequence[Cookie],
        bot_id: int | None,
    ) -> None:
        from scraper.inpage import Requests

        self.site = site
        self.url = url
        self.proxy = proxy
        self.requests = Requests()
        self._cookies = tuple(cookies)
        self._callers = tuple(callers)
        self._bot_id = bot_id
        self._credentials: Credentials | None = None
        self._stop: Callable[[], Coroutine[Any, Any, None]] | None = None
        self._browser: Browser | None = None
        self._context: BrowserContext | None = None
        self._page: PlaywrightPage | None = None
        self._retired: list[PlaywrightPage] = []
        self._reloading: asyncio.Lock | None = None
        self._home: Path | None = None
        self.opened_at = time.monotonic()

    @classmethod
    async def open(
        cls,
        site: str,
        url: str,
        *,
        proxy: Proxy | None,
        deadline: Deadline,
        cookies: Sequence[Cookie] = (),
        caller_cookies: Sequence[Cookie] = (),
        user_agent: str | None = None,
        bot_id: int | None = None,
    ) -> LivePage:
        """Launch Chromium on ``url`` and read the credentials from the page, under ``deadline``.

        ``cookies`` (a stored clearance among them) and ``caller_cookies`` go in
        before the page loads; the caller's are not part of the credentials read
        back (unless the site changed them). ``user_agent``, when given, is the
        one the clearance was earned with. Raises what :func:`solve` raises;
        nothing is left running on failure.
        """
        executable = find_chromium()
        options = _launch_options(executable, proxy)
        names = {c.name for c in caller_cookies}
        given = [c for c in cookies if c.name not in names] + list(caller_cookies)
        live = cls(site, url, proxy, given, caller_cookies, bot_id)
        progress = _Progress()
        try:
            async with _translated(deadline, progress, url, proxy, cookies):
                live._home, env = await _trust_home()
                if env is not None:
                    options["env"] = env
                await live._launch(options, deadline, user_agent, progress)
                await live._load(deadline, progress)
        except BaseException:
            await _shielded(live.close())
            raise
        log.info(
            "browser transport for %s ready in %.2f s (launch %.2f s)",
            site,
            time.monotonic() - live.opened_at,
            progress.launched_in or 0.0,
        )
        return live

    @property
    def credentials(self) -> Credentials:
        """What the page showed when it was last (re)loaded, marked for the browser transport."""
        assert self._credentials is not None, "LivePage.open() sets them"
        return self._credentials

    @property
    def alive(self) -> bool:
        """False once the browser crashed, disconnected or was closed."""
        return (
            self._browser is not None
            and self._browser.is_connected()
            and self._page is not None
            and not self._page.is_closed()
            and self.requests.failure is None
        )

    def session(self) -> PageSession:
        """A carrier for the protocols: requests run in the page with its fetch."""
        from scraper.inpage import PageSession

        assert self._page is not None, "LivePage.open() opens the page"
        return PageSession(self._page, self.requests, self.site)

    async def reload(self, deadline: Deadline, seen: Credentials) -> Credentials:
        """Fresh credentials from a freshly loaded page (a rejected nonce, a new challenge).

        Loaded in a new tab, so requests still streaming in the old one finish;
        concurrent callers that saw the same credentials share one reload.
        """
        if self._reloading is None:
            self._reloading = asyncio.Lock()
        async with self._reloading:
            if self._credentials is not seen:
                return self.credentials
            progress = _Progress()
            async with _translated(deadline, progress, self.url, self.proxy, self._cookies):
                await self._load(deadline, progress)
            return self.credentials

    async def close(self) -> None:
        """Close the browser and its driver; safe to call twice, and from a cancelled task."""
        from scraper.errors import BrowserError

        self.requests.fail_all(BrowserError("the browser transport was closed"))
        browser, self._browser = self._browser, None
        stop, self._stop = self._stop, None
        home, self._home = self._home, None
        try:
            if browser is not None:
                await _shielded(_close_browser(browser))
        finally:
            try:
                if stop is not None:
                    await _shielded(stop())
            finally:
                if home is not None:
                    shutil.rmtree(home, ignore_errors=True)

    async def _launch(
        self,
        options: dict[str, Any],
        deadline: Deadline,
        user_agent: str | None,
        progress: _Progress,
    ) -> None:
        from playwright.async_api import async_playwright

        from scraper.errors import BrowserError
        from scraper.inpage import BINDING

        manager = async_playwright()

        async def stop(_: object = None) -> None:
            await asyncio.wait_for(manager.__aexit__(None, None, None), _CLOSE_TIMEOUT)

        playwright = await _start(manager.__aenter__(), stop)
        self._stop = stop
        t0 = time.monotonic()
        browser = await _start(
            playwright.chromium.launch(**options, timeout=_ms(deadline)), _close_browser
        )
        self._browser = browser
        progress.launched_in = time.monotonic() - t0
        requests = self.requests
        browser.on(
            "disconnected",
            lambda _: requests.fail_all(BrowserError("the browser transport's Chromium exited")),
        )
        context_options = (
            {"locale": "en-US", "user_agent": user_agent}
            if user_agent
            else await _context_options(browser)
        )
        self._context = await browser.new_context(**context_options)
        await self._context.add_cookies(_to_playwright_cookies(self._cookies, self.site))
        await self._context.expose_binding(BINDING, requests.push)

    async def _load(self, deadline: Deadline, progress: _Progress) -> None:
        from dataclasses import replace

        from scraper.errors import BrowserError

        assert self._context is not None
        self._context.set_default_timeout(_ms(deadline))
        page = await self._context.new_page()
        requests = self.requests
        page.on(
            "crash",
            lambda _: requests.fail_all(BrowserError("the browser transport's page crashed")),
        )
        creds = await _read_page(
            page,
            self._context,
            self.site,
            self.url,
            self.proxy,
            deadline,
            self._callers,
            self._bot_id,
            progress,
        )
        old, self._page = self._page, page
        if old is not None:
            self._retired.append(old)
        self._credentials = replace(creds, transport="browser")


async def _trust_home() -> tuple[Path | None, dict[str, str] | None]:
    """A throwaway HOME whose NSS database trusts what ``SSL_CERT_FILE`` adds to the system's.

    Chromium on Linux reads its trust from ``$HOME/.pki/nssdb``, not from
    OpenSSL's ``SSL_CERT_FILE`` that plain HTTP honours; without this the
    browser would refuse a site plain HTTP trusts (a corporate or test CA).
    Only certificates the system bundle lacks are added (the system's are
    trusted already). ``(None, None)`` when there is nothing to add.
    """
    cafile = os.environ.get("SSL_CERT_FILE", "").strip()
    if not cafile:
        return None, None
    extra = await asyncio.to_thread(_extra_certificates, cafile)
    if not extra:
        return None, None
    certutil = shutil.which("certutil")
    if certutil is None:
        raise BrowserError(
            f"SSL_CERT_FILE={cafile} holds certificates the browser must trust too, and "
            "certutil is missing to give them to Chromium: install it (Debian/Ubuntu: "
            "apt-get install libnss3-tools; bash scripts/setup does)"
        )
    return await asyncio.to_thread(_nss_home, certutil, extra)


def _pem_blocks(text: str) -> list[str]:
    import re

    return re.findall(
        r"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----", text
    )


def _extra_certificates(cafile: str) -> list[str]:
    import ssl

    try:
        given = _pem_blocks(Path(cafile).read_text("ascii", errors="replace"))
    except OSError as exc:
        raise ConfigurationError(
            f"SSL_CERT_FILE={cafile} cannot be read ({type(exc).__name__}): fix or unset it"
        ) from None
    system = ssl.get_default_verify_paths().openssl_cafile
    known: set[str] = set()
    if system and os.path.abspath(system) != os.path.abspath(cafile):
        with contextlib.suppress(OSError):
            known = {"".join(b.split()) for b in _pem_blocks(Path(system).read_text("ascii"))}
    elif system:
        return []  # SSL_CERT_FILE is the system bundle itself
    return [b for b in given if "".join(b.split()) not in known]


def _nss_home(certutil: str, pems: list[str]) -> tuple[Path, dict[str, str]]:
    import subprocess
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="provider-browser-home-"))
    try:
        db = home / ".pki" / "nssdb"
        db.mkdir(parents=True, mode=0o700)
        nss = f"sql:{db}"

        def run(*args: str) -> None:
            subprocess.run([certutil, *args], check=True, capture_output=True, timeout=20)

        run("-N", "-d", nss, "--empty-password")
        for i, pem in enumerate(pems):
            pem_file = home / f"ca-{i}.pem"
            pem_file.write_text(pem + "\n", "ascii")
            # "C,,": a CA trusted to issue server certificates, nothing more.
            run("-A", "-d", nss, "-n", f"provider-ca-{i}", "-t", "C,,", "-a", "-i", str(pem_file))
    except (OSError, subprocess.SubprocessError) as exc:
        shutil.rmtree(home, ignore_errors=True)
        raise BrowserError(
            f"could not give SSL_CERT_FILE's certificates to the browser ({type(exc).__name__}); "
            "check the file holds PEM certificates"
        ) from None
    log.debug("browser trusts %d certificate(s) from SSL_CERT_FILE", len(pems))
    return home, {**os.environ, "HOME": str(home)}


def _ms(deadline: Deadline) -> float:
    """What is left of the budget, as a Playwright timeout (where 0 would mean "none")."""
    return max(1.0, deadline.remaining(_WHAT) * 1000.0)


_SAME_SITE: dict[str, Literal["Strict", "Lax", "None"]] = {
    "strict": "Strict",
    "lax": "Lax",
    "none": "None",
}


def _to_playwright_cookies(cookies: Sequence[Cookie], site: str) -> list[SetCookieParam]:
    now = time.time()
    out: list[SetCookieParam] = []
    for cookie in cookies:
        if cookie.expired(now):
            continue
        entry: SetCookieParam = {
            "name": cookie.name,
            "value": cookie.value,
            "httpOnly": cookie.http_only,
            "secure": cookie.secure,
        }
        if cookie.domain:
            entry["domain"] = cookie.domain
            entry["path"] = cookie.path or "/"
        else:  # host-only: bound to the site's own host
            entry["url"] = site.rstrip("/") + (cookie.path or "/")
        if cookie.expires is not None:
            entry["expires"] = cookie.expires
        same_site = _SAME_SITE.get((cookie.same_site or "").lower())
        # Chromium refuses SameSite=None on a cookie that is not Secure.
        if same_site is not None and (same_site != "None" or cookie.secure):
            entry["sameSite"] = same_site
        out.append(entry)
    return out


def _from_playwright_cookies(jar: Sequence[Any], given: Sequence[Cookie]) -> tuple[Cookie, ...]:
    """The browser's cookies as :class:`Cookie` values, minus the caller's own
    (unchanged ones are the caller's to keep, as on the plain-HTTP path)."""
    unchanged = {(c.name, c.value) for c in given}
    found: dict[tuple[str, str, str], Cookie] = {}
    for raw in jar:
        name, value = str(raw.get("name", "")), str(raw.get("value", ""))
        if not name or (name, value) in unchanged:
            continue
        expires = raw.get("expires")
        cookie = Cookie(
            name=name,
            value=value,
            domain=str(raw.get("domain", "")),
            path=str(raw.get("path") or "/"),
            expires=float(expires) if isinstance(expires, int | float) and expires >= 0 else None,
            secure=bool(raw.get("secure", False)),
            http_only=bool(raw.get("httpOnly", False)),
            same_site=str(raw["sameSite"]) if raw.get("sameSite") else None,
        )
        found[(cookie.name, cookie.domain, cookie.path)] = cookie
    return tuple(found.values())


def _translate(
    exc: Exception,
    progress: _Progress,
    url: str,
    proxy: Proxy | None,
    cookies: Sequence[Cookie],
) -> ProviderError:
    """A Playwright error as one of ours, with no secret in the text."""
    kind = type(exc).__name__
    message = getattr(exc, "message", None) or str(exc)
    first = _scrub(message.strip().splitlines()[0] if message.strip() else kind, proxy, cookies)
    if len(first) > 300:
        first = first[:300] + "…"
    if progress.launched_in is None:
        return BrowserError(
            f"headless Chromium could not start ({kind}: {first}): check that the browser "
            f"runs on this machine, or {_INSTALL_HINT}"
        )
    if "net::ERR_" in message:
        code = message[message.index("net::ERR_") :].split()[0]
        if proxy is not None and ("PROXY" in code or "TUNNEL" in code):
            return NetworkError(
                f"the browser could not reach {redact_url(url)} through the proxy "
                f"{proxy.redacted} ({code}): check the proxy address and credentials"
            )
        via = f" through {proxy.redacted}" if proxy else ""
        return NetworkError(
            f"the browser could not load {redact_url(url)}{via} ({code}): "
            "check the network, the site URL and the proxy"
        )
    return BrowserError(
        f"headless Chromium failed while {progress.phase} ({kind}: {first}): "
        "the browser crashed or was closed; retry"
    )


def _scrub(text: str, proxy: Proxy | None, cookies: Sequence[Cookie]) -> str:
    if proxy is not None:
        text = text.replace(proxy.raw, proxy.redacted)
        if proxy.auth is not None and proxy.auth.password:
            text = text.replace(proxy.auth.password, "***")
    for cookie in cookies:
        if len(cookie.value) >= 4:
            text = text.replace(cookie.value, "***")
    return text
