"""scraper.browser.solve against the sandbox's Cloudflare-like challenge, in real Chromium."""

from __future__ import annotations

import logging
import time

import pytest

import sandbox
from scraper.browser import solve
from scraper.credentials import Cookie
from scraper.errors import (
    BlockedError,
    BotDetectedError,
    ConfigurationError,
    NetworkError,
    ProviderTimeoutError,
    RateLimitedError,
)
from scraper.http import DEFAULT_USER_AGENT, Deadline, Proxy, borrow, request_headers

pytestmark = pytest.mark.browser


async def _status(site_url: str, cookies: tuple[Cookie, ...], user_agent: str) -> int:
    http = borrow(site_url, None, cookies=cookies)
    async with http.get(site_url + "/chat/", headers=request_headers(user_agent)) as resp:
        return resp.status


@pytest.mark.parametrize("generation", ["legacy", "aipkit"])
async def test_solves_the_challenge_and_hands_over_a_working_clearance(
    generation: str, chromium: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="scraper")
    async with sandbox.running(generation=generation, challenge=True) as site:  # type: ignore[arg-type]
        creds = await solve(site.url, site.url + "/chat/", proxy=None, deadline=Deadline(30))

        assert creds.generation == generation
        assert creds.source == "browser"
        assert creds.nonce and creds.ajax_url.endswith("/wp-admin/admin-ajax.php")
        assert creds.page_url == site.url + "/chat/"
        assert creds.site == site.url
        clearance = [c for c in creds.cookies if c.name == "cf_clearance"]
        assert len(clearance) == 1 and clearance[0].value
        assert clearance[0].expires is not None and clearance[0].expires > time.time()
        assert creds.expires_at <= clearance[0].expires
        assert creds.fresh()
        # The UA the page reported, announced as Chrome (not the HeadlessChrome bot flag).
        assert creds.user_agent.startswith("Mozilla/5.0") and "Chrome/" in creds.user_agent
        assert "HeadlessChrome" not in creds.user_agent
        assert site.hits["challenge"] >= 1 and site.hits["clearance"] == 1

        # Plain HTTP with those cookies and exactly that UA gets the page...
        assert await _status(site.url, creds.cookies, creds.user_agent) == 200
        # ...without them it meets the challenge, and with another UA too (bound to the UA).
        assert await _status(site.url, (), creds.user_agent) == 403
        assert await _status(site.url, creds.cookies, DEFAULT_USER_AGENT) == 403

    # No secret in the log.
    assert "launching headless Chromium" in caplog.text and "solved in the browser" in caplog.text
    assert creds.nonce not in caplog.text
    assert clearance[0].value not in caplog.text


async def test_callers_cookies_are_in_the_browser_before_the_page_loads(
    chromium: str | None,
) -> None:
    async with sandbox.running(generation="aipkit", challenge=True) as site:
        first = await solve(site.url, site.url + "/chat/", proxy=None, deadline=Deadline(30))
        challenges = site.hits["challenge"]
        # A still-valid clearance from the caller: no challenge this time.
        again = await solve(
            site.url,
            site.url + "/chat/",
            proxy=None,
            deadline=Deadline(30),
            cookies=first.cookies,
        )
        assert site.hits["challenge"] == challenges
        assert site.hits["clearance"] == 1
        assert again.user_agent == first.user_agent
        # The caller's own unchanged cookie is the caller's: not handed back as new.
        assert all(c.name != "cf_clearance" for c in again.cookies)


async def test_hard_block_raises_blocked(chromium: str | None) -> None:
    async with sandbox.running(generation="aipkit", hard_block=True) as site:
        # Told as a block, not left to the deadline (that would be ProviderTimeoutError).
        with pytest.raises(BlockedError) as caught:
            await solve(site.url, site.url + "/chat/", proxy=None, deadline=Deadline(20))
        assert "another network or proxy" in str(caught.value)
        assert caught.value.__cause__ is None


async def test_rate_limit_page_raises_rate_limited(chromium: str | None) -> None:
    async with sandbox.running(generation="aipkit", rate_limit=True) as site:
        with pytest.raises(RateLimitedError) as caught:
            await solve(site.url, site.url + "/chat/", proxy=None, deadline=Deadline(20))
        assert caught.value.retry_after == site.config.retry_after


