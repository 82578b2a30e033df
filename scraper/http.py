"""Plain-HTTP plumbing shared by scraping and chatting: sessions, proxies, cookies, deadlines.

One place decides what a request looks like (headers, proxy, cookie jar), so
the page fetch and the chat requests cannot drift apart — a clearance cookie
only works when every request carries the same User-Agent through the same exit.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from scraper.credentials import Cookie

if TYPE_CHECKING:  # aiohttp costs ~0.3 s to import: only a request loads it
    from http.cookies import Morsel

    import aiohttp
from scraper.errors import (
    ConfigurationError,
    NetworkError,
    ProtocolError,
    ProviderError,
    ProviderTimeoutError,
    redact_url,
)

__all__ = [
    "DEFAULT_USER_AGENT",
    "MAX_PAGE_BYTES",
    "Deadline",
    "Page",
    "Proxy",
    "ProxyAuth",
    "check_proxy_reply",
    "fetch_page",
    "jar_cookies",
    "new_session",
    "origin_of",
    "request_headers",
    "translate_errors",
]

log = logging.getLogger(__name__)

#: What the plain-HTTP layer calls itself until a browser hands over its own UA:
#: a current desktop Chrome, never "python-aiohttp" (which bot protection flags).
DEFAULT_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/142.0.0.0 Safari/537.36"
)

#: A chat page is tens of kilobytes; past this it is not a page we want.
MAX_PAGE_BYTES = 5 * 1024 * 1024

MAX_REDIRECTS = 5


class Deadline:
    """One caller's time budget, shared by every wait of a call.

    >>> d = Deadline(120)
    >>> 0 < d.remaining() <= 120
    True
    """

    __slots__ = ("_at", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._at = time.monotonic() + seconds

    def remaining(self, what: str = "the call") -> float:
        left = self._at - time.monotonic()
        if left <= 0:
            raise self.error(what)
        return left

    def error(self, what: str) -> ProviderTimeoutError:
        return ProviderTimeoutError(
            f"{what} did not finish within the timeout of {self.seconds:g} s: "
            "the site or proxy is slow or stalled; retry, or pass a larger timeout"
        )

    @contextlib.asynccontextmanager
    async def within(self, what: str) -> AsyncIterator[None]:
        """Run the block under what is left of the budget; raise ProviderTimeoutError past it."""
        import asyncio

        left = self.remaining(what)
        try:
            async with asyncio.timeout(left):
                yield
        except TimeoutError as exc:
            if isinstance(exc, ProviderError):
                raise
            raise self.error(what) from None


@dataclass(frozen=True, slots=True)
class ProxyAuth:
    """A proxy's user name and password (the password never goes into messages or logs)."""

    login: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Proxy:
    """A parsed proxy URL: http(s) goes through aiohttp, socks through aiohttp-socks."""

    url: str  # without credentials
    scheme: str
    auth: ProxyAuth | None
    raw: str = field(repr=False)  # as given (holds the password: never log it, use redacted)

    @property
    def redacted(self) -> str:
        return redact_url(self.raw)

    @property
    def is_socks(self) -> bool:
        return self.scheme.startswith("socks")

    @classmethod
    def parse(cls, proxy: str | None) -> Proxy | None:
        """``None`` for no proxy; ConfigurationError for one we cannot use."""
        if proxy is None or proxy == "":
            return None
        if not isinstance(proxy, str):
            raise ConfigurationError(f"proxy must be a URL string, not {type(proxy).__name__}")
        try:
            parts = urlsplit(proxy)
            port = parts.port
        except ValueError:
            raise ConfigurationError(
                f"proxy {redact_url(proxy)!r} is not a valid URL: "
                "use scheme://[user:password@]host:port"
            ) from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https", "socks4", "socks5", "socks5h"):
            raise ConfigurationError(
                f"proxy scheme {scheme or '(none)'!r} is not supported: "
                "use http://, https://, socks4:// or socks5://host:port"
            )
        if not parts.hostname or port is None:
            raise ConfigurationError(
                f"proxy {redact_url(proxy)!r} needs a host and a port, e.g. socks5://127.0.0.1:1080"
            )
        auth = None
        if parts.username is not None:
            from urllib.parse import unquote

            auth = ProxyAuth(unquote(parts.username), unquote(parts.password or ""))
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        return cls(url=f"{scheme}://{host}:{port}", scheme=scheme, auth=auth, raw=proxy)


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url`` (lower-cased), the key a site is known by."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"site URL {redact_url(url)!r} must be an absolute http(s) URL")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}[parts.scheme]
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    return f"{parts.scheme}://{host}{port}"


