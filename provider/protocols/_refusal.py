"""What a refusal from the site is: decided from the plugin's structure, words last.

The site's operator can change the texts of bans, banned words and the quota, and
the plugin is translated, so its words are the weakest evidence. What the plugin's
own code does say, in both generations (2.4.71's stream handler and processors;
1.8's chat handler):

- aipkit: an ``event: error`` **before** ``message_start`` refuses the request (guests,
  quota with its ``quota_notice`` object, banned words, a banned address, moderation,
  a bot not available); one **after** it is the site's AI backend failing, with the
  ``API Error:`` / ``Connection Error:`` prefixes the plugin itself writes.
- aipkit's cache step answers JSON with a ``code``.
- legacy: the flags ``tokenLimitReached``, ``ipBanned``, ``messageFlagged``, ``modflag``;
  an upstream failure comes as word events (see :mod:`provider.protocols.legacy`).

Where the structure leaves several readings, the plugin's default English words
pick one; where they do not, the error quotes the site's words and says only that
the site refused (:class:`RequestRefusedError`), never a guess at a wrong class.
A refusal whose words name nothing may be a translated bad-nonce text, so it is
raised as :class:`MaybeNonce`: the provider refreshes once and, refused again,
raises the refusal it carries.

The functions here read one event's payload and return an error: the stream
loops call them, only on an error event.
"""

from __future__ import annotations

import re
from typing import Any

from provider.protocols._common import NonceRejected
from scraper.credentials import Credentials
from scraper.errors import (
    AccessError,
    AddressBannedError,
    BlockedError,
    BotUnavailableError,
    InvalidInputError,
    MessageRejectedError,
    ProtocolError,
    ProviderError,
    QuotaExceededError,
    RequestRefusedError,
    UpstreamBusyError,
    UpstreamError,
)

#: Error texts that mean "get a fresh nonce", as the plugin's own page script reads them.
NONCE_HINTS = ("security check", "nonce", "session has expired")
#: The prefixes the plugin's stream processor puts on its backend's failures.
BACKEND_PREFIXES = ("api error", "connection error")
#: The default English refusals (and common custom wordings), used only to name a
#: refusal the structure already showed to be one. Each list: substrings, lower case.
ADDRESS_WORDS = ("ip address", "your ip", "ip-adresse", "adresse ip", "not allowed to access")
MESSAGE_WORDS = ("prohibited", "banned word", "flagged", "moderation", "inappropriate")
GUEST_WORDS = ("disabled for guests", "guests are not allowed", "log in to chat")
BOT_WORDS = ("invalid chatbot",)
QUOTA_WORDS = ("quota", "token limit")
#: An upstream's own rate-limit message (OpenAI, Anthropic, Google say it so).
RATE_LIMIT_WORDS = ("rate limit", "rate_limit", "too many requests", "resource_exhausted")
_TRY_AGAIN = re.compile(r"try again in ([0-9]+(?:\.[0-9]+)?)\s*(ms|s)\b", re.I)
#: A quoted site text is cut here (the site's own words, never a secret of ours).
SHOWN = 300


class MaybeNonce(NonceRejected):
    """Internal signal: a refusal before the answer whose words name no reason, which a
    translated bad-nonce text would also be. The provider refreshes the nonce once;
    refused again, it raises :attr:`final`."""

    def __init__(self, message: str, final: ProviderError) -> None:
        super().__init__(message)
        self.final = final


def quoted(text: str) -> str:
    """The site's words for a message: one line, at most :data:`SHOWN` characters."""
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= SHOWN else flat[: SHOWN - 1] + "…")


def _has(low: str, words: tuple[str, ...]) -> bool:
    return any(word in low for word in words)


def backend_failure(text: str) -> UpstreamError:
    """The site's AI backend failed: a rate limit (retry shortly) or another failure."""
    low = text.lower()
    if _has(low, RATE_LIMIT_WORDS):
        wait = _TRY_AGAIN.search(text)
        retry_after = None
        if wait is not None:
            retry_after = float(wait.group(1)) / (1000 if wait.group(2).lower() == "ms" else 1)
        return UpstreamBusyError(
            f"the site's AI backend is rate limited for a moment: {quoted(text)}; "
            "retry shortly (this is not the site's guest quota)",
            retry_after=retry_after,
        )
    return UpstreamError(
        f"the site's AI backend failed: {quoted(text)}; retry later "
        "(the site's operator has to fix this if it persists)"
    )


def address_banned(text: str) -> AddressBannedError:
    return AddressBannedError(
        f"the site bans the address this request came from: {quoted(text)}; "
        "chat through a proxy (proxy=...) or from another network"
    )


def message_rejected(text: str) -> MessageRejectedError:
    return MessageRejectedError(
        f"the site refused this message: {quoted(text)}; rephrase it (the site's banned "
        "words or moderation)"
    )


def quota_used(text: str) -> QuotaExceededError:
    return QuotaExceededError(
        f"the site's guest quota is used up: {quoted(text)}; wait for the next period "
        "(or chat from another session)"
    )


def request_refused(text: str) -> RequestRefusedError:
    return RequestRefusedError(
        f"the site refused this request: {quoted(text)} (its own words, which name no "
        "reason this library knows); check the chat on the site in a browser"
    )


def bot_unavailable(text: str, creds: Credentials | None) -> BotUnavailableError:
    bot = creds.bot_id if creds is not None else 0
    offered = tuple(b for b in (creds.page_bots if creds is not None else ()) if b != bot)
    others = (
        f"the page also offers bot {', '.join(map(str, offered))}: pass one of them as bot_id"
        if offered
        else "the page offers no other bot: use a page of the site with a published bot"
    )
    return BotUnavailableError(
        f"the site does not let guests chat with bot {bot} ({quoted(text)}: a bot that is "
        f"not published, or not for guests); {others}",
        bot_id=bot,
        page_bots=creds.page_bots if creds is not None else (),
    )


