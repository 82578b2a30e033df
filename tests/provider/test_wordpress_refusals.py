"""WordPress's own refusals of a chat request, as the genuine plugin's site sends them.

Every reply here is written byte for byte by a loopback server (tests/capture.py):
the captures of the genuine plugin where one exists (the 1.9 nonce refusal above
all), hand-made WordPress answers where none does. The pages are the captured
widget tags, so the client reads them as it would read the real site.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qsl

import aiohttp
import pytest

import sandbox
from provider.errors import (
    BlockedError,
    ChallengeError,
    ProtocolError,
    SessionExpiredError,
    UpstreamError,
)
from provider.protocols import ActionUnknown, NonceRejected, legacy
from scraper.credentials import Credentials
from tests.capture import CAPTURES, RawServer, Request, capture, raw_reply, serve_raw
from tests.conftest import chat, chat_until, provider_for

AJAX = "/wp-admin/admin-ajax.php"
#: The nonce in each captured widget tag, and the one a page read afterwards carries.
CAPTURED_NONCE = {"legacy": "cd072c0ea6", "aipkit": "d32416e2cd"}
FRESH_NONCE = "0a1b2c3d4e"
#: The chat request each generation sends first: the one a refusal answers.
FIRST_ACTION = {"legacy": "wpaicg_chat_shortcode_message", "aipkit": "aipkit_cache_sse_message"}
ANSWER = {"legacy": "You said: Hello legacy bot", "aipkit": "You said: Hello aipkit bot"}

GENUINE_1_9 = capture("legacy-1.9-bad-nonce.http")


def wp_error_page(message: str) -> bytes:
    """WordPress's full error page (_default_wp_die_handler), as 6.1 writes it."""
    return (
        '<!DOCTYPE html>\n<html lang="en-US">\n<head>\n'
        '\t<meta http-equiv="Content-Type" content="text/html; charset=utf-8" />\n'
        '\t<meta name="viewport" content="width=device-width">\n'
        "\t\t<title>WordPress &rsaquo; Error</title>\n"
        '\t<style type="text/css">html { background: #f1f1f1; }</style>\n</head>\n'
        f'<body id="error-page">\n\t<div class="wp-die-message">{message}</div></body>\n</html>\n'
    ).encode()


#: Refusals that mean "this nonce is no good", by the form WordPress gives them.
NONCE_REFUSALS = {
    "genuine 1.9 page": lambda host: GENUINE_1_9.replayed(host),
    "-1 with 403": lambda host: raw_reply("403 Forbidden", b"-1"),
    "-1 with 200": lambda host: raw_reply("200 OK", b"-1"),
    "error page": lambda host: raw_reply(
        "403 Forbidden", wp_error_page("The link you followed has expired.")
    ),
}


class ScriptedSite:
    """The captured widget page, and the chat endpoint answering from a script:
    the first ``len(refusals)`` first-step requests get those bytes, then the
    genuine plugin's own answers follow."""

    def __init__(self, generation: str, refusals: list[bytes] | None = None) -> None:
        self.generation = generation
        self.refusals = list(refusals or [])
        self.pages = 0
        self.sent_nonces: list[str] = []
        self.server: RawServer | None = None

    def __call__(self, request: Request, host: str) -> bytes:
        path, _, query = request.target.partition("?")
        if path in ("/chat/", "/"):
            self.pages += 1
            return self.page(host, CAPTURED_NONCE[self.generation] if self.pages == 1 else None)
        fields = dict(parse_qsl(query)) | dict(parse_qsl(request.body.decode()))
        action = fields.get("action", "")
        if action == FIRST_ACTION[self.generation]:
            self.sent_nonces.append(fields.get("_wpnonce") or fields.get("_ajax_nonce", ""))
            if self.refusals:
                return self.refusals.pop(0)
            name = "legacy-chat-stream.http" if self.generation == "legacy" else "aipkit-cache.http"
            return capture(name).replayed(host)
        if action == "aipkit_frontend_chat_stream":
            return capture("aipkit-stream.http").replayed(host)
        if action == "aipkit_get_frontend_chat_nonce":
            cap = capture("aipkit-nonce-refresh.http")
            return cap.replayed(host).replace(
                CAPTURED_NONCE["aipkit"].encode(), FRESH_NONCE.encode()
            )
        return raw_reply("400 Bad Request", b"0")

    def page(self, host: str, nonce: str | None) -> bytes:
        name = f"{self.generation}-widget.html"
        tag = (CAPTURES / name).read_text()
        captured_host = "127.0.0.1:8081" if self.generation == "legacy" else "127.0.0.1:8082"
        tag = tag.replace(captured_host, host).replace(
            CAPTURED_NONCE[self.generation], nonce or FRESH_NONCE
        )
        page = (
            f"<!DOCTYPE html><html><head><title>Chat</title></head><body>{tag}</div></body></html>"
        )
        return raw_reply("200 OK", page.encode())

    @property
    def requests(self) -> int:
        """First-step chat requests received."""
        return len(self.sent_nonces)


