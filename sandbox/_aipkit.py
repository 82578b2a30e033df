"""The aipkit generation (AI Power / AI Puffer 2.x): chat containers and the three actions.

A message goes in two steps: ``aipkit_cache_sse_message`` (POST, nonce from the
body) parks it under a one-time key, then ``aipkit_frontend_chat_stream`` (GET)
answers it as Server-Sent Events. The stream is always HTTP 200: every failure is
an ``event: error`` inside it. ``aipkit_get_frontend_chat_nonce`` hands out a
fresh nonce to anyone who names a bot.

Check order of the stream (PROTOCOL.md leaves it open; this is the choice):
nonce → cache_key present → bot valid → conversation_uuid → session_id →
cache lookup (found / expired; the key is consumed here, so a bad nonce or a
missing id does not burn it) → message not empty → access rules (guests, IP,
banned words, moderation, quota) → answer.
"""

from __future__ import annotations

import html
import json
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from ._answer import answer_text, deltas
from ._nonce import AIPKIT_CHAT_ACTION
from ._pages import plugin_script, plugin_style
from ._php import AIPKIT_STREAM_HEADERS, Superglobals, json_response, php_empty, php_stream
from ._php import php_json_unescaped_unicode as sse_json
from ._site import Site
from ._wire import Frame, refused_after, send_stream

PREAMBLE = b":" + b" " * 4096 + b"\n\n"  # pushes proxies and browsers to flush early

NONCE_FAILURE_CACHE = {
    "success": False,
    "data": {
        "message": "Your session has expired or the request is invalid. "
        "Please refresh the page and try again.",
        "code": "nonce_failure_cache_sse",
    },
}
CORS_DENIED = {
    "success": False,
    "data": {
        "message": "This domain is not permitted to access the chatbot.",
        "code": "cors_denied",
    },
}
EMPTY_CACHE = {
    "success": False,
    "data": {"message": "No message data provided to cache.", "code": "empty_data_to_cache"},
}

SECURITY = "Security check failed. Please refresh the page and try again."
#: A1's (2.3-2.3.19) stream refusal of a bad nonce.
SECURITY_A1 = "Security check failed (nonce)."
EMBED_NOT_AVAILABLE = {
    "success": False,
    "data": {
        "message": "Embed feature is not available with your current plan.",
        "code": "embed_not_available",
    },
}
KEY_MISSING = "Message cache key is missing."
KEY_NOT_FOUND = "Message not found in cache."
KEY_EXPIRED = "Cached message has expired."
BAD_BOT = "Invalid chatbot specified."
NO_CONVERSATION = "Conversation ID is missing."
NO_SESSION = "Session ID is missing for guest."
EMPTY_MESSAGE = "Message or image cannot be empty."
QUOTA = "You have reached your quota for this period."
# Errors that stop the message before any answer (then `done`).
ACCESS_ERRORS = {
    "guest_disabled": "Access disabled for guests.",
    "ip_blocked": "Access from your IP address has been blocked.",
    "banned_words": "Sorry, your message could not be sent as it contains prohibited words.",
    "moderation": "Your message was flagged by the moderation system and could not be sent.",
}
# Errors after message_start (upstream trouble). Only the API errors were captured
# ending without `done` (aipkit-upstream-error.http, -429-); the others end with it.
MID_ANSWER_ERRORS = {
    "api_rate_limit": (
        "API Error: Rate limit reached for gpt-4o-mini in organization org-fakefixture on "
        "tokens per min (TPM): Limit 30000, Used 30000, Requested 42. Please try again in "
        "84ms. Visit https://platform.openai.com/account/rate-limits to learn more. "
        "(Code: rate_limit_exceeded)",
        False,
    ),
    "api_error": (
        "API Error: Incorrect API key provided: sk-fake. (fake upstream) (Code: invalid_api_key)",
        False,
    ),
    "connection_error": (
        "Connection Error: cURL error 28: Operation timed out after 30001 milliseconds "
        "with 0 bytes received",
        True,
    ),
    "no_data": ("Connection error: no data received from AI.", True),
}


# --------------------------------------------------------------------------- markup


