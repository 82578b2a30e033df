"""Plain-HTTP plumbing shared by scraping and chatting: the connection pool,
proxies, cookies, deadlines.

One place decides what a request looks like (headers, proxy, cookies), so the
page fetch and the chat requests cannot drift apart — a clearance cookie only
works when every request carries the same User-Agent through the same exit.
Every request goes through :func:`borrow`: one pool of kept-alive connections
per (site, proxy) per event loop, a :class:`Client` with cookies of its own per
call.

What every request carries (:class:`Deadline`, :class:`Proxy`, the headers) is in
:mod:`scraper.request`; cookie and error translation in :mod:`scraper.http_translate`.
Both are re-exported here.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import math
import weakref
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urljoin, urlsplit

from scraper.credentials import Cookie
from scraper.http_translate import (
    check_proxy_reply,
    cookie_header,
    jar_cookies,
    load_cookies,
    translate_errors,
)
from scraper.request import (
    DEFAULT_USER_AGENT,
    FORM_TYPE,
    Deadline,
    Proxy,
    ProxyAuth,
    encode_form,
    origin_of,
    request_headers,
)

if TYPE_CHECKING:  # aiohttp costs ~0.3 s to import: only a request loads it
    import asyncio
    import ssl

    import aiohttp
    from yarl import URL
from scraper.errors import ConfigurationError, ProtocolError, redact_url

_C = TypeVar("_C", bound="aiohttp.BaseConnector")

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

#: A chat page is tens of kilobytes; past this it is not a page we want.
MAX_PAGE_BYTES = 5 * 1024 * 1024

MAX_REDIRECTS = 5


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
#: Seconds the rest of a body may take to arrive once the answer is complete (real
#: servers end it 0.02-0.3 ms after the last event, a script still working after its
#: last flush tens of milliseconds later); past this the connection is closed.
DEFAULT_DRAIN_TIMEOUT = 2.0
#: Bytes of a body's rest read on top of what the answer took (legacy's trailing JSON
#: repeats the whole answer, so it is never larger than the stream before it).
DRAIN_BYTES = 1 << 20
#: Longest a request waits for a body being drained on its pool to end and hand its
#: connection over, rather than open a new one: a new connection costs a TCP and a
#: TLS handshake (three round trips or more); a body's end is a fraction of one.
DRAIN_WAIT = 0.5
MAX_CONNECTIONS_ENV = "PROVIDER_MAX_CONNECTIONS"
KEEPALIVE_TIMEOUT_ENV = "PROVIDER_KEEPALIVE_TIMEOUT"


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """How big a pool may grow and how long its idle connections live.

    ``max_connections`` bounds the connections to one site through one proxy
    (a call waits for a free one, under its timeout); ``0`` lifts the bound.
    ``keepalive_timeout`` closes a connection idle that long; ``0`` closes
    every connection after its request (no reuse). ``drain_timeout`` bounds
    the background read of a body's rest once the answer is complete (the
    chunked end marker, legacy's trailing JSON) before the connection goes back
    to the pool; a body that does not end within it is closed.

    >>> PoolConfig.resolve(max_connections=8).max_connections
    8
    """

    max_connections: int = DEFAULT_MAX_CONNECTIONS
    keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT

    @classmethod
    def resolve(
        cls,
        max_connections: int | None = None,
        keepalive_timeout: float | None = None,
        drain_timeout: float | None = None,
    ) -> PoolConfig:
        """Explicit values first, then ``$PROVIDER_MAX_CONNECTIONS`` /
        ``$PROVIDER_KEEPALIVE_TIMEOUT``, then the defaults."""
        import os

        environ = os.environ
        return _pool_config(
            max_connections,
            keepalive_timeout,
            environ.get(MAX_CONNECTIONS_ENV),
            environ.get(KEEPALIVE_TIMEOUT_ENV),
            drain_timeout,
        )


@functools.lru_cache(maxsize=64, typed=True)
def _pool_config(
    limit: int | None,
    keepalive: float | None,
    env_limit: str | None,
    env_keepalive: str | None,
    drain: float | None = None,
) -> PoolConfig:
    # Cached (typed: True == 1 must not reuse 1's result); a bad value raises every time.
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
    keepalive = _seconds(keepalive, f"keepalive_timeout{keepalive_from}", "no reuse")
    drain = _seconds(
        DEFAULT_DRAIN_TIMEOUT if drain is None else drain,
        "drain_timeout",
        "close a body not ended with the answer",
    )
    return PoolConfig(limit, keepalive, drain)


def _seconds(value: object, name: str, zero: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ConfigurationError(
            f"{name} must be a number of seconds >= 0 (0: {zero}), not {value!r}"
        )
    return float(value)


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
    """One event loop's sessions, and the bodies being drained on them, closed with that loop."""

    __slots__ = ("closing", "drains", "keeper", "late", "sessions")

    def __init__(self) -> None:
        self.sessions: dict[tuple[str, Proxy | None, PoolConfig], aiohttp.ClientSession] = {}
        self.keeper: AsyncGenerator[None, None] | None = None
        self.closing = False
        # The bodies being drained, by the session whose connection each holds.
        self.drains: dict[aiohttp.ClientSession, set[asyncio.Task[bool]]] = {}
        # Sessions whose last drain ran out of time: a request there does not wait.
        self.late: set[aiohttp.ClientSession] = set()

    async def handover(self, session: aiohttp.ClientSession) -> None:
        """Before a request: if a body is being drained on ``session``, wait (briefly)
        for its end, so the request rides that connection instead of opening one.
        Sequential chats are the case: each starts while the last one's end marker
        is still on its way."""
        drains = self.drains.get(session)
        if not drains or session in self.late:
            return
        import asyncio

        await asyncio.wait(drains, timeout=DRAIN_WAIT, return_when=asyncio.FIRST_COMPLETED)

    def finish(
        self, session: aiohttp.ClientSession, resp: aiohttp.ClientResponse, config: PoolConfig
    ) -> None:
        """The caller is done with ``resp`` and its answer was complete: let the
        connection go back to the pool. A body already ended is released now; the
        rest of one still open (the chunked end marker, legacy's trailing JSON) is
        read in a task of the pool's, so the caller never waits for it."""
        if resp.content.at_eof():
            resp.release()
            return
        if self.closing or config.drain_timeout <= 0 or config.keepalive_timeout <= 0:
            resp.close()
            return
        import asyncio

        limit = DRAIN_BYTES + resp.content.total_bytes
        task = asyncio.get_running_loop().create_task(_drain(resp, limit, config.drain_timeout))
        drains = self.drains.setdefault(session, set())
        drains.add(task)

        def done(task: asyncio.Task[bool]) -> None:
            drains.discard(task)
            if not drains and self.drains.get(session) is drains:
                del self.drains[session]
            if not task.cancelled():
                if task.result():
                    self.late.discard(session)
                else:
                    self.late.add(session)

        task.add_done_callback(done)

    async def aclose(self) -> None:
        import asyncio

        self.closing = True
        drains = [task for tasks in self.drains.values() for task in tasks]
        self.drains = {}
        for task in drains:
            task.cancel()  # each closes its response (and so its connection)
        if drains:
            await asyncio.gather(*drains, return_exceptions=True)
        sessions, self.sessions = list(self.sessions.values()), {}
        for session in sessions:
            with contextlib.suppress(Exception):
                await session.close()