def legacy_credentials(url: str) -> Credentials:
    now = time.time()
    return Credentials(
        site=url,
        generation="legacy",
        nonce=CAPTURED_NONCE["legacy"],
        post_id=4,
        bot_id=0,
        ajax_url=url + AJAX,
        page_url=url + "/",
        user_agent="test",
        source="http",
        obtained_at=now,
        expires_at=now + 3600,
        referer_url=url,
    )


# -- the genuine 1.9 refusal, ground truth ---------------------------------------------


def test_the_capture_is_wordpress_refusal_not_the_plugin_json() -> None:
    # What the issue is about: the plugin's JSON gone, WordPress's 403 page instead.
    assert GENUINE_1_9.status_line == "HTTP/1.1 403 Forbidden"
    assert ("Content-Type", "text/html; charset=UTF-8") in GENUINE_1_9.headers
    assert GENUINE_1_9.body.startswith(b"The link you followed has expired.")


async def test_genuine_1_9_refusal_is_a_rejected_nonce() -> None:
    async with (
        serve_raw(lambda request, host: GENUINE_1_9.replayed(host)) as server,
        aiohttp.ClientSession() as session,
    ):
        creds = legacy_credentials(server.url)
        with pytest.raises(NonceRejected) as caught:
            async for _ in legacy.chat(session, creds, "Hello legacy bot", read_timeout=10):
                pass
    assert "The link you followed has expired." in str(caught.value)
    assert creds.nonce not in str(caught.value)


@pytest.mark.parametrize("refusal", list(NONCE_REFUSALS))
@pytest.mark.parametrize("generation", ["legacy", "aipkit"])
async def test_wordpress_nonce_refusal_recovers_transparently(
    generation: str, refusal: str, cache_dir: Path
) -> None:
    script = ScriptedSite(generation)
    async with serve_raw(script) as server:
        script.refusals = [NONCE_REFUSALS[refusal](server.host)]
        provider = provider_for(server.url + "/chat/", cache_dir)
        assert await chat(provider, timeout=10) == ANSWER[generation]
    # Refused once, resent once with a fresh nonce.
    assert script.sent_nonces == [CAPTURED_NONCE[generation], FRESH_NONCE]
    # legacy reads the page again; aipkit asks the site for a nonce, as its own script does.
    assert script.pages == (2 if generation == "legacy" else 1)


async def test_genuine_1_9_refusal_twice_is_session_expired(cache_dir: Path) -> None:
    script = ScriptedSite("legacy")
    async with serve_raw(script) as server:
        script.refusals = [GENUINE_1_9.replayed(server.host)] * 2
        provider = provider_for(server.url + "/chat/", cache_dir)
        with pytest.raises(SessionExpiredError, match="rejected the nonce again") as caught:
            await chat(provider, timeout=10)
    assert script.requests == 2 and script.pages == 2  # one refresh, one resend, no loop
    assert not any(nonce in str(caught.value) for nonce in script.sent_nonces)


async def test_a_nonce_refused_after_text_is_not_resent(cache_dir: Path) -> None:
    stream = (
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/event-stream; charset=utf-8"
        b"\r\n\r\n:" + b" " * 4096 + b"\n\n"
        b'event: message_start\ndata: {"message_id":"aipkit-msg-1"}\n\n'
        b'data: {"delta":"partial"}\n\n'
        b'event: error\nid: err-1\ndata: {"error":"Security check failed. '
        b'Please refresh the page and try again."}\n\n'
        b'event: done\ndata: {"finished":true}\n\n'
    )
    script = ScriptedSite("aipkit")

    def respond(request: Request, host: str) -> bytes:
        if "aipkit_frontend_chat_stream" in request.target:
            return stream
        return script(request, host)

    async with serve_raw(respond) as server:
        got: list[str] = []
        provider = provider_for(server.url + "/chat/", cache_dir)
        with pytest.raises(SessionExpiredError):
            async for chunk in provider.create_async_generator(
                "", [{"role": "user", "content": "x"}]
            ):
                got.append(chunk)
    assert got == ["partial"]
    assert script.requests == 1 and script.pages == 1  # text reached the caller: no resend


