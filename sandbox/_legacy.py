"""The legacy generation (AI Power 1.x, ``wpaicg``): widget markup and the chat action.

One admin-ajax action answers both the shortcode (``wpaicg_chat_shortcode_message``)
and the floating widget (``wpaicg_chatbox_message``). It reads ``$_REQUEST``, checks
the nonce first, then the message, and either streams the upstream's OpenAI chunks
followed — with no newline — by the plugin's own JSON, or answers with that JSON alone.
No history is kept on the server: the browser sends it along.
"""

from __future__ import annotations

import asyncio
import html
import json
import secrets
import time
from typing import Any

from aiohttp import web

from ._answer import answer_text, deltas
from ._config import wordpress_refuses_nonce
from ._nonce import LEGACY_CHAT_ACTION, LEGACY_DECOY_ACTION
from ._pages import plugin_script, plugin_style
from ._php import (
    LEGACY_STREAM_HEADERS,
    Superglobals,
    json_response,
    php_empty,
    php_stream,
    wp_json,
    wp_nonce_ays,
)
from ._site import Site
from ._wire import Frame, refused_after, send_stream

NONCE_WORDING = {
    "current": "Nonce verification failed",
    "1.7": (
        "Invalid nonce. This means we are unable to verify the validity of the nonce. "
        "There are a couple of possible reasons for this. 1. You may have a caching "
        "plugin on your website that is serving an old copy of this page. 2. The page "
        "was open for too long and the nonce expired. Please clear your cache, reload "
        "the page and try again."
    ),
    "old": "Security check",
}
EMPTY_MESSAGE = "It appears that nothing was inputted."

# Limits and bans: what the plugin sends instead of an answer (one SSE event when streaming).
BANS: dict[str, dict[str, Any]] = {
    "token_limit": {"msg": "You have reached your token limit.", "tokenLimitReached": True},
    "ip_ban": {"msg": "You are not allowed to access this feature.", "ipBanned": True},
    "banned_words": {
        "msg": "Your message contains prohibited words. Please modify your message and try again.",
        "messageFlagged": True,
    },
    "moderation": {
        "msg": "Your message has been flagged as potentially harmful or inappropriate. "
        "Please review your content and try again.",
        "status": "error",
        "modflag": True,
    },
}
# The text the captured upstream failure spelled out word by word (legacy-upstream-error.http).
UPSTREAM_ERROR_WORDS = [
    "Incorrect",
    " API",
    " key",
    " provided:",
    " sk-fake.",
    " (fake",
    " upstream)",
]
LIMITED_MESSAGE = "Something went wrong"


# --------------------------------------------------------------------------- markup


# (name, value key or literal, spaced "=") in the 1.8.79 order of legacy-widget.html.
def _attributes_18(
    origin: str, nonce: str, post_id: int, kind: str, streaming: bool
) -> list[tuple[str, str, bool]]:
    images = f"{origin}/wp-content/plugins/gpt3-ai-content-generator/admin/images"
    return [
        ("data-user-bg-color", "#ccf5e1", False),
        ("data-color", "#495057", False),
        ("data-fontsize", "14", False),
        ("data-use-avatar", "0", False),
        ("data-user-avatar", f"{images}/default_profile.png", False),
        ("data-you", "You", False),
        ("data-ai-avatar", f"{images}/chatbot.png", False),
        ("data-ai-name", "AI", False),
        ("data-ai-bg-color", "#d1e8ff", False),
        ("data-nonce", nonce, False),
        ("data-post-id", str(post_id), False),
        ("data-url", origin, False),
        ("data-bot-id", "0", False),
        ("data-width", "100%", False),
        ("data-height", "50%", False),
        ("data-footer", "false", False),
        ("data-has-bar", "false", False),
        ("data-speech", "", False),
        ("data-voice", "", False),
        ("data-elevenlabs-model", "", False),
        ("data-voice-error", "", False),
        ("data-typewriter-effect", "", True),
        ("data-typewriter-speed", "1", False),
        ("data-text_height", "60", False),
        ("data-text_rounded", "8", False),
        ("data-chat_rounded", "8", False),
        ("data-voice_service", "", False),
        ("data-voice_language", "en-US", False),
        ("data-voice_name", "en-US-Studio-M", False),
        ("data-voice_device", "", False),
        ("data-voice_speed", "1", False),
        ("data-voice_pitch", "0", False),
        ("data-openai_model", "tts-1", False),
        ("data-openai_voice", "alloy", False),
        ("data-openai_output_format", "mp3", False),
        ("data-openai_voice_speed", "1.0", False),
        ("data-openai_stream_nav", "1" if streaming else "0", False),
        ("data-autoload_chat_conversations", "0", False),
        ("data-copy_btn", "", False),
        ("data-feedback_btn", "", True),
        ("data-feedback_title", "Feedback", True),
        ("data-feedback_message", "Please provide details: (optional)", True),
        ("data-feedback_success", "Thank you for your feedback!", True),
        ("data-user-voice-control", "", True),
        ("data-voice-muted-by-default", "", False),
        ("data-type", kind, False),
    ]


