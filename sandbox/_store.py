"""Server-side memory of the aipkit generation.

- the SSE message cache: ``aipkit_cache_sse_message`` parks the message under a
  one-time key (a WordPress transient in the real plugin) that the stream fetches;
- conversation histories, per (session_id, bot_id, conversation_uuid): the
  browser sends only the new message, the server remembers the rest;
- guest quotas, per session_id.
"""

from __future__ import annotations

import secrets
import string
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

_ALNUM = string.ascii_letters + string.digits

Lookup = Literal["found", "missing", "expired"]
ConversationKey = tuple[str, int, str]


@dataclass
class CachedMessage:
    message: str
    bot_id: str
    created: float


@dataclass
class AipkitStore:
    clock: Callable[[], float] = time.monotonic
    cache: dict[str, CachedMessage] = field(default_factory=dict)
    histories: dict[ConversationKey, list[tuple[str, str]]] = field(default_factory=dict)
    messages_used: Counter[str] = field(default_factory=Counter)

    def put(self, message: str, bot_id: str, ttl: float) -> str:
        """Cache ``message``; return its one-time key ``aipkit_sse_<32 alnum>``."""
        self._prune(ttl)
        key = "aipkit_sse_" + "".join(secrets.choice(_ALNUM) for _ in range(32))
        self.cache[key] = CachedMessage(message, bot_id, self.clock())
        return key

    def take(self, key: str, ttl: float) -> tuple[Lookup, CachedMessage | None]:
        """Fetch and forget ``key``: a key works once, and only within ``ttl`` seconds."""
        entry = self.cache.pop(key, None)
        if entry is None:
            return "missing", None
        if self.clock() - entry.created > ttl:
            return "expired", None
        return "found", entry

    def _prune(self, ttl: float) -> None:
        # Expired keys are kept a while so a late fetch can still say "expired"
        # (the plugin tells the two apart); far older ones are dropped.
        horizon = self.clock() - max(ttl * 10, 600.0)
        for key in [k for k, v in self.cache.items() if v.created < horizon]:
            del self.cache[key]

    def remember(self, key: ConversationKey, message: str, answer: str) -> None:
        turns = self.histories.setdefault(key, [])
        turns += [("user", message), ("bot", answer)]

    def user_messages(self, key: ConversationKey) -> list[str]:
        return [text for role, text in self.histories.get(key, []) if role == "user"]
