"""The environment's proxy over plain HTTP, through real proxies that alone
resolve the site's name (``chatgptfree.test`` is in no DNS: only the proxy knows it)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

import sandbox
from provider.errors import ConfigurationError, NetworkError
from tests.conftest import chat, provider_for
from tests.proxies import ProxyServer, http_proxy, socks5_proxy

ANSWER = "You said: Hello sandbox"
NAME = "chatgptfree.test"
HOSTS = {NAME: "127.0.0.1"}


def named(url: str) -> str:
    """The sandbox's URL under the name only the proxies resolve."""
    return url.replace("127.0.0.1", NAME)


def http_url(proxy: ProxyServer, password: str | None = None) -> str:
    return f"http://{proxy.user}:{password or proxy.password}@127.0.0.1:{proxy.port}"


@asynccontextmanager
async def site_and_proxy(generation: str = "aipkit") -> AsyncIterator[tuple[str, ProxyServer]]:
    async with http_proxy(hosts=HOSTS) as proxy, sandbox.running(generation=generation) as site:
        yield named(site.url), proxy


async def test_without_a_proxy_the_name_does_not_resolve(cache_dir: Path) -> None:
    # The premise of every test here: only a proxy gets to the named site.
    async with site_and_proxy() as (url, proxy):
        with pytest.raises(NetworkError, match="fetching"):
            await chat(provider_for(url, cache_dir), timeout=10)
        assert proxy.connections == 0


@pytest.mark.parametrize("generation", ["legacy", "aipkit"])
async def test_http_proxy_from_the_environment_carries_every_request(
    generation: str,
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with http_proxy(hosts=HOSTS) as proxy, sandbox.running(generation=generation) as site:
        monkeypatch.setenv("HTTP_PROXY", http_url(proxy))
        provider = provider_for(named(site.url), cache_dir)
        with caplog.at_level(logging.DEBUG):
            assert await chat(provider) == ANSWER
            assert await chat(provider) == ANSWER
        assert "through the proxy http://alice:***@" in caplog.text
        assert proxy.password not in caplog.text
        # The sandbox closes each connection after its reply: one proxy connection per request.
        assert proxy.connections == sum(site.hits.values())
        assert set(proxy.targets) == {named(site.url).split("//")[1]}
        target = provider.target()
        assert target.proxy_report() == {
            "proxy": f"http://alice:***@127.0.0.1:{proxy.port}",
            "proxy_source": "environment",
            "proxy_variable": "HTTP_PROXY",
        }


async def test_all_proxy_socks5h_is_the_fallback(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with socks5_proxy(hosts=HOSTS) as proxy, sandbox.running(generation="aipkit") as site:
        # socks5h: the name goes to the proxy unresolved (socks5 would resolve it here).
        monkeypatch.setenv("all_proxy", f"socks5h://bob:s0cks-pw@127.0.0.1:{proxy.port}")
        assert await chat(provider_for(named(site.url), cache_dir)) == ANSWER
        assert proxy.connections == sum(site.hits.values())
        assert proxy.targets[0] == named(site.url).split("//")[1]


async def test_lower_case_wins_over_a_dead_upper_case_proxy(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch, unused_tcp_port: int
) -> None:
    async with site_and_proxy() as (url, proxy):
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{unused_tcp_port}")
        monkeypatch.setenv("http_proxy", http_url(proxy))
        assert await chat(provider_for(url, cache_dir)) == ANSWER
        assert proxy.connections > 0


async def test_no_proxy_is_honoured(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with site_and_proxy() as (url, proxy):
        monkeypatch.setenv("HTTP_PROXY", http_url(proxy))
        monkeypatch.setenv("NO_PROXY", f"localhost, .{NAME}")
        provider = provider_for(url, cache_dir)
        with pytest.raises(NetworkError):
            await chat(provider, timeout=10)
        assert proxy.connections == 0
        assert provider.target().proxy_report() == {
            "proxy": None,
            "proxy_source": "environment",
            "proxy_variable": "NO_PROXY",
        }
        # A CIDR entry exempts the site reached by its address: a direct chat.
        monkeypatch.setenv("no_proxy", "127.0.0.0/8")
        direct = url.replace(NAME, "127.0.0.1")
        assert await chat(provider_for(direct, cache_dir)) == ANSWER
        assert proxy.connections == 0


async def test_an_explicit_proxy_overrides_the_environment(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with (
        site_and_proxy() as (url, env_proxy),
        http_proxy("carol", "expl1cit-pw", hosts=HOSTS) as explicit,
    ):
        monkeypatch.setenv("HTTP_PROXY", http_url(env_proxy))
        monkeypatch.setenv("NO_PROXY", NAME)  # NO_PROXY is the environment's too: not applied
        provider = provider_for(url, cache_dir)
        assert await chat(provider, proxy=http_url(explicit)) == ANSWER
        assert explicit.connections > 0
        assert env_proxy.connections == 0
        assert provider.target(http_url(explicit)).proxy_report()["proxy_source"] == "argument"


async def test_the_callers_empty_proxy_disables_the_environment(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with site_and_proxy() as (url, proxy):
        monkeypatch.setenv("HTTP_PROXY", http_url(proxy))
        monkeypatch.setenv("ALL_PROXY", http_url(proxy))
        with pytest.raises(NetworkError):
            await chat(provider_for(url, cache_dir), proxy="", timeout=10)
        direct = url.replace(NAME, "127.0.0.1")
        assert await chat(provider_for(direct, cache_dir), proxy="") == ANSWER
        assert proxy.connections == 0


async def test_credentials_are_kept_per_proxy_in_effect(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with http_proxy() as proxy, sandbox.running(generation="aipkit") as site:
        provider = provider_for(site.url, cache_dir)
        monkeypatch.setenv("HTTP_PROXY", http_url(proxy))
        await chat(provider)
        via_env = provider.stored_credentials()
        assert via_env is not None
        assert via_env.proxy == f"http://alice:***@127.0.0.1:{proxy.port}"
        # The same proxy given explicitly is the same exit: the same credentials.
        assert provider.stored_credentials(http_url(proxy)) == via_env
        # Without the proxy, those credentials are not used: the page is read again.
        await chat(provider, proxy="")
        assert site.hits["GET /chat/"] == 2
        direct = provider.stored_credentials("")
        assert direct is not None and direct.proxy == ""
        # Back through the environment's proxy: its own credentials, no new page read.
        await chat(provider)
        assert site.hits["GET /chat/"] == 2


async def test_a_bad_environment_proxy_is_a_clear_error_and_leaves_the_store(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with sandbox.running(generation="aipkit") as site:
        provider = provider_for(site.url, cache_dir)
        await chat(provider)
        stored = provider.stored_credentials()
        monkeypatch.setenv("http_proxy", "ftp://alice:hunter2-pw@127.0.0.1:1080")
        with pytest.raises(ConfigurationError, match="environment variable http_proxy") as err:
            await chat(provider)
        assert "hunter2" not in str(err.value)
        assert site.hits["GET /chat/"] == 1
        monkeypatch.delenv("http_proxy")
        assert provider.stored_credentials() == stored
        assert await chat(provider) == ANSWER
        assert site.hits["GET /chat/"] == 1