def request_headers(user_agent: str, referer: str | None = None) -> dict[str, str]:
    """The headers every request sends: one browser's, consistently."""
    headers = {
        "User-Agent": user_agent,
        "Accept-Language": "en-US,en;q=0.9",
    }
    if referer:
        headers["Referer"] = referer
    return headers


def new_session(
    proxy: Proxy | None,
    *,
    site: str,
    cookies: Iterable[Cookie] = (),
    connect_timeout: float | None = None,
) -> aiohttp.ClientSession:
    """A session that routes every request through ``proxy`` and sends ``cookies``
    only where their domain and path say (so never to another host)."""
    import aiohttp

    connector: aiohttp.BaseConnector
    if proxy is not None and proxy.is_socks:
        from aiohttp_socks import ProxyConnector

        # python-socks knows no "socks5h" scheme: it is socks5 with rdns (the name
        # resolved at the proxy, as a restricted network needs).
        url = "socks5://" + proxy.raw.split("://", 1)[1] if proxy.scheme == "socks5h" else proxy.raw
        connector = ProxyConnector.from_url(url, rdns=proxy.scheme == "socks5h")
    else:
        connector = aiohttp.TCPConnector(force_close=True)  # the PHP site closes anyway
    # unsafe=True lets the jar hold cookies for IP-address hosts (127.0.0.1 sites).
    jar = aiohttp.CookieJar(unsafe=True)
    load_cookies(jar, cookies, site)
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=jar,
        # aiohttp turns credentials in the proxy URL into Proxy-Authorization,
        # on the request for http targets and on the CONNECT for https ones.
        proxy=None if proxy is None or proxy.is_socks else proxy.raw,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout),
        auto_decompress=True,
        trust_env=False,
    )


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


@dataclass(frozen=True, slots=True)
class Page:
    """A fetched page: what the block verdict and the page parser need."""

    url: str  # after redirects
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


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

    if isinstance(exc, aiohttp.TooManyRedirects):
        return ProtocolError(
            f"{what}: more than {MAX_REDIRECTS} redirects (a redirect loop?): check the site URL"
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
    if isinstance(exc, aiohttp.ClientError | OSError):
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


async def fetch_page(
    session: aiohttp.ClientSession,
    url: str,
    *,
    user_agent: str,
    deadline: Deadline,
    proxy: Proxy | None = None,
    max_bytes: int = MAX_PAGE_BYTES,
) -> Page:
    """GET ``url`` under the deadline, reading at most ``max_bytes`` of body."""
    what = f"fetching {redact_url(url)}"
    with translate_errors(what, proxy):
        async with (
            deadline.within(what),
            session.get(
                url,
                headers={
                    **request_headers(user_agent),
                    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                },
                max_redirects=MAX_REDIRECTS,
            ) as resp,
        ):
            check_proxy_reply(resp.status, proxy)
            declared = resp.content_length
            if declared is not None and declared > max_bytes:
                raise ProtocolError(
                    f"{what}: the page is {declared:,} bytes, over the {max_bytes:,} byte limit: "
                    "this is not a chat page; check the site URL"
                )
            body = bytearray()
            async for chunk in resp.content.iter_chunked(65536):
                body += chunk
                if len(body) > max_bytes:
                    raise ProtocolError(
                        f"{what}: the page is over the {max_bytes:,} byte limit: "
                        "this is not a chat page; check the site URL"
                    )
            return Page(
                url=str(resp.url),
                status=resp.status,
                headers={k.lower(): v for k, v in resp.headers.items()},
                body=bytes(body),
            )