async def _drain(resp: aiohttp.ClientResponse, limit: int, seconds: float) -> bool:
    """Read what is left of ``resp`` (at most ``limit`` bytes, within ``seconds``) and
    discard it; its end puts the connection back in the pool (aiohttp releases it
    at the payload's end). Anything else — too long, too slow, broken, cancelled —
    closes the connection: a body that does not end is not worth a connection.
    True when the body ended in time."""
    import asyncio

    content = resp.content
    try:
        async with asyncio.timeout(seconds):
            while True:
                chunk = await content.readany()
                if not chunk:
                    break
                limit -= len(chunk)
                if limit < 0:
                    log.debug("a body's rest is over its bound: closing its connection")
                    break
    except asyncio.CancelledError:
        resp.close()
        raise
    except Exception as exc:  # a broken or slow rest: the connection is not reusable
        log.debug("a body's rest did not end cleanly (%s): closing", type(exc).__name__)
    if content.at_eof():
        resp.release()
        return True
    resp.close()
    return False


_POOLS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pools] = weakref.WeakKeyDictionary()


async def _close_with_the_loop(
    loop: asyncio.AbstractEventLoop, pools: _Pools
) -> AsyncGenerator[None, None]:
    # asyncio.run() (and every asyncio.Runner) closes the async generators still
    # alive before it closes the loop: this one's finally closes the pool then,
    # while the loop can still run the close.
    global _LAST
    try:
        yield
    finally:
        if _POOLS.get(loop) is pools:
            del _POOLS[loop]  # the sessions refer to the loop: let both go
        if _LAST is not None and _LAST[1] is pools:
            _LAST = None
        await pools.aclose()


