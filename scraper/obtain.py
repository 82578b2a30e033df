"""Getting fresh credentials out of a site: plain HTTP first, the browser only for a challenge."""

from __future__ import annotations

import asyncio
import logging
import secrets
import string
import time
import uuid
from collections.abc import Sequence
from typing import Literal

from scraper.credentials import Cookie, Credentials, expiry
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
from scraper.page import Widget, parse_page
from scraper.verdict import verdict

__all__ = ["BrowserMode", "credentials_from", "new_session_id", "obtain", "read_widget"]

log = logging.getLogger(__name__)

BrowserMode = Literal["auto", "never", "always"]

_ALNUM = string.ascii_letters + string.digits


def new_session_id(generation: str) -> str:
    """The guest's quota key the plugin's own script would make.

    aipkit: a uuid4 ``session_id``; legacy: ``wpaicg_chat_client_id``, 10 alphanumerics.
    """
    if generation == "aipkit":
        return str(uuid.uuid4())
    return "".join(secrets.choice(_ALNUM) for _ in range(10))


def credentials_from(
    widget: Widget,
    *,
    site: str,
    page_url: str,
    cookies: Sequence[Cookie],
    user_agent: str,
    source: Literal["http", "browser"],
    proxy: Proxy | None,
) -> Credentials:
    now = time.time()
    kept = tuple(cookies)
    return Credentials(
        site=site,
        generation=widget.generation,
        nonce=widget.nonce,
        post_id=widget.post_id,
        bot_id=widget.bot_id,
        ajax_url=widget.ajax_url,
        page_url=page_url,
        user_agent=user_agent,
        source=source,
        obtained_at=now,
        expires_at=expiry(now, kept),
        proxy=proxy.redacted if proxy else "",
        cookies=kept,
        referer_url=widget.referer_url,
        widget_type=widget.widget_type,
        session_id=new_session_id(widget.generation),
        release=widget.release,
    )


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


async def read_widget(
    html: str | bytes, page_url: str, bot_id: int | None, deadline: Deadline
) -> Widget:
    """The chat widget of a fetched or rendered page: ``bot_id``'s, or the page's main one.

    The page is parsed in a worker thread: BeautifulSoup takes a tenth of a
    second or more on a big page, and this event loop may be carrying other
    chats' streams (``provider.serve``), which must not stall meanwhile. The
    wait sits under ``deadline``; past it the caller gets its timeout at once,
    while the thread (which cannot be stopped) finishes the parse, bounded by
    the page size limit, and its result is dropped.
    """
    async with deadline.within("reading the chat widget from the page"):
        info = await asyncio.to_thread(parse_page, html, page_url)
    return info.primary(bot_id)


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
