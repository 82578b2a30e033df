"""The aipkit generation's three actions, compared with the captures."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from typing import Any

import aiohttp
import pytest

import sandbox
from tests.capture import capture
from tests.sandbox.sandbox_testkit import (
    Event,
    Reply,
    comparable_headers,
    fetch,
    form,
    shape,
    sse_events,
)

AJAX = "/wp-admin/admin-ajax.php"
PREAMBLE = b":" + b" " * 4096 + b"\n\n"


async def cache(
    http: aiohttp.ClientSession, site: sandbox.Site, message: str, **extra: str
) -> Reply:
    fields = {
        "action": "aipkit_cache_sse_message",
        "message": message,
        "_ajax_nonce": site.nonce(),
        "bot_id": "5",
        **extra,
    }
    return await fetch(http, "POST", site.url + AJAX, data=form(**fields))


async def cache_key(http: aiohttp.ClientSession, site: sandbox.Site, message: str) -> str:
    reply = await cache(http, site, message)
    assert reply.status == 200, reply.body
    key: str = json.loads(reply.body)["data"]["cache_key"]
    return key


def stream_params(site: sandbox.Site, key: str, **extra: str) -> dict[str, str]:
    return {
        "action": "aipkit_frontend_chat_stream",
        "cache_key": key,
        "bot_id": "5",
        "session_id": extra.pop("session_id", str(uuid.uuid4())),
        "conversation_uuid": extra.pop("conversation_uuid", str(uuid.uuid4())),
        "post_id": "6",
        "_ts": "1795611103991",
        "_ajax_nonce": site.nonce(),
        **extra,
    }


async def stream(http: aiohttp.ClientSession, site: sandbox.Site, key: str, **extra: str) -> Reply:
    return await fetch(http, "GET", site.url + AJAX, params=stream_params(site, key, **extra))


async def ask(http: aiohttp.ClientSession, site: sandbox.Site, message: str, **extra: str) -> Reply:
    return await stream(http, site, await cache_key(http, site, message), **extra)


def text_of(events: list[Event]) -> str:
    return "".join(e.json()["delta"] for e in events if "event" not in e.fields)


def outline(events: list[Event]) -> list[tuple[str, Any]]:
    """(event name or "", JSON shape) per event."""
    return [(e.event if "event" in e.fields else "", shape(e.json())) for e in events]


# --------------------------------------------------------------------------- cache step


async def test_cache_matches_capture(http: aiohttp.ClientSession) -> None:
    cap = capture("aipkit-cache.http")
    async with sandbox.running() as site:
        reply = await cache(http, site, "Hello aipkit bot")
    assert comparable_headers(reply.headers) == comparable_headers(cap.headers)
    assert re.fullmatch(
        rb'\{"success":true,"data":\{"cache_key":"aipkit_sse_[A-Za-z0-9]{32}"\}\}', reply.body
    )


async def test_cache_urlencoded_works(http: aiohttp.ClientSession) -> None:
    async with sandbox.running() as site:
        fields = {
            "action": "aipkit_cache_sse_message",
            "message": "hi",
            "_ajax_nonce": site.nonce(),
            "bot_id": "5",
        }
        reply = await fetch(http, "POST", site.url + AJAX, data=fields)
    assert reply.status == 200


async def test_cache_bad_nonce_exact_body(http: aiohttp.ClientSession) -> None:
    cap = capture("aipkit-bad-nonce-cache.http")
    async with sandbox.running() as site:
        reply = await cache(http, site, "hi", _ajax_nonce="0123456789")
    assert reply.status == 403
    assert comparable_headers(reply.headers) == comparable_headers(cap.headers)
    assert reply.body == cap.body


async def test_cache_nonce_only_from_post_body(http: aiohttp.ClientSession) -> None:
    async with sandbox.running() as site:
        fields = {"action": "aipkit_cache_sse_message", "message": "hi", "bot_id": "5"}
        reply = await fetch(
            http, "POST", site.url + AJAX, params={"_ajax_nonce": site.nonce()}, data=form(**fields)
        )
    assert reply.status == 403
    assert json.loads(reply.body)["data"]["code"] == "nonce_failure_cache_sse"


async def test_every_accepted_prompt_is_recorded_in_full(http: aiohttp.ClientSession) -> None:
    prompt = "System: be brief\nUser: two\nparts 🙂\nAssistant:"
    async with sandbox.running() as site:
        await cache(http, site, "refused", _ajax_nonce="0123456789")
        await ask(http, site, prompt)
        assert list(site.prompts) == [prompt]


@pytest.mark.parametrize("message", ["", "0"])
async def test_cache_empty_message(http: aiohttp.ClientSession, message: str) -> None:
    async with sandbox.running() as site:
        reply = await cache(http, site, message)
    assert reply.status == 400
    body = json.loads(reply.body)
    assert body["success"] is False and body["data"]["code"] == "empty_data_to_cache"


async def test_cache_cors_denied(http: aiohttp.ClientSession) -> None:
    async with sandbox.running(reply_error="cors_denied") as site:
        reply = await cache(http, site, "hi")
    assert reply.status == 403
    assert json.loads(reply.body)["data"] == {
        "message": "This domain is not permitted to access the chatbot.",
        "code": "cors_denied",
    }


# --------------------------------------------------------------------------- the stream


async def test_stream_matches_capture(http: aiohttp.ClientSession) -> None:
    cap = capture("aipkit-stream.http")
    async with sandbox.running() as site:
        reply = await ask(http, site, "Hello aipkit bot")
    assert reply.status == 200
    assert comparable_headers(reply.headers) == comparable_headers(cap.headers)
    assert reply.body.startswith(PREAMBLE) and cap.body.startswith(PREAMBLE)
    ours, theirs = sse_events(reply.body), sse_events(cap.body)
    assert outline(ours) == outline(theirs)
    assert text_of(ours) == text_of(theirs) == "You said: Hello aipkit bot"
    assert [e.data for e in ours if "event" not in e.fields] == [
        e.data for e in theirs if "event" not in e.fields
    ]
    assert re.fullmatch(r"aipkit-msg-[0-9a-f]{14}\.\d{8}", ours[0].json()["message_id"])
    status, response_id = ours[1].json(), ours[4].json()
    assert status["response_id"] == response_id["id"]
    assert ours[-1].data == '{"finished":true}'
    assert reply.body.endswith(b'event: done\ndata: {"finished":true}\n\n')


async def test_chat_completions_mode_matches_capture(http: aiohttp.ClientSession) -> None:
    cap = capture("aipkit-stream-chat-completions-mode.http")
    async with sandbox.running(responses_api=False) as site:
        reply = await ask(http, site, "Hello via chat_completions mode")
    ours, theirs = sse_events(reply.body), sse_events(cap.body)
    assert outline(ours) == outline(theirs)
    assert [e.data for e in ours[1:]] == [e.data for e in theirs[1:]]


async def test_bad_nonce_stream_matches_capture(http: aiohttp.ClientSession) -> None:
    cap = capture("aipkit-bad-nonce-stream.http")
    async with sandbox.running() as site:
        key = await cache_key(http, site, "hi")
        reply = await stream(http, site, key, _ajax_nonce="0123456789")
        assert reply.status == 200
        assert comparable_headers(reply.headers) == comparable_headers(cap.headers)
        normalise = re.compile(rb"err-\d+")
        assert normalise.sub(b"err-N", reply.body) == normalise.sub(b"err-N", cap.body)
        # A bad nonce does not burn the key: with the right nonce it still answers.
        again = await stream(http, site, key)
        assert text_of(sse_events(again.body)) == "You said: hi"


async def test_reused_key_matches_capture(http: aiohttp.ClientSession) -> None:
    cap = capture("aipkit-reused-cache-key.http")
    async with sandbox.running() as site:
        key = await cache_key(http, site, "once")
        first = await stream(http, site, key)
        assert text_of(sse_events(first.body)) == "You said: once"
        reply = await stream(http, site, key)
    normalise = re.compile(rb"err-\d+")
    assert normalise.sub(b"err-N", reply.body) == normalise.sub(b"err-N", cap.body)


async def test_expired_key(http: aiohttp.ClientSession) -> None:
    async with sandbox.running(cache_ttl=0.1) as site:
        key = await cache_key(http, site, "late")
        await asyncio.sleep(0.15)  # the TTL itself is what is being waited for
        reply = await stream(http, site, key)
    events = sse_events(reply.body)
    assert [e.event for e in events] == ["error", "done"]
    assert events[0].json() == {"error": "Cached message has expired."}


ERROR_TEXTS = {
    "guest_disabled": "Access disabled for guests.",
    "ip_blocked": "Access from your IP address has been blocked.",
    "banned_words": "Sorry, your message could not be sent as it contains prohibited words.",
    "moderation": "Your message was flagged by the moderation system and could not be sent.",
    "quota": "You have reached your quota for this period.",
}


@pytest.mark.parametrize("error", sorted(ERROR_TEXTS))
async def test_access_errors_then_done(http: aiohttp.ClientSession, error: str) -> None:
    async with sandbox.running(reply_error=error) as site:
        reply = await ask(http, site, "hi")
    assert reply.status == 200 and reply.body.startswith(PREAMBLE)
    events = sse_events(reply.body)
    assert [e.event for e in events] == ["error", "done"]
    assert events[0].json()["error"] == ERROR_TEXTS[error]
    assert re.fullmatch(r"err-\d{10}", events[0].id or "")
    if error == "quota":
        assert "quota_notice" in events[0].json()


@pytest.mark.parametrize(
    ("error", "prefix", "done"),
    [
        ("api_error", "API Error: ", False),
        ("connection_error", "Connection Error: ", True),
        ("no_data", "Connection error: no data received from AI.", True),
    ],
)
async def test_mid_answer_errors(
    http: aiohttp.ClientSession, error: str, prefix: str, done: bool
) -> None:
    async with sandbox.running(reply_error=error) as site:
        reply = await ask(http, site, "hi")
    events = sse_events(reply.body)
    assert [e.event for e in events] == ["message_start", "error", *(["done"] if done else [])]
    assert events[1].json()["error"].startswith(prefix)


async def test_api_error_matches_capture(http: aiohttp.ClientSession) -> None:
    cap = capture("aipkit-upstream-error.http")
    async with sandbox.running(reply_error="api_error") as site:
        reply = await ask(http, site, "hi")
    assert outline(sse_events(reply.body)) == outline(sse_events(cap.body))
    assert sse_events(reply.body)[1].data == sse_events(cap.body)[1].data


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"cache_key": ""}, "Message cache key is missing."),
        ({"cache_key": "aipkit_sse_" + "x" * 32}, "Message not found in cache."),
        ({"bot_id": "99"}, "Invalid chatbot specified."),
        ({"conversation_uuid": ""}, "Conversation ID is missing."),
        ({"session_id": ""}, "Session ID is missing for guest."),
        ({"_ajax_nonce": ""}, "Security check failed. Please refresh the page and try again."),
    ],
)
async def test_request_errors(
    http: aiohttp.ClientSession, change: dict[str, str], text: str
) -> None:
    async with sandbox.running() as site:
        params = stream_params(site, await cache_key(http, site, "hi")) | change
        reply = await fetch(http, "GET", site.url + AJAX, params=params)
    events = sse_events(reply.body)
    assert [e.event for e in events] == ["error", "done"]
    assert events[0].json() == {"error": text}


async def test_warning_event(http: aiohttp.ClientSession) -> None:
    async with sandbox.running(warning=True) as site:
        reply = await ask(http, site, "Hello aipkit bot")
    events = sse_events(reply.body)
    names = [e.event if "event" in e.fields else "" for e in events]
    assert "warning" in names
    warning = events[names.index("warning")]
    assert warning.data == '{"error":" (Warning: Content Filtered)"}'
    assert 0 < names.index("warning") < names.index("done")
    assert text_of(events) == "You said: Hello aipkit bot"


async def test_history_per_conversation(http: aiohttp.ClientSession) -> None:
    session, one, two = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    async with sandbox.running(aipkit_bots=[5, 7]) as site:
        for message, conversation in (("a", one), ("b", one), ("c", two)):
            await ask(http, site, message, session_id=session, conversation_uuid=conversation)
        await ask(http, site, "d", session_id=session, conversation_uuid=one, bot_id="7")
        assert site.history(session, 5, one) == ["a", "b"]
        assert site.history(session, 5, two) == ["c"]
        assert site.history(session, 7, one) == ["d"]
        assert site.history("someone-else", 5, one) == []


async def test_guest_quota_per_session(http: aiohttp.ClientSession) -> None:
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    async with sandbox.running(guest_quota=2) as site:
        for _ in range(2):
            ok = await ask(http, site, "hi", session_id=first)
            assert text_of(sse_events(ok.body)) == "You said: hi"
        over = sse_events((await ask(http, site, "hi", session_id=first)).body)
        assert over[0].json()["error"] == "You have reached your quota for this period."
        assert "quota_notice" in over[0].json()
        other = await ask(http, site, "hi", session_id=second)
        assert text_of(sse_events(other.body)) == "You said: hi"


async def test_nonce_refresh(http: aiohttp.ClientSession) -> None:
    cap = capture("aipkit-nonce-refresh.http")
    async with sandbox.running() as site:
        stale = site.nonce()
        site.rotate_nonce()
        bad = await cache(http, site, "hi", _ajax_nonce=stale)
        assert bad.status == 403
        fields = {"action": "aipkit_get_frontend_chat_nonce", "bot_id": "5"}
        reply = await fetch(http, "POST", site.url + AJAX, data=form(**fields))
        assert site.hits["admin-ajax:aipkit_get_frontend_chat_nonce"] == 1
        assert comparable_headers(reply.headers) == comparable_headers(cap.headers)
        assert re.fullmatch(rb'\{"success":true,"data":\{"nonce":"[0-9a-f]{10}"\}\}', reply.body)
        fresh = json.loads(reply.body)["data"]["nonce"]
        assert fresh == site.nonce() != stale
        good = await cache(http, site, "hi", _ajax_nonce=fresh)
        assert good.status == 200


async def test_nonce_expiry_on_stream(http: aiohttp.ClientSession) -> None:
    async with sandbox.running(tick_seconds=0.3) as site:
        nonce = site.nonce()
        # It verifies through the end of the next tick: sleep exactly until then.
        await asyncio.sleep((site.nonces.tick() + 1) * 0.3 - time.time() + 0.02)
        assert not site.nonces.verify(nonce, "aipkit_frontend_chat_nonce")
        key = await cache_key(http, site, "hi")
        reply = await stream(http, site, key, _ajax_nonce=nonce)
    assert sse_events(reply.body)[0].json()["error"].startswith("Security check failed.")


async def test_unknown_action_and_legacy_action(http: aiohttp.ClientSession) -> None:
    async with sandbox.running() as site:
        for action in ("", "wpaicg_chat_shortcode_message"):
            reply = await fetch(http, "GET", site.url + AJAX, params={"action": action})
            assert (reply.status, reply.body) == (400, b"0")
        plain = await fetch(http, "GET", site.url + AJAX)
        assert (plain.status, plain.body) == (400, b"0")
        assert site.hits["admin-ajax:"] == 2


async def test_utf8_and_slashes_in_deltas(http: aiohttp.ClientSession) -> None:
    async with sandbox.running() as site:
        reply = await ask(http, site, "café / naïve 🙂")
    events = sse_events(reply.body)
    assert text_of(events) == "You said: café / naïve 🙂"
    assert "é".encode() in reply.body and b"\\/" in reply.body
