"""A real Chromium passes the sandbox's JavaScript challenge on its own."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from typing import Literal

import pytest
from playwright.sync_api import Page

import sandbox

pytestmark = pytest.mark.browser

WIDGETS = {
    "legacy": "div.wpaicg-chat-shortcode[data-nonce]",
    "aipkit": "div.aipkit_chat_container[data-config]",
}
OTHER_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) PlainHTTP/1.0"


def plain_get(url: str, ua: str, cookie: str | None = None) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, headers={"User-Agent": ua})
    if cookie is not None:
        request.add_header("Cookie", f"cf_clearance={cookie}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers)


@pytest.mark.parametrize("generation", ["legacy", "aipkit"])
def test_browser_passes_challenge(page: Page, generation: Literal["legacy", "aipkit"]) -> None:
    with sandbox.serve_in_thread(generation=generation, challenge=True) as site:
        page.goto(site.url + "/chat/")
        page.wait_for_selector(WIDGETS[generation], state="attached", timeout=10_000)
        assert page.title() == "Chat – ChatGPT Free"
        assert site.hits["clearance"] >= 1 and site.hits["GET /chat/"] >= 1

        cookies = {c["name"]: c for c in page.context.cookies()}
        clearance = cookies["cf_clearance"]
        assert clearance["httpOnly"] is True
        assert clearance["expires"] > time.time() + 1700

        # Plain HTTP without the browser's UA is still challenged, cookie or not.
        for cookie in (None, clearance["value"]):
            status, headers = plain_get(site.url + "/chat/", OTHER_UA, cookie)
            assert status == 403 and headers.get("cf-mitigated") == "challenge"
        # With the browser's own User-Agent the cookie works over plain HTTP too.
        browser_ua = page.evaluate("navigator.userAgent")
        status, _ = plain_get(site.url + "/chat/", browser_ua, clearance["value"])
        assert status == 200


def test_browser_sees_hard_block(page: Page) -> None:
    with sandbox.serve_in_thread(generation="aipkit", hard_block=True) as site:
        response = page.goto(site.url + "/")
        assert response is not None and response.status == 403
        assert "1020" in page.content()
        assert page.context.cookies() == []
