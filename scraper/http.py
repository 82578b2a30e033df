"""Plain-HTTP plumbing shared by scraping and chatting: the connection pool,
proxies, cookies, deadlines.

One place decides what a request looks like (headers, proxy, cookies), so the
page fetch and the chat requests cannot drift apart — a clearance cookie only
works when every request carries the same User-Agent through the same exit.
Every request goes through :func:`borrow`: one pool of kept-alive connections
per (site, proxy) per event loop, a :class:`Client` with cookies of its own per
call.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from scraper.credentials import Cookie

if TYPE_CHECKING:  # aiohttp costs ~0.3 s to import: only a request loads it
    import asyncio
    import ssl
    from http.cookies import Morsel

    import aiohttp
    from yarl import URL
from scraper.errors import (
    ConfigurationError,
    NetworkError,
    ProtocolError,
    ProviderError,
    ProviderTimeoutError,
    redact_url,
)

__all__ = [
    "DEFAULT_KEEPALIVE_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_USER_AGENT",
    "MAX_PAGE_BYTES",
    "Client",
    "Deadline",
    "Page",
    "PoolConfig",
    "Proxy",
    "ProxyAuth",
    "borrow",
    "check_proxy_reply",
    "close_pools",
    "fetch_page",
    "jar_cookies",
    "origin_of",
    "read_at_most",
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
        if scheme not in ("http", "https", "socks4", "socks4a", "socks5", "socks5h"):
            raise ConfigurationError(
                f"proxy scheme {scheme or '(none)'!r} is not supported: use http://, https://, "
                "socks4://, socks4a://, socks5:// or socks5h://host:port"
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


# -- the pool ---------------------------------------------------------------------------
#
# One aiohttp session per (site, proxy, settings) per event loop, kept for the
# life of the loop: consecutive calls and aipkit's two requests ride warm
# connections (a TLS handshake saved is one to three round trips on a real link).
# The session holds no cookies: each call's cookies live in its own Client, so
# one caller's cookies never reach another caller's request.

#: Connections one (site, proxy) may hold open at once (streams in flight plus idle).
DEFAULT_MAX_CONNECTIONS = 100
#: Seconds an idle connection is kept for reuse.
DEFAULT_KEEPALIVE_TIMEOUT = 60.0
MAX_CONNECTIONS_ENV = "PROVIDER_MAX_CONNECTIONS"
KEEPALIVE_TIMEOUT_ENV = "PROVIDER_KEEPALIVE_TIMEOUT"


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """How big a pool may grow and how long its idle connections live.

    ``max_connections`` bounds the connections to one site through one proxy
    (a call waits for a free one, under its timeout); ``0`` lifts the bound.
    ``keepalive_timeout`` closes a connection idle that long; ``0`` closes
    every connection after its request (no reuse).

    >>> PoolConfig.resolve(max_connections=8).max_connections
    8
    """

    max_connections: int = DEFAULT_MAX_CONNECTIONS
    keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT

    @classmethod
    def resolve(
        cls, max_connections: int | None = None, keepalive_timeout: float | None = None
    ) -> PoolConfig:
        """Explicit values first, then ``$PROVIDER_MAX_CONNECTIONS`` /
        ``$PROVIDER_KEEPALIVE_TIMEOUT``, then the defaults."""
        import os

        return _pool_config(
            max_connections,
            keepalive_timeout,
            os.environ.get(MAX_CONNECTIONS_ENV),
            os.environ.get(KEEPALIVE_TIMEOUT_ENV),
        )


@functools.lru_cache(maxsize=64)
def _pool_config(
    limit: int | None, keepalive: float | None, env_limit: str | None, env_keepalive: str | None
) -> PoolConfig:
    # Cached: every call resolves the same few values; a bad one raises every time.
    limit_from = keepalive_from = ""
    if limit is None:
        limit_from = f" (from ${MAX_CONNECTIONS_ENV})" if env_limit else ""
        limit = _env_number(MAX_CONNECTIONS_ENV, env_limit, int, DEFAULT_MAX_CONNECTIONS)
    if keepalive is None:
        keepalive_from = f" (from ${KEEPALIVE_TIMEOUT_ENV})" if env_keepalive else ""
        keepalive = _env_number(
            KEEPALIVE_TIMEOUT_ENV, env_keepalive, float, DEFAULT_KEEPALIVE_TIMEOUT
        )
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ConfigurationError(
            f"max_connections{limit_from} must be a whole number >= 0 (0: no limit), not {limit!r}"
        )
    if (
        isinstance(keepalive, bool)
        or not isinstance(keepalive, int | float)
        or not math.isfinite(keepalive)
        or keepalive < 0
    ):
        raise ConfigurationError(
            f"keepalive_timeout{keepalive_from} must be a number of seconds >= 0 "
            f"(0: no reuse), not {keepalive!r}"
        )
    return PoolConfig(limit, float(keepalive))


def _env_number(name: str, raw: str | None, kind: type[int] | type[float], default: Any) -> Any:
    if raw is None or raw.strip() == "":
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ConfigurationError(
            f"${name}={raw!r} is not a number: unset it or give "
            + ("a whole number of connections" if kind is int else "a number of seconds")
        ) from None


@functools.lru_cache(maxsize=8)
def _ssl_context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    """The system's trust store, or the one ``$SSL_CERT_FILE``/``$SSL_CERT_DIR`` name.

    Made when a pool is, not at import (aiohttp's default context is made when
    aiohttp is imported and misses a variable set later). Always verifying.
    """
    import ssl

    return ssl.create_default_context()  # reads SSL_CERT_FILE / SSL_CERT_DIR itself


class _Pools:
    """One event loop's sessions, closed with that loop."""

    __slots__ = ("closing", "keeper", "sessions")

    def __init__(self) -> None:
        self.sessions: dict[tuple[str, Proxy | None, PoolConfig], aiohttp.ClientSession] = {}
        self.keeper: AsyncGenerator[None, None] | None = None
        self.closing = False

    async def aclose(self) -> None:
        self.closing = True
        sessions, self.sessions = list(self.sessions.values()), {}
        for session in sessions:
            with contextlib.suppress(Exception):
                await session.close()


