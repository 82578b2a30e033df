"""The pool of kept-alive connections: HTTPS direct, through CONNECT and SOCKS5 (a
name only the proxy resolves), reuse counted at the wire, the stale keep-alive
race, per-call cookies, limits, and closing with the event loop.

Connections are counted by a TCP relay in front of the sandbox (bench/_relay.py)
or by the test proxies; the sandbox runs with ``keep_alive=True`` as a site
behind a CDN does (its default imitates PHP's server, which closes every reply).
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import time
import weakref
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import web

import sandbox
from bench._relay import relay
from provider.errors import ConfigurationError, NetworkError, ProviderTimeoutError
from scraper.credentials import Cookie
from scraper.http import borrow, close_pools
from tests.conftest import USER, chat, provider_for
from tests.proxies import http_proxy, socks5_proxy

ANSWER = "You said: Hello sandbox"
ROOT = Path(__file__).resolve().parents[2]


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


Trust = Callable[[sandbox.Site], None]


@pytest.fixture
def trust(monkeypatch: pytest.MonkeyPatch) -> Trust:
    """Trust a sandbox's CA the standard way: SSL_CERT_FILE."""

    def use(site: sandbox.Site) -> None:
        monkeypatch.setenv("SSL_CERT_FILE", str(site.ca_file))

    return use


@pytest.mark.parametrize("generation", ["legacy", "aipkit"])
async def test_https_direct_reuses_one_connection(
    generation: str, cache_dir: Path, trust: Trust
) -> None:
    async with (
        sandbox.running(generation=generation, tls=True, keep_alive=True) as site,  # type: ignore[arg-type]
        relay(port_of(site.url)) as wire,
    ):
        trust(site)
        provider = provider_for(wire.url("https"), cache_dir)
        for _ in range(3):
            assert await chat(provider) == ANSWER
        requests = sum(site.hits.values())
        assert requests == 1 + 3 * (2 if generation == "aipkit" else 1)
        # The page, then every chat (aipkit: both of its requests): one TLS connection.
        assert wire.connections == 1


async def test_https_through_the_http_proxy_connect_tunnel(cache_dir: Path, trust: Trust) -> None:
    async with (
        sandbox.running(generation="aipkit", tls=True, keep_alive=True) as site,
        http_proxy() as proxy,
    ):
        trust(site)
        url = f"http://{proxy.user}:{proxy.password}@127.0.0.1:{proxy.port}"
        provider = provider_for(site.url, cache_dir)
        assert await chat(provider, proxy=url) == ANSWER
        assert await chat(provider, proxy=url) == ANSWER
        # One CONNECT, one tunnel, kept for the page and both chats' four requests.
        assert proxy.targets == [f"127.0.0.1:{port_of(site.url)}"]
        assert proxy.connections == 1
        assert sum(site.hits.values()) == 5


@pytest.mark.parametrize("kind", ["socks5", "socks5h", "http"])
async def test_a_name_only_the_proxy_resolves(kind: str, cache_dir: Path, trust: Trust) -> None:
    name = "chatgptfree.test"
    make = http_proxy if kind == "http" else socks5_proxy
    async with (
        sandbox.running(generation="legacy", tls=True, tls_names=(name,), keep_alive=True) as site,
        make(hosts={name: "127.0.0.1"}) as proxy,
    ):
        trust(site)
        port = port_of(site.url)
        url = f"{kind}://{proxy.user}:{proxy.password}@127.0.0.1:{proxy.port}"
        provider = provider_for(f"https://{name}:{port}", cache_dir)
        assert await chat(provider, proxy=url) == ANSWER
        assert await chat(provider, proxy=url) == ANSWER
        # The client handed the proxy the name, never an address it looked up itself.
        assert proxy.targets == [f"{name}:{port}"]
        assert proxy.connections == 1


