"""The Cloudflare-like edge: challenge, clearance binding, hard block, rate limit."""

from __future__ import annotations

import re

import aiohttp
import pytest

import sandbox
from tests.sandbox.sandbox_testkit import UA_A, UA_B, Reply, fetch

PATHS = ["/", "/chat/", "/wp-admin/admin-ajax.php", "/no/such/page", "/favicon.ico"]


async def get(http: aiohttp.ClientSession, url: str, ua: str, cookie: str | None = None) -> Reply:
    headers = {"User-Agent": ua}
    if cookie is not None:
        headers["Cookie"] = f"cf_clearance={cookie}"
    return await fetch(http, "GET", url, headers=headers)


def assert_challenge(reply: Reply) -> None:
    assert reply.status == 403
    assert reply.header("cf-mitigated") == "challenge"
    assert reply.header("Server") == "cloudflare"
    assert reply.header("Content-Type") == "text/html; charset=UTF-8"
    assert "<title>Just a moment...</title>" in reply.text
    assert '<div id="cf-please-wait">' in reply.text
    assert "window._cf_chl_opt={" in reply.text
    assert "/cdn-cgi/challenge-platform/" in reply.text


async def test_challenge_on_every_path(http: aiohttp.ClientSession) -> None:
    async with sandbox.running(challenge=True) as site:
        for path in PATHS:
            assert_challenge(await get(http, site.url + path, UA_A))
        post = await fetch(
            http,
            "POST",
            site.url + "/wp-admin/admin-ajax.php",
            data={"action": "aipkit_cache_sse_message"},
        )
        assert_challenge(post)
        assert site.hits["challenge"] == len(PATHS) + 1
        assert site.hits["GET /"] == 0 and site.hits["admin-ajax:aipkit_cache_sse_message"] == 0


async def test_each_challenge_is_a_new_program(http: aiohttp.ClientSession) -> None:
    async with sandbox.running(challenge=True) as site:
        first = await get(http, site.url + "/", UA_A)
        second = await get(http, site.url + "/", UA_A)
    payload = re.compile(r'"cPayload": "([^"]+)"')
    a, b = payload.search(first.text), payload.search(second.text)
    assert a and b and a.group(1) != b.group(1)


async def test_clearance_passes_for_same_ua_and_address(http: aiohttp.ClientSession) -> None:
    async with sandbox.running(generation="legacy", challenge=True) as site:
        token = site.issue_clearance(UA_A)
        page = await get(http, site.url + "/chat/", UA_A, token)
        assert page.status == 200 and "wpaicg-chat-shortcode" in page.text
        assert site.hits["GET /chat/"] == 1 and site.hits["challenge"] == 0


async def test_clearance_bound_to_user_agent(http: aiohttp.ClientSession) -> None:
    async with sandbox.running(challenge=True) as site:
        token = site.issue_clearance(UA_A)
        assert_challenge(await get(http, site.url + "/", UA_B, token))


async def test_clearance_bound_to_address() -> None:
    # Loopback has a whole /8: leave from 127.0.0.2 with a token solved at 127.0.0.1.
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0), force_close=True)
    async with (
        sandbox.running(challenge=True) as site,
        aiohttp.ClientSession(connector=connector) as other,
    ):
        token = site.issue_clearance(UA_A, "127.0.0.1")
        assert_challenge(await get(other, site.url + "/", UA_A, token))
        ok = await get(other, site.url + "/", UA_A, site.issue_clearance(UA_A, "127.0.0.2"))
        assert ok.status == 200


@pytest.mark.parametrize("mangle", ["absent", "empty", "garbage", "flipped", "other-site"])
async def test_forged_clearance_fails(http: aiohttp.ClientSession, mangle: str) -> None:
    async with sandbox.running(challenge=True) as site, sandbox.running(challenge=True) as other:
        token = site.issue_clearance(UA_A)
        cookie: str | None = {
            "absent": None,
            "empty": "",
            "garbage": "not-a-token-1.2.1.1-x",
            "flipped": ("0" if token[0] != "0" else "1") + token[1:],
            "other-site": other.issue_clearance(UA_A),
        }[mangle]
        assert_challenge(await get(http, site.url + "/", UA_A, cookie))


async def test_clearance_expires(http: aiohttp.ClientSession) -> None:
    async with sandbox.running(challenge=True) as site:
        token = site.issue_clearance(UA_A)
        assert (await get(http, site.url + "/", UA_A, token)).status == 200
        site.config.clearance_ttl = 0  # the lifetime is checked on every request
        assert_challenge(await get(http, site.url + "/", UA_A, token))


async def test_wrong_answer_gets_no_cookie(http: aiohttp.ClientSession) -> None:
    async with sandbox.running(challenge=True) as site:
        page = await get(http, site.url + "/", UA_A)
        flow = re.search(r'"cFlow": "([^"]+)"', page.text)
        assert flow
        url = site.url + flow.group(1).replace("\\/", "/")
        reply = await fetch(
            http, "POST", url, data={"answer": "00000000"}, headers={"User-Agent": UA_A}
        )
        assert reply.status == 403 and reply.header("Set-Cookie") is None
        # One attempt per challenge: even a replay is refused.
        again = await fetch(http, "POST", url, data={"answer": "00000000"})
        assert again.status == 403
        assert site.hits["challenge_failed"] == 2 and site.hits["clearance"] == 0


async def test_challenge_script_is_reachable(http: aiohttp.ClientSession) -> None:
    async with sandbox.running(challenge=True) as site:
        page = await get(http, site.url + "/", UA_A)
        src = re.search(r"s\.src='([^']+)'", page.text)
        assert src
        script = await get(http, site.url + src.group(1), UA_A)
    assert script.status == 200
    assert script.header("Content-Type") == "application/javascript"
    assert "new Function" in script.text and "location.replace" in script.text


async def test_hard_block(http: aiohttp.ClientSession) -> None:
    async with sandbox.running(hard_block=True, challenge=True) as site:
        for path in PATHS:
            reply = await get(http, site.url + path, UA_A, site.issue_clearance(UA_A))
            assert reply.status == 403
            assert reply.header("cf-mitigated") is None
            assert reply.header("Server") == "cloudflare"
            assert "<title>Attention Required! | Cloudflare</title>" in reply.text
            assert "Access denied" in reply.text
            assert "error code: 1020" in reply.text and 'cf-error-code">1020' in reply.text
        assert site.hits["blocked"] == len(PATHS)


async def test_rate_limit(http: aiohttp.ClientSession) -> None:
    async with sandbox.running(rate_limit=True, retry_after=17) as site:
        for path in PATHS:
            reply = await get(http, site.url + path, UA_A)
            assert reply.status == 429
            assert reply.header("Retry-After") == "17"
            assert reply.header("Server") == "cloudflare"
        assert site.hits["rate_limited"] == len(PATHS)
        site.config.rate_limit = False
        assert (await get(http, site.url + "/", UA_A)).status == 200