_POOLS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pools] = weakref.WeakKeyDictionary()


async def _close_with_the_loop(
    loop: asyncio.AbstractEventLoop, pools: _Pools
) -> AsyncGenerator[None, None]:
    # asyncio.run() (and every asyncio.Runner) closes the async generators still
    # alive before it closes the loop: this one's finally closes the pool then,
    # while the loop can still run the close.
    try:
        yield
    finally:
        if _POOLS.get(loop) is pools:
            del _POOLS[loop]  # the sessions refer to the loop: let both go
        await pools.aclose()


def _pools() -> _Pools:
    import asyncio

    loop = asyncio.get_running_loop()
    pools = _POOLS.get(loop)
    if pools is None or pools.closing:
        pools = _POOLS[loop] = _Pools()
        keeper = _close_with_the_loop(loop, pools)
        # Starting it registers it with the loop (its async-generator hooks).
        with contextlib.suppress(StopIteration):
            keeper.asend(None).send(None)
        pools.keeper = keeper
    return pools


async def close_pools() -> None:
    """Close the current event loop's kept-alive connections now.

    ``asyncio.run()`` does this by itself when it ends; call it when you drive
    an event loop by hand and close it without ``loop.shutdown_asyncgens()``.
    """
    import asyncio

    pools = _POOLS.get(asyncio.get_running_loop())
    if pools is not None and pools.keeper is not None:
        await pools.keeper.aclose()


def _session(site: str, proxy: Proxy | None, config: PoolConfig) -> aiohttp.ClientSession:
    pools = _pools()
    key = (site, proxy, config)
    session = pools.sessions.get(key)
    if session is None or session.closed:
        session = pools.sessions[key] = _new_session(proxy, config)
    return session


