"""Wire faults and pacing: split writes, dropped and stalled connections, junk lines."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from typing import Literal

import aiohttp
import pytest

import sandbox
from tests.sandbox.sandbox_testkit import fetch, split_legacy, sse_events

Gen = Literal["legacy", "aipkit"]
AJAX = "/wp-admin/admin-ajax.php"


def legacy_fields(site: sandbox.Site, message: str) -> dict[str, str]:
    return {
        "_wpnonce": site.nonce(),
        "post_id": "12",
        "url": site.url,
        "action": "wpaicg_chat_shortcode_message",
        "message": message,
        "bot_id": "0",
    }


def normalise(body: bytes) -> bytes:
    """Blank what differs between two requests: the chunk id and timestamp."""
    body = re.sub(rb"chatcmpl-[0-9a-f]+", b"chatcmpl-X", body)
    return re.sub(rb'"created": \d+', b'"created": 0', body)


async def aipkit_stream_url(http: aiohttp.ClientSession, site: sandbox.Site, message: str) -> str:
    fields = {
        "action": "aipkit_cache_sse_message",
        "message": message,
        "_ajax_nonce": site.nonce(),
        "bot_id": "5",
    }
    reply = await fetch(http, "POST", site.url + AJAX, data=fields)
    key = json.loads(reply.body)["data"]["cache_key"]
    return (
        f"{site.url}{AJAX}?action=aipkit_frontend_chat_stream&cache_key={key}&bot_id=5"
        f"&session_id=s&conversation_uuid=c&_ts=1&_ajax_nonce={site.nonce()}"
    )


async def test_long_answer_has_exact_bytes_and_utf8(http: aiohttp.ClientSession) -> None:
    async with sandbox.running(generation="legacy", answer_bytes=5000, delta_chars=7) as site:
        reply = await fetch(http, "POST", site.url + AJAX, data=legacy_fields(site, "long one"))
    sse, tail = split_legacy(reply.body)
    answer = tail["data"]
    assert len(answer.encode()) == 5000
    assert answer.startswith("You said: long one")
    assert {"é", "—", "✓", "🙂"} <= set(answer)
    pieces = [e.json()["choices"][0]["delta"].get("content", "") for e in sse_events(sse)[:-1]]
    assert "".join(pieces) == answer
    assert all(len(p) <= 7 for p in pieces) and len(pieces) > 5000 // 28
    # Raw UTF-8 in the upstream chunks (as OpenAI sends), \u escapes in PHP's JSON.
    assert "🙂".encode() in sse and b"\\ud83d\\ude42" in reply.body


@pytest.mark.parametrize("size", [1, 3, 1024, 4096, 5000])
async def test_answer_bytes_sizes(http: aiohttp.ClientSession, size: int) -> None:
    async with sandbox.running(answer_bytes=size) as site:
        reply = await fetch(http, "GET", await aipkit_stream_url(http, site, "x"))
    text = "".join(e.json()["delta"] for e in sse_events(reply.body) if "event" not in e.fields)
    assert len(text.encode()) == size


@pytest.mark.parametrize("piece", [1, 5])
async def test_wire_chunk_splits_reads_but_not_content(
    http: aiohttp.ClientSession, piece: int
) -> None:
    async with sandbox.running(generation="legacy", answer_bytes=600) as site:
        whole = await fetch(http, "POST", site.url + AJAX, data=legacy_fields(site, "split me"))
        site.config.wire_chunk = piece
        split = await fetch(http, "POST", site.url + AJAX, data=legacy_fields(site, "split me"))
    assert normalise(split.body) == normalise(whole.body)
    assert whole.reads < 10
    # Many small reads: far more than the unsplit reply, some ending mid-character.
    assert split.reads > len(split.body) // (piece * 4)
    split.body.decode()  # and the reassembled bytes are valid UTF-8


async def test_wire_chunk_on_aipkit(http: aiohttp.ClientSession) -> None:
    async with sandbox.running(answer_bytes=300, wire_chunk=2) as site:
        reply = await fetch(http, "GET", await aipkit_stream_url(http, site, "x"))
    assert reply.reads > 500
    events = sse_events(reply.body)
    assert [e.event for e in events][-1] == "done"


async def test_drop_after_bytes_close_framing(http: aiohttp.ClientSession) -> None:
    async with sandbox.running(generation="legacy", drop_after_bytes=300) as site:
        fields = legacy_fields(site, "drop me")
        async with http.post(site.url + AJAX, data=fields) as resp:
            assert resp.status == 200
            received = b""
            # Close-delimited (like the captures): the cut reads as an end of body or
            # as a reset; either way the content shows the stream is incomplete.
            with contextlib.suppress(aiohttp.ClientPayloadError):
                async for chunk in resp.content.iter_any():
                    received += chunk
    assert len(received) == 300
    assert b"[DONE]" not in received


async def test_drop_after_bytes_chunked_is_an_error(http: aiohttp.ClientSession) -> None:
    async with sandbox.running(framing="chunked", drop_after_bytes=4200) as site:
        url = await aipkit_stream_url(http, site, "drop me")
        async with http.get(url) as resp:
            assert resp.headers["Transfer-Encoding"] == "chunked"
            received = b""
            with pytest.raises(aiohttp.ClientPayloadError):
                async for chunk in resp.content.iter_any():
                    received += chunk
    assert len(received) == 4200
    assert b"event: done" not in received


async def test_chunked_framing_complete(http: aiohttp.ClientSession) -> None:
    async with sandbox.running(generation="legacy", framing="chunked") as site:
        reply = await fetch(http, "POST", site.url + AJAX, data=legacy_fields(site, "hi"))
    assert reply.header("Transfer-Encoding") == "chunked"
    assert split_legacy(reply.body)[1]["data"] == "You said: hi"


async def test_close_framing_has_no_length(http: aiohttp.ClientSession) -> None:
    async with sandbox.running(generation="legacy") as site:
        reply = await fetch(http, "POST", site.url + AJAX, data=legacy_fields(site, "hi"))
        page = await fetch(http, "GET", site.url + "/")
    for r in (reply, page):
        assert r.header("Transfer-Encoding") is None and r.header("Content-Length") is None
        assert r.header("Connection") == "close"
        assert r.header("Server") is None


@pytest.mark.parametrize("generation", ["legacy", "aipkit"])
async def test_garbage_lines_are_skippable(http: aiohttp.ClientSession, generation: Gen) -> None:
    async with sandbox.running(generation=generation) as site:

        async def one() -> bytes:
            if generation == "legacy":
                r = await fetch(http, "POST", site.url + AJAX, data=legacy_fields(site, "a b c"))
            else:
                r = await fetch(http, "GET", await aipkit_stream_url(http, site, "a b c"))
            return r.body

        clean = await one()
        site.config.garbage_lines = True
        dirty = await one()
    assert len(dirty) > len(clean) + 100_000
    for junk in (b": keepalive\n\n", b"retry: 100\n", b"id: 7\n", b"\r\n\r\n"):
        assert junk in dirty
    assert any(len(line) >= 100_000 for line in dirty.split(b"\n"))
    if generation == "legacy":
        clean_sse, clean_tail = split_legacy(clean)
        dirty_sse, dirty_tail = split_legacy(dirty)
        assert dirty_tail == clean_tail
        clean, dirty = normalise(clean_sse), normalise(dirty_sse)
    else:
        clean, dirty = (
            re.sub(rb'"(aipkit-msg|resp)_?[^"]*"', b"X", clean),
            re.sub(rb'"(aipkit-msg|resp)_?[^"]*"', b"X", dirty),
        )
    # A spec-following parser sees exactly the same events.
    assert [(e.event, e.data) for e in sse_events(dirty)] == [
        (e.event, e.data) for e in sse_events(clean)
    ]


@pytest.mark.parametrize("generation", ["legacy", "aipkit"])
async def test_stall_keeps_connection_open(http: aiohttp.ClientSession, generation: Gen) -> None:
    async with sandbox.running(generation=generation, stall_after_deltas=1) as site:
        if generation == "legacy":
            request = http.post(site.url + AJAX, data=legacy_fields(site, "one two three"))
        else:
            request = http.get(await aipkit_stream_url(http, site, "one two three"))
        async with request as resp:
            received = b""
            while b"You said: " not in received:
                received += await asyncio.wait_for(resp.content.readany(), 2)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(resp.content.readany(), 0.3)
            assert not resp.content.at_eof()
            assert resp.connection is not None and resp.connection.transport is not None
            assert not resp.connection.transport.is_closing()
    assert b"one two" not in received


async def test_chunk_delay_and_first_byte_delay(http: aiohttp.ClientSession) -> None:
    async with sandbox.running(first_byte_delay=0.2, chunk_delay=0.1) as site:
        url = await aipkit_stream_url(http, site, "one two three")  # three deltas
        start = time.monotonic()
        reply = await fetch(http, "GET", url)
        elapsed = time.monotonic() - start
    assert elapsed >= 0.4  # 0.2 s before the first byte, 0.1 s before each later delta
    assert reply.reads >= 3
