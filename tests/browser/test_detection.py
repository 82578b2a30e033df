"""The sandbox's bot detection (protection mode) bites, and the library's browser passes it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

import sandbox
from provider.errors import BotDetectedError
from scraper.browser import find_chromium
from scraper.browser._driver import DRIVER_ENV, driver_name
from tests.conftest import chat, provider_for

pytestmark = pytest.mark.browser
ANSWER = "You said: Hello sandbox"


def fired(site: Any) -> set[str]:
    return {s for d in site.detections for s in d["signals"]}


async def passes_or_shows_only_the_runtime_leak(site: Any, provider: Any, **kw: object) -> None:
    """The library's browser under the driver in use: patchright gets the clearance and
    the answer; stock Playwright, every other fix in place, shows the one signal no
    launch flag hides (it enables ``Runtime``), and is refused with the typed error."""
    if driver_name() == "patchright":
        assert await chat(provider, **kw) == ANSWER
        assert site.detections == []
        return
    with pytest.raises(BotDetectedError, match="refused the automated browser"):
        await chat(provider, **kw)
    assert fired(site) == {"cdp_runtime"}
    assert site.hits["clearance"] == 0


@pytest.mark.parametrize("generation", ["legacy", "aipkit"])
async def test_the_fallback_passes_bot_detection(
    generation: str, cache_dir: Path, chromium: str | None
) -> None:
    async with sandbox.running(generation=generation, protection=True) as site:
        provider = provider_for(site.url, cache_dir)
        await passes_or_shows_only_the_runtime_leak(site, provider)
        if driver_name() == "patchright":
            assert site.hits["clearance"] == 1


async def test_a_widget_the_page_adds_after_its_load_is_awaited_unseen(
    cache_dir: Path, chromium: str | None
) -> None:
    # The one look at the page when it has loaded finds no widget: the general wait
    # (the driver's selector engine, in its isolated world) takes over and finds it
    # once the page's script adds it, and the page's watch sees neither.
    async with sandbox.running(generation="aipkit", protection=True, late_widget=True) as site:
        # A bound of its own: a wait that never hands over fails in seconds, not minutes.
        provider = provider_for(site.url, cache_dir)
        await passes_or_shows_only_the_runtime_leak(site, provider, timeout=20)


@pytest.mark.skipif(importlib.util.find_spec("patchright") is None, reason="needs patchright")
async def test_the_runtime_leak_is_what_tells_stock_playwright_from_patchright(
    tmp_path: Path, chromium: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One site, the same library code, the two drivers: the detector's CDP check bites
    # on stock Playwright alone, so patchright's advantage is that one signal.
    async with sandbox.running(generation="aipkit", protection=True) as site:
        monkeypatch.setenv(DRIVER_ENV, "playwright")
        with pytest.raises(BotDetectedError):
            await chat(provider_for(site.url, tmp_path / "stock"))
        assert fired(site) == {"cdp_runtime"}
        site.detections.clear()
        monkeypatch.setenv(DRIVER_ENV, "patchright")
        assert await chat(provider_for(site.url, tmp_path / "patchright")) == ANSWER
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
            await passes_or_shows_only_the_runtime_leak(site, provider, transport="browser")
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
        assert {
            "cdp_runtime",
            "webdriver",
            "headless_ua",
            "eval_trace",
            "screen_is_viewport",
            "no_browser_ui",
            "webgl_swiftshader",
        } <= fired(site), fired(site)
