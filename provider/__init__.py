"""Streaming chat with ChatGPT Free (chatgptfree.ai) and any WordPress site running
the AI Power chat plugin — through proxies, bot protection and stale pages.

>>> from provider import ChatgptFree
>>> class Local(ChatgptFree):
...     url = "http://127.0.0.1:8081"
"""

from provider._browsers import WarmBrowser
from provider._provider import ChatgptFree
from provider.errors import *  # noqa: F403
from provider.errors import __all__ as _errors
from provider.prompt import format_prompt
from provider.store import CredentialStore, Store, store_for
from scraper.credentials import Cookie, Credentials

__all__ = [
    "ChatgptFree",
    "Cookie",
    "CredentialStore",
    "Credentials",
    "Store",
    "WarmBrowser",
    "format_prompt",
    "store_for",
    *_errors,
]
