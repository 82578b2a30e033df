"""The two plugin generations' chat protocols, behind one signature.

``chat(session, credentials, prompt, read_timeout=…)`` yields text chunks and
raises the project's errors; :class:`NonceRejected` and :class:`Challenged`
tell the provider to refresh the credentials once and retry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp

from provider.protocols import aipkit, legacy
from provider.protocols._common import ActionUnknown, Challenged, NonceRejected, StaleCredentials
from scraper.credentials import Credentials

__all__ = [
    "ActionUnknown",
    "Challenged",
    "ChatFn",
    "NonceRejected",
    "StaleCredentials",
    "chat_for",
]

ChatFn = Callable[..., AsyncIterator[str]]


def chat_for(
    creds: Credentials,
) -> Callable[[aiohttp.ClientSession, Credentials, str], AsyncIterator[str]] | ChatFn:
    return aipkit.chat if creds.generation == "aipkit" else legacy.chat
