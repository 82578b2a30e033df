"""The sandbox's bot detection (protection mode) bites, and the library's browser passes it."""

from __future__ import annotations

from pathlib import Path

import pytest

import sandbox
from scraper.browser import find_chromium
from tests.conftest import chat, provider_for

pytestmark = pytest.mark.browser
ANSWER = "You said: Hello sandbox"


@pytest.mark.parametrize("generation", ["legacy", "aipkit"])
async def test_the_fallback_passes_bot_detection(
    generation: str, cache_dir: Path, chromium: str | None
) -> None:
    async with sandbox.running(generation=generation, protection=True) as site:
        provider = provider_for(site.url, cache_dir)
        assert await chat(provider) == ANSWER
        assert site.detections == []
        assert site.hits["clearance"] == 1


async def test_the_browser_transport_passes_bot_detection_in_the_chat_page(
    cache_dir: Path, chromium: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # bind_tls: the clearance does not travel to plain HTTP, so the chat runs in the
    # page, under the page's watch for evaluation traces and automation globals.
    async with sandbox.running(generation="aipkit", protection=True, bind_tls=True) as site:
        monkeypatch.setenv("SSL_CERT_FILE", str(site.ca_file))
        provider = provider_for(site.url, cache_dir)
        for _ in range(2):
            assert await chat(provider, transport="browser") == ANSWER
        assert site.detections == []
        assert site.revoked == set()


async def test_stock_playwright_without_the_fixes_is_detected(chromium: str | None) -> None:
    from playwright.async_api import async_playwright

    async with sandbox.running(generation="aipkit", protection=True) as site:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=find_chromium(), headless=True
            )
            try:
                page = await browser.new_page()
                await page.goto(site.url + "/chat/", wait_until="commit")
                # What the library did before: poll for the widget in the page's main world.
                with pytest.raises(Exception, match="Timeout"):
                    await page.wait_for_function(
                        "() => document.querySelector('.aipkit_chat_container')", timeout=4000
                    )
            finally:
                await browser.close()
        assert site.hits["clearance"] == 0
        fired = {s for d in site.detections for s in d["signals"]}
        assert {
            "webdriver",
            "headless_ua",
            "eval_trace",
            "screen_is_viewport",
            "no_browser_ui",
            "webgl_swiftshader",
        } <= fired, fired
