"""The aipkit generation (AI Power 2.x, "AI Puffer"): cache the message, then stream it.

1. ``POST aipkit_cache_sse_message`` → a one-time ``cache_key`` (60 s).
2. ``GET aipkit_frontend_chat_stream`` → an event stream: a 4096-space comment,
   ``message_start``, unnamed ``{"delta": …}`` events, named non-text events,
   ``done``. ``error`` is final whether or not ``done`` follows.

The server keeps the conversation per (session_id, bot, conversation_uuid):
each call here opens a fresh conversation and sends the whole prompt.
"""

from __future__ import annotations

import json
import logging
import random
import string
import time
import uuid
from typing import Any

from provider.protocols._common import (
    Session,
    Texts,
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
from provider.protocols._refusal import NONCE_HINTS, aipkit_cache_error, aipkit_error
from provider.sse import Event
from scraper.credentials import Credentials

__all__ = [
    "NONCE_HINTS",
    "AipkitStream",
    "cache_message",
    "chat",
    "error_from",
    "new_nonce",
    "open_answer",
]

log = logging.getLogger(__name__)

_ALNUM = string.ascii_letters + string.digits


async def cache_message(
    client: Session, creds: Credentials, prompt: str, *, read_timeout: float
) -> str:
    """Step 1: hand the message to the site; returns its one-time cache key."""
    # The plugin's own script makes the id with Math.random: an id, not a secret.
    msg_id = f"aipkit-client-msg-{creds.bot_id}-{int(time.time() * 1000)}-" + "".join(
        random.choices(_ALNUM, k=5)
    )
    async with client.post(
        creds.ajax_url,
        data={
            "action": "aipkit_cache_sse_message",
            "message": prompt,
            "_ajax_nonce": creds.nonce,
            "bot_id": str(creds.bot_id),
            "user_client_message_id": msg_id,
        },
        headers=chat_headers(creds, "application/json, */*;q=0.8"),
        timeout=read_timeout_for(read_timeout),
        allow_redirects=False,
    ) as resp:
        if reply_kind(resp) != "json":
            await check_not_page(resp, "caching the message")
        reply = await read_json(resp)
    if isinstance(reply, dict) and reply.get("success") is True:
        key = (
            reply.get("data", {}).get("cache_key") if isinstance(reply.get("data"), dict) else None
        )
        if isinstance(key, str) and key:
            return key
    data = reply.get("data") if isinstance(reply, dict) else None
    code = data.get("code") if isinstance(data, dict) else None
    text = str(data.get("message", "")) if isinstance(data, dict) else ""
    raise aipkit_cache_error(code, text, resp.status)


def stream_params(creds: Credentials, cache_key: str) -> dict[str, str]:
    """The stream request's query, in the plugin's order (``_ajax_nonce`` last)."""
    params = {
        "action": "aipkit_frontend_chat_stream",
        "cache_key": cache_key,
        "bot_id": str(creds.bot_id),
        "session_id": creds.session_id,
        "conversation_uuid": str(uuid.uuid4()),
    }
    if creds.post_id > 0:
        params["post_id"] = str(creds.post_id)
    params["_ts"] = str(int(time.time() * 1000))
    params["_ajax_nonce"] = creds.nonce
    return params


async def open_answer(
    client: Session, creds: Credentials, prompt: str, *, read_timeout: float
) -> Texts:
    """Send ``prompt`` and open the answer stream; its text as it streams in.

    The caller reads it to its end or closes it (``aclose``): what :func:`chat`
    does, without a generator of its own in the way of every chunk.
    """
    cache_key = await cache_message(client, creds, prompt, read_timeout=read_timeout)
    exchange = client.get(
        creds.ajax_url,
        params=stream_params(creds, cache_key),
        headers=chat_headers(creds, "text/event-stream"),
        timeout=read_timeout_for(read_timeout),
        allow_redirects=False,
    )
    resp = await opened(exchange)
    if reply_kind(resp) != "stream" or resp.status != 200:
        try:
            await check_not_page(resp, "opening the answer stream")
        except BaseException as exc:
            await left(exchange, exc)
            raise
    return texts(resp.content.iter_any(), AipkitStream(creds), exchange)


#: Send ``prompt``; yield the answer's text as it streams in.
chat = chat_of(open_answer)


class AipkitStream:
    """Reads an aipkit event stream (see :class:`~provider.protocols._common.Interpreter`).

    ``error`` is final whether or not ``done`` follows (the plugin's upstream
    failures end with no ``done``). Whether ``message_start`` came before it says
    what it is (:func:`~provider.protocols._refusal.aipkit_error`); ``creds``, when
    given, name the bot in the errors.
    """

    __slots__ = ("creds", "done", "started")

    def __init__(self, creds: Credentials | None = None) -> None:
        self.done = False
        self.started = False
        self.creds = creds

    def on_event(self, event: Event) -> str | None:
        name = event.event
        if not name or name == "message":
            delta = _field(event.data, "delta")
            return delta if type(delta) is str and delta else None
        if name == "done":
            self.done = True
        elif name == "message_start":
            self.started = True
        elif name == "error":
            raise aipkit_error(_payload(event.data), started=self.started, creds=self.creds)
        elif name == "warning":
            log.warning("the site flagged the answer: %s", str(_field(event.data, "error"))[:200])
        # message_start, status, openai_response_id, citations, … carry no text.
        return None

    def on_end(self) -> None:
        raise cut_short()


_decode = json.JSONDecoder().raw_decode


def _field(data: str, key: str) -> Any:
    try:
        # raw_decode: json.loads without its whitespace scans (runs once per delta).
        obj = _decode(data.strip() if data[:1].isspace() else data)[0]
    except ValueError:
        log.debug("skipping a stream event that is not JSON (%d chars)", len(data))
        return None
    return obj.get(key) if isinstance(obj, dict) else None


def _payload(data: str) -> Any:
    """An error event's JSON, or its text when it is not JSON (read once per stream)."""
    try:
        return json.loads(data)
    except ValueError:
        return data


def error_from(text: str, *, started: bool = False) -> Exception:
    """The project's error for an ``event: error`` text (kept for callers of 1.x of this
    module; the stream reads the whole event with :func:`aipkit_error`)."""
    return aipkit_error({"error": text}, started=started)


async def new_nonce(client: Session, creds: Credentials, *, read_timeout: float) -> str | None:
    """A fresh nonce from ``aipkit_get_frontend_chat_nonce`` (as the plugin's script asks),
    or None when the site will not give one (then the page is read again)."""
    async with client.post(
        creds.ajax_url,
        data={"action": "aipkit_get_frontend_chat_nonce", "bot_id": str(creds.bot_id)},
        headers=chat_headers(creds, "application/json, */*;q=0.8"),
        timeout=read_timeout_for(read_timeout),
        allow_redirects=False,
    ) as resp:
        if reply_kind(resp) != "json" or resp.status != 200:
            return None
        reply = await read_json(resp)
    data = reply.get("data") if isinstance(reply, dict) and reply.get("success") else None
    nonce = data.get("nonce") if isinstance(data, dict) else None
    return nonce if isinstance(nonce, str) and 0 < len(nonce) <= 64 else None