@pytest.mark.parametrize("generation", ["legacy", "aipkit"])
async def test_a_connection_the_server_closed_while_idle_is_retried_once(
    generation: str, cache_dir: Path
) -> None:
    async with (
        sandbox.running(generation=generation, keep_alive=True) as site,  # type: ignore[arg-type]
        relay(port_of(site.url), idle_close=0.3) as wire,
    ):
        provider = provider_for(wire.url(), cache_dir)
        assert await chat(provider) == ANSWER
        assert wire.connections == 1
        await asyncio.sleep(0.4)  # the idle time itself is the condition
        # The request went out on the kept connection, the server closed it
        # unanswered; the call never sees that.
        assert await chat(provider) == ANSWER
        assert wire.idle_closed == 1
        assert wire.connections == 2
        sent = (
            "admin-ajax:aipkit_cache_sse_message"
            if generation == "aipkit"
            else ("admin-ajax:wpaicg_chat_shortcode_message")
        )
        assert site.hits[sent] == 2  # the closed attempt never reached the site


async def test_every_stale_connection_is_dropped_until_a_fresh_one_answers(
    cache_dir: Path,
) -> None:
    async with (
        sandbox.running(generation="legacy", keep_alive=True, first_byte_delay=0.2) as site,
        relay(port_of(site.url), idle_close=0.5) as wire,
    ):
        provider = provider_for(wire.url(), cache_dir)
        assert await chat(provider) == ANSWER
        assert await asyncio.gather(chat(provider), chat(provider)) == [ANSWER] * 2
        assert wire.connections == 2  # two kept, both idle from here
        await asyncio.sleep(0.6)
        assert await chat(provider) == ANSWER
        # Both kept connections were closed by the server as they were reused;
        # the message went out a third time, on a fresh connection.
        assert wire.idle_closed == 2
        assert wire.connections == 3


async def test_a_break_after_the_answer_started_is_not_retried(cache_dir: Path) -> None:
    async with sandbox.running(generation="legacy", keep_alive=True, framing="chunked") as site:
        provider = provider_for(site.url, cache_dir)
        assert await chat(provider) == ANSWER
        site.config.answer_bytes, site.config.drop_after_bytes = 30_000, 12_000
        got: list[str] = []
        with pytest.raises(NetworkError):
            async for chunk in provider.create_async_generator("", USER):
                got.append(chunk)
        assert got  # some of the answer came, then the break: no silent resend
        assert site.hits["admin-ajax:wpaicg_chat_shortcode_message"] == 2


async def test_idle_connections_close_after_the_keepalive_timeout(cache_dir: Path) -> None:
    async with (
        sandbox.running(generation="legacy", keep_alive=True) as site,
        relay(port_of(site.url)) as wire,
    ):
        provider = provider_for(wire.url(), cache_dir, keepalive_timeout=0.2)
        assert await chat(provider) == ANSWER
        # The cold chat's page may have had a connection of its own (on a loaded
        # machine its parse can outlast 0.2 s): count from the chat on.
        before = wire.connections
        await asyncio.sleep(0.3)
        assert await chat(provider) == ANSWER
        assert wire.connections == before + 1  # the client dropped the idle one itself
        assert wire.idle_closed == 0


async def test_max_connections_bounds_concurrent_chats(cache_dir: Path) -> None:
    async with (
        sandbox.running(generation="legacy", keep_alive=True, first_byte_delay=0.1) as site,
        relay(port_of(site.url)) as wire,
    ):
        provider = provider_for(wire.url(), cache_dir, max_connections=1)
        assert await asyncio.gather(*(chat(provider) for _ in range(3))) == [ANSWER] * 3
        assert wire.connections == 1
        unbounded = provider_for(wire.url(), cache_dir)
        assert await asyncio.gather(*(chat(unbounded) for _ in range(3))) == [ANSWER] * 3
        assert wire.connections > 1