# An older 1.7 template: fewer options, the ids grouped after the type, no
# data-openai_stream_nav, and the nonce written with spaces around "=".
_ORDER_17 = [
    "data-user-bg-color",
    "data-color",
    "data-fontsize",
    "data-use-avatar",
    "data-user-avatar",
    "data-you",
    "data-ai-avatar",
    "data-ai-name",
    "data-ai-bg-color",
    "data-type",
    "data-bot-id",
    "data-url",
    "data-post-id",
    "data-nonce",
    "data-width",
    "data-height",
    "data-footer",
    "data-has-bar",
    "data-speech",
    "data-voice",
    "data-voice-error",
    "data-typewriter-effect",
    "data-typewriter-speed",
]
_SPACED_17 = {"data-nonce", "data-typewriter-effect"}


def _attr(name: str, value: str, spaced: bool) -> str:
    eq = " = " if spaced else "="
    return f'{name}{eq}"{html.escape(value, quote=True)}"'


def chat_element(site: Site, origin: str, post_id: int, kind: str) -> str:
    """The opening tag of a shortcode (``kind="shortcode"``) or widget chat box, plus its end."""
    config = site.config
    css_class = "wpaicg-chat-shortcode" if kind == "shortcode" else "wpaicg-chatbox"
    attrs = _attributes_18(
        origin, site.page_nonce(LEGACY_CHAT_ACTION), post_id, kind, config.streaming
    )
    inner = (
        '<div class="wpaicg-chat-shortcode-content"><ul class="wpaicg-chat-messages"></ul></div>'
    )
    if config.legacy_template == "1.8":
        lines = [f'<div class="{css_class}"'] + ["     " + _attr(*a) for a in attrs] + [">"]
        tag = "\n".join(lines)
    elif config.legacy_template == "1.7":
        by_name = {name: value for name, value, _ in attrs}
        lines = [f'<div class="{css_class}"'] + [
            "    " + _attr(name, by_name[name], name in _SPACED_17) for name in _ORDER_17
        ]
        tag = "\n".join(lines) + ">"
    else:
        tag = f'<div class="{css_class}" ' + " ".join(_attr(n, v, False) for n, v, _ in attrs) + ">"
    element = f"{tag}\n{inner}\n</div>"
    if kind == "widget":
        element = (
            '<div class="wpaicg_chat_widget wpaicg_widget_bottom_right">\n'
            '<div class="wpaicg_chat_widget_content">\n'
            f"{element}\n</div>\n"
            '<div class="wpaicg_toggle"><img src="'
            f'{origin}/wp-content/plugins/gpt3-ai-content-generator/admin/images/chatbot.png" '
            'alt="chat" /></div>\n</div>'
        )
    return element