#: The last event loop asked for and its pools: a warm call on the same loop skips
#: the weak dictionary (cleared when that loop's pools close).
_LAST: tuple[asyncio.AbstractEventLoop, _Pools] | None = None


def _pools() -> _Pools:
    global _LAST
    import asyncio

    loop = asyncio.get_running_loop()
    last = _LAST
    if last is not None and last[0] is loop and not last[1].closing:
        return last[1]
    pools = _POOLS.get(loop)
    if pools is None or pools.closing:
        pools = _POOLS[loop] = _Pools()
        keeper = _close_with_the_loop(loop, pools)
        # Starting it registers it with the loop (its async-generator hooks).
        with contextlib.suppress(StopIteration):
            keeper.asend(None).send(None)
        pools.keeper = keeper
    _LAST = (loop, pools)
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


def _session(
    site: str, proxy: Proxy | None, config: PoolConfig
) -> tuple[_Pools, aiohttp.ClientSession]:
    pools = _pools()
    key = (site, proxy, config)
    session = pools.sessions.get(key)
    if session is None or session.closed:
        session = pools.sessions[key] = _new_session(proxy, config)
    return pools, session


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
        connector = _noting_reuse(ProxyConnector)(
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
        connector = _noting_reuse(aiohttp.TCPConnector)(**options)
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
    )
    # One retry policy, Client._send's (any method, reused connections only);
    # aiohttp's own would retry a GET a second time. aiohttp's test client does the same.
    if hasattr(session, "_retry_connection"):
        session._retry_connection = False
    return session


#: Whether the connection the current task's last request got had served one before.
_REUSED: contextvars.ContextVar[bool] = contextvars.ContextVar("scraper_http_reused", default=False)


_NOTING: dict[type, type] = {}


def _noting_reuse(base: type[_C]) -> type[_C]:
    """``base`` (aiohttp's or aiohttp-socks's connector), noting in :data:`_REUSED`
    whether the connection a request got is a kept-alive one.

    A request starts out as reused (:meth:`Client._send` sets it); making a new
    connection says otherwise. Only new connections pay for the note: a warm
    request goes through aiohttp's own ``connect`` untouched, and aiohttp's
    tracing (a dozen signals per request, about a quarter of a warm chat's CPU)
    is not needed to tell.
    """
    made = _NOTING.get(base)
    if made is not None:
        return made

    async def _create_connection(self: Any, req: Any, traces: Any, timeout: Any) -> Any:  # noqa: ASYNC109
        _REUSED.set(False)
        return await base._create_connection(self, req, traces, timeout)

    made = _NOTING[base] = type(
        f"NotingReuse{base.__name__}",
        (base,),
        {"_create_connection": _create_connection, "__slots__": ()},
    )
    return made