@pytest.mark.parametrize("generation", ["legacy", "aipkit"])
async def test_the_plugins_nonce_refusal_after_text_is_not_resent(
    generation: str, cache_dir: Path
) -> None:
    # The sandbox sends "You said: ", then the plugin's own bad-nonce error (legacy: its
    # JSON as an event; aipkit: the Security check event). A resend would show the
    # caller "You said: " twice.
    async with sandbox.running(generation=generation, nonce_refused_after_deltas=1) as site:
        provider = provider_for(site.url, cache_dir)
        got, error = await chat_until(SessionExpiredError, provider, timeout=10)
        assert got == "You said: "
        assert list(site.prompts) == ["Hello sandbox"]  # sent once, never again
        assert site.hits["GET /chat/"] == 1  # and no refresh either
        assert site.nonce() not in str(error)


# -- WordPress's other refusals ---------------------------------------------------------


@pytest.mark.parametrize("generation", ["legacy", "aipkit"])
async def test_unknown_action_refreshes_once_then_says_what_to_check(
    generation: str, cache_dir: Path
) -> None:
    script = ScriptedSite(generation, [raw_reply("400 Bad Request", b"0")] * 2)
    async with serve_raw(script) as server:
        provider = provider_for(server.url + "/chat/", cache_dir)
        with pytest.raises(ProtocolError, match="does not know the chat action") as caught:
            await chat(provider, timeout=10)
    # The page read again (the site may have switched generation), then a clear error.
    assert script.requests == 2 and script.pages == 2
    assert "browser" in str(caught.value)
    assert not isinstance(caught.value, ActionUnknown)


async def test_unknown_action_once_is_recovered(cache_dir: Path) -> None:
    script = ScriptedSite("legacy", [raw_reply("400 Bad Request", b"0")])
    async with serve_raw(script) as server:
        provider = provider_for(server.url + "/chat/", cache_dir)
        assert await chat(provider, timeout=10) == ANSWER["legacy"]
    assert script.requests == 2 and script.pages == 2


@pytest.mark.parametrize(
    ("status", "message", "error"),
    [
        ("403 Forbidden", "Sorry, you are not allowed to access this page.", ProtocolError),
        (
            "500 Internal Server Error",
            "There has been a critical error on this website.",
            UpstreamError,
        ),
    ],
)
async def test_wordpress_error_page_is_final_and_quoted(
    status: str, message: str, error: type[Exception], cache_dir: Path
) -> None:
    script = ScriptedSite("legacy", [raw_reply(status, wp_error_page(message))])
    async with serve_raw(script) as server:
        provider = provider_for(server.url + "/chat/", cache_dir)
        with pytest.raises(error) as caught:
            await chat(provider, timeout=10)
    assert type(caught.value) is error
    assert message in str(caught.value)
    assert "expected the plugin's reply" not in str(caught.value)
    assert script.requests == 1 and script.pages == 1  # nothing a refresh would fix


# -- other 403s keep their type ----------------------------------------------------------

CF_CHALLENGE = (
    b"HTTP/1.1 403 Forbidden\r\nServer: cloudflare\r\ncf-mitigated: challenge\r\n"
    b"Content-Type: text/html; charset=UTF-8\r\nConnection: close\r\n\r\n"
    b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>"
    b"<script>window._cf_chl_opt={cType: 'managed'};</script></body></html>"
)
CF_1020 = (
    b"HTTP/1.1 403 Forbidden\r\nServer: cloudflare\r\nContent-Type: text/html\r\n"
    b"Connection: close\r\n\r\n<!DOCTYPE html><html><head><title>Access denied | example.com "
    b'used Cloudflare to restrict access</title></head><body><span class="cf-error-code">1020'
    b"</span></body></html>"
)
WAF_PAGE = (
    b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n"
    b"<html><head><title>403 Forbidden</title></head><body><h1>Forbidden</h1>"
    b"<p>Request blocked by the web application firewall.</p></body></html>"
)


async def test_challenge_on_the_chat_endpoint_stays_a_challenge(cache_dir: Path) -> None:
    script = ScriptedSite("legacy", [CF_CHALLENGE] * 2)
    async with serve_raw(script) as server:
        provider = provider_for(server.url + "/chat/", cache_dir, browser="never")
        with pytest.raises(ChallengeError):
            await chat(provider, timeout=10)
    assert script.requests == 2


@pytest.mark.parametrize(
    ("reply", "error", "match"),
    [
        (CF_1020, BlockedError, "1020"),
        (WAF_PAGE, ProtocolError, "expected the plugin's reply, got HTTP 403"),
    ],
)
async def test_blocks_on_the_chat_endpoint_keep_their_type(
    reply: bytes, error: type[Exception], match: str, cache_dir: Path
) -> None:
    script = ScriptedSite("legacy", [reply])
    async with serve_raw(script) as server:
        provider = provider_for(server.url + "/chat/", cache_dir)
        with pytest.raises(error, match=match) as caught:
            await chat(provider, timeout=10)
    assert not isinstance(caught.value, SessionExpiredError)
    assert script.requests == 1  # no refresh, no resend
