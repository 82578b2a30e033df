"""One solve: open the page in headless Chromium, pass the challenge, read the credentials."""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scraper.browser._chromium import find_chromium
from scraper.browser._launch import (
    _close_browser,
    _context_options,
    _launch_options,
    _playwright,
    _shielded,
    _start,
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
from scraper.errors import BlockedError, ChallengeError, RateLimitedError, redact_url
from scraper.http import Deadline, Proxy
from scraper.page import read_widget

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
