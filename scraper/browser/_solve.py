"""One solve: open the page in headless Chromium, pass the challenge, read the credentials."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scraper.browser._chromium import find_chromium
from scraper.browser._driver import api, driver_name
from scraper.browser._launch import (
    _close_browser,
    _context_options,
    _dropped,
    _launch_options,
    _playwright,
    _probing,
    _shielded,
    _start,
    has_real_gl,
)
from scraper.browser._translate import (
    _from_playwright_cookies,
    _ms,
    _Progress,
    _to_playwright_cookies,
    _translated,
)
from scraper.browser._trust import _trust_home
from scraper.credentials import Cookie, Credentials, credentials_from
from scraper.errors import (
    DETECTED_ADVICE,
    BlockedError,
    BotDetectedError,
    ChallengeError,
    NoChatWidgetError,
    RateLimitedError,
    redact_url,
)
from scraper.http import Deadline, Proxy
from scraper.page import Widget, read_widget

if TYPE_CHECKING:  # types only: the runtime import stays inside the functions
    from playwright.async_api import BrowserContext
    from playwright.async_api import Page as PlaywrightPage


__all__ = ["WIDGET_SELECTOR", "solve"]

log = logging.getLogger(__name__)

#: The widget markup of both generations (PROTOCOL.md, "Page markup"). It shows
#: only once the challenge is passed and the page has reloaded to the real one.
WIDGET_SELECTOR = (
    "div.wpaicg-chat-shortcode, div.wpaicg-chatbox, "
    ".aipkit_chat_container[data-config], .aipkit_popup_wrapper[data-config]"
)

#: What ends the wait for the page, matched by Playwright's selector engine in its
#: isolated world (never in the page's own, where a page script would see our calls):
#: the widget, or the marks of a block or rate-limit page. The page is then told
#: apart in Python (:func:`_page_state`).
_SETTLED_SELECTOR = ", ".join(
    (
        WIDGET_SELECTOR,
        ".cf-error-code",
        "#cf-error-details",
        r':text-matches("error\\s*(code:?\\s*)?10(0[5-9]|1[025]|20)\\b", "i")',
        r'h1:text-matches("^\\s*(access denied|you are being rate limited)\\s*$", "i")',
    )
)

_BLOCK_CODE = re.compile(r"error code:?\s*(1005|1006|1007|1008|1009|1010|1012|1020)\b", re.I)
_RATE_LIMIT = re.compile(r"\berror\s*(code:?\s*)?1015\b|you are being rate limited", re.I)


def _page_state(title: str, code: str, text: str) -> str:
    """``ratelimited: …`` or ``blocked: …`` for a page that is not the widget."""
    title, code = title.strip(), code.strip()
    if code == "1015" or _RATE_LIMIT.search(text):
        return "ratelimited: Cloudflare error 1015"
    if title.startswith(("Access denied", "Attention Required! | Cloudflare")):
        return "blocked: " + title
    if code:
        return "blocked: Cloudflare error " + code
    found = _BLOCK_CODE.search(text)
    return (
        f"blocked: error code {found.group(1)}"
        if found
        else "blocked: " + (title or "Access denied")
    )


async def _settled(page: PlaywrightPage, progress: _Progress, deadline: Deadline) -> None:
    """Wait until the page shows the widget or a block mark, or the challenge comes back.

    Playwright's locator waits in its isolated world and across the challenge's
    reloads; the challenge returning after the browser answered it (seen on the
    navigation responses) ends the wait at once with :class:`BotDetectedError`.
    """
    waiting = asyncio.ensure_future(
        page.locator(_SETTLED_SELECTOR).first.wait_for(state="attached", timeout=_ms(deadline))
    )
    try:
        await asyncio.wait({waiting, progress.refused}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not waiting.done():
            waiting.cancel()
            with contextlib.suppress(BaseException):
                await waiting
    if not waiting.done() or waiting.cancelled():
        raise BotDetectedError(
            f"the bot-protection challenge at {redact_url(page.url)} came back after the "
            "headless browser answered it: the site's bot protection refused the automated "
            f"browser; {DETECTED_ADVICE}"
        )
    waiting.result()


#: A challenge reloads the page once or twice; past this it is looping.
_MAX_RELOADS = 20


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
    probe = _probing(executable, None, deadline)
    progress = _Progress()
    started = time.monotonic()
    home: Path | None = None
    try:
        async with _translated(deadline, progress, url, proxy, cookies):
            home, env = await _trust_home()
            if env is not None:
                launch_options["env"] = env
            creds = await _solve(
                site, url, proxy, deadline, cookies, bot_id, launch_options, probe, progress
            )
    finally:
        await _dropped(probe)
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


async def _solve(
    site: str,
    url: str,
    proxy: Proxy | None,
    deadline: Deadline,
    cookies: Sequence[Cookie],
    bot_id: int | None,
    launch_options: dict[str, Any],
    probe: asyncio.Future[tuple[list[str], str | None]],
    progress: _Progress,
) -> Credentials:
    async with _playwright() as playwright:
        identity, user_agent = await probe  # ran while the driver started
        launch_options["args"].extend(identity)
        log.info(
            "launching headless Chromium (%s, driver %s, WebGL %s)%s to pass the challenge at %s",
            launch_options.get("executable_path", "Playwright's own"),
            driver_name(),
            "on Mesa" if has_real_gl() else "on SwiftShader: no Mesa EGL, a detector sees it",
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
            options, user_agent = await _context_options(browser, user_agent)
            context = await browser.new_context(**options)
            context.set_default_timeout(_ms(deadline))
            await context.add_cookies(_to_playwright_cookies(cookies, site))
            page = await context.new_page()
            return await _read_page(
                page, context, site, url, proxy, deadline, cookies, bot_id, user_agent, progress
            )
        finally:
            await _shielded(_close_browser(browser))


async def _read_page(
    page: PlaywrightPage,
    context: BrowserContext,
    site: str,
    url: str,
    proxy: Proxy | None,
    deadline: Deadline,
    cookies: Sequence[Cookie],
    bot_id: int | None,
    user_agent: str,
    progress: _Progress,
) -> Credentials:
    def on_response(response: Any) -> None:
        # Main-frame documents only: tells "still on the challenge" from "no widget".
        if response.frame is not page.main_frame or not response.request.is_navigation_request():
            return
        progress.last_status = response.status
        with contextlib.suppress(ValueError):
            progress.retry_after = float(response.headers.get("retry-after", ""))
        mitigated = response.headers.get("cf-mitigated", "").lower() == "challenge"
        progress.on_challenge = mitigated
        if mitigated:
            if progress.challenged and not progress.refused.done():
                # The challenge again, after the browser ran it: its answer was refused.
                progress.refused.set_result(None)
            progress.challenged = True
            progress.phase = "still on the bot-protection challenge page"
        else:
            progress.phase = f"the page (HTTP {response.status}) shows no chat widget yet"

    # The main frame's documents, as the page parses and loads them: what wakes _first_look.
    documents: asyncio.Queue[str] = asyncio.Queue()

    def parsed(_: object) -> None:
        documents.put_nowait("domcontentloaded")

    def loaded(_: object) -> None:
        documents.put_nowait("load")

    def gone(_: object) -> None:  # the browser or the page's renderer died: no event will come
        documents.put_nowait("gone")

    page.on("response", on_response)
    page.on("domcontentloaded", parsed)
    page.on("load", loaded)
    page.on("crash", gone)
    page.on("close", gone)
    progress.phase = f"loading {redact_url(url)}"
    t0 = time.monotonic()
    try:
        await page.goto(url, wait_until="commit", timeout=_ms(deadline))
        first = await _first_look(page, progress, documents, bot_id, deadline)
    finally:
        page.remove_listener("domcontentloaded", parsed)
        page.remove_listener("load", loaded)
        page.remove_listener("crash", gone)
        page.remove_listener("close", gone)
    if first is not None:
        widget, page_url = first
    else:
        widget, page_url = await _settled_widget(page, progress, url, bot_id, deadline)
    jar = await context.cookies()
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


async def _first_look(
    page: PlaywrightPage,
    progress: _Progress,
    documents: asyncio.Queue[str],
    bot_id: int | None,
    deadline: Deadline,
) -> tuple[Widget, str] | None:
    """The widget and page URL, read once from the first document past the challenge.

    Woken by the page's own DOMContentLoaded and load events: no polling, and
    nothing read from the challenge's document while its script runs. The page
    is read with one ``content()`` (in the driver's isolated world) and parsed
    here, which under patchright also spares the isolated world a selector wait
    builds per document. None hands over to :func:`_settled_widget`, the general
    wait: a document with no widget by its load (a block page, a widget a script
    adds later), a read a navigation interrupted, a refused challenge, or a
    browser or renderer that died (the general wait then raises the driver's error).
    """
    PlaywrightError = api().Error
    while True:
        event = asyncio.ensure_future(documents.get())
        either: set[asyncio.Future[Any]] = {event, progress.refused}
        try:
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not event.done():
                event.cancel()
        if not event.done() or event.cancelled():
            return None  # the challenge came back: _settled_widget says so
        kind = event.result()
        if kind == "gone":
            return None  # _settled_widget's first call raises what happened
        if progress.on_challenge:
            continue
        try:
            html = await page.content()
        except PlaywrightError:
            return None
        page_url = page.url
        try:
            return await read_widget(html, page_url, bot_id, deadline), page_url
        except NoChatWidgetError:
            if kind == "load":
                return None


async def _settled_widget(
    page: PlaywrightPage,
    progress: _Progress,
    url: str,
    bot_id: int | None,
    deadline: Deadline,
) -> tuple[Widget, str]:
    """Wait for the widget or a block page with Playwright's selector engine, then read it."""
    PlaywrightError = api().Error
    PlaywrightTimeoutError = api().TimeoutError
    reloads = 0
    while True:
        try:
            await _settled(page, progress, deadline)
            if await page.locator(WIDGET_SELECTOR).count():
                html = await page.content()
                page_url = page.url
                break
            code = (
                await page.locator(".cf-error-code").first.text_content(timeout=100)
                if (await page.locator(".cf-error-code").count())
                else ""
            )
            body = (await page.locator("body").first.text_content()) or ""
            state = _page_state(await page.title(), code or "", body[:20000])
        except PlaywrightTimeoutError:
            raise
        except PlaywrightError as exc:
            # The challenge reloading the page destroys the document being read;
            # wait for the next one and look again.
            if page.is_closed() or "closed" in type(exc).__name__.lower():
                raise
            reloads += 1
            if reloads > _MAX_RELOADS:
                raise ChallengeError(
                    f"the challenge at {redact_url(url)} kept reloading the page "
                    f"({_MAX_RELOADS} times) without showing the chat: it cannot be "
                    "passed headless; pass a cf_clearance cookie from a real browser"
                ) from None
            log.debug("page read interrupted (%s), looking again", type(exc).__name__)
            await page.wait_for_load_state("domcontentloaded", timeout=_ms(deadline))
            continue
        kind, _, title = state.partition(": ")
        if kind == "ratelimited":
            raise RateLimitedError(
                f"{redact_url(page.url)} is rate limiting this client ({title}): wait"
                + (f" {progress.retry_after:g} s" if progress.retry_after else "")
                + " before retrying, or use another proxy",
                retry_after=progress.retry_after,
            )
        if not progress.challenged:  # a block from the first page on: as over plain HTTP
            raise BlockedError(
                f"{redact_url(page.url)} shows a hard block page ({title}): a browser does not "
                "help; use another network or proxy"
            )
        # The browser ran the challenge, then met a block page: what was refused is
        # the automated browser, not the network.
        raise BotDetectedError(
            f"{redact_url(page.url)} shows a block page ({title}) to the headless browser: "
            f"the site's bot protection refused the automated browser; {DETECTED_ADVICE}"
        )
    return await read_widget(html, page_url, bot_id, deadline), page_url
