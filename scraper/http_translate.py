"""Between aiohttp and the project: cookies both ways, and aiohttp's errors as ours,
with no secret in the text.

Re-exported by :mod:`scraper.http`, which uses them for every request.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from scraper.credentials import Cookie
from scraper.request import Proxy

if TYPE_CHECKING:  # aiohttp costs ~0.3 s to import: only a request loads it
    from http.cookies import Morsel

    import aiohttp
from scraper.errors import NetworkError, ProviderError, ProviderTimeoutError

__all__ = ["check_proxy_reply", "cookie_header", "jar_cookies", "load_cookies", "translate_errors"]


def load_cookies(jar: aiohttp.abc.AbstractCookieJar, cookies: Iterable[Cookie], site: str) -> None:
    cookies = tuple(cookies)
    if not cookies:
        return  # the common case for sites without bot protection: no parsing at all
    from email.utils import formatdate
    from http.cookies import Morsel

    from yarl import URL

    now = time.time()
    site_url = URL(site)
    for cookie in cookies:
        if cookie.expired(now):
            continue
        morsel: Morsel[str] = Morsel()
        morsel.set(cookie.name, cookie.value, cookie.value)
        if cookie.domain:
            morsel["domain"] = cookie.domain
        morsel["path"] = cookie.path or "/"
        if cookie.expires is not None:
            morsel["expires"] = formatdate(cookie.expires, usegmt=True)
        if cookie.secure:
            morsel["secure"] = True
        if cookie.http_only:
            morsel["httponly"] = True
        jar.update_cookies({cookie.name: morsel}, response_url=site_url)


#: id(cookies) → (cookies, {url: (Cookie header, time it holds until)}): the tuple is
#: kept with its entry, so its id names it for as long as the entry lives.
_HEADERS: dict[int, tuple[tuple[Cookie, ...], dict[str, tuple[str, float]]]] = {}
_MAX_HEADERS = 64
_MAX_URLS = 16


def cookie_header(cookies: tuple[Cookie, ...], site: str, url: str) -> str:
    """The ``Cookie`` header a jar holding ``cookies`` (given for ``site``) sends to ``url``.

    Worked out by such a jar (domain, path, ``Secure`` and expiry as it decides) once
    per (cookies, URL), and kept until the first of the cookies expires: every call
    with the same stored credentials shares the same tuple of cookies, so a warm
    chat builds no jar and parses no cookie.
    """
    now = time.time()
    entry = _HEADERS.get(id(cookies))
    if entry is None or entry[0] is not cookies:
        if len(_HEADERS) >= _MAX_HEADERS:
            _HEADERS.clear()
        entry = _HEADERS[id(cookies)] = (cookies, {})
    by_url = entry[1]
    found = by_url.get(url)
    if found is not None and now < found[1]:
        return found[0]
    import aiohttp
    from yarl import URL

    jar = aiohttp.CookieJar(unsafe=True)  # unsafe: IP-address hosts (127.0.0.1 sites) too
    load_cookies(jar, cookies, site)
    header = "; ".join(f"{m.key}={m.coded_value}" for m in jar.filter_cookies(URL(url)).values())
    until = min(
        (c.expires for c in cookies if c.expires is not None and c.expires > now), default=math.inf
    )
    if len(by_url) >= _MAX_URLS:
        by_url.clear()
    by_url[url] = (header, until)
    return header


def jar_cookies(jar: aiohttp.abc.AbstractCookieJar, site: str) -> tuple[Cookie, ...]:
    """The cookies in ``jar`` that belong to ``site``'s host, with their attributes."""
    host = (urlsplit(site).hostname or "").lower()
    now = time.time()
    found: dict[tuple[str, str, str], Cookie] = {}
    for morsel in jar:
        domain = (morsel["domain"] or host).lstrip(".").lower()
        if not (host == domain or host.endswith("." + domain)):
            continue
        cookie = Cookie(
            name=morsel.key,
            value=morsel.value,
            domain=morsel["domain"] or host,
            path=morsel["path"] or "/",
            expires=_morsel_expiry(morsel, now),
            secure=bool(morsel["secure"]),
            http_only=bool(morsel["httponly"]),
            same_site=morsel["samesite"] or None,
        )
        found[(cookie.name, cookie.domain, cookie.path)] = cookie
    return tuple(found.values())


