"""Getting fresh credentials out of a site: plain HTTP first, the browser only for a challenge."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

from scraper.credentials import Cookie, Credentials, credentials_from
from scraper.errors import NoChatWidgetError
from scraper.http import (
    DEFAULT_USER_AGENT,
    Deadline,
    Page,
    PoolConfig,
    Proxy,
    borrow,
    fetch_page,
)
from scraper.page import Widget, read_widget
from scraper.verdict import verdict

__all__ = ["BrowserMode", "obtain"]

log = logging.getLogger(__name__)

BrowserMode = Literal["auto", "never", "always"]


async def obtain(
    site: str,
    page_urls: Sequence[str],
    *,
    proxy: Proxy | None,
    deadline: Deadline,
    cookies: Sequence[Cookie] = (),
    browser: BrowserMode = "auto",
    bot_id: int | None = None,
    user_agent: str = DEFAULT_USER_AGENT,
    pool: PoolConfig | None = None,
) -> Credentials:
    """Fresh credentials for ``site``, read from the first of ``page_urls`` that holds a widget.

    ``cookies`` are the caller's: sent with the page request, not stored.
    ``pool`` picks the kept-alive connections the page is fetched on (the
    chats' own, so the page's connection is reused by the first chat).
    Raises NoChatWidgetError, BlockedError, RateLimitedError, ChallengeError,
    NetworkError or ProviderTimeoutError.
    """
    if browser == "always":
        return await _via_browser(site, page_urls[0], proxy, deadline, cookies, bot_id)
    caller_names = {c.name for c in cookies}
    client = borrow(site, proxy, cookies=cookies, config=pool)
    last_error: NoChatWidgetError | None = None
    for i, url in enumerate(page_urls):
        page = await fetch_page(client, url, user_agent=user_agent, deadline=deadline)
        found = verdict(page.status, page.headers, page.body)
        if found.kind == "challenge":
            log.info("%s answered with a challenge (%s)", site, found.evidence)
            if browser == "never":
                found.raise_for_access(url)
            return await _via_browser(site, url, proxy, deadline, cookies, bot_id)
        found.raise_for_access(url)
        more = i + 1 < len(page_urls)
        try:
            widget = await _widget(page, bot_id, deadline)
        except NoChatWidgetError as exc:
            last_error = exc
            if more:
                log.debug("no widget at %s (HTTP %d), trying the next page", url, page.status)
                continue
            raise
        site_cookies = [c for c in client.cookies() if c.name not in caller_names]
        log.info("credentials for %s over plain HTTP (%s generation)", site, widget.generation)
        return credentials_from(
            widget,
            site=site,
            page_url=page.url,
            cookies=site_cookies,
            user_agent=user_agent,
            source="http",
            proxy=proxy,
        )
    assert last_error is not None  # page_urls is never empty
    raise last_error


async def _widget(page: Page, bot_id: int | None, deadline: Deadline) -> Widget:
    if page.status >= 400:
        raise NoChatWidgetError(
            f"the page {page.url.split('?')[0]} answered HTTP {page.status}, with no chat widget: "
            "check the site URL"
        )
    return await read_widget(page.body, page.url, bot_id, deadline)


async def _via_browser(
    site: str,
    url: str,
    proxy: Proxy | None,
    deadline: Deadline,
    cookies: Sequence[Cookie],
    bot_id: int | None,
) -> Credentials:
    from scraper import browser  # Playwright's module: loaded only for a challenge

    return await browser.solve(
        site, url, proxy=proxy, deadline=deadline, cookies=cookies, bot_id=bot_id
    )