@pytest.mark.parametrize("generation", ["legacy", "aipkit"])
async def test_a_caller_waiting_for_a_pooled_connection_keeps_its_own_timeout(
    generation: str, cache_dir: Path
) -> None:
    async with sandbox.running(generation=generation, keep_alive=True) as site:
        provider = provider_for(site.url, cache_dir, max_connections=1)
        assert await chat(provider) == ANSWER  # credentials stored: only the chat is pooled
        # The holder's stream sends its first delta, then holds the one connection open.
        site.config.stall_after_deltas = 1
        holder = provider.create_async_generator("", USER, timeout=60)
        assert await asyncio.wait_for(anext(holder), 30)
        try:
            start = time.monotonic()
            with pytest.raises(ProviderTimeoutError):
                async with asyncio.timeout(1 + 10):  # a test failure, not a hang, if ignored
                    await chat(provider, timeout=1)
            assert time.monotonic() - start < 1 + 2  # its own 1 s, not the holder's 60
        finally:
            await holder.aclose()  # type: ignore[attr-defined]


async def test_close_pools_closes_this_loops_connections_now(cache_dir: Path) -> None:
    async with (
        sandbox.running(generation="legacy", keep_alive=True) as site,
        relay(port_of(site.url)) as wire,
    ):
        provider = provider_for(wire.url(), cache_dir)
        assert await chat(provider) == ANSWER
        await close_pools()
        assert await chat(provider) == ANSWER  # a new pool, a new connection
        assert wire.connections == 2
        assert wire.idle_closed == 0


async def test_each_loops_pool_closes_on_its_own_in_any_order(cache_dir: Path) -> None:
    # Two event loops, each with its pool; the one asked last (its pool the fast
    # path's) is closed after the other: closing one leaves the other's close whole.
    async with (
        sandbox.running(generation="legacy", keep_alive=True) as site,
        relay(port_of(site.url)) as wire,
    ):
        provider = provider_for(wire.url(), cache_dir)
        other = asyncio.new_event_loop()
        try:
            assert await chat(provider) == ANSWER
            assert await asyncio.to_thread(other.run_until_complete, chat(provider)) == ANSWER
            await close_pools()  # this loop's, while the other loop's pool was asked last
            await asyncio.to_thread(other.run_until_complete, close_pools())
            assert await asyncio.to_thread(other.run_until_complete, chat(provider)) == ANSWER
            assert wire.connections == 3  # the other loop's close closed its pool too
        finally:
            await asyncio.to_thread(other.run_until_complete, close_pools())
            other.close()


def test_close_pools_on_a_loop_without_a_pool_does_nothing() -> None:
    # Promise (close_pools): safe to call on a loop that made no request yet.
    asyncio.run(close_pools())


def test_a_finished_loop_and_its_pool_are_let_go(cache_dir: Path) -> None:
    # The pool's sessions refer to their loop: once asyncio.run() has closed the pool
    # nothing of this library keeps either alive (a program running many loops, one
    # after another, does not pile them up).
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def one_chat(url: str) -> str:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        return await chat(provider_for(url, cache_dir))

    with sandbox.serve_in_thread(generation="legacy", keep_alive=True) as site:
        for _ in range(2):
            assert asyncio.run(one_chat(site.url)) == ANSWER
    gc.collect()
    assert [ref() for ref in loops] == [None, None]


@pytest.mark.parametrize(
    ("name", "value"),
    [("PROVIDER_MAX_CONNECTIONS", "many"), ("PROVIDER_KEEPALIVE_TIMEOUT", "-1")],
)
async def test_a_bad_pool_setting_is_a_clear_error_before_any_request(
    name: str, value: str, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, value)
    async with sandbox.running(generation="legacy") as site:
        with pytest.raises(ConfigurationError, match=name):
            await chat(provider_for(site.url, cache_dir))
        assert sum(site.hits.values()) == 0


