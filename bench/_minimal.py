"""The practical limit: a hand-written aiohttp client making exactly the library's requests.

Given the same stored :class:`~scraper.credentials.Credentials`, it sends what
``provider.protocols.legacy`` / ``aipkit`` send — same URL, method, headers,
cookies, form fields and query, one session per call with ``force_close`` (the
captured PHP server closes connections anyway) or, as :class:`KeptAlive`, one
session kept across calls (the WAN case's limit), the same per-read timeout — and parses the
stream as directly as possible: split the body on blank lines, ``json.loads``
each ``data:`` line, pick the text. No validation, no error mapping, no retry:
that is what the library adds, and what the ratio prices.

Like any client that keeps its connections, it reads each reply to its end (the
chunked end marker, legacy's trailing JSON) before it returns: a response
released earlier loses its connection.
"""

from __future__ import annotations

import contextlib
import json
import random
import ssl
import string
import time
import uuid
from collections.abc import AsyncIterator
from typing import Protocol

import aiohttp

from scraper.credentials import Credentials

_ALNUM = string.ascii_letters + string.digits
READ_TIMEOUT = 120.0


def _session(
    creds: Credentials, *, keep_alive: bool = False, ca_file: str | None = None
) -> aiohttp.ClientSession:
    cookie = "; ".join(f"{c.name}={c.value}" for c in creds.cookies)
    headers = {"Cookie": cookie} if cookie else None
    ssl_context = ssl.create_default_context(cafile=ca_file) if ca_file else True
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(force_close=not keep_alive, ssl=ssl_context),
        headers=headers,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=READ_TIMEOUT),
        trust_env=False,
    )


@contextlib.asynccontextmanager
async def _using(
    creds: Credentials, kept: aiohttp.ClientSession | None
) -> AsyncIterator[aiohttp.ClientSession]:
    if kept is not None:
        yield kept
    else:
        async with _session(creds) as session:
            yield session


class KeptAlive:
    """The limit on a real link: the same requests on one session kept across
    calls, so every chat after the first rides warm connections (TCP and TLS
    handshakes done once)."""

    def __init__(self, creds: Credentials, ca_file: str | None = None) -> None:
        self.creds = creds
        self.session = _session(creds, keep_alive=True, ca_file=ca_file)
        self._chat = chat_for(creds)

    def chat(self, prompt: str) -> AsyncIterator[str]:
        return self._chat(self.creds, prompt, self.session)

    async def close(self) -> None:
        await self.session.close()


def _headers(creds: Credentials, accept: str) -> dict[str, str]:
    return {
        "User-Agent": creds.user_agent,
        "Accept-Language": "en-US,en;q=0.9",
        "Referer": creds.page_url,
        "Origin": creds.site,
        "Accept": accept,
    }


_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=READ_TIMEOUT, sock_read=READ_TIMEOUT)


async def legacy_chat(
    creds: Credentials, prompt: str, kept: aiohttp.ClientSession | None = None
) -> AsyncIterator[str]:
    """One form POST; OpenAI chunks until the finish chunk or ``[DONE]``."""
    widget = creds.widget_type == "widget"
    form = {
        "_wpnonce": creds.nonce,
        "post_id": str(creds.post_id),
        "url": creds.referer_url or creds.site,
        "action": "wpaicg_chatbox_message" if widget else "wpaicg_chat_shortcode_message",
        "message": prompt,
        "bot_id": str(creds.bot_id),
        "chatbot_identity": f"custom_bot_{creds.bot_id}"
        if creds.bot_id
        else ("widget" if widget else "shortcode"),
        "wpaicg_chat_client_id": creds.session_id,
    }
    accept = "text/event-stream, application/json;q=0.9, */*;q=0.8"
    async with (
        _using(creds, kept) as session,
        session.post(
            creds.ajax_url,
            data=form,
            headers=_headers(creds, accept),
            timeout=_TIMEOUT,
            allow_redirects=False,
        ) as resp,
    ):
        rest = b""
        async for chunk in resp.content.iter_any():
            parts = (rest + chunk).split(b"\n\n") if rest else chunk.split(b"\n\n")
            rest = parts.pop()
            for part in parts:
                if not part.startswith(b"data: "):
                    continue
                data = part[6:]
                if data == b"[DONE]":
                    await _to_the_end(resp)
                    return
                choice = json.loads(data)["choices"][0]
                text = choice["delta"].get("content")
                if text:
                    yield text
                if choice.get("finish_reason"):
                    await _to_the_end(resp)
                    return


async def _to_the_end(resp: aiohttp.ClientResponse) -> None:
    """Read what is left of the body, so the connection goes back to the session's pool."""
    while await resp.content.readany():
        pass


async def aipkit_chat(
    creds: Credentials, prompt: str, kept: aiohttp.ClientSession | None = None
) -> AsyncIterator[str]:
    """Cache the message (POST), then stream the answer (GET) until ``event: done``."""
    msg_id = f"aipkit-client-msg-{creds.bot_id}-{int(time.time() * 1000)}-" + "".join(
        random.choices(_ALNUM, k=5)
    )
    async with _using(creds, kept) as session:
        async with session.post(
            creds.ajax_url,
            data={
                "action": "aipkit_cache_sse_message",
                "message": prompt,
                "_ajax_nonce": creds.nonce,
                "bot_id": str(creds.bot_id),
                "user_client_message_id": msg_id,
            },
            headers=_headers(creds, "application/json, */*;q=0.8"),
            timeout=_TIMEOUT,
            allow_redirects=False,
        ) as resp:
            key = json.loads(await resp.read())["data"]["cache_key"]
        params = {
            "action": "aipkit_frontend_chat_stream",
            "cache_key": key,
            "bot_id": str(creds.bot_id),
            "session_id": creds.session_id,
            "conversation_uuid": str(uuid.uuid4()),
        }
        if creds.post_id > 0:
            params["post_id"] = str(creds.post_id)
        params["_ts"] = str(int(time.time() * 1000))
        params["_ajax_nonce"] = creds.nonce
        async with session.get(
            creds.ajax_url,
            params=params,
            headers=_headers(creds, "text/event-stream"),
            timeout=_TIMEOUT,
            allow_redirects=False,
        ) as resp:
            rest = b""
            async for chunk in resp.content.iter_any():
                parts = (rest + chunk).split(b"\n\n") if rest else chunk.split(b"\n\n")
                rest = parts.pop()
                for part in parts:
                    if part.startswith(b"data: "):
                        text = json.loads(part[6:]).get("delta")
                        if text:
                            yield text
                    elif part.startswith(b"event: done"):
                        await _to_the_end(resp)
                        return
                    elif part.startswith(b"event: error"):
                        raise RuntimeError(part.decode(errors="replace"))


class ChatFn(Protocol):
    def __call__(
        self, creds: Credentials, prompt: str, kept: aiohttp.ClientSession | None = None, /
    ) -> AsyncIterator[str]: ...


def chat_for(creds: Credentials) -> ChatFn:
    """The minimal chat function for the credentials' generation."""
    return aipkit_chat if creds.generation == "aipkit" else legacy_chat
