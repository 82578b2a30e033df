"""WordPress nonces, computed the way ``wp_create_nonce`` / ``wp_verify_nonce`` do.

A visitor's nonce is ``substr(hash_hmac('md5', "$tick|$action|$uid|$token", salt), -12, 10)``
with ``tick = ceil(time() / (DAY_IN_SECONDS / 2))``, uid 0 and an empty session
token. It verifies during its own tick and the next one, so it lives between one
and two ticks — which is why a client must refresh it rather than cache it forever.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Callable

LEGACY_CHAT_ACTION = "wpaicg-chatbox"
LEGACY_DECOY_ACTION = "wpaicg-imagelog"
AIPKIT_CHAT_ACTION = "aipkit_frontend_chat_nonce"


class Nonces:
    """Creates and verifies nonces for one site; ``rotate`` plays "the salts changed"."""

    def __init__(
        self, tick_seconds: Callable[[], float], clock: Callable[[], float] = time.time
    ) -> None:
        # The tick length is read on every call so a test can change it on the live config.
        self._tick_seconds = tick_seconds
        self._clock = clock
        self._salt = secrets.token_bytes(32)

    def rotate(self) -> None:
        """Change the secret salt: every nonce issued so far stops verifying."""
        self._salt = secrets.token_bytes(32)

    def tick(self) -> int:
        return math.ceil(self._clock() / self._tick_seconds())

    def _make(self, tick: int, action: str) -> str:
        data = f"{tick}|{action}|0|".encode()
        digest = hmac.new(self._salt, data, hashlib.md5).hexdigest()
        return digest[-12:-2]

    def create(self, action: str) -> str:
        """``wp_create_nonce(action)`` for a logged-out visitor."""
        return self._make(self.tick(), action)

    def verify(self, nonce: str | None, action: str) -> int:
        """``wp_verify_nonce``: 1 = this tick, 2 = the previous one, 0 = invalid."""
        if not nonce:
            return 0
        tick = self.tick()
        for age, candidate_tick in ((1, tick), (2, tick - 1)):
            if hmac.compare_digest(self._make(candidate_tick, action), nonce):
                return age
        return 0
