"""The legacy generation (AI Power 1.x, ``wpaicg``): one form POST, OpenAI chunks back.

The reply is either an event stream of upstream OpenAI chunks (ended by a
finish chunk and ``[DONE]``, then — on the same body, no newline — a JSON
summary we must never show), or one JSON object when the site does not stream.
Errors arrive as JSON, as single events, or as a fake answer made of the
upstream's error text (named ``message`` events with minimal chunk objects).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from provider.protocols._common import (
    Answer,
    Session,
    Whole,
    chat_headers,
    chat_of,
    check_not_page,
    cut_short,
    left,
    opened,
    read_json,
    read_timeout_for,
    reply_kind,
    texts,
)
from provider.protocols._refusal import LEGACY_NONCE_FAILURES, backend_failure, legacy_error
from provider.sse import Event
from scraper.credentials import Credentials
from scraper.errors import ProtocolError, UpstreamError

log = logging.getLogger(__name__)

#: Every wording of "bad nonce" the plugin has used (1.8, 1.7, the oldest).
NONCE_FAILURES = LEGACY_NONCE_FAILURES
FINISH_REASONS = ("stop", "length")


def form(creds: Credentials, prompt: str) -> dict[str, str]:
    """The fields the plugin's own script sends for one message."""
    widget = creds.widget_type == "widget"
    identity = (
        f"custom_bot_{creds.bot_id}" if creds.bot_id else ("widget" if widget else "shortcode")
    )
    return {
        "_wpnonce": creds.nonce,
        "post_id": str(creds.post_id),
        "url": creds.referer_url or creds.site,
        "action": "wpaicg_chatbox_message" if widget else "wpaicg_chat_shortcode_message",
        "message": prompt,
        "bot_id": str(creds.bot_id),
        "chatbot_identity": identity,
        "wpaicg_chat_client_id": creds.session_id,
    }


async def open_answer(
    client: Session, creds: Credentials, prompt: str, *, read_timeout: float
) -> Answer:
    """Send ``prompt``; the answer's text as it streams in.

    The caller reads it to its end or closes it (``aclose``): what :func:`chat`
    does, without a generator of its own in the way of every chunk.
    """
    exchange = client.post(
        creds.ajax_url,
        data=form(creds, prompt),
        headers=chat_headers(creds, "text/event-stream, application/json;q=0.9, */*;q=0.8"),
        timeout=read_timeout_for(read_timeout),
        allow_redirects=False,
    )
    resp = await opened(exchange)
    try:
        kind = reply_kind(resp)
        if kind == "stream" and resp.status == 200:
            return texts(resp.content.iter_any(), LegacyStream(), exchange)
        if kind != "json":
            await check_not_page(resp, "sending the message")
        whole = Whole(answer_from_json(await read_json(resp)))
    except BaseException as exc:
        await left(exchange, exc)
        raise
    await left(exchange, None)
    return whole


#: Send ``prompt``; yield the answer's text as it streams in.
chat = chat_of(open_answer)


class LegacyStream:
    """Reads the plugin's event stream (see :class:`~provider.protocols._common.Interpreter`).

    Done at the finish chunk or ``[DONE]`` — whichever comes first — so the
    trailing JSON summary is never read, let alone shown.
    """

    __slots__ = ("done", "error_words")

    def __init__(self) -> None:
        self.done = False
        self.error_words: list[str] | None = None  # the upstream-failure shape, collected

    def on_event(self, event: Event) -> str | None:
        data = event.data
        try:
            # raw_decode skips json.loads's wrapper (two whitespace scans): this
            # runs once per delta, half a million times for a 10 MB answer.
            obj = _decode(data)[0]
        except ValueError:
            return self._not_json(data)
        if type(obj) is not dict:
            return None
        if not _ERROR_KEYS.isdisjoint(obj) and _is_error(obj):
            raise error_from(obj)
        choices = obj.get("choices")
        if type(choices) is not list or not choices or type(choices[0]) is not dict:
            return None
        choice = choices[0]
        delta = choice.get("delta")
        text = delta.get("content") if type(delta) is dict else choice.get("text")
        if event.event == "message" and "id" not in obj and "object" not in obj:
            # The plugin's upstream-failure shape: the error text as fake word
            # chunks. Real answers come as full chunk objects in unnamed events.
            if self.error_words is None:
                self.error_words = []
            if isinstance(text, str):
                self.error_words.append(text)
            text = None
        if choice.get("finish_reason") in FINISH_REASONS:
            self.done = True
            self._raise_collected_error()
        return text if type(text) is str and text else None

    def _not_json(self, data: str) -> str | None:
        if data == "[DONE]":
            self.done = True
            self._raise_collected_error()
            return None
        if data == "[LIMITED]":
            raise UpstreamError(
                "the site's AI backend failed (the plugin ended the stream with [LIMITED]); "
                "retry later"
            )
        if data[:1].isspace():  # JSON after extra spaces: rare, so the slow path
            try:
                json.loads(data)
            except ValueError:
                pass
            else:
                return self.on_event(Event(data.strip(), "", None))
        log.debug("skipping a stream event that is not JSON (%d chars)", len(data))
        return None

    def on_end(self) -> None:
        self._raise_collected_error()
        raise cut_short()

    def _raise_collected_error(self) -> None:
        if self.error_words is not None:
            # The word events are the backend's failure by their shape; the words
            # only say whether it is a rate limit (retry shortly) or not.
            raise backend_failure("".join(self.error_words).strip())


_decode = json.JSONDecoder().raw_decode
#: Keys that can mark an error object; most chunks have none of them.
_ERROR_KEYS = frozenset({"status", "tokenLimitReached", "ipBanned", "messageFlagged", "modflag"})


def _is_error(obj: dict[str, Any]) -> bool:
    return obj.get("status") == "error" or any(
        obj.get(flag) for flag in ("tokenLimitReached", "ipBanned", "messageFlagged", "modflag")
    )


def error_from(obj: dict[str, Any]) -> Exception:
    """The project's error for one of the plugin's error objects (its flags first)."""
    return legacy_error(obj)


def answer_from_json(obj: Any) -> str:
    """The answer in a non-streaming reply, or the error it reports."""
    if not isinstance(obj, dict):
        raise ProtocolError("the site's JSON reply is not an object: the plugin may have changed")
    if _is_error(obj):
        raise error_from(obj)
    data = obj.get("data")
    if obj.get("status") == "success" and isinstance(data, str):
        if not data:
            raise UpstreamError("the site's AI backend returned an empty answer; retry later")
        return data
    raise ProtocolError("the site's JSON reply holds no answer: the plugin may have changed")
