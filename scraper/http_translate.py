"""Between aiohttp and the project: cookies both ways, and aiohttp's errors as ours,
with no secret in the text.

Re-exported by :mod:`scraper.http`, which uses them for every request.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from scraper.credentials import Cookie
from scraper.request import Proxy

if TYPE_CHECKING:  # aiohttp costs ~0.3 s to import: only a request loads it
    from http.cookies import Morsel

    import aiohttp
from scraper.errors import NetworkError, ProviderError, ProviderTimeoutError

__all__ = ["check_proxy_reply", "jar_cookies", "load_cookies", "translate_errors"]


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


@contextlib.contextmanager
def translate_errors(what: str, proxy: Proxy | None) -> Iterator[None]:
    """Turn aiohttp's errors into the project's, with no proxy password in the text."""
    try:
        yield
    except ProviderError:
        raise
    except Exception as exc:
        mapped = _translated(exc, what, proxy)
        if mapped is None:
            raise
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
