"""The sandbox speaks every release class: each class differs from the one before in
what PROTOCOL.md's table says, seen on the wire (one probe per difference).

Each probe runs against a release of the class and one of the class before: the
answer must change exactly there.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

import sandbox
from tests.releases import REPRESENTATIVES
from tests.sandbox.sandbox_testkit import fetch, form, split_legacy, sse_events

AJAX = "/wp-admin/admin-ajax.php"
CLASSES = list(REPRESENTATIVES)
Probe = Callable[[aiohttp.ClientSession, sandbox.Site], Awaitable[object]]


def legacy_fields(site: sandbox.Site, nonce: str | None = None) -> dict[str, str]:
    return {
        "_wpnonce": site.nonce() if nonce is None else nonce,
        "post_id": "12",
        "url": site.url,
        "action": "wpaicg_chat_shortcode_message",
        "message": "Hi",
        "bot_id": "0",
    }


async def legacy_post(http: aiohttp.ClientSession, site: sandbox.Site) -> bytes:
    return (await fetch(http, "POST", site.url + AJAX, data=legacy_fields(site))).body


async def aipkit_stream(
    http: aiohttp.ClientSession, site: sandbox.Site, nonce: str | None = None, bot: int = 5
) -> bytes:
    cached = await fetch(
        http,
        "POST",
        site.url + AJAX,
        data=form(
            action="aipkit_cache_sse_message",
            message="Hi",
            _ajax_nonce=site.nonce(),
            bot_id=str(bot),
        ),
    )
    key = json.loads(cached.body)["data"]["cache_key"]
    params = {
        "action": "aipkit_frontend_chat_stream",
        "cache_key": key,
        "bot_id": str(bot),
        "session_id": str(uuid.uuid4()),
        "conversation_uuid": str(uuid.uuid4()),
        "_ajax_nonce": site.nonce() if nonce is None else nonce,
    }
    return (await fetch(http, "GET", site.url + AJAX, params=params)).body


def names(body: bytes) -> list[str | None]:
    return [e.event for e in sse_events(body)]


# -- one probe per class: what it changed -----------------------------------------------


async def l1_greeting(http: aiohttp.ClientSession, site: sandbox.Site) -> object:
    return "greeting_message" in split_legacy(await legacy_post(http, site))[1]


async def l2_trailer(http: aiohttp.ClientSession, site: sandbox.Site) -> object:
    # L2 still sends the JSON after [DONE], without greeting_message; L1 has it.
    return sorted(split_legacy(await legacy_post(http, site))[1])


async def l3_no_trailer(http: aiohttp.ClientSession, site: sandbox.Site) -> object:
    return (await legacy_post(http, site)).endswith(b"data: [DONE]\n\n")


async def l4_post_only(http: aiohttp.ClientSession, site: sandbox.Site) -> object:
    bad = await fetch(http, "POST", site.url + AJAX, data=legacy_fields(site, "0123456789"))
    got = await fetch(http, "GET", site.url + AJAX, params=legacy_fields(site))
    return bad.status, b"nothing was inputted" in got.body


async def a1_security_text(http: aiohttp.ClientSession, site: sandbox.Site) -> object:
    body = await aipkit_stream(http, site, nonce="0123456789")
    return json.loads(sse_events(body)[0].data)["error"]


async def a2_chat_message_nonce(http: aiohttp.ClientSession, site: sandbox.Site) -> object:
    fields = form(action="aipkit_frontend_chat_message", message="Hi", bot_id="5")
    return (await fetch(http, "POST", site.url + AJAX, data=fields)).status


async def a3_cross_origin(http: aiohttp.ClientSession, site: sandbox.Site) -> object:
    fields = form(
        action="aipkit_cache_sse_message", message="Hi", _ajax_nonce=site.nonce(), bot_id="5"
    )
    reply = await fetch(
        http, "POST", site.url + AJAX, data=fields, headers={"Origin": "https://elsewhere.test"}
    )
    return reply.status, json.loads(reply.body).get("data", {}).get("code")


async def a4_nonce_refresh(http: aiohttp.ClientSession, site: sandbox.Site) -> object:
    fields = form(action="aipkit_get_frontend_chat_nonce", bot_id="5")
    return (await fetch(http, "POST", site.url + AJAX, data=fields)).body != b"0"


async def a5_status_and_compat(http: aiohttp.ClientSession, site: sandbox.Site) -> object:
    status = "status" in names(await aipkit_stream(http, site))
    site.config.compat_shortcode = True
    page = (await fetch(http, "GET", site.url + "/chat/")).body
    return status, b"aipkit_chat_container" in page


async def a6_padding_and_citations(http: aiohttp.ClientSession, site: sandbox.Site) -> object:
    site.config.citations = True
    error_stream = await aipkit_stream(http, site, nonce="0123456789")
    return error_stream.startswith(b":" + b" " * 4096), "citations" in names(
        await aipkit_stream(http, site)
    )


async def a7_streaming_only(http: aiohttp.ClientSession, site: sandbox.Site) -> object:
    fields = form(
        action="aipkit_frontend_chat_message", message="Hi", _ajax_nonce=site.nonce(), bot_id="5"
    )
    reply = await fetch(http, "POST", site.url + AJAX, data=fields)
    page = (await fetch(http, "GET", site.url + "/chat/")).body
    return reply.body == b"0", b"streamEnabled" in page


async def a8_google(http: aiohttp.ClientSession, site: sandbox.Site) -> object:
    site.config.google_bots = [5]
    return "google_interaction_id" in names(await aipkit_stream(http, site))


DIFFERENCES: dict[str, tuple[Probe, object, object]] = {
    # class: (probe, its answer in the class before, its answer in this class)
    "L2": (l2_trailer, ["data", "greeting_message", "log", "msg", "status"],
           ["data", "log", "msg", "status"]),
    "L3": (l3_no_trailer, False, True),
    "L4": (l4_post_only, (200, False), (403, True)),
    "A2": (a1_security_text, "Security check failed (nonce).",
           "Security check failed. Please refresh the page and try again."),
    "A3": (a3_cross_origin, (200, None), (403, "embed_not_available")),
    "A4": (a4_nonce_refresh, False, True),
    "A5": (a5_status_and_compat, (False, True), (True, False)),
    "A6": (a6_padding_and_citations, (False, False), (True, True)),
    "A7": (a7_streaming_only, (False, True), (True, False)),
    "A8": (a8_google, False, True),
}  # fmt: skip


@pytest.mark.parametrize("name", list(DIFFERENCES))
async def test_each_class_differs_from_the_one_before(
    http: aiohttp.ClientSession, name: str
) -> None:
    probe, before, now = DIFFERENCES[name]
    previous = CLASSES[CLASSES.index(name) - 1]
    for cls, expected in ((previous, before), (name, now)):
        async with sandbox.running(release=REPRESENTATIVES[cls]) as site:
            assert site.config.release_class == cls
            assert await probe(http, site) == expected, (cls, REPRESENTATIVES[cls])


async def test_l1_is_the_baseline_with_greeting_and_a1_the_first_aipkit(
    http: aiohttp.ClientSession,
) -> None:
    async with sandbox.running(release="1.8.79") as site:
        assert await l1_greeting(http, site) is True
    # A1's non-streaming chat answers without any nonce; A2 wants one (403).
    async with sandbox.running(release=REPRESENTATIVES["A1"]) as site:
        assert await a2_chat_message_nonce(http, site) == 200
    async with sandbox.running(release=REPRESENTATIVES["A2"]) as site:
        assert await a2_chat_message_nonce(http, site) == 403


@pytest.mark.parametrize("release", ["1.8.79", "2.2", "2.3", "2.3.43", "2.3.69", "2.4.71"])
def test_every_class_edge_is_a_release(release: str) -> None:
    from sandbox._config import RELEASES, release_class

    assert release in RELEASES
    assert release_class(release) in CLASSES


@pytest.mark.parametrize("release", ["1.9.10", "2.0", "2.1.3", "2.3.50", "2.4.30", "2.4.70"])
async def test_a_release_not_in_the_history_is_refused(release: str) -> None:
    with pytest.raises(ValueError, match="not in the plugin's history"):
        async with sandbox.running(release=release):
            pass


async def test_refusals_in_german_and_in_the_sites_own_words(
    http: aiohttp.ClientSession,
) -> None:
    async with sandbox.running(release="2.4.71", language="de", reply_error="banned_words") as s:
        body = await aipkit_stream(http, s)
        assert "verbotene Wörter" in json.loads(sse_events(body)[-2].data)["error"]
        s.config.texts = {"banned_words": "Nicht hier."}
        body = await aipkit_stream(http, s)
        assert json.loads(sse_events(body)[-2].data)["error"] == "Nicht hier."
        s.config.draft_bots = [5]
        body = await aipkit_stream(http, s)
        assert json.loads(sse_events(body)[0].data)["error"] == "Ungültiger Chatbot angegeben."


#: Each class's first release, and the last release of the class before it.
EDGES = {
    "L3": ("1.8.84", "1.8.85"),
    "L4": ("1.8.90", "1.8.91"),
    "A2": ("2.3.19", "2.3.20"),
    "A3": ("2.3.30", "2.3.31"),
    "A4": ("2.3.40", "2.3.41"),
    "A5": ("2.3.43", "2.3.69"),
    "A6": ("2.3.92", "2.3.93"),
    "A7": ("2.4.0", "2.4.1"),
    "A8": ("2.4.66", "2.4.67"),
}


@pytest.mark.parametrize("name", list(EDGES))
async def test_each_difference_starts_at_its_class_first_release(
    http: aiohttp.ClientSession, name: str
) -> None:
    probe, before, now = DIFFERENCES[name]
    for release, expected in zip(EDGES[name], (before, now), strict=True):
        async with sandbox.running(release=release) as site:
            assert await probe(http, site) == expected, (name, release)