def _attr_json(value: Any) -> str:
    """JSON inside a single-quoted attribute, the way the plugin prints data-config:
    raw UTF-8, ``\\/``, ``<>&'`` hex-escaped, then ``"`` entity-encoded by esc_attr."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False).replace("/", "\\/")
    for char, escaped in (("<", "\\u003C"), (">", "\\u003E"), ("&", "\\u0026"), ("'", "\\u0027")):
        text = text.replace(char, escaped)
    return text.replace('"', "&quot;")


_THEME = {
    "primary_color": "#0B5FFF",
    "secondary_color": "#F1F5FF",
    "accent_color": "#111111",
    "font_family": "inherit",
    "bubble_border_radius": 16,
    "container_max_width": 896,
    "popup_width": 380,
    "container_height": 620,
}
_STYLE = (
    "--aipkit-chat-accent-color:#0B5FFF;--aipkit-chat-accent-rgb:11,95,255;"
    "--aipkit-chat-on-accent-color:#FFFFFF;"
)


def _bot_config(site: Site, origin: str, bot_id: int, post_id: int) -> dict[str, Any]:
    popup = site.config.aipkit_popup
    return {
        "botId": bot_id,
        "ajaxUrl": f"{origin}/wp-admin/admin-ajax.php",
        "nonce": site.page_nonce(AIPKIT_CHAT_ACTION),
        "postId": post_id,
        "theme": "custom",
        "popupEnabled": popup,
        "popupPosition": "bottom-right",
        "popupDelay": 0,
        "popupLabelText": "Need help? Ask me!",
        "footerText": "",
        "headerOnlineText": "Online",
        "enableFullscreen": True,
        "enableCopyButton": True,
        "enableFeedback": True,
        "enableSidebar": False,
        "headerName": f"Sandbox Bot {bot_id}",
        "enableStarters": True,
        "starters": ["What can you do?", "Tell me a fun fact"],
        "ttsEnabled": False,
        "imageTriggers": "/image, /generate",
        "provider": "OpenAI",
        "enableOpenAIConversationState": False,
        "allowWebSearchTool": False,
        "customThemeSettings": _THEME,
        **({} if site.config.since("A7") else {"streamEnabled": True}),
        "text": {
            "sendMessage": "Send Message",
            "typeMessage": "Type your message...",
            "thinking": "Thinking",
            "errorPrefix": "Error:",
            "streamError": "Stream error. Please try again.",
            "connError": "Connection error. Please try again.",
            "initialGreeting": "Hello there!",
            "historySidebarEmpty": "No conversations yet — start one to see it here.",
            "consentMessage": "Please agree to our Terms & Privacy Policy.",
        },
        "customTypingText": "Let's chat <3",
    }


def chat_containers(site: Site, origin: str, post_id: int) -> str:
    """One container per configured bot (``[aipkit_chatbot id="N"]``)."""
    blocks = []
    for bot_id in site.config.aipkit_bots:
        config = _attr_json(_bot_config(site, origin, bot_id, post_id))
        theme = _attr_json(_THEME)
        inner = (
            f'<div class="aipkit_chat_main"><div class="aipkit_chat_messages" '
            f'id="aipkit_chat_messages_{bot_id}"></div>'
            f'<textarea class="aipkit_chat_input_field" placeholder="Type your message...">'
            "</textarea></div>"
        )
        if site.config.aipkit_popup:
            # Popup bots carry data-config on the wrapper, not on the container.
            blocks.append(
                f'<div class="aipkit_popup_wrapper" id="aipkit_popup_wrapper_{bot_id}" '
                f"data-config='{config}'>\n"
                f'<button class="aipkit_popup_trigger aipkit_popup_position-bottom-right" '
                f'id="aipkit_popup_trigger_{bot_id}" aria-label="Open Chat"></button>\n'
                f'<div class="aipkit_chat_container aipkit_popup_content aipkit-theme-custom" '
                f'id="aipkit_chat_container_{bot_id}" data-bot-id="{bot_id}" '
                f'style="{html.escape(_STYLE)}">{inner}</div>\n</div>'
            )
        else:
            blocks.append(
                '<div class="aipkit_chat_container aipkit-theme-custom  '
                'aipkit-sidebar-state-closed   " '
                f'id="aipkit_chat_container_{bot_id}" data-bot-id="{bot_id}" '
                f"data-config='{config}' data-custom-theme='{theme}' "
                f'style="{html.escape(_STYLE)}" >{inner}</div>'
            )
    return "\n".join(blocks)


def page_parts(site: Site, origin: str, post_id: int) -> tuple[str, str, str]:
    """(head extra, content, footer extra) for an aipkit page: popup bots in the footer."""
    release = site.config.plugin_release
    head = plugin_style(origin, "aipkit-public-main", "dist/css/public-main.bundle.css", release)
    script = plugin_script(origin, "aipkit-public-main", "dist/js/public-main.bundle.js", release)
    if site.config.compat_shortcode and site.config.since("A5"):
        # From 2.3.69 [wpaicg_chatgpt] is no longer registered: WordPress prints it as text.
        return head, "<p>[wpaicg_chatgpt]</p>", script
    containers = chat_containers(site, origin, post_id)
    if site.config.aipkit_popup:
        return head, "", containers + "\n" + script
    return head, containers, script


# --------------------------------------------------------------------------- actions


def _valid_bot(site: Site, raw: str | None) -> int | None:
    if raw is None or not raw.strip().isdigit():
        return None
    bot_id = int(raw)
    return bot_id if bot_id in site.config.aipkit_bots else None


async def cache_message(
    request: web.Request, site: Site, globals_: Superglobals
) -> web.StreamResponse:
    """``aipkit_cache_sse_message``: park the message, answer its one-time key."""
    config = site.config
    if config.reply_error == "cors_denied":
        return json_response(CORS_DENIED, status=403)
    if config.since("A3") and _cross_origin(request):
        # From 2.3.31: another site's Origin is refused (the free plan has no embedding).
        return json_response(CORS_DENIED if config.pro_plan else EMBED_NOT_AVAILABLE, status=403)
    # Read from $_POST only: a nonce in the query string does not count.
    if not site.nonces.verify(globals_.post.get("_ajax_nonce"), AIPKIT_CHAT_ACTION):
        return json_response(NONCE_FAILURE_CACHE, status=403)
    message = globals_.post.get("message")
    site.prompts.append(message or "")
    if php_empty(message):
        return json_response(EMPTY_CACHE, status=400)
    assert message is not None
    key = site.store.put(message, globals_.post.get("bot_id", ""), config.cache_ttl)
    return json_response({"success": True, "data": {"cache_key": key}})


def _cross_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if not origin:
        return False
    try:
        parts = urlsplit(origin)
    except ValueError:
        return True
    return parts.hostname != request.url.host or parts.scheme != request.scheme


async def chat_message(
    request: web.Request, site: Site, globals_: Superglobals
) -> web.StreamResponse:
    """``aipkit_frontend_chat_message`` (A1-A6): one message answered as JSON, not streamed.
    A1 checks no nonce; from A2 a bad one gets 403. (The reply's keys are our choice.)"""
    post = globals_.post
    if site.config.since("A2") and not site.nonces.verify(
        post.get("_ajax_nonce"), AIPKIT_CHAT_ACTION
    ):
        return json_response({"success": False, "data": {"message": _text(site, "security")}}, 403)
    message = post.get("message", "")
    bot_id = _valid_bot(site, post.get("bot_id"))
    if bot_id is None:
        return json_response({"success": False, "data": {"message": BAD_BOT}}, status=400)
    if php_empty(message):
        return json_response({"success": False, "data": {"message": EMPTY_MESSAGE}}, status=400)
    site.prompts.append(message)
    answer = answer_text(message, site.config.answer_bytes)
    site.bots.append(bot_id)
    return json_response({"success": True, "data": {"reply": answer}})


def _text(site: Site, kind: str) -> str:
    """A refusal text as this site says it: the site's own, its language's, its class's."""
    english = {
        "security": SECURITY_A1 if not site.config.since("A2") else SECURITY,
        "quota": QUOTA,
        "bad_bot": BAD_BOT,
        **ACCESS_ERRORS,
    }[kind]
    return site.config.text(kind, english)


async def refresh_nonce(
    request: web.Request, site: Site, globals_: Superglobals
) -> web.StreamResponse:
    """``aipkit_get_frontend_chat_nonce``: a fresh nonce, no old one needed."""
    if _valid_bot(site, globals_.post.get("bot_id")) is None:
        return json_response({"success": False, "data": {"message": BAD_BOT}}, status=400)
    return json_response({"success": True, "data": {"nonce": site.nonce(AIPKIT_CHAT_ACTION)}})


def _event(name: str | None, payload: Any, event_id: str | None = None) -> bytes:
    head = b""
    if name is not None:
        head += f"event: {name}\n".encode()
    if event_id is not None:
        head += f"id: {event_id}\n".encode()
    return head + b"data: " + sse_json(payload).encode() + b"\n\n"


def _error(text: str, extra: dict[str, Any] | None = None) -> Frame:
    payload: dict[str, Any] = {"error": text, **(extra or {})}
    return Frame(_event("error", payload, f"err-{int(time.time())}"))


DONE = Frame(_event("done", {"finished": True}))


def _message_start() -> Frame:
    # PHP's uniqid('aipkit-msg-', true): hex time + "." + 8 digits of entropy.
    message_id = f"aipkit-msg-{secrets.token_hex(7)}.{secrets.randbelow(10**8):08d}"
    return Frame(_event("message_start", {"message_id": message_id}))


async def stream(request: web.Request, site: Site, globals_: Superglobals) -> web.StreamResponse:
    """``aipkit_frontend_chat_stream``: the answer as Server-Sent Events; from A6
    (2.3.93) every stream, errors too, starts with the 4096-space comment."""
    frames = _stream_frames(site, globals_.get)
    if site.config.since("A6"):
        frames = [Frame(PREAMBLE), *frames]
    return await send_stream(request, php_stream(AIPKIT_STREAM_HEADERS), site, frames)


def _stream_frames(site: Site, query: dict[str, str]) -> list[Frame]:
    config = site.config
    if not site.nonces.verify(query.get("_ajax_nonce"), AIPKIT_CHAT_ACTION):
        return [_error(_text(site, "security")), DONE]
    key = query.get("cache_key", "")
    if not key:
        return [_error(KEY_MISSING), DONE]
    bot_id = _valid_bot(site, query.get("bot_id"))
    if bot_id is None or bot_id in config.draft_bots:  # a draft: not published
        return [_error(_text(site, "bad_bot")), DONE]
    conversation = query.get("conversation_uuid", "")
    if not conversation:
        return [_error(NO_CONVERSATION), DONE]
    session = query.get("session_id", "")
    if not session:
        return [_error(NO_SESSION), DONE]
    found, cached = site.store.take(key, config.cache_ttl)
    if found == "missing":
        return [_error(KEY_NOT_FOUND), DONE]
    if found == "expired" or cached is None:
        return [_error(KEY_EXPIRED), DONE]
    message = cached.message
    if not message.strip():
        return [_error(EMPTY_MESSAGE), DONE]

    error = config.reply_error
    if error in ACCESS_ERRORS:
        return [_error(_text(site, error)), DONE]
    quota = config.guest_quota
    if error == "quota" or (quota is not None and site.store.messages_used[session] >= quota):
        # As captured: the notice object repeats the (site's own) quota text.
        words = _text(site, "quota")
        notice = {"type": "quota_notice", "message": words, "actions": []}
        return [_error(words, {"quota_notice": notice}), DONE]

    if error in MID_ANSWER_ERRORS:
        text, then_done = MID_ANSWER_ERRORS[error]
        return [_message_start(), _error(text), *([DONE] if then_done else [])]

    answer = answer_text(message, config.answer_bytes)
    site.store.remember((session, bot_id, conversation), message, answer)
    site.store.messages_used[session] += 1
    site.bots.append(bot_id)
    frames = [_message_start(), *_answer_frames(site, answer, bot_id), DONE]
    if config.nonce_refused_after_deltas is not None:
        refusal = [_error(_text(site, "security")), DONE]
        return refused_after(frames, config.nonce_refused_after_deltas, refusal)
    return frames


def _answer_frames(site: Site, answer: str, bot_id: int) -> list[Frame]:
    config = site.config
    pieces = deltas(answer, config.delta_chars, long=config.answer_bytes is not None)
    response_id = "resp_" + secrets.token_hex(16)
    frames: list[Frame] = []
    if config.since("A8") and bot_id in config.google_bots:
        # 2.4.67+: a Google bot's stream names its interaction (sent back next time).
        interaction = {"id": "gi_" + secrets.token_hex(12)}
        frames.append(Frame(_event("google_interaction_id", interaction)))
    if config.responses_api and config.since("A5"):  # status events from 2.3.69
        status = {
            "type": "response.in_progress",
            "status": "in_progress",
            "response_id": response_id,
        }
        frames.append(Frame(_event("status", status)))
    # Where the captures put the named non-text events: the response id after the
    # second delta; the content-filter warning (when asked) after the first.
    id_after = min(1, len(pieces) - 1)
    for index, piece in enumerate(pieces):
        frames.append(Frame(_event(None, {"delta": piece}), delta=True))
        if config.warning and index == 0:
            frames.append(Frame(_event("warning", {"error": " (Warning: Content Filtered)"})))
        if config.responses_api and index == id_after:
            frames.append(Frame(_event("openai_response_id", {"id": response_id})))
    if config.citations and config.since("A6"):
        cited = {"citations": [{"url": "https://example.org/", "title": "Example"}]}
        frames.append(Frame(_event("citations", cited)))
    return frames