def _morsel_expiry(morsel: Morsel[str], now: float) -> float | None:
    from email.utils import parsedate_to_datetime

    max_age = morsel["max-age"]
    if max_age:
        with contextlib.suppress(ValueError):
            return now + int(max_age)
    expires = morsel["expires"]
    if expires:
        with contextlib.suppress(TypeError, ValueError, IndexError):
            return parsedate_to_datetime(expires).timestamp()
    return None


def translate_errors(what: str, proxy: Proxy | None) -> _Translating:
    """Turn aiohttp's errors into the project's, with no proxy password in the text."""
    return _Translating(what, proxy)


class _Translating:
    """:func:`translate_errors`' context: a plain class, not a generator-based context
    manager, since every chat enters one."""

    __slots__ = ("proxy", "what")

    def __init__(self, what: str, proxy: Proxy | None) -> None:
        self.what = what
        self.proxy = proxy

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, _tb: object
    ) -> None:
        # Ours, and what is not an error (cancellation, an early close): as they are.
        if exc is None or isinstance(exc, ProviderError) or not isinstance(exc, Exception):
            return
        mapped = _translated(exc, self.what, self.proxy)
        if mapped is not None:
            raise mapped from None


def _translated(exc: Exception, what: str, proxy: Proxy | None) -> ProviderError | None:
    import aiohttp

    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        host = exc.host
        return NetworkError(
            f"{what}: the TLS certificate of {host} did not verify "
            f"({_scrub(str(exc.certificate_error), proxy)}). If your network inspects TLS, "
            "point SSL_CERT_FILE at a CA bundle that holds its certificate authority; "
            "verification is never turned off"
        )
    if isinstance(exc, aiohttp.ClientProxyConnectionError | aiohttp.ClientHttpProxyError):
        return NetworkError(
            f"{what}: {_the_proxy(proxy)} failed ({type(exc).__name__}): "
            "check the proxy address and credentials"
        )
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return ProviderTimeoutError(
            f"{what}: the server sent nothing within the timeout; retry or raise the timeout"
        )
    # EOFError: a SOCKS proxy that hangs up mid-handshake (its target refused it)
    # surfaces from python-socks as asyncio.IncompleteReadError, an EOFError.
    if isinstance(exc, aiohttp.ClientError | OSError | EOFError):
        via = f" through proxy {proxy.redacted}" if proxy else ""
        return NetworkError(
            f"{what}{via} failed: {type(exc).__name__}: {_scrub(str(exc), proxy)}. "
            "Check the network, the site URL and the proxy"
        )
    # python-socks raises its own errors (ProxyError, ProxyConnectionError…).
    if type(exc).__module__.startswith(("python_socks", "aiohttp_socks")):
        return NetworkError(
            f"{what}: {_the_proxy(proxy)} failed "
            f"({type(exc).__name__}: {_scrub(str(exc), proxy)}): "
            "check the proxy address and credentials"
        )
    return None


def check_proxy_reply(status: int, proxy: Proxy | None) -> None:
    """A 407 comes from the proxy, not the site: say so."""
    if status == 407:
        raise NetworkError(
            f"{_the_proxy(proxy)} refused the request (HTTP 407 Proxy Authentication Required): "
            "check the proxy user name and password"
        )


def _the_proxy(proxy: Proxy | None) -> str:
    return f"the proxy {proxy.redacted}" if proxy else "the proxy"


def _scrub(text: str, proxy: Proxy | None) -> str:
    if proxy is not None:
        text = text.replace(proxy.raw, proxy.redacted)
        if proxy.auth is not None and proxy.auth.password:
            text = text.replace(proxy.auth.password, "***")
    return text