def _new_session(proxy: Proxy | None, config: PoolConfig) -> aiohttp.ClientSession:
    import os

    import aiohttp

    options: dict[str, Any] = {
        "limit": config.max_connections,
        "limit_per_host": 0,  # one site per pool already: the limit is the site's
        "ssl": _ssl_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")),
    }
    if config.keepalive_timeout > 0:
        options["keepalive_timeout"] = config.keepalive_timeout
    else:
        options["force_close"] = True
    connector: aiohttp.BaseConnector
    if proxy is not None and proxy.is_socks:
        from aiohttp_socks import ProxyConnector, ProxyType

        parts = urlsplit(proxy.url)
        connector = ProxyConnector(
            proxy_type=ProxyType.SOCKS4 if proxy.scheme.startswith("socks4") else ProxyType.SOCKS5,
            host=parts.hostname or "",  # Proxy.parse made sure of both
            port=parts.port or 0,
            username=proxy.auth.login if proxy.auth else None,
            password=proxy.auth.password if proxy.auth else None,
            # The site's name goes to the proxy to resolve, as Chromium does for
            # SOCKS5: a restricted network's own DNS may fail or lie. SOCKS4
            # proper can only carry an address; socks4a carries the name.
            rdns=proxy.scheme != "socks4",
            **options,
        )
    else:
        connector = aiohttp.TCPConnector(**options)
    trace = aiohttp.TraceConfig()
    trace.on_connection_reuseconn.append(_note_reuse)
    session = aiohttp.ClientSession(
        connector=connector,
        # No jar: cookies are the calling Client's and travel in each request's header.
        cookie_jar=aiohttp.DummyCookieJar(),
        # aiohttp turns credentials in the proxy URL into Proxy-Authorization,
        # on the request for http targets and on the CONNECT for https ones.
        proxy=None if proxy is None or proxy.is_socks else proxy.raw,
        timeout=aiohttp.ClientTimeout(total=None),
        auto_decompress=True,
        trust_env=False,
        trace_configs=[trace],
    )
    # One retry policy, Client._send's (any method, reused connections only);
    # aiohttp's own would retry a GET a second time. aiohttp's test client does the same.
    if hasattr(session, "_retry_connection"):
        session._retry_connection = False
    return session


async def _note_reuse(_session: object, context: Any, _params: object) -> None:
    attempt = context.trace_request_ctx
    if isinstance(attempt, _Attempt):
        attempt.reused = True


class _Attempt:
    __slots__ = ("reused",)

    def __init__(self) -> None:
        self.reused = False


