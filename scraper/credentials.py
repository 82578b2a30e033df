"""The value that flows from the scraper to the provider: what one chat needs.

Frozen and typed (after crawlee's value objects); secrets never appear in
``repr``. :meth:`Credentials.to_dict` / :meth:`Credentials.from_dict` are the
JSON form used by the credential store and by ``--export`` / ``--import``.
:func:`credentials_from` makes them from a page's widget, for plain HTTP and the
browser alike.
"""

from __future__ import annotations

import secrets
import string
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Literal

from scraper.errors import ProtocolError

if TYPE_CHECKING:  # types only: the page parser (bs4) loads when a refresh runs
    from scraper.page import Widget
    from scraper.request import Proxy

Generation = Literal["legacy", "aipkit"]
Source = Literal["http", "browser"]
#: How the chat requests travel: plain HTTP (aiohttp), or inside the browser page
#: that passed the challenge (its fetch: its TLS, cookies, User-Agent, HTTP version).
Transport = Literal["http", "browser"]

#: A WordPress nonce verifies in the tick it was made in and the next one;
#: ticks are 12 h long, so a nonce read from a page lives at least 12 h.
NONCE_MIN_LIFETIME = 12 * 3600.0

#: Cookie names that carry a bot-protection clearance (bound to UA and IP).
CLEARANCE_COOKIES = frozenset({"cf_clearance"})

FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Cookie:
    """One cookie with the attributes a jar needs to send it back correctly."""

    name: str
    value: str = field(repr=False)
    domain: str = ""
    path: str = "/"
    expires: float | None = None  # unix time; None: a session cookie
    secure: bool = False
    http_only: bool = False
    same_site: str | None = None

    def expired(self, now: float | None = None) -> bool:
        return self.expires is not None and self.expires <= (time.time() if now is None else now)


@dataclass(frozen=True, slots=True)
class Credentials:
    """Everything one chat with a site needs, and how long it stays good.

    ``site`` is the origin (``https://chatgptfree.ai``) and ``proxy`` the proxy
    URL it was obtained through (or ``""``): the store keys on both, because a
    clearance cookie is bound to the exit address.
    """

    site: str
    generation: Generation
    nonce: str = field(repr=False)
    post_id: int
    bot_id: int
    ajax_url: str
    page_url: str
    user_agent: str
    source: Source
    obtained_at: float
    expires_at: float
    proxy: str = field(default="", repr=False)
    cookies: tuple[Cookie, ...] = ()
    #: legacy: the ``url`` form field (the plugin's ``data-url``)
    referer_url: str = ""
    #: legacy: ``shortcode`` or ``widget`` (which action and identity to send)
    widget_type: str = "shortcode"
    #: the guest's quota key: aipkit ``session_id`` (uuid4), legacy client id
    session_id: str = field(default="", repr=False)
    #: the transport this site needs through this proxy: ``browser`` once a clearance
    #: from a browser solve was refused over plain HTTP (bound to the browser's TLS
    #: fingerprint or HTTP version); remembered with the rest until they expire
    transport: Transport = "http"
    #: the plugin's release the page showed (its scripts' ``?ver=``); None when it did not say
    release: str | None = None
    #: aipkit: the bot ids the page offered (named when a bot is refused); () unknown
    page_bots: tuple[int, ...] = ()

    def fresh(self, now: float | None = None) -> bool:
        """True while the nonce and every clearance cookie are still good."""
        return (time.time() if now is None else now) < self.expires_at

    def with_nonce(self, nonce: str, now: float | None = None) -> Credentials:
        """A copy holding a newly issued nonce (aipkit's nonce refresh)."""
        now = time.time() if now is None else now
        return replace(self, nonce=nonce, expires_at=expiry(now, self.cookies))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cookies"] = [asdict(c) for c in self.cookies]
        data["page_bots"] = list(self.page_bots)  # JSON's shape, as the store reads it back
        data["format"] = FORMAT_VERSION
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Credentials:
        """Inverse of :meth:`to_dict`; raises :class:`ProtocolError` on a malformed entry."""
        try:
            if data.get("format", FORMAT_VERSION) != FORMAT_VERSION:
                raise ValueError(f"unknown format {data.get('format')!r}")
            # Keys this version does not know (written by a newer one) are ignored,
            # so an older and a newer process can share one store.
            known = {k: v for k, v in data.items() if k in _FIELDS}
            cookies = tuple(
                Cookie(**{k: v for k, v in c.items() if k in _COOKIE_FIELDS})
                for c in known.pop("cookies", [])
            )
            bots = known.pop("page_bots", ())
            if not isinstance(bots, list | tuple) or not all(type(b) is int for b in bots):
                raise ValueError("page_bots is not a list of bot ids")
            creds = cls(**known, cookies=cookies, page_bots=tuple(bots))
            if (
                creds.generation not in ("legacy", "aipkit")
                or creds.source not in ("http", "browser")
                or creds.transport not in ("http", "browser")
            ):
                raise ValueError("unknown generation, source or transport")
            for name in ("nonce", "ajax_url", "site", "user_agent"):
                if not isinstance(getattr(creds, name), str):
                    raise ValueError(f"{name} is not a string")
            if creds.release is not None and not isinstance(creds.release, str):
                raise ValueError("release is not a string")
            return creds
        except (TypeError, ValueError, AttributeError) as exc:
            raise ProtocolError(f"stored credentials are malformed ({exc})") from None


_FIELDS = frozenset(f.name for f in fields(Credentials))
_COOKIE_FIELDS = frozenset(f.name for f in fields(Cookie))


def expiry(obtained_at: float, cookies: tuple[Cookie, ...] | list[Cookie]) -> float:
    """When credentials obtained at ``obtained_at`` stop being good.

    The nonce lives at least :data:`NONCE_MIN_LIFETIME`; a clearance cookie
    lives until its own expiry. The earlier of the two wins.
    """
    end = obtained_at + NONCE_MIN_LIFETIME
    for cookie in cookies:
        if cookie.name in CLEARANCE_COOKIES and cookie.expires is not None:
            end = min(end, cookie.expires)
    return end


_ALNUM = string.ascii_letters + string.digits


def new_session_id(generation: str) -> str:
    """The guest's quota key the plugin's own script would make.

    aipkit: a uuid4 ``session_id``; legacy: ``wpaicg_chat_client_id``, 10 alphanumerics.
    """
    if generation == "aipkit":
        return str(uuid.uuid4())
    return "".join(secrets.choice(_ALNUM) for _ in range(10))


def credentials_from(
    widget: Widget,
    *,
    site: str,
    page_url: str,
    cookies: Sequence[Cookie],
    user_agent: str,
    source: Literal["http", "browser"],
    proxy: Proxy | None,
) -> Credentials:
    now = time.time()
    kept = tuple(cookies)
    return Credentials(
        site=site,
        generation=widget.generation,
        nonce=widget.nonce,
        post_id=widget.post_id,
        bot_id=widget.bot_id,
        ajax_url=widget.ajax_url,
        page_url=page_url,
        user_agent=user_agent,
        source=source,
        obtained_at=now,
        expires_at=expiry(now, kept),
        proxy=proxy.redacted if proxy else "",
        cookies=kept,
        referer_url=widget.referer_url,
        widget_type=widget.widget_type,
        session_id=new_session_id(widget.generation),
        release=widget.release,
        page_bots=widget.page_bots,
    )