class Client:
    """One call's requests, on the pool's kept-alive connections to one site.

    The connections are shared with every other call to the same site through
    the same proxy in this event loop; the cookies are this call's alone: the
    ones it was given, plus what the site sets during the call, sent only where
    their domain and path say (never to another host).

    A reply's context ends the moment the caller is done with it: a body left
    unread after a clean exit (the answer was complete) is read to its end by the
    pool in the background, bounded, so its connection is kept; after an error
    or a cancellation the connection is closed.

    >>> async def page(site: str) -> int:
    ...     async with borrow(site, None).get(site + "/") as resp:
    ...         return resp.status
    """

    __slots__ = ("_config", "_given", "_jar", "_pools", "_session", "proxy", "site")

    def __init__(
        self,
        session: aiohttp.ClientSession,
        site: str,
        proxy: Proxy | None,
        cookies: Iterable[Cookie] = (),
        *,
        pools: _Pools | None = None,
        config: PoolConfig | None = None,
    ) -> None:
        self._session = session
        self.site = site
        self.proxy = proxy
        self._pools = pools
        self._config = config or PoolConfig()
        # The given cookies go into a jar of this call's only once one is needed:
        # when the site sets a cookie, or someone asks for the call's cookies. Until
        # then each request carries the header a jar would send, worked out once
        # per (cookies, URL) for every call that shares them (cookie_header).
        self._given = tuple(cookies)
        self._jar: aiohttp.CookieJar | None = None

    def _cookie_jar(self) -> aiohttp.CookieJar:
        if self._jar is None:
            import aiohttp

            # unsafe=True lets the jar hold cookies for IP-address hosts (127.0.0.1 sites).
            self._jar = aiohttp.CookieJar(unsafe=True)
            load_cookies(self._jar, self._given, self.site)
        return self._jar

    def cookies(self) -> tuple[Cookie, ...]:
        """The cookies this call holds for its site (given, or set by the site since)."""
        if self._jar is None and not self._given:
            return ()
        return jar_cookies(self._cookie_jar(), self.site)

    def get(self, url: str, **kwargs: Any) -> _Exchange:
        return _Exchange(self, "GET", url, kwargs)

    def post(self, url: str, **kwargs: Any) -> _Exchange:
        return _Exchange(self, "POST", url, kwargs)

    def request(self, method: str, url: str, **kwargs: Any) -> _Exchange:
        """``session.request`` with this call's cookies; a kept-alive connection
        the server had closed before answering is transparent (see ``_send``)."""
        return _Exchange(self, method, url, kwargs)

    def _finish(self, resp: aiohttp.ClientResponse, clean: bool) -> None:
        if not clean:
            # An error or a cancellation mid-body: what is left is unknown (maybe a
            # long answer): the connection goes, at once and with no task.
            if resp.content.at_eof():
                resp.release()
            else:
                resp.close()
        elif self._pools is not None:
            self._pools.finish(self._session, resp, self._config)
        else:
            resp.release()

    async def _send(
        self,
        method: str,
        target: str | URL,
        headers: dict[str, str] | None,
        kwargs: dict[str, Any],
    ) -> aiohttp.ClientResponse:
        """Send on a pooled connection. A reused one the server had closed (the
        keep-alive race: it gave up on the connection just as it was reused)
        fails before any answer came back, so sending again is safe; each such
        connection is dropped and the next tried, until the request has been
        tried once on a fresh connection. A failure there is the caller's."""
        if self._pools is not None and self._pools.drains:
            await self._pools.handover(self._session)
        cookie = None
        if self._jar is not None:
            from yarl import URL

            target = URL(target)
            morsels = self._jar.filter_cookies(target)
            if morsels:
                cookie = "; ".join(f"{m.key}={m.coded_value}" for m in morsels.values())
        elif self._given:
            cookie = cookie_header(self._given, self.site, str(target))
        form = kwargs.get("data")
        if type(form) is dict:
            # The form encoded here, once for every try, rather than by aiohttp.
            kwargs["data"] = encode_form(form)
            headers = {**(headers or {}), "Content-Type": FORM_TYPE}
            if cookie:
                headers["Cookie"] = cookie
        elif cookie:
            headers = {**(headers or {}), "Cookie": cookie}
        for _ in range(_MAX_STALE):
            _REUSED.set(True)  # until the connector makes a new connection for it
            try:
                resp = await self._session.request(method, target, headers=headers, **kwargs)
                break
            except _stale_errors() as exc:  # evaluated only when something was raised
                import aiohttp

                if not _REUSED.get() or isinstance(exc, aiohttp.ClientConnectorError):
                    raise
                log.debug(
                    "%s %s: a kept-alive connection was closed by the server (%s); sending again",
                    method,
                    self.site,
                    type(exc).__name__,
                )
        else:
            resp = await self._session.request(method, target, headers=headers, **kwargs)
        # The header first: resp.cookies makes a SimpleCookie even when there is none.
        if "Set-Cookie" in resp.headers and resp.cookies:
            self._cookie_jar().update_cookies(resp.cookies, resp.url)
        return resp