class Client:
    """One call's requests, on the pool's kept-alive connections to one site.

    The connections are shared with every other call to the same site through
    the same proxy in this event loop; the cookies are this call's alone: the
    ones it was given, plus what the site sets during the call, sent only where
    their domain and path say (never to another host).

    >>> async def page(site: str) -> int:
    ...     async with borrow(site, None).get(site + "/") as resp:
    ...         return resp.status
    """

    __slots__ = ("_jar", "_session", "proxy", "site")

    def __init__(
        self,
        session: aiohttp.ClientSession,
        site: str,
        proxy: Proxy | None,
        cookies: Iterable[Cookie] = (),
    ) -> None:
        self._session = session
        self.site = site
        self.proxy = proxy
        self._jar: aiohttp.CookieJar | None = None
        cookies = tuple(cookies)
        if cookies:  # the common case (no bot protection) parses nothing
            load_cookies(self._cookie_jar(), cookies, site)

    def _cookie_jar(self) -> aiohttp.CookieJar:
        if self._jar is None:
            import aiohttp

            # unsafe=True lets the jar hold cookies for IP-address hosts (127.0.0.1 sites).
            self._jar = aiohttp.CookieJar(unsafe=True)
        return self._jar

    def cookies(self) -> tuple[Cookie, ...]:
        """The cookies this call holds for its site (given, or set by the site since)."""
        return jar_cookies(self._jar, self.site) if self._jar is not None else ()

    def get(self, url: str, **kwargs: Any) -> contextlib.AbstractAsyncContextManager[Any]:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> contextlib.AbstractAsyncContextManager[Any]:
        return self.request("POST", url, **kwargs)

    @contextlib.asynccontextmanager
    async def request(
        self, method: str, url: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """``session.request`` with this call's cookies; a kept-alive connection
        the server had closed before answering is transparent (see ``_send``)."""
        from yarl import URL

        target = URL(url)
        if self._jar is not None:
            cookie = self._jar.filter_cookies(target)
            if cookie:
                headers = {
                    **(headers or {}),
                    "Cookie": "; ".join(f"{m.key}={m.coded_value}" for m in cookie.values()),
                }
        resp = await self._send(method, target, headers, kwargs)
        async with resp:
            if resp.cookies:
                self._cookie_jar().update_cookies(resp.cookies, resp.url)
            yield resp

    async def _send(
        self,
        method: str,
        target: URL,
        headers: dict[str, str] | None,
        kwargs: dict[str, Any],
    ) -> aiohttp.ClientResponse:
        """Send on a pooled connection. A reused one the server had closed (the
        keep-alive race: it gave up on the connection just as it was reused)
        fails before any answer came back, so sending again is safe; each such
        connection is dropped and the next tried, until the request has been
        tried once on a fresh connection. A failure there is the caller's."""
        import aiohttp

        for _ in range(_MAX_STALE):
            attempt = _Attempt()
            try:
                return await self._session.request(
                    method, target, headers=headers, trace_request_ctx=attempt, **kwargs
                )
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                if not attempt.reused or isinstance(exc, aiohttp.ClientConnectorError):
                    raise
                log.debug(
                    "%s %s: a kept-alive connection was closed by the server (%s); sending again",
                    method,
                    self.site,
                    type(exc).__name__,
                )
        return await self._session.request(method, target, headers=headers, **kwargs)


#: Stale kept-alive connections one request may meet before its last attempt:
#: a server that drops idle connections usually drops them all at once.
_MAX_STALE = 16


def borrow(
    site: str,
    proxy: Proxy | None,
    *,
    cookies: Iterable[Cookie] = (),
    config: PoolConfig | None = None,
) -> Client:
    """A :class:`Client` for one call to ``site`` through ``proxy``, on this
    event loop's pool (made on first use, closed with the loop)."""
    return Client(_session(site, proxy, config or PoolConfig.resolve()), site, proxy, cookies)


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


_REDIRECTS = frozenset({301, 302, 303, 307, 308})


async def fetch_page(
    client: Client,
    url: str,
    *,
    user_agent: str,
    deadline: Deadline,
    max_bytes: int = MAX_PAGE_BYTES,
) -> Page:
    """GET ``url`` under the deadline, reading at most ``max_bytes`` of body.

    Redirects are followed here, hop by hop, so each hop carries exactly the
    cookies the call's jar holds for that hop's URL (none to another host).
    """
    what = f"fetching {redact_url(url)}"
    headers = {
        **request_headers(user_agent),
        "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    }
    with translate_errors(what, client.proxy):
        async with deadline.within(what):
            for _ in range(MAX_REDIRECTS + 1):
                async with client.get(url, headers=headers, allow_redirects=False) as resp:
                    check_proxy_reply(resp.status, client.proxy)
                    location = resp.headers.get("Location")
                    if resp.status in _REDIRECTS and location:
                        url = urljoin(str(resp.url), location)
                        continue
                    return Page(
                        url=str(resp.url),
                        status=resp.status,
                        headers={k.lower(): v for k, v in resp.headers.items()},
                        body=await _read_page(resp, what, max_bytes),
                    )
            raise ProtocolError(
                f"{what}: more than {MAX_REDIRECTS} redirects (a redirect loop?): "
                "check the site URL"
            )


async def _read_page(resp: aiohttp.ClientResponse, what: str, max_bytes: int) -> bytes:
    declared = resp.content_length
    if declared is not None and declared > max_bytes:
        raise ProtocolError(
            f"{what}: the page is {declared:,} bytes, over the {max_bytes:,} byte limit: "
            "this is not a chat page; check the site URL"
        )
    body = await read_at_most(resp, max_bytes)
    if body is None:
        raise ProtocolError(
            f"{what}: the page is over the {max_bytes:,} byte limit: "
            "this is not a chat page; check the site URL"
        )
    return body


async def read_at_most(resp: Any, limit: int) -> bytes | None:
    """The body of ``resp`` (aiohttp's response, or anything with its
    ``content.iter_chunked``), or None as soon as it passes ``limit`` bytes."""
    body = bytearray()
    async for chunk in resp.content.iter_chunked(65536):
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)
