"""ChatgptFree through the sandbox's challenge: the browser only when needed, once for all."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

import sandbox
from provider import store_for
from provider.errors import BlockedError, ProviderTimeoutError, RateLimitedError
from tests.conftest import chat, provider_for

pytestmark = pytest.mark.browser
ANSWER = "You said: Hello sandbox"


@pytest.mark.parametrize("generation", ["legacy", "aipkit"])
async def test_cold_call_through_the_browser_then_warm_over_plain_http(
    generation: str, cache_dir: Path, chromium: str | None
) -> None:
    async with sandbox.running(generation=generation, challenge=True) as site:
        provider = provider_for(site.url, cache_dir)
        assert await chat(provider) == ANSWER
        assert site.hits["clearance"] == 1
        creds = provider.stored_credentials()
        assert creds is not None and creds.source == "browser"
        assert "HeadlessChrome" not in creds.user_agent
        challenges = site.hits["challenge"]
        # Warm: the stored clearance and the browser's User-Agent over plain HTTP.
        assert await chat(provider) == ANSWER
        assert site.hits["clearance"] == 1
        assert site.hits["challenge"] == challenges


async def test_50_concurrent_cold_calls_launch_one_browser(
    cache_dir: Path, browser_launches: Callable[[], int]
) -> None:
    async with sandbox.running(generation="aipkit", challenge=True) as site:
        provider = provider_for(site.url, cache_dir)
        answers = await asyncio.gather(*(chat(provider, timeout=60) for _ in range(50)))
        assert set(answers) == {ANSWER}
        assert browser_launches() == 1  # Chromium itself started once, for all 50
        assert site.hits["clearance"] == 1


async def test_challenge_met_again_with_stored_credentials_solves_once_more(
    cache_dir: Path, chromium: str | None
) -> None:
    async with sandbox.running(generation="legacy", challenge=True) as site:
        provider = provider_for(site.url, cache_dir)
        await chat(provider)
        # The site stops honouring the stored clearance (as when Cloudflare rotates its
        # keys): the credentials still look fresh, but the next request meets a challenge.
        creds = provider.stored_credentials()
        assert creds is not None
        forged = tuple(
            replace(c, value="0" * 43 + c.value[43:]) if c.name == "cf_clearance" else c
            for c in creds.cookies
        )
        store_for(cache_dir).put(replace(creds, cookies=forged), "")
        assert await chat(provider) == ANSWER
        assert site.hits["clearance"] == 2
        assert provider.stored_credentials() != creds


@pytest.mark.parametrize(
    ("mode", "error"), [("hard_block", BlockedError), ("rate_limit", RateLimitedError)]
)
async def test_hard_block_and_rate_limit_never_launch_a_browser(
    mode: str, error: type[Exception], cache_dir: Path, browser_processes: object
) -> None:
    from tests.browser.conftest import list_browser_processes

    before = list_browser_processes()
    async with sandbox.running(generation="aipkit", **{mode: True}) as site:
        provider = provider_for(site.url, cache_dir)
        task = asyncio.ensure_future(chat(provider))
        launched = False
        while not task.done():
            launched |= bool(list_browser_processes() - before)
            await asyncio.sleep(0.005)
        with pytest.raises(error):
            task.result()
        assert not launched
        if mode == "rate_limit":
            with pytest.raises(RateLimitedError) as err:
                await chat(provider)
            assert err.value.retry_after == 30


async def test_page_that_never_readies_times_out_with_no_process_left(
    cache_dir: Path, chromium: str | None
) -> None:
    async with sandbox.running(generation="aipkit", challenge=True, no_widget=True) as site:
        provider = provider_for(site.url, cache_dir)
        start = time.monotonic()
        with pytest.raises(ProviderTimeoutError):
            await chat(provider, timeout=4)
        # The timeout, plus the browser's close: the call returns once its browser is gone.
        assert time.monotonic() - start < 4 + 3
    # The autouse fixtures assert no Chromium, and no driver, outlives the call.


async def test_browser_never_mode_reports_the_challenge(cache_dir: Path) -> None:
    from provider.errors import ChallengeError

    async with sandbox.running(generation="aipkit", challenge=True) as site:
        with pytest.raises(ChallengeError, match="challenge"):
            await chat(provider_for(site.url, cache_dir, browser="never"))
        assert site.hits["clearance"] == 0


async def test_the_browser_goes_through_the_callers_proxy(chromium: str | None) -> None:
    from scraper.browser import solve
    from scraper.http import Deadline, Proxy
    from tests.proxies import http_proxy

    async with (
        http_proxy("carol", "br0wser-pw") as proxy,
        sandbox.running(generation="aipkit", challenge=True) as site,
    ):
        parsed = Proxy.parse(f"http://carol:br0wser-pw@127.0.0.1:{proxy.port}")
        creds = await solve(site.url, site.url + "/chat/", proxy=parsed, deadline=Deadline(30))
        assert creds.source == "browser"
        # The challenge page, its verification and the reloaded page came through the
        # proxy, authenticated (Chromium would bypass it for loopback unless told not to).
        assert proxy.connections >= 3
        assert site.hits["clearance"] == 1
