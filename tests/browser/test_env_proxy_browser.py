"""The browser follows the proxy in effect, the environment's included, and only it:
the site's name (``chatgptfree.test``) resolves at the test proxies alone."""

from __future__ import annotations

from pathlib import Path

import pytest

import sandbox
from provider.errors import NetworkError
from tests.conftest import chat, provider_for
from tests.proxies import http_proxy

pytestmark = pytest.mark.browser
ANSWER = "You said: Hello sandbox"
NAME = "chatgptfree.test"
HOSTS = {NAME: "127.0.0.1"}


async def test_the_environments_proxy_carries_the_browser_through_the_challenge(
    cache_dir: Path, chromium: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with (
        http_proxy("carol", "br0wser-pw", hosts=HOSTS) as proxy,
        sandbox.running(generation="aipkit", challenge=True) as site,
    ):
        monkeypatch.setenv("HTTP_PROXY", f"http://carol:br0wser-pw@127.0.0.1:{proxy.port}")
        url = site.url.replace("127.0.0.1", NAME)
        provider = provider_for(url, cache_dir)
        assert await chat(provider, timeout=60) == ANSWER
        creds = provider.stored_credentials()
        assert creds is not None and creds.source == "browser"
        assert site.hits["clearance"] == 1
        # Challenge page, its verification, the reloaded page: all by name, via the proxy.
        assert proxy.targets.count(url.split("//")[1]) >= 3 + 2  # + page and chat over HTTP


async def test_the_callers_no_proxy_keeps_chromium_off_the_environments_proxy(
    cache_dir: Path, chromium: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Chromium reads http_proxy & co. itself: the library's decision must hold anyway.
    async with (
        http_proxy("carol", "br0wser-pw", hosts=HOSTS) as proxy,
        sandbox.running(generation="aipkit", challenge=True) as site,
    ):
        for name in ("http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.setenv(name, f"http://carol:br0wser-pw@127.0.0.1:{proxy.port}")
        url = site.url.replace("127.0.0.1", NAME)
        provider = provider_for(url, cache_dir, browser="always")
        with pytest.raises(NetworkError, match="NAME_NOT_RESOLVED"):
            await chat(provider, proxy="", timeout=30)
        assert proxy.connections == 0
        assert proxy.refused == 0


def test_launch_options_follow_the_decision() -> None:
    from scraper.browser._launch import _launch_options
    from scraper.http import Proxy

    assert "--no-proxy-server" in _launch_options(None, None)["args"]
    options = _launch_options(None, Proxy.parse("socks5h://127.0.0.1:1080"))
    # Chromium knows no "socks5h" (its socks5 resolves names at the proxy already).
    assert options["proxy"]["server"] == "socks5://127.0.0.1:1080"
    assert "--no-proxy-server" not in options["args"]
