"""The legacy generation's admin-ajax answers, compared with the captures."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import pytest

import sandbox
from tests.capture import capture
from tests.sandbox.sandbox_testkit import (
    comparable_headers,
    fetch,
    shape,
    split_legacy,
    sse_events,
)

AJAX = "/wp-admin/admin-ajax.php"


def chat_fields(site: sandbox.Site, message: str, **extra: str) -> dict[str, str]:
    return {
        "_wpnonce": site.nonce(),
        "post_id": "12",
        "url": site.url,
        "action": "wpaicg_chat_shortcode_message",
        "message": message,
        "bot_id": "0",
        "chatbot_identity": "shortcode",
        "wpaicg_chat_client_id": "AbCdEfGhIj",
        **extra,
    }


VOLATILE = ("id", "created", "system_fingerprint", "model")


def without_volatile(chunk: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in chunk.items() if k not in VOLATILE}


def as_older_upstream(chunk: dict[str, Any]) -> dict[str, Any]:
    """A chunk as the first captures' upstream wrote it: no ``service_tier``, no ``refusal``
    (the genuine OpenAI sends both: legacy-chat-stream-openai-chunks.http)."""
    chunk = {k: v for k, v in chunk.items() if k != "service_tier"}
    for choice in chunk.get("choices", []):
        choice.get("delta", {}).pop("refusal", None)
    return chunk


def assert_same_legacy_stream(ours: bytes, theirs: bytes, older: bool = False) -> None:
    our_sse, our_tail = split_legacy(ours)
    their_sse, their_tail = split_legacy(theirs)
    our_events, their_events = sse_events(our_sse), sse_events(their_sse)
    assert [e.event for e in our_events] == [e.event for e in their_events]
    for ours_e, theirs_e in zip(our_events[:-1], their_events[:-1], strict=True):
        mine = as_older_upstream(ours_e.json()) if older else ours_e.json()
        assert shape(mine) == shape(theirs_e.json())
        assert without_volatile(mine) == without_volatile(theirs_e.json())
    assert our_events[-1].data == their_events[-1].data == "[DONE]"
    assert list(our_tail) == list(their_tail)
    assert our_tail == their_tail
    # Upstream spacing kept, no newline after the trailing JSON.
    assert b'"object": "chat.completion.chunk"' in ours
    assert not ours.endswith(b"\n")


OPENAI_GREETING = (
    "Converse as if you were an AI assistant. Answer the question as truthfully as possible "
    'using the provided context. Tone: Friendly.\n, Current context: "AI Chat"'
)


@pytest.mark.parametrize("release", [None, "1.8.79"])
async def test_post_stream_matches_capture(
    http: aiohttp.ClientSession, release: str | None
) -> None:
    # The genuine 1.8.79 with OpenAI's full chunks: service_tier, refusal, greeting_message.
    cap = capture("legacy-chat-stream-openai-chunks.http")
    async with sandbox.running(
        generation="legacy", release=release, greeting_message=OPENAI_GREETING
    ) as site:
        reply = await fetch(http, "POST", site.url + AJAX, data=chat_fields(site, "Hello"))
    assert reply.status == 200
    assert comparable_headers(reply.headers) == comparable_headers(cap.headers)
    # That upstream split the text elsewhere ("You ", "said: "): every event's shape,
    # in order of kind (role chunk, text chunks, finish chunk), and the text agree.
    ours, theirs = (sse_events(split_legacy(b)[0])[:-1] for b in (reply.body, cap.body))
    for mine, genuine in ((ours[0], theirs[0]), (ours[1], theirs[1]), (ours[-1], theirs[-1])):
        assert shape(mine.json()) == shape(genuine.json())
        assert without_volatile(mine.json())["choices"][0].keys() == (
            without_volatile(genuine.json())["choices"][0].keys()
        )
    assert {shape(e.json()) == shape(ours[1].json()) for e in ours[1:-1]} == {True}
    text = "".join(e.json()["choices"][0]["delta"].get("content", "") for e in ours)
    assert text == "You said: Hello"
    assert split_legacy(reply.body)[1] == split_legacy(cap.body)[1]  # greeting_message too


async def test_get_stream_matches_capture(http: aiohttp.ClientSession) -> None:
    cap = capture("legacy-chat-get.http")
    assert cap.request_line is not None
    query = dict(parse_qsl(urlsplit(cap.request_line.split(" ", 1)[1]).query))
    async with sandbox.running(generation="legacy") as site:
        query |= {"_wpnonce": site.nonce(), "url": site.url}
        reply = await fetch(http, "GET", site.url + AJAX, params=query)
        assert site.hits["admin-ajax:wpaicg_chat_shortcode_message"] == 1
    assert comparable_headers(reply.headers) == comparable_headers(cap.headers)
    assert_same_legacy_stream(reply.body, cap.body, older=True)


async def test_widget_action_and_raw_bytes(http: aiohttp.ClientSession) -> None:
    async with sandbox.running(generation="legacy") as site:
        fields = chat_fields(site, "Hi there", action="wpaicg_chatbox_message")
        reply = await fetch(http, "POST", site.url + AJAX, data=fields)
        assert site.hits["admin-ajax:wpaicg_chatbox_message"] == 1
    events = sse_events(split_legacy(reply.body)[0])
    first = events[0].json()["choices"][0]
    assert first["delta"] == {"role": "assistant", "content": "", "refusal": None}
    text = "".join(e.json()["choices"][0]["delta"].get("content", "") for e in events[:-1])
    assert text == "You said: Hi there"
    assert events[-2].json()["choices"][0]["finish_reason"] == "stop"
    # The events themselves are "data: {...}\n\n" with no event name.
    assert reply.body.startswith(b'data: {"id": "chatcmpl-')
    assert all(e.fields == ["data"] for e in events)


async def test_multipart_post_works(http: aiohttp.ClientSession) -> None:
    async with sandbox.running(generation="legacy") as site:
        data = aiohttp.FormData()
        for key, value in chat_fields(site, "multi part").items():
            data.add_field(key, value)
        reply = await fetch(http, "POST", site.url + AJAX, data=data)
    assert split_legacy(reply.body)[1]["data"] == "You said: multi part"


async def test_answer_uses_last_non_empty_line(http: aiohttp.ClientSession) -> None:
    prompt = "System: be nice\nUser: first\nAssistant: ok\nUser: second question\n\n"
    async with sandbox.running(generation="legacy") as site:
        reply = await fetch(http, "POST", site.url + AJAX, data=chat_fields(site, prompt))
    assert split_legacy(reply.body)[1]["data"] == "You said: User: second question"


async def test_every_accepted_prompt_is_recorded_in_full(http: aiohttp.ClientSession) -> None:
    prompt = "System: be nice\nUser: first, with ünïcode\nAssistant:"
    async with sandbox.running(generation="legacy") as site:
        await fetch(http, "POST", site.url + AJAX, data=chat_fields(site, "x", _wpnonce="0" * 10))
        await fetch(http, "POST", site.url + AJAX, data=chat_fields(site, prompt))
        await fetch(http, "GET", site.url + AJAX, params=chat_fields(site, "second"))
        # Only messages past the nonce check count: a refused one is never answered.
        assert list(site.prompts) == [prompt, "second"]
        site.reset_hits()
        assert not site.prompts


async def test_non_streaming_matches_capture(http: aiohttp.ClientSession) -> None:
    cap = capture("legacy-json-reply.http")
    async with sandbox.running(generation="legacy", streaming=False) as site:
        reply = await fetch(
            http, "POST", site.url + AJAX, data=chat_fields(site, "Hello non-streaming")
        )
    assert comparable_headers(reply.headers) == comparable_headers(cap.headers)
    assert reply.body == cap.body


@pytest.mark.parametrize("release", [None, "1.8.79", "1.8.84", "1.8.90"])
async def test_bad_nonce_matches_capture(http: aiohttp.ClientSession, release: str | None) -> None:
    cap = capture("legacy-bad-nonce.http")
    async with sandbox.running(generation="legacy", release=release) as site:
        fields = chat_fields(site, "hi", _wpnonce="0123456789")
        reply = await fetch(http, "POST", site.url + AJAX, data=fields)
    assert reply.status == 200
    assert comparable_headers(reply.headers) == comparable_headers(cap.headers)
    assert reply.body == cap.body


# -- 1.9.0 through 2.2: WordPress's check_ajax_referer refuses the nonce ------------------


@pytest.mark.parametrize("release", ["1.8.91", "1.9.0", "1.9.18", "2.2"])
@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_1_9_to_2_2_bad_nonce_matches_capture(
    http: aiohttp.ClientSession, release: str, method: str
) -> None:
    cap = capture("legacy-1.9-bad-nonce.http")
    async with sandbox.running(release=release) as site:
        assert site.config.generation == "legacy"
        fields = chat_fields(site, "hi", _wpnonce="0123456789")
        where = {"data": fields} if method == "POST" else {"params": fields}
        reply = await fetch(
            http, method, site.url + AJAX, headers={"Referer": site.url + "/"}, **where
        )
        host = urlsplit(site.url).netloc
        assert not site.prompts  # refused before the message is read
    assert reply.status == 403
    assert comparable_headers(reply.headers) == comparable_headers(cap.headers)
    assert reply.body == cap.body.replace(cap.host.encode(), host.encode())


@pytest.mark.parametrize(
    ("referer", "link"),
    [
        (None, None),
        ("{site}/chat/?updated=1&lang=en", "{site}/chat/?lang=en"),
        ("{site}/?a=1&b=2", "{site}/?a=1&#038;b=2"),
        ("https://elsewhere.example/", None),  # wp_validate_redirect: the site's host only
        ("{site}" + AJAX, None),  # the request itself
    ],
)
async def test_1_9_refusal_links_back_like_wordpress(
    http: aiohttp.ClientSession, referer: str | None, link: str | None
) -> None:
    async with sandbox.running(release="1.9.18") as site:
        headers = {"Referer": referer.format(site=site.url)} if referer else {}
        fields = chat_fields(site, "hi", _wpnonce="0123456789")
        reply = await fetch(http, "POST", site.url + AJAX, data=fields, headers=headers)
        expected = "The link you followed has expired."
        if link is not None:
            expected += f'</p><p><a href="{link.format(site=site.url)}">Please try again.</a>'
    assert reply.status == 403
    assert reply.text == expected + "\n"


@pytest.mark.parametrize(
    ("wording", "starts"),
    [
        ("current", "Nonce verification failed"),
        ("1.7", "Invalid nonce. This means we are unable to verify the validity of the nonce."),
        ("old", "Security check"),
    ],
)
async def test_nonce_wordings(http: aiohttp.ClientSession, wording: str, starts: str) -> None:
    async with sandbox.running(generation="legacy", nonce_wording=wording) as site:
        fields = chat_fields(site, "hi")
        del fields["_wpnonce"]
        reply = await fetch(http, "POST", site.url + AJAX, data=fields)
    body = json.loads(reply.body)
    assert body["status"] == "error"
    assert body["msg"].startswith(starts)
    if wording != "1.7":
        assert body["msg"] == starts


@pytest.mark.parametrize("message", ["", "   ", "0"])
async def test_empty_message(http: aiohttp.ClientSession, message: str) -> None:
    async with sandbox.running(generation="legacy") as site:
        reply = await fetch(http, "POST", site.url + AJAX, data=chat_fields(site, message))
    assert reply.status == 200
    assert reply.body == b'{"status":"error","msg":"It appears that nothing was inputted."}'


async def test_nonce_checked_before_message(http: aiohttp.ClientSession) -> None:
    async with sandbox.running(generation="legacy") as site:
        reply = await fetch(
            http, "POST", site.url + AJAX, data=chat_fields(site, "", _wpnonce="bad")
        )
    assert json.loads(reply.body)["msg"] == "Nonce verification failed"


async def test_nonce_expires_after_two_ticks(http: aiohttp.ClientSession) -> None:
    async with sandbox.running(generation="legacy", tick_seconds=0.4) as site:
        fields = chat_fields(site, "still good?")
        issued = time.monotonic()
        first = await fetch(http, "POST", site.url + AJAX, data=fields)
        assert first.body.startswith(b"data: ")
        # Await the expiry: a nonce lives between one and two ticks.
        while True:
            reply = await fetch(http, "POST", site.url + AJAX, data=fields)
            if reply.body == b'{"status":"error","msg":"Nonce verification failed"}':
                break
            assert time.monotonic() - issued < 2.0, "nonce did not expire"
            await asyncio.sleep(0.05)
        assert time.monotonic() - issued >= 0.4 - 0.05
        # The page's current nonce works again.
        fresh = await fetch(http, "POST", site.url + AJAX, data=chat_fields(site, "again"))
        assert split_legacy(fresh.body)[1]["data"] == "You said: again"


async def test_rotate_nonce_invalidates(http: aiohttp.ClientSession) -> None:
    async with sandbox.running(generation="legacy") as site:
        old = site.nonce()
        site.rotate_nonce()
        assert site.nonce() != old
        fields = chat_fields(site, "x", _wpnonce=old)
        reply = await fetch(http, "POST", site.url + AJAX, data=fields)
        assert json.loads(reply.body)["msg"] == "Nonce verification failed"


@pytest.mark.parametrize("action", ["", "nope", "aipkit_frontend_chat_stream"])
async def test_unknown_action_is_zero_400(http: aiohttp.ClientSession, action: str) -> None:
    async with sandbox.running(generation="legacy") as site:
        reply = await fetch(http, "POST", site.url + AJAX, data={"action": action})
        assert site.hits[f"admin-ajax:{action}"] == 1
    assert (reply.status, reply.body) == (400, b"0")
    assert reply.header("Content-Type") == "text/html; charset=UTF-8"


STREAM_BANS: dict[str, dict[str, Any]] = {
    "token_limit": {"msg": "You have reached your token limit.", "tokenLimitReached": True},
    "ip_ban": {"msg": "You are not allowed to access this feature.", "ipBanned": True},
    "banned_words": {"messageFlagged": True},
    "moderation": {"status": "error", "modflag": True},
}


@pytest.mark.parametrize("error", sorted(STREAM_BANS))
async def test_stream_bans_are_one_event(http: aiohttp.ClientSession, error: str) -> None:
    async with sandbox.running(generation="legacy", reply_error=error) as site:
        reply = await fetch(http, "POST", site.url + AJAX, data=chat_fields(site, "hi"))
    assert reply.header("Content-type") == "text/event-stream;charset=UTF-8"
    assert reply.body.startswith(b"data: {") and reply.body.endswith(b"}\n\n")
    events = sse_events(reply.body)
    assert len(events) == 1
    payload = events[0].json()
    assert STREAM_BANS[error].items() <= payload.items()
    assert isinstance(payload["msg"], str) and payload["msg"]
    assert b", " not in reply.body  # PHP's compact JSON


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("token_limit", {"msg": "You have reached your token limit.", "tokenLimitReached": True}),
        ("ip_ban", {"status": "error", "msg": "You are not allowed to access this feature."}),
        ("banned_words", {"status": "error"}),
        ("moderation", {"status": "error"}),
        ("limited", {"status": "error"}),
        ("upstream", {"status": "error"}),
    ],
)
async def test_non_streaming_errors(
    http: aiohttp.ClientSession, error: str, expected: dict[str, Any]
) -> None:
    async with sandbox.running(generation="legacy", streaming=False, reply_error=error) as site:
        reply = await fetch(http, "POST", site.url + AJAX, data=chat_fields(site, "hi"))
    assert reply.header("Content-Type") == "application/json; charset=UTF-8"
    payload = json.loads(reply.body)
    assert expected.items() <= payload.items()
    assert payload["msg"]


async def test_limited_ends_with_marker(http: aiohttp.ClientSession) -> None:
    async with sandbox.running(generation="legacy", reply_error="limited") as site:
        reply = await fetch(http, "POST", site.url + AJAX, data=chat_fields(site, "a b c d"))
    assert reply.body.endswith(b"data: [LIMITED]\n\n")
    assert b"[DONE]" not in reply.body
    events = sse_events(reply.body)
    assert events[-1].data == "[LIMITED]"


async def test_upstream_failure_matches_capture(http: aiohttp.ClientSession) -> None:
    cap = capture("legacy-upstream-error.http")
    async with sandbox.running(generation="legacy", reply_error="upstream") as site:
        reply = await fetch(http, "POST", site.url + AJAX, data=chat_fields(site, "hi"))
    assert comparable_headers(reply.headers) == comparable_headers(cap.headers)
    assert reply.body == cap.body
    ours = sse_events(reply.body.rpartition(b"\n\n")[0] + b"\n\n")
    # 7 words twice, each a *named* "message" event, plus two unnamed stop events.
    assert sum("event" in e.fields for e in ours) == 14
    assert len(ours) == 16
    assert json.loads(reply.body.rpartition(b"\n\n")[2])["data"] == ""