def page_parts(site: Site, origin: str, post_id: int) -> tuple[str, str, str]:
    """(head extra, content, footer extra) for a legacy page."""
    config = site.config
    release = config.plugin_release
    head = plugin_style(origin, "wpaicg-chat", "public/css/wpaicg-chat.css", release)
    if config.legacy_wpaicg_params:
        params = {
            "ajax_url": f"{origin}/wp-admin/admin-ajax.php",
            "search_nonce": site.page_nonce(LEGACY_CHAT_ACTION),
            "logged_in": "0",
            "languages": {"source": "Sources", "no_result": "No result found"},
        }
        head += (
            '<script id="wpaicg-init-js-extra">\n'
            f"var wpaicgParams = {wp_json(params)};\n</script>\n"
        )
    head += plugin_script(origin, "wpaicg-init", "public/js/wpaicg-init.js", release)
    content = ""
    if config.legacy_img_nonce_decoy:
        # A nonce for another action: a client that grabs the first nonce it sees fails.
        decoy = site.nonce(LEGACY_DECOY_ACTION)
        content += f'<input type="hidden" id="wpaicg-img-nonce" value="{decoy}">\n'
    footer = ""
    if config.legacy_markup in ("shortcode", "both"):
        content += chat_element(site, origin, post_id, "shortcode")
    if config.legacy_markup in ("widget", "both"):
        footer = chat_element(site, origin, post_id, "widget") + "\n"
    footer += plugin_script(origin, "wpaicg-chat-script", "public/js/wpaicg-chat.js", release)
    return head, content, footer


# --------------------------------------------------------------------------- chat


def _success(answer: str, greeting: str | None) -> dict[str, Any]:
    # Key order and the misleading "msg" are the plugin's own (legacy-json-reply.http);
    # only 1.8.79 (L1) adds the bot's system prompt as greeting_message.
    reply: dict[str, Any] = {"status": "success", "msg": "Something went wrong"}
    if greeting is not None:
        reply["greeting_message"] = greeting
    return {**reply, "data": answer, "log": False}


def _trailer(site: Site, answer: str) -> list[Frame]:
    """What follows ``[DONE]`` on the same body, no newline: the plugin's JSON in
    L1-L2 (``greeting_message`` in L1 only), nothing from L3 (1.8.85)."""
    config = site.config
    if config.since("L3"):
        return []
    greeting = config.greeting_message if config.release_class == "L1" else None
    return [Frame(wp_json(_success(answer, greeting)).encode())]


def _event(payload: Any) -> bytes:
    return b"data: " + wp_json(payload).encode() + b"\n\n"


class _Chunks:
    """OpenAI chat.completion.chunk objects as the upstream serialised them, full:
    ``service_tier``, ``refusal`` on the role chunk (legacy-chat-stream-openai-chunks.http).

    The captured upstream used Python's ``json.dumps`` spacing; we keep that, but
    write non-ASCII raw like OpenAI does, so long answers put multi-byte UTF-8 on
    the wire.
    """

    def __init__(self) -> None:
        self.id = "chatcmpl-" + secrets.token_hex(12)
        self.created = int(time.time())

    def event(self, delta: dict[str, str | None], finish: str | None = None) -> bytes:
        chunk = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": "gpt-4o-mini",
            "service_tier": "default",
            "system_fingerprint": "fp_sandbox",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        return b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n"


#: The upstream's 429 as the plugin spells it out (legacy-upstream-429.http).
RATE_LIMIT_TEXT = (
    "Rate limit reached for gpt-3.5-turbo in organization org-fakefixture on tokens per min "
    "(TPM): Limit 30000, Used 30000, Requested 42. Please try again in 84ms. Visit "
    "https://platform.openai.com/account/rate-limits to learn more."
)


def _upstream_failure_events(text: str) -> list[Frame]:
    first, *rest = text.split(" ")
    words = [
        Frame(b"event: message\n" + _event({"choices": [{"delta": {"content": w}}]}), delta=True)
        for w in [first, *(" " + w for w in rest)]
    ]
    stop = Frame(_event({"choices": [{"finish_reason": "stop"}]}))
    # WordPress retries the failed upstream call once: the whole sequence comes twice.
    return [*words, stop, *words, stop]