async def test_an_untrusted_certificate_names_the_host(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    async with sandbox.running(generation="legacy", tls=True) as site:
        with pytest.raises(NetworkError, match=r"certificate of 127\.0\.0\.1.*SSL_CERT_FILE"):
            await chat(provider_for(site.url, cache_dir), timeout=10)
        assert sum(site.hits.values()) == 0


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """``app`` on a loopback port of its own: (its runner, to clean up; its origin)."""
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def test_one_callers_cookies_never_reach_another_callers_request() -> None:
    seen: list[tuple[str, str]] = []
    peers: set[int] = set()

    async def handler(request: web.Request) -> web.Response:
        seen.append((request.query["who"], request.headers.get("Cookie", "")))
        peers.add(id(request.transport))
        response = web.Response(text="ok")
        if request.query.get("set"):
            response.set_cookie("from_site", request.query["who"])
        return response

    app = web.Application()
    app.router.add_get("/", handler)
    runner, site = await serve(app)
    try:
        alice = borrow(site, None, cookies=[Cookie("who", "alice", "127.0.0.1", "/")])
        bob = borrow(site, None, cookies=[Cookie("who", "bob", "127.0.0.1", "/")])
        nobody = borrow(site, None)
        for client, who, extra in [
            (alice, "alice", "&set=1"),  # the site sets a cookie for alice's call
            (bob, "bob", "&set=1"),  # and one for bob's
            (alice, "alice", ""),
            (nobody, "nobody", ""),
            (bob, "bob", ""),
        ]:
            async with client.get(f"{site}/?who={who}{extra}") as resp:
                assert resp.status == 200
        assert seen == [
            ("alice", "who=alice"),
            ("bob", "who=bob"),
            ("alice", "who=alice; from_site=alice"),
            ("nobody", ""),
            ("bob", "who=bob; from_site=bob"),
        ]
        assert len(peers) == 1  # all of it on one shared, kept-alive connection
    finally:
        await runner.cleanup()


async def cookie_echo() -> tuple[web.AppRunner, str, list[str]]:
    """A site that notes the Cookie header of every request (set_cookie=NAME sets one)."""
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Cookie", ""))
        response = web.Response(text="ok")
        if request.query.get("set_cookie"):
            response.set_cookie(request.query["set_cookie"], "from-site")
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return (*await serve(app), seen)


async def test_calls_with_other_cookies_to_the_same_url_each_send_their_own() -> None:
    # Stored cookies travel as a header worked out once per (cookies, URL): calls
    # holding other cookies must never get that header, even for the same URL.
    runner, site, seen = await cookie_echo()
    try:
        alice = (Cookie("who", "alice", "127.0.0.1", "/"),)
        bob = (Cookie("who", "bob", "127.0.0.1", "/"), Cookie("extra", "1", "127.0.0.1", "/"))
        for cookies in (alice, bob, alice, bob, ()):
            async with borrow(site, None, cookies=cookies).post(f"{site}/chat") as resp:
                assert resp.status == 200
        assert seen == ["who=alice", "who=bob; extra=1", "who=alice", "who=bob; extra=1", ""]
    finally:
        await runner.cleanup()


async def test_a_stored_cookie_goes_only_where_a_jar_would_send_it() -> None:
    runner, site, seen = await cookie_echo()
    try:
        cookies = (
            Cookie("everywhere", "1", "127.0.0.1", "/"),
            Cookie("under_wp", "2", "127.0.0.1", "/wp-admin"),
            Cookie("tls_only", "3", "127.0.0.1", "/", secure=True),  # never over http
            Cookie("other_host", "4", "example.org", "/"),
            Cookie("gone", "5", "127.0.0.1", "/", expires=time.time() - 60),
        )
        for path in ("/wp-admin/admin-ajax.php", "/chat/", "/wp-admin/admin-ajax.php"):
            async with borrow(site, None, cookies=cookies).get(f"{site}{path}") as resp:
                assert resp.status == 200
        assert seen == ["everywhere=1; under_wp=2", "everywhere=1", "everywhere=1; under_wp=2"]
    finally:
        await runner.cleanup()


async def test_a_stored_cookie_stops_travelling_when_it_expires() -> None:
    runner, site, seen = await cookie_echo()
    try:
        expires = time.time() + 2  # the jar reads whole seconds (an Expires date)
        cookies = (
            Cookie("short", "1", "127.0.0.1", "/", expires=expires),
            Cookie("long", "2", "127.0.0.1", "/"),
        )
        async with borrow(site, None, cookies=cookies).get(f"{site}/chat") as resp:
            assert resp.status == 200
        await asyncio.sleep(max(0.0, expires - time.time()) + 0.1)  # a time, not an event
        async with borrow(site, None, cookies=cookies).get(f"{site}/chat") as resp:
            assert resp.status == 200
        assert seen == ["short=1; long=2", "long=2"]
    finally:
        await runner.cleanup()


async def test_a_cookie_the_site_sets_joins_the_calls_later_requests_only() -> None:
    runner, site, seen = await cookie_echo()
    try:
        stored = (Cookie("stored", "1", "127.0.0.1", "/"),)
        first = borrow(site, None, cookies=stored)
        async with first.get(f"{site}/page?set_cookie=session") as resp:
            assert resp.status == 200
        async with first.post(f"{site}/chat") as resp:  # the same call: the site's cookie too
            assert resp.status == 200
        assert {c.name for c in first.cookies()} == {"stored", "session"}
        async with borrow(site, None, cookies=stored).post(f"{site}/chat") as resp:
            assert resp.status == 200  # another call: the stored cookies alone
        assert seen == ["stored=1", "stored=1; session=from-site", "stored=1"]
    finally:
        await runner.cleanup()


CHILD = """
import asyncio, gc, sys
from pathlib import Path
from tests.conftest import USER, chat, provider_for
import sandbox

async def serve_and_chat(cache):
    async with sandbox.running(generation="aipkit", tls=True, keep_alive=True) as site:
        import os
        os.environ["SSL_CERT_FILE"] = str(site.ca_file)
        provider = provider_for(site.url, cache)
        print(await chat(provider), await chat(provider))
        return site.url, str(site.ca_file)

cache = Path(sys.argv[1])
for _ in range(3):  # each asyncio.run() gets its own pool, closed when it ends
    asyncio.run(serve_and_chat(cache))
gc.collect()
"""


def test_no_unclosed_session_warnings_under_w_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", CHILD, str(tmp_path / "cache")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:3] == [f"{ANSWER} {ANSWER}"] * 3
    assert "Unclosed" not in done.stderr
    assert "Exception ignored" not in done.stderr
    assert done.stderr == ""


async def test_a_form_post_carries_the_calls_headers_its_type_and_cookies() -> None:
    # The chat's form is encoded by the client (issue 25): the request's own headers
    # (the User-Agent a clearance cookie is bound to) go with the form's type and
    # the call's cookies, with or without a cookie.
    seen: list[tuple[dict[str, str], dict[str, str]]] = []

    async def handler(request: web.Request) -> web.Response:
        form = await request.post()
        seen.append((dict(request.headers), {k: str(v) for k, v in form.items()}))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/chat", handler)
    runner, site = await serve(app)
    headers = {"User-Agent": "Agent/1.0", "Referer": f"{site}/page/"}
    try:
        for cookies in ([Cookie("who", "alice", "127.0.0.1", "/")], []):
            client = borrow(site, None, cookies=cookies)
            async with client.post(
                f"{site}/chat", data={"message": "a b+c"}, headers=headers
            ) as resp:
                assert resp.status == 200
        for (sent, form), cookie in zip(seen, ["who=alice", None], strict=True):
            assert sent["User-Agent"] == "Agent/1.0"
            assert sent["Referer"] == f"{site}/page/"
            assert sent["Content-Type"] == "application/x-www-form-urlencoded"
            assert sent.get("Cookie") == cookie
            assert form == {"message": "a b+c"}
    finally:
        await runner.cleanup()