def aipkit_error(data: Any, *, started: bool, creds: Credentials | None = None) -> ProviderError:
    """The error for an aipkit ``event: error``; ``started``: ``message_start`` came first.

    ``data`` is the event's JSON (``{"error": …, "quota_notice": {…}}``) or its raw text.
    """
    obj = data if isinstance(data, dict) else {}
    text = str(obj.get("error") or ("" if isinstance(data, dict) else data) or "").strip()
    low = text.lower()
    if started:
        # After message_start the request was accepted: the backend failed (the
        # plugin's access checks all run before it). Only a nonce refusal without
        # the backend's prefixes stays one, as the plugin's own page script reads it.
        if not low.startswith(BACKEND_PREFIXES) and _has(low, NONCE_HINTS):
            return NonceRejected("the site rejected the nonce (it expired or the page was cached)")
        return backend_failure(text)
    notice = obj.get("quota_notice")
    if notice:
        # Only the quota refusal carries it (2.4.71's token check).
        words = notice.get("message") if isinstance(notice, dict) else notice
        return quota_used(str(words or text))
    if _has(low, NONCE_HINTS):
        return NonceRejected("the site rejected the nonce (it expired or the page was cached)")
    if low.startswith(BACKEND_PREFIXES):
        return backend_failure(text)  # an older release failing before message_start
    if _has(low, BOT_WORDS):
        return bot_unavailable(text, creds)
    if _has(low, GUEST_WORDS):
        return AccessError(
            f"the site allows no guest chats on this bot: {quoted(text)}; "
            "chat with another bot or site"
        )
    if "not permitted to access the chatbot" in low:
        return BlockedError(f"the site refuses requests from this origin: {quoted(text)}")
    if _has(low, ADDRESS_WORDS):
        return address_banned(text)
    if _has(low, MESSAGE_WORDS):
        return message_rejected(text)
    if _has(low, QUOTA_WORDS):
        return quota_used(text)
    if "cannot be empty" in low:
        return InvalidInputError("the site received an empty message: send some text")
    if _has(low, ("cache", "conversation id", "session id")):
        return ProtocolError(
            f"the site refused the request: {quoted(text)}; the plugin may have changed"
        )
    return MaybeNonce(
        f"the site refused the request before answering ({quoted(text)}); it may be a "
        "bad nonce in the site's language",
        final=request_refused(text),
    )


#: The cache step's codes (``aipkit_cache_sse_message``), by what they mean.
CACHE_NONCE = "nonce_failure_cache_sse"


def aipkit_cache_error(code: object, text: str, status: int) -> ProviderError:
    """The error for the cache step's ``{"success":false,"data":{"message","code"}}``."""
    if code == CACHE_NONCE:
        return NonceRejected("the site rejected the nonce (it expired or the page was cached)")
    if code == "empty_data_to_cache":
        return InvalidInputError("the site received an empty message: send some text")
    if code in ("cors_denied", "embed_not_available"):
        return BlockedError(
            f"the site refuses chat requests from this origin (code {code}): {quoted(text)}; "
            "the Origin sent must be the site's own"
        )
    if code in ("invalid_form_resume_session", "missing_form_resume_user_message"):
        return ProtocolError(
            f"the site expected a form to be resumed (code {code}): {quoted(text)}; "
            "this library sends plain messages: the plugin may have changed"
        )
    if code is None and _has(text.lower(), NONCE_HINTS):
        return NonceRejected("the site rejected the nonce (it expired or the page was cached)")
    return ProtocolError(
        f"caching the message failed (HTTP {status}, code {code!r}"
        f"{', ' + quoted(text) if text else ''}): the plugin may have changed"
    )


def legacy_error(obj: dict[str, Any]) -> ProviderError:
    """The error for one of the legacy plugin's error objects; its flags decide first."""
    msg = str(obj.get("msg") or "").strip()
    if obj.get("tokenLimitReached"):
        return quota_used(msg)
    if obj.get("ipBanned"):
        return address_banned(msg)
    if obj.get("messageFlagged") or obj.get("modflag"):
        return message_rejected(msg)
    low = msg.lower()
    if msg.startswith(LEGACY_NONCE_FAILURES):
        return NonceRejected("the site rejected the nonce (it expired or the page was cached)")
    if msg.startswith("It appears that nothing was inputted"):
        return InvalidInputError("the site received an empty message: send some text")
    # No flag (a reply that is not streamed drops them): the default words, last.
    if _has(low, ADDRESS_WORDS):
        return address_banned(msg)
    if _has(low, MESSAGE_WORDS) or "banned" in low:
        return message_rejected(msg)
    if _has(low, QUOTA_WORDS):
        return quota_used(msg)
    if _has(low, RATE_LIMIT_WORDS):
        return backend_failure(msg)
    # Unknown words: a translated "Nonce verification failed" reads so too, and so
    # does an upstream failure of a site that does not stream. Refresh once to tell.
    return MaybeNonce(
        f"the site refused the message ({quoted(msg)}); it may be a bad nonce in the "
        "site's language",
        final=UpstreamError(
            f"the site reported an error: {quoted(msg)}; retry later, or check the chat "
            "on the site in a browser"
        ),
    )


#: Every wording of "bad nonce" the legacy plugin has used (1.8, 1.7, the oldest).
LEGACY_NONCE_FAILURES = ("Nonce verification failed", "Invalid nonce", "Security check")
