"""Proxies (http and socks5 with credentials) for every request; the caller's cookies."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from aiohttp import web

import sandbox
from provider.errors import NetworkError
from tests import procs
from tests.conftest import chat, provider_for
from tests.proxies import http_proxy, socks5_proxy


@pytest.mark.parametrize("generation", ["legacy", "aipkit"])
@pytest.mark.parametrize("kind", ["http", "socks5"])
async def test_every_request_goes_through_the_proxy(
    kind: str, generation: str, cache_dir: Path
) -> None:
    make = http_proxy if kind == "http" else socks5_proxy
    async with make() as proxy, sandbox.running(generation=generation) as site:
        url = f"{kind}://{proxy.user}:{proxy.password}@127.0.0.1:{proxy.port}"
        provider = provider_for(site.url, cache_dir)
        assert await chat(provider, proxy=url) == "You said: Hello sandbox"
        assert await chat(provider, proxy=url) == "You said: Hello sandbox"
        total = sum(site.hits.values())
        # The sandbox closes each connection after its reply: one proxy connection per request.
        assert proxy.connections == total
        assert proxy.refused == 0


@pytest.mark.parametrize("kind", ["http", "socks5"])
async def test_wrong_proxy_password_is_a_clear_secret_free_error(
    kind: str, cache_dir: Path
) -> None:
    make = http_proxy if kind == "http" else socks5_proxy
    async with make() as proxy, sandbox.running(generation="aipkit") as site:
        url = f"{kind}://{proxy.user}:wrong-pass-123@127.0.0.1:{proxy.port}"
        with pytest.raises(NetworkError, match="proxy") as err:
            await chat(provider_for(site.url, cache_dir), proxy=url, timeout=5)
        assert "wrong-pass-123" not in str(err.value)
        # It names the proxy it means, its password redacted (issue 27: a mutant
        # saying only "the proxy" survived).
        assert f"{kind}://{proxy.user}:***@127.0.0.1:{proxy.port}" in str(err.value)
        assert sum(site.hits.values()) == 0


async def test_credentials_are_kept_per_proxy(cache_dir: Path) -> None:
    async with socks5_proxy() as proxy, sandbox.running(generation="aipkit") as site:
        provider = provider_for(site.url, cache_dir)
        await chat(provider)
        await chat(provider, proxy=f"socks5://bob:s0cks-pw@127.0.0.1:{proxy.port}")
        # A clearance is bound to the exit address: each proxy gets its own credentials.
        assert site.hits["GET /chat/"] == 2


async def _cookie_recorder() -> tuple[web.AppRunner, int, list[str]]:
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Cookie", ""))
        return web.Response(text="<html>other host</html>", content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, port, seen


async def test_caller_cookies_go_with_every_request_to_the_site_only(cache_dir: Path) -> None:
    runner, port, seen = await _cookie_recorder()
    try:
        # A "site" whose page redirects to another host: the cookie must not follow.
        async def redirect(request: web.Request) -> web.Response:
            raise web.HTTPFound(f"http://localhost:{port}/chat/")

        app = web.Application()
        app.router.add_get("/{tail:.*}", redirect)
        r2 = web.AppRunner(app)
        await r2.setup()
        s2 = web.TCPSite(r2, "127.0.0.1", 0)
        await s2.start()
        url = f"http://127.0.0.1:{r2.addresses[0][1]}"
        from provider.errors import ProtocolError

        with pytest.raises(ProtocolError, match="redirects to another host"):
            await chat(provider_for(url, cache_dir), cookies={"session": "caller-secret"})
        assert seen == []  # refused at the redirect: the other host got no request at all
        await r2.cleanup()
    finally:
        await runner.cleanup()


async def test_caller_cookie_reaches_the_sandbox_challenge_layer(cache_dir: Path) -> None:
    # A clearance the caller solved elsewhere (same UA) lets plain HTTP through.
    from scraper.http import DEFAULT_USER_AGENT

    async with sandbox.running(generation="aipkit", challenge=True) as site:
        token = site.issue_clearance(DEFAULT_USER_AGENT)
        provider = provider_for(site.url, cache_dir, browser="never")
        got = await chat(provider, cookies={"cf_clearance": token})
        assert got == "You said: Hello sandbox"
        assert site.hits["challenge"] == 0


CHILD = """
import asyncio, sys
sys.path.insert(0, sys.argv[2])
from tests.conftest import chat, provider_for
from pathlib import Path
print(asyncio.run(chat(provider_for(sys.argv[1], Path(sys.argv[3])))))
"""


async def test_two_processes_starting_cold_fetch_the_page_once(cache_dir: Path) -> None:
    root = str(Path(__file__).resolve().parents[2])
    async with sandbox.running(generation="aipkit", first_byte_delay=0.2) as site:
        results = await asyncio.gather(
            *(
                procs.run(sys.executable, "-c", CHILD, site.url, root, str(cache_dir), timeout=60)
                for _ in range(2)
            )
        )
        assert [r.code for r in results] == [0, 0], results
        assert [r.out.strip() for r in results] == ["You said: Hello sandbox"] * 2
        assert site.hits["GET /chat/"] == 1
