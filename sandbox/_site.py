"""``Site``: the handle a test holds on a running imitation — its URL, live config,
request counters and the server-side state the handlers share."""

from __future__ import annotations

import asyncio
import secrets
import time
import weakref
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from . import _clearance
from ._config import SiteConfig
from ._nonce import AIPKIT_CHAT_ACTION, LEGACY_CHAT_ACTION, Nonces
from ._store import AipkitStore


@dataclass
class PendingChallenge:
    """A challenge page handed out and not yet solved."""

    answer: str
    expires: float


PROMPTS_KEPT = 10_000


class Site:
    """A running imitation site.

    Attributes:
        url: origin, e.g. ``"http://127.0.0.1:41234"`` (no trailing slash);
            ``https://`` when served with ``tls=True``.
        ca_file: with ``tls=True``, the PEM file of the CA that signed the
            site's certificate (trust it to verify the site); else ``None``.
        config: the live ``SiteConfig``; changes apply to the next request.
        hits: ``Counter`` of requests that reached the site — ``"GET /"``,
            ``"GET /chat/"`` (any method and path that is not admin-ajax),
            ``"admin-ajax:<action>"`` (action as sent, ``""`` if none) — and of what
            the edge did: ``"challenge"`` (challenge pages served), ``"clearance"``
            (challenges solved), ``"challenge_failed"`` (wrong answers),
            ``"blocked"``, ``"rate_limited"``; ``"stream_hung_up"``: chat streams
            the client closed before their end.
        answered: chat streams whose answer's last event went out (``end_delay``
            starts then); ``ended``: chat streams whose body ended since.
        connections: how many connections the site accepted that sent a request
            (a client that keeps its connection alive makes one for many chats).
        prompts: every chat message the site accepted (its nonce verified), in full
            and in arrival order — legacy's ``message`` field, aipkit's cached
            message — so a test can assert the exact prompt a client built. A
            message refused for its nonce is not here; its resend is. The last
            ``PROMPTS_KEPT`` are kept, so a long-running sandbox does not grow.
        bots: aipkit: the bot id of every answer streamed, in order (the last
            ``PROMPTS_KEPT``), so a test can tell which bot a message went to.
    """

    def __init__(self, config: SiteConfig) -> None:
        self.config = config
        self.url = ""
        self.ca_file: Path | None = None
        self.hits: Counter[str] = Counter()
        self.connections = 0
        self.answered = 0
        self.ended = 0
        # Each connection's transport, seen once (weakly: a closed one is let go).
        self._transports: weakref.WeakSet[object] = weakref.WeakSet()
        self.prompts: deque[str] = deque(maxlen=PROMPTS_KEPT)
        self.bots: deque[int] = deque(maxlen=PROMPTS_KEPT)
        self.nonces = Nonces(lambda: self.config.tick_seconds)
        self.store = AipkitStore()
        self.clearance_secret = secrets.token_bytes(32)
        self.challenges: dict[str, PendingChallenge] = {}
        #: protection: what the detector found, ``{"where": "challenge"|"page", "signals": [...]}``
        self.detections: list[dict[str, Any]] = []
        #: clearances a page's detector reported automation under: refused from then on
        self.revoked: set[str] = set()
        # Set when the server shuts down: stalled streams wait on it instead of forever.
        self.closing = asyncio.Event()

    def nonce(self, action: str | None = None) -> str:
        """The nonce the site issues right now (for the generation's chat action by default)."""
        if action is None:
            action = (
                LEGACY_CHAT_ACTION if self.config.generation == "legacy" else AIPKIT_CHAT_ACTION
            )
        return self.nonces.create(action)

    def page_nonce(self, action: str) -> str:
        """The nonce printed into pages: a current one, unless a stale cached copy
        is being imitated (``config.page_nonce``)."""
        return self.config.page_nonce or self.nonces.create(action)

    def rotate_nonce(self) -> None:
        """Change the secret salt: every nonce issued so far stops verifying."""
        self.nonces.rotate()

    def saw_connection(self, transport: object) -> None:
        """Count ``transport``'s connection if it is new (called for every request)."""
        if transport is not None and transport not in self._transports:
            self._transports.add(transport)
            self.connections += 1

    def reset_hits(self) -> None:
        self.hits.clear()
        self.connections = self.answered = self.ended = 0
        self.prompts.clear()
        self.bots.clear()

    def history(self, session_id: str, bot_id: int, conversation_uuid: str) -> list[str]:
        """aipkit: the user messages the server holds for this conversation, oldest first."""
        return self.store.user_messages((session_id, int(bot_id), conversation_uuid))

    def issue_clearance(self, user_agent: str, address: str = "127.0.0.1") -> str:
        """A valid ``cf_clearance`` value for this UA and client address, as if a
        browser had solved the challenge (for tests that do not drive a browser)."""
        return _clearance.issue(self.clearance_secret, user_agent, address, time.time())


SITE_KEY = web.AppKey("sandbox_site", Site)
