"""Every error the project raises, in one tree under :class:`ProviderError`.

The tree lives here, in the lowest layer, because both the scraper (page,
block verdict, browser) and the provider (protocols, store, input checks)
raise from it; ``provider.errors`` re-exports it as the public home.

Rules every class follows:

* the message says what happened and what to do next;
* the message carries no secret: no nonce, no cookie value, no proxy
  password (use :func:`redact_url` for anything holding a URL);
* lower-level exceptions (aiohttp, Playwright, OSError) are translated into one
  of these at the boundary and kept as ``__cause__``.

Tree::

    ProviderError
    ├── InvalidInputError          (also ValueError)
    │   ├── ModelNotSupportedError
    │   └── ConfigurationError
    ├── SiteError
    │   ├── NoChatWidgetError
    │   ├── ProtocolError
    │   │   └── BotUnavailableError
    │   └── SessionExpiredError
    ├── AccessError
    │   ├── BlockedError
    │   │   └── AddressBannedError   (also MessageRejectedError)
    │   ├── ChallengeError
    │   └── RateLimitedError
    │       └── QuotaExceededError
    ├── MessageRejectedError
    │   └── RequestRefusedError
    ├── UpstreamError
    │   └── UpstreamBusyError
    ├── NetworkError
    ├── ProviderTimeoutError       (also TimeoutError)
    └── BrowserError
        └── BrowserNotFoundError
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "DETECTED_ADVICE",
    "AccessError",
    "AddressBannedError",
    "BlockedError",
    "BotDetectedError",
    "BotUnavailableError",
    "BrowserError",
    "BrowserNotFoundError",
    "ChallengeError",
    "ConfigurationError",
    "InvalidInputError",
    "MessageRejectedError",
    "ModelNotSupportedError",
    "NetworkError",
    "NoChatWidgetError",
    "ProtocolError",
    "ProviderError",
    "ProviderTimeoutError",
    "QuotaExceededError",
    "RateLimitedError",
    "RequestRefusedError",
    "SessionExpiredError",
    "SiteError",
    "UpstreamBusyError",
    "UpstreamError",
    "redact_url",
]


def redact_url(url: str | None) -> str:
    """``url`` with any password (and query string) replaced, safe for messages and logs.

    >>> redact_url("socks5://bob:hunter2@10.0.0.1:1080")
    'socks5://bob:***@10.0.0.1:1080'
    """
    if not url:
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{hostport}" if ":" in userinfo else f"{user}@{hostport}"
    query = "…" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


class ProviderError(Exception):
    """Base of every error this project raises on purpose.

    Catch this to handle all of them; the subclasses say what went wrong.
    """


class InvalidInputError(ProviderError, ValueError):
    """The caller's arguments are wrong (messages, timeout, cookies, proxy URL…).

    Raised before any network call: fix the argument named in the message.
    """


class ModelNotSupportedError(InvalidInputError):
    """The model is neither one of the provider's models nor an alias of one.

    The message keeps the original client's wording:
    ``Model is not supported: <model> in: <ClassName>``.
    """


class ConfigurationError(InvalidInputError):
    """An environment variable or setting is unusable (cache dir, browser path, proxy URL)."""


class SiteError(ProviderError):
    """The site answered, but not the way a site running the chat plugin answers."""


class NoChatWidgetError(SiteError):
    """The page holds no chat widget of either plugin generation.

    Check the site URL (it must be a page that shows the chat), or the site
    removed or renamed the plugin.
    """


class ProtocolError(SiteError):
    """A reply could not be understood (unexpected status, body or stream shape)."""


class BotUnavailableError(ProtocolError):
    """The page shows a bot the site will not let guests chat with.

    aipkit answers ``Invalid chatbot specified.`` before the answer starts, e.g. for
    a bot in draft status that a shortcode still shows. ``bot_id`` is the bot asked
    for, ``page_bots`` the bots the page offers; pass another one (``bot_id=``).
    A :class:`ProtocolError` for callers that caught that before.
    """

    def __init__(self, message: str, bot_id: int, page_bots: tuple[int, ...] = ()) -> None:
        super().__init__(message)
        self.bot_id = bot_id
        self.page_bots = page_bots


class SessionExpiredError(SiteError):
    """The site rejected the nonce even after one fresh one was fetched.

    The site may be serving a cached page with a stale nonce; retry later or
    run ``python -m provider.refresh --force``.
    """


class AccessError(ProviderError):
    """The site (or the bot protection in front of it) refused access."""


class BlockedError(AccessError):
    """A hard block (Access denied, Cloudflare error 1020, an IP ban).

    A browser does not help: use another network or proxy.
    """


class ChallengeError(AccessError):
    """A bot-protection challenge was met and could not be passed."""


class BotDetectedError(ChallengeError):
    """The site's bot protection refused the automated browser after it ran.

    The browser passed no clearance: the challenge came back, or a block page
    appeared, once headless Chromium had run the challenge. Plain HTTP cannot
    help either. Ways out: a proxy with another address, a ``cf_clearance``
    cookie from your own browser imported with ``python -m provider.refresh
    --import``, or a visible browser (``PROVIDER_HEADFUL=1``).
    """


#: The ways out of :class:`BotDetectedError`, said in its every message.
DETECTED_ADVICE = (
    "use a proxy with another address, import a cf_clearance cookie from your own browser "
    "(python -m provider.refresh --import), or run a visible browser (PROVIDER_HEADFUL=1)"
)


class RateLimitedError(AccessError):
    """Too many requests (HTTP 429). ``retry_after`` holds the seconds to wait, if known."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QuotaExceededError(RateLimitedError):
    """The site's per-guest token or message quota is used up for this period."""


class MessageRejectedError(ProviderError):
    """The site refused this message: banned words, moderation, or a ban on this visitor."""


class RequestRefusedError(MessageRejectedError):
    """The site refused the request before answering, in words that do not say why.

    The plugin's refusal texts are the site's own or translated, and most carry no
    code: where neither the structure nor the words tell a ban from banned words or
    guests not allowed, the message quotes the site's words. Check the chat in a
    browser: the site shows the same words.
    """


class AddressBannedError(BlockedError, MessageRejectedError):
    """The site bans the address this request came from (its banned-IP setting).

    Another address helps: use a proxy (``proxy=``), or another network. Also a
    :class:`MessageRejectedError`, the class this refusal had before.
    """


class UpstreamError(ProviderError):
    """The site's own AI backend failed while answering (``API Error: …``, ``[LIMITED]``)."""


class UpstreamBusyError(UpstreamError):
    """The site's AI backend is rate limited for a moment (the upstream's 429).

    Not the site's guest quota: retry shortly. ``retry_after`` holds the seconds
    the upstream asked to wait (``Please try again in 84ms``), if it said.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NetworkError(ProviderError):
    """The site or the proxy could not be reached, or the connection broke mid-reply."""


class ProviderTimeoutError(ProviderError, TimeoutError):
    """The call did not finish within its ``timeout``.

    Every network and browser wait of a call sits under that one deadline.
    """


class BrowserError(ProviderError):
    """The headless browser failed to start, crashed, or could not finish the page."""


class BrowserNotFoundError(BrowserError):
    """No Chromium was found for Playwright.

    Install one: ``python -m playwright install chromium``, or on Debian/Ubuntu
    ``apt-get install chromium``, or point ``PROVIDER_BROWSER`` at a Chromium binary.
    """