@pytest.mark.parametrize("challenge", [True, False], ids=["challenge", "plain"])
async def test_a_page_that_never_shows_the_widget_times_out_within_the_deadline(
    challenge: bool, chromium: str | None
) -> None:
    # Room to start Chromium (and pass the challenge) on a loaded machine, so the
    # budget runs out where the test means it to: waiting for the widget.
    seconds = 15.0 if challenge else 10.0
    async with sandbox.running(generation="legacy", challenge=challenge, no_widget=True) as site:
        started = time.monotonic()
        with pytest.raises(ProviderTimeoutError) as caught:
            await solve(site.url, site.url + "/chat/", proxy=None, deadline=Deadline(seconds))
        took = time.monotonic() - started
        assert seconds - 1 < took < seconds + 2  # it waited, and not past its budget
        assert isinstance(caught.value, TimeoutError)
        assert caught.value.__cause__ is None
        if challenge:
            assert site.hits["clearance"] == 1  # it passed the challenge, then waited
        assert "no chat widget" in str(caught.value)


async def test_a_challenge_that_comes_back_after_the_browser_answered_it_is_detection(
    chromium: str | None,
) -> None:
    # A clearance lifetime of zero: every clearance is stale on arrival, the
    # challenge comes back after the browser answered it — what a site whose bot
    # protection refused the automated browser does. Said at once, not at the deadline.
    async with sandbox.running(generation="aipkit", challenge=True, clearance_ttl=0.0) as site:
        with pytest.raises(BotDetectedError) as caught:
            await solve(site.url, site.url + "/chat/", proxy=None, deadline=Deadline(30))
        assert "refused the automated browser" in str(caught.value)
        assert "refresh --import" in str(caught.value)
        assert "a browser does not help" not in str(caught.value)
        assert site.hits["clearance"] >= 1  # it answered, then the challenge came back


async def test_an_exhausted_deadline_starts_nothing(chromium: str | None) -> None:
    deadline = Deadline(0.001)
    time.sleep(0.002)
    with pytest.raises(ProviderTimeoutError):
        await solve("http://127.0.0.1:9", "http://127.0.0.1:9/", proxy=None, deadline=deadline)


async def test_an_unreachable_site_is_a_network_error(
    chromium: str | None, unused_tcp_port: int
) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}"
    with pytest.raises(NetworkError) as caught:
        await solve(url, url + "/chat/", proxy=None, deadline=Deadline(15))
    assert "ERR_CONNECTION_REFUSED" in str(caught.value)
    assert caught.value.__cause__ is None


async def test_a_dead_proxy_is_a_network_error_without_the_password(
    chromium: str | None, unused_tcp_port_factory: object
) -> None:
    assert callable(unused_tcp_port_factory)
    proxy = Proxy.parse(f"http://bob:s3cret-pw@127.0.0.1:{unused_tcp_port_factory()}")
    url = f"http://127.0.0.1:{unused_tcp_port_factory()}"
    with pytest.raises(NetworkError) as caught:
        await solve(url, url + "/chat/", proxy=proxy, deadline=Deadline(15))
    assert "s3cret-pw" not in str(caught.value)
    assert "bob:***@" in str(caught.value)


async def test_socks_proxy_with_a_password_is_refused_before_launch() -> None:
    proxy = Proxy.parse("socks5://bob:s3cret-pw@127.0.0.1:1080")
    with pytest.raises(ConfigurationError) as caught:
        await solve("http://127.0.0.1:9", "http://127.0.0.1:9/", proxy=proxy, deadline=Deadline(5))
    assert "SOCKS" in str(caught.value) and "s3cret-pw" not in str(caught.value)


async def test_obtain_falls_back_to_the_browser_on_a_challenge(chromium: str | None) -> None:
    from scraper.obtain import obtain

    async with sandbox.running(generation="legacy", challenge=True) as site:
        creds = await obtain(site.url, [site.url + "/chat/"], proxy=None, deadline=Deadline(30))
        assert creds.source == "browser"
        assert creds.generation == "legacy"
        assert any(c.name == "cf_clearance" for c in creds.cookies)
        assert await _status(site.url, creds.cookies, creds.user_agent) == 200
