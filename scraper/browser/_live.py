"""A browser kept open on the chat page: the browser transport."""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scraper.browser._chromium import find_chromium
from scraper.browser._driver import api
from scraper.browser._launch import (
    _close_browser,
    _context_options,
    _dropped,
    _launch_options,
    _probing,
    _shielded,
    _start,
    _stop_driver,
)
from scraper.browser._solve import _read_page
from scraper.browser._translate import _ms, _Progress, _to_playwright_cookies, _translated
from scraper.browser._trust import _trust_home
from scraper.credentials import Cookie, Credentials
from scraper.http import Deadline, Proxy

if TYPE_CHECKING:  # types only: the runtime import stays inside the functions
    from playwright.async_api import Browser, BrowserContext
    from playwright.async_api import Page as PlaywrightPage

    from scraper.inpage import PageSession

__all__ = ["LivePage"]

log = logging.getLogger(__name__)


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
        self._user_agent = ""
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
        probe = _probing(executable, user_agent, deadline)
        names = {c.name for c in caller_cookies}
        given = [c for c in cookies if c.name not in names] + list(caller_cookies)
        live = cls(site, url, proxy, given, caller_cookies, bot_id)
        progress = _Progress()
        try:
            async with _translated(deadline, progress, url, proxy, cookies):
                live._home, env = await _trust_home()
                if env is not None:
                    options["env"] = env
                await live._launch(options, deadline, probe, progress)
                await live._load(deadline, progress)
        except BaseException:
            await _shielded(live.close())
            raise
        finally:
            await _dropped(probe)
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
        probe: asyncio.Future[tuple[list[str], str | None]],
        progress: _Progress,
    ) -> None:
        from scraper.errors import BrowserError

        manager = api().async_playwright()

        async def stop(_: object = None) -> None:
            await _stop_driver(manager)

        playwright = await _start(manager.__aenter__(), stop)
        self._stop = stop
        identity, user_agent = await probe  # ran while the driver started
        options["args"].extend(identity)
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
        context_options, self._user_agent = await _context_options(browser, user_agent)
        self._context = await browser.new_context(**context_options)
        await self._context.add_cookies(_to_playwright_cookies(self._cookies, self.site))

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
            self._user_agent,
            progress,
        )
        old, self._page = self._page, page
        if old is not None:
            self._retired.append(old)
        self._credentials = replace(creds, transport="browser")