def _stale_errors() -> tuple[type[Exception], ...]:
    """What a kept-alive connection the server had closed raises (aiohttp, imported by then)."""
    import aiohttp

    return (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)


class _Exchange:
    """One request's ``async with``: a plain class, not a generator-based context
    manager, since every chat enters one or two of them."""

    __slots__ = ("_client", "_kwargs", "_method", "_resp", "_url")

    def __init__(self, client: Client, method: str, url: str, kwargs: dict[str, Any]) -> None:
        self._client = client
        self._method = method
        self._url = url
        self._kwargs = kwargs
        self._resp: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> aiohttp.ClientResponse:
        kwargs = self._kwargs
        headers = kwargs.pop("headers", None)
        self._resp = await self._client._send(self._method, self._url, headers, kwargs)
        return self._resp

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        resp, self._resp = self._resp, None
        if resp is not None:
            self._client._finish(resp, exc_type is None)


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
    config = config or PoolConfig.resolve()
    pools, session = _session(site, proxy, config)
    return Client(session, site, proxy, cookies, pools=pools, config=config)


@dataclass(frozen=True, slots=True)
class Page:
    """A fetched page: what the block verdict and the page parser need."""

    url: str  # after redirects
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


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

    Redirects within the site are followed here, hop by hop, so each hop carries
    exactly the cookies the call's jar holds for that hop's URL. A redirect to
    another origin is a :class:`ProtocolError` naming it: nothing (no cookie, no
    later chat message) goes to a host the caller did not name.
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
                        if not _same_origin(url, client.site):
                            raise ProtocolError(
                                f"{what}: the site redirects to another host "
                                f"({redact_url(url)}); if that is the site, give its URL instead"
                            )
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


def _same_origin(url: str, site: str) -> bool:
    try:
        return origin_of(url) == origin_of(site)
    except ConfigurationError:  # not even http(s): certainly not the site
        return False


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
    content = resp.content
    readany = getattr(content, "readany", None)
    if readany is None:  # the browser transport's body
        body = bytearray()
        async for chunk in content.iter_chunked(65536):
            body += chunk
            if len(body) > limit:
                return None
        return bytes(body)
    # aiohttp's: what has arrived, read by plain awaits (no async generator); what
    # one read returns is already in memory, bounded by aiohttp's flow control.
    first: bytes = await readany()
    if len(first) > limit:
        return None
    if not first:
        return first
    chunk = await readany()
    if not chunk:
        return first  # a short reply: one read, no copy
    buffer = bytearray(first)
    while chunk:
        buffer += chunk
        if len(buffer) > limit:
            return None
        chunk = await readany()
    return bytes(buffer)