async def chat(request: web.Request, site: Site, globals_: Superglobals) -> web.StreamResponse:
    """``wpaicg_chat_shortcode_message`` / ``wpaicg_chatbox_message``."""
    config = site.config
    if not site.nonces.verify(globals_.request.get("_wpnonce"), LEGACY_CHAT_ACTION):
        if wordpress_refuses_nonce(config.plugin_release):
            # 1.8.91 through 2.2 check it with check_admin_referer: WordPress's 403 page.
            return wp_nonce_ays(request, globals_)
        # 1.8.79-1.8.90: the plugin answers 200 with its own JSON.
        wording = config.text("nonce", NONCE_WORDING[config.nonce_wording])
        return json_response({"status": "error", "msg": wording})
    # From 1.8.91 (L4) the fields come from $_POST only: a GET has no message.
    params = globals_.post if config.since("L4") else globals_.request
    message = params.get("message", "")
    site.prompts.append(message)
    if php_empty(message.strip()):
        return json_response({"status": "error", "msg": EMPTY_MESSAGE})

    error = config.reply_error
    if not config.streaming:
        if config.first_byte_delay > 0:
            await asyncio.sleep(config.first_byte_delay)
        return json_response(_json_reply(message, site))

    frames: list[Frame]
    if error in BANS:
        frames = [Frame(_event(_ban(site, error)))]
    elif error in ("upstream", "upstream_429"):
        text = RATE_LIMIT_TEXT if error == "upstream_429" else "".join(UPSTREAM_ERROR_WORDS)
        frames = [*_upstream_failure_events(text), *_trailer(site, "")]
    else:
        chunks = _Chunks()
        answer = answer_text(message, config.answer_bytes)
        pieces = deltas(answer, config.delta_chars, long=config.answer_bytes is not None)
        frames = [Frame(chunks.event({"role": "assistant", "content": "", "refusal": None}))]
        if error == "limited":
            # An exception mid-answer: what was sent stays sent, then the marker, nothing more.
            frames += [Frame(chunks.event({"content": pieces[0]}), delta=True)]
            frames += [Frame(b"data: [LIMITED]\n\n")]
        else:
            frames += [Frame(chunks.event({"content": p}), delta=True) for p in pieces]
            frames += [Frame(chunks.event({}, "stop")), Frame(b"data: [DONE]\n\n")]
            frames += _trailer(site, answer)
            if config.nonce_refused_after_deltas is not None:
                refusal = {"status": "error", "msg": NONCE_WORDING[config.nonce_wording]}
                frames = refused_after(
                    frames, config.nonce_refused_after_deltas, [Frame(_event(refusal))]
                )
    return await send_stream(request, php_stream(LEGACY_STREAM_HEADERS), site, frames)


def _json_reply(message: str, site: Site) -> dict[str, Any]:
    """The non-streaming reply, errors included (``{"status":"error","msg":…}``)."""
    error = site.config.reply_error
    if error == "token_limit":
        return _ban(site, "token_limit")
    if error in BANS:
        return {"status": "error", "msg": _ban(site, error)["msg"]}
    if error in ("upstream", "upstream_429"):
        text = RATE_LIMIT_TEXT if error == "upstream_429" else "".join(UPSTREAM_ERROR_WORDS)
        return {"status": "error", "msg": text}
    if error == "limited":
        return {"status": "error", "msg": LIMITED_MESSAGE}
    answer = answer_text(message, site.config.answer_bytes)
    return _success(answer, site.config.greeting_message)


def _ban(site: Site, error: str) -> dict[str, Any]:
    """A ban's object with the site's own text (or its language's): the flag stays."""
    ban = dict(BANS[error])
    ban["msg"] = site.config.text(error, ban["msg"])
    return ban
