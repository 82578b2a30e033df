"""The sandbox's late end of a body (``end_delay``) and its count of connections,
seen from a plain aiohttp client (no library code)."""

from __future__ import annotations

import subprocess
import sys

import aiohttp
import pytest

import sandbox

GENERATIONS = ["legacy", "aipkit"]


async def _stream(http: aiohttp.ClientSession, site: sandbox.Site) -> aiohttp.ClientResponse:
    """Open a chat stream of the site's generation (aipkit: cache the message first)."""
    ajax = site.url + "/wp-admin/admin-ajax.php"
    if site.config.generation == "legacy":
        form = {
            "_wpnonce": site.nonce(),
            "post_id": "12",
            "url": site.url,
            "action": "wpaicg_chat_shortcode_message",
            "message": "Hello sandbox",
            "bot_id": "0",
        }
        return await http.post(ajax, data=form)
    nonce = site.nonce()
    async with http.post(
        ajax,
        data={
            "action": "aipkit_cache_sse_message",
            "message": "Hello sandbox",
            "_ajax_nonce": nonce,
            "bot_id": "5",
        },
    ) as cached:
        key = (await cached.json())["data"]["cache_key"]
    query = {
        "action": "aipkit_frontend_chat_stream",
        "cache_key": key,
        "bot_id": "5",
        "session_id": "s",
        "conversation_uuid": "c",
        "_ajax_nonce": nonce,
    }
    return await http.get(ajax, params=query)


LAST_EVENT = {"legacy": b"data: [DONE]\n\n", "aipkit": b'data: {"finished":true}\n\n'}


@pytest.mark.parametrize("generation", GENERATIONS)
async def test_the_body_ends_after_the_answer_by_end_delay(generation: str) -> None:
    async with (
        sandbox.running(
            generation=generation,  # type: ignore[arg-type]
            keep_alive=True,
            framing="chunked",
            end_delay=30.0,
        ) as site,
        aiohttp.ClientSession() as http,
    ):
        resp = await _stream(http, site)
        seen = b""
        async for chunk in resp.content.iter_any():
            seen += chunk
            if seen.endswith(LAST_EVENT[generation]):
                break
        # The whole answer arrived; the body is still open, held by end_delay.
        assert site.answered == 1
        assert site.ended == 0
        assert not resp.content.at_eof()
        resp.close()


@pytest.mark.parametrize("generation", GENERATIONS)
async def test_the_rest_and_the_end_follow_the_delay(generation: str) -> None:
    async with (
        sandbox.running(
            generation=generation,  # type: ignore[arg-type]
            keep_alive=True,
            framing="chunked",
            end_delay=0.05,
        ) as site,
        aiohttp.ClientSession() as http,
    ):
        for _ in range(3):
            async with await _stream(http, site) as resp:
                body = await resp.read()
            assert body.endswith(
                b'"log":false}' if generation == "legacy" else LAST_EVENT[generation]
            )
        assert site.ended == site.answered == 3
        # One kept-alive client, one connection for the three streams (aipkit: six requests).
        assert site.connections == 1


async def test_connections_are_counted_as_accepted() -> None:
    async with sandbox.running(generation="legacy", keep_alive=True) as site:
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as http:
            for _ in range(3):
                async with http.get(site.url + "/chat/") as resp:
                    await resp.read()
        assert site.connections == 3
        site.reset_hits()
        assert site.connections == 0


def test_the_command_line_takes_end_delay_and_refuses_a_negative_one() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sandbox", "--port", "0", "--end-delay", "-1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "end_delay" in done.stderr
