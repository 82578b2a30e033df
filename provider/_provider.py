"""``ChatgptFree``: the public face, the original g4f provider's contract made robust.

One idea despite its length: one chat call end to end (checked input, credentials,
transport, the single retry), the class and the few helpers only it uses.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlsplit

from provider.prompt import build_prompt
from provider.protocols import (
    ActionUnknown,
    Challenged,
    NonceRejected,
    StaleCredentials,
    aipkit,
    legacy,
)
from provider.protocols._refusal import MaybeNonce
from provider.store import Store, store_for
from provider.store.base import ENV_STORE
from provider.store.files import ENV_CACHE_DIR
from scraper.credentials import Cookie, Credentials
from scraper.errors import (
    ChallengeError,
    InvalidInputError,
    ModelNotSupportedError,
    ProtocolError,
    ProviderError,
    SessionExpiredError,
)
from scraper.http import (
    KEEPALIVE_TIMEOUT_ENV,
    MAX_CONNECTIONS_ENV,
    Deadline,
    PoolConfig,
    Proxy,
    borrow,
    origin_of,
    translate_errors,
)
from scraper.proxy_env import (
    PROXY_VARIABLES,
    ProxyEnv,
    ProxySource,
    describe_proxy,
    environ_snapshot,
    proxy_report,
    resolve_proxy,
)

if TYPE_CHECKING:
    from scraper.browser import LivePage
    from scraper.obtain import BrowserMode
else:  # scraper.obtain (BeautifulSoup on lxml) loads with the first refresh, not on import
    BrowserMode = Literal["auto", "never", "always"]

#: How a chat travels: ``http`` (aiohttp), ``browser`` (in the page that passed the
#: challenge), or ``auto``: plain HTTP until a clearance fresh from a browser is
#: refused over it, then the browser — remembered with the credentials.
TransportMode = Literal["auto", "http", "browser"]
TRANSPORTS: tuple[TransportMode, ...] = ("auto", "http", "browser")

__all__ = ["ChatgptFree", "Target"]

log = logging.getLogger(__name__)

_COOKIE_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


@dataclass(frozen=True, slots=True)
class Target:
    """Where one call goes: the site, the pages that may hold the widget, the proxy.

    ``proxy`` is the proxy in effect (the caller's, else the environment's, see
    :mod:`scraper.proxy_env`): every request of the call, plain HTTP and
    browser, goes through it, and the credentials are stored under it.
    """

    site: str
    page_urls: tuple[str, ...]
    proxy: Proxy | None
    proxy_source: ProxySource

    @property
    def proxy_key(self) -> str:
        return self.proxy.raw if self.proxy else ""

    def proxy_report(self) -> dict[str, str | None]:
        """The proxy in effect, password redacted, and where it came from (for reports)."""
        return proxy_report(self.proxy, self.proxy_source)

    def describe_proxy(self) -> str:
        """The proxy in effect and why, in one line for people."""
        return describe_proxy(self.proxy, self.proxy_source)


class ChatgptFree:
    """Streaming chat with chatgptfree.ai — or, in a subclass that sets ``url``,
    any WordPress site running the AI Power chat plugin (either generation).

    >>> async def ask(question: str) -> str:
    ...     chunks = ChatgptFree.create_async_generator(
    ...         "", [{"role": "user", "content": question}]
    ...     )
    ...     return "".join([chunk async for chunk in chunks])

    Class attributes a subclass may set: ``url`` (the site, or the exact page
    holding the chat), ``chat_path`` (the page tried first when ``url`` is a
    bare origin), ``bot_id`` (pick one bot on a page with several),
    ``browser`` (``auto``: only for a challenge; ``never``; ``always``),
    ``transport`` (``auto``, ``http``, ``browser``: see :meth:`create_async_generator`),
    ``cache_dir`` (default ``$PROVIDER_CACHE_DIR`` or the user cache dir),
    ``store`` (a Redis URL shared by a fleet; default ``$PROVIDER_STORE``, else files), and
    the connection pool's ``max_connections`` (default
    ``$PROVIDER_MAX_CONNECTIONS`` or 100) and ``keepalive_timeout`` (seconds,
    default ``$PROVIDER_KEEPALIVE_TIMEOUT`` or 60).
    """

    url: ClassVar[str] = "https://chatgptfree.ai"
    chat_path: ClassVar[str] = "/chat/"
    working: ClassVar[bool] = True
    supports_stream: ClassVar[bool] = True
    supports_message_history: ClassVar[bool] = True
    default_model: ClassVar[str] = "gpt-4o-mini-2024-07-18"
    models: ClassVar[list[str]] = [default_model]
    model_aliases: ClassVar[dict[str, str]] = {"gpt-4o-mini": "gpt-4o-mini-2024-07-18"}
    bot_id: ClassVar[int | None] = None
    browser: ClassVar[BrowserMode] = "auto"
    transport: ClassVar[TransportMode] = "auto"
    cache_dir: ClassVar[str | Path | None] = None
    max_connections: ClassVar[int | None] = None
    keepalive_timeout: ClassVar[float | None] = None
    #: Seconds a body's rest (end marker, trailing JSON) may take once the answer is
    #: complete, read in the background so the connection is kept (default 2).
    drain_timeout: ClassVar[float | None] = None
    #: ``redis://…`` / ``rediss://…``: share credentials with a fleet (default ``$PROVIDER_STORE``).
    store: ClassVar[str | None] = None

    # -- the original contract ---------------------------------------------------------

    @classmethod
    def get_model(cls, model: str | None, **_: Any) -> str:
        """Empty → ``default_model``; an alias → its target; unknown → ModelNotSupportedError."""
        if not model:
            return cls.default_model
        if not isinstance(model, str):
            raise InvalidInputError(f"model must be a string, not {type(model).__name__}")
        if model in cls.model_aliases:
            return cls.model_aliases[model]
        if cls.models and model not in cls.models:
            raise ModelNotSupportedError(f"Model is not supported: {model} in: {cls.__name__}")
        return model

    @classmethod
    async def create_async_generator(
        cls,
        model: str,
        messages: Any,
        proxy: str | None = None,
        timeout: float = 120,  # noqa: ASYNC109 - the original g4f signature
        cookies: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[str]:
        """Yield the answer to ``messages`` in chunks as they stream in.

        ``timeout`` (seconds) bounds getting credentials (page, browser),
        connecting, and every gap between two chunks of the answer; a stalled
        stream raises :class:`ProviderTimeoutError`. ``cookies`` are sent to the
        site's own origin only, over the site's. ``transport=`` (default: the
        class's, ``auto``) is how the chat travels: ``http``, ``browser`` (inside
        the page that passed the challenge, for sites that bind their clearance
        to the browser's TLS), or ``auto`` (switch to the browser when a
        clearance fresh from it is refused over plain HTTP; remembered). Other
        keyword arguments (``stream=``, ``api_key=``…) are accepted and ignored,
        as g4f callers pass them.
        """
        cls.get_model(model)
        prompt = (
            build_prompt(messages, **_prompt_options(kwargs)) if kwargs else build_prompt(messages)
        )
        read_timeout = _check_timeout(timeout)
        caller_cookies = _check_cookies(cookies, cls.url)
        # A keyword in **kwargs, not a parameter: g4f's signature stays as it was.
        mode = cls._transport_mode(kwargs.get("transport"))
        target, store, pool = cls._plan(proxy)
        deadline = Deadline(read_timeout)

        stored = await store.load(target.site, target.proxy_key)
        if mode == "browser" or (
            mode == "auto"
            and stored is not None
            and stored.fresh()
            and stored.transport == "browser"
        ):
            async with contextlib.aclosing(
                cls._chat_in_browser(store, target, prompt, read_timeout, caller_cookies, stored)
            ) as chunks:
                async for chunk in chunks:
                    yield chunk
            return
        creds = (
            stored
            if stored is not None and stored.fresh()
            else await cls._refresh(store, target, deadline, caller_cookies, stale=stored)
        )
        solved_now = creds is not stored and creds.source == "browser"
        retried = False
        while True:
            yielded = False
            protocol = aipkit if creds.generation == "aipkit" else legacy
            try:
                # Inline, not a helper generator, and the protocol's answer read
                # directly (open_answer, not its chat generator): every chunk of an
                # answer passes through each generator layer on its way to the caller.
                with translate_errors(f"chatting with {target.site}", target.proxy):
                    client = borrow(
                        target.site,
                        target.proxy,
                        cookies=_merge(creds.cookies, caller_cookies),
                        config=pool,
                    )
                    answer = await protocol.open_answer(
                        client, creds, prompt, read_timeout=read_timeout
                    )
                    try:
                        async for chunk in answer:
                            yielded = True
                            yield chunk
                    finally:
                        # An answer left early (the caller stopped): its reply is closed now.
                        await answer.aclose()
                return
            except (StaleCredentials, Challenged) as exc:
                if yielded:
                    raise
                if isinstance(exc, Challenged) and solved_now and mode == "auto":
                    # The transport seam: a clearance fresh from the browser is refused
                    # over plain HTTP (bound to the browser's TLS or HTTP version), so
                    # the chat moves into the browser, and the store remembers it.
                    log.info(
                        "%s refuses the browser's clearance over plain HTTP; "
                        "chatting through the browser",
                        target.site,
                    )
                    async with contextlib.aclosing(
                        cls._chat_in_browser(
                            store, target, prompt, read_timeout, caller_cookies, creds
                        )
                    ) as chunks:
                        async for chunk in chunks:
                            yield chunk
                    return
                if retried:
                    raise _final(exc, target.site) from None
                retried = True
                log.info("%s: %s; refreshing the credentials once", target.site, exc)
                # Known bad: drop them (unless someone already replaced them), so a
                # failed refresh does not leave them to the next call.
                store.invalidate(creds, target.proxy_key)
                deadline = Deadline(read_timeout)
                creds = await cls._refresh(
                    store,
                    target,
                    deadline,
                    caller_cookies,
                    stale=creds,
                    nonce_only=isinstance(exc, NonceRejected),
                )
                solved_now = creds.source == "browser"

    @classmethod
    def _transport_mode(cls, transport: object) -> TransportMode:
        mode = cls.transport if transport is None else transport
        if mode not in TRANSPORTS:
            raise InvalidInputError(
                f"transport must be one of {', '.join(TRANSPORTS)}, not {mode!r}"
            )
        if mode == "browser" and cls.browser == "never":
            raise InvalidInputError(
                "transport='browser' needs the browser, which browser='never' forbids"
            )
        return "http" if cls.browser == "never" else mode

    @classmethod
    async def _chat_in_browser(
        cls,
        store: Store,
        target: Target,
        prompt: str,
        read_timeout: float,
        caller_cookies: tuple[Cookie, ...],
        known: Credentials | None,
    ) -> AsyncGenerator[str, None]:
        """The browser transport: the protocol's requests run in the page that passed the
        challenge. Same errors and the same one refresh (a reload of the page) as plain HTTP."""
        deadline = Deadline(read_timeout)
        async with cls._live_page(store, target, deadline, caller_cookies, known) as live:
            retried = False
            while True:
                creds = live.credentials
                protocol = aipkit if creds.generation == "aipkit" else legacy
                yielded = False
                try:
                    # aclosing: leaving early must abort the request in the page now
                    # (the browser stays up for others), not when the GC gets to it.
                    async with contextlib.aclosing(
                        protocol.chat(live.session(), creds, prompt, read_timeout=read_timeout)
                    ) as chunks:
                        async for chunk in chunks:
                            yielded = True
                            yield chunk
                    return
                except (StaleCredentials, Challenged) as exc:
                    if yielded:
                        raise
                    if retried:
                        raise _final(exc, target.site) from None
                    retried = True
                    log.info("%s: %s; reloading the page in the browser once", target.site, exc)
                    fresh = await live.reload(Deadline(read_timeout), creds)
                    await store.save(fresh, target.proxy_key)

    @classmethod
    @contextlib.asynccontextmanager
    async def _live_page(
        cls,
        store: Store,
        target: Target,
        deadline: Deadline,
        caller_cookies: tuple[Cookie, ...],
        known: Credentials | None,
    ) -> AsyncIterator[LivePage]:
        """The (site, proxy)'s browser on its chat page: the warm one, or one opened now
        with the stored clearance and User-Agent (its credentials go to the store)."""
        from provider import _browsers

        async def opener() -> LivePage:
            from scraper.browser import LivePage

            page_url = known.page_url if known is not None else target.page_urls[0]
            live = await LivePage.open(
                target.site,
                page_url,
                proxy=target.proxy,
                deadline=deadline,
                cookies=known.cookies if known is not None else (),
                caller_cookies=caller_cookies,
                user_agent=known.user_agent if known is not None else None,
                bot_id=cls.bot_id,
            )
            await store.save(live.credentials, target.proxy_key)
            return live

        key = (target.site, target.proxy_key)
        async with _browsers.current().page(key, opener, deadline) as live:
            if not live.credentials.fresh():  # a warm page outlived its nonce or clearance
                await store.save(await live.reload(deadline, live.credentials), target.proxy_key)
            yield live

    # -- credentials, for warm-up and health checks ----------------------------------------

    @classmethod
    def stored_credentials(cls, proxy: str | None = None) -> Credentials | None:
        """What the store holds for this site and proxy (fresh or not), without any request."""
        target = cls.target(proxy)
        return store_for(cls.cache_dir, cls.store).get(target.site, target.proxy_key)

    @classmethod
    async def refresh_credentials(
        cls,
        proxy: str | None = None,
        *,
        timeout: float = 120,  # noqa: ASYNC109 - one budget for page and browser
        force: bool = False,
        browser: BrowserMode | None = None,
        cookies: Mapping[str, str] | None = None,
        transport: TransportMode | None = None,
    ) -> Credentials:
        """Fresh credentials for this site through ``proxy``, stored for every process.

        Without ``force``, credentials still fresh in the store are returned as
        they are. ``browser`` overrides the class's browser mode for this call,
        ``transport`` its transport: ``browser`` reads them in the browser the
        chats will run in; ``auto`` checks a clearance fresh from the browser
        over plain HTTP once and marks the credentials for the browser transport
        when it is refused there (``creds.transport``).

        >>> creds = await ChatgptFree.refresh_credentials(force=True)  # doctest: +SKIP
        >>> creds.generation, creds.source                             # doctest: +SKIP
        ('aipkit', 'http')
        """
        mode = cls._transport_mode(transport)
        target = cls.target(proxy)
        store = store_for(cls.cache_dir, cls.store)
        current = await store.load(target.site, target.proxy_key)
        if current is not None and current.fresh() and not force:
            return current
        deadline = Deadline(_check_timeout(timeout))
        caller_cookies = _check_cookies(cookies, cls.url)
        if mode == "browser" or (
            mode == "auto" and current is not None and current.transport == "browser"
        ):
            known = current if current is not None and current.fresh() else None
            started = time.time()
            async with cls._live_page(store, target, deadline, caller_cookies, known) as live:
                if live.credentials.obtained_at < started:  # a warm page read them earlier
                    fresh = await live.reload(deadline, live.credentials)
                    await store.save(fresh, target.proxy_key)
                return live.credentials
        creds = await cls._refresh(
            store, target, deadline, caller_cookies, stale=current, browser=browser
        )
        if (
            mode == "auto"
            and creds.source == "browser"
            and creds.transport == "http"
            and await _clearance_refused(target, creds, deadline, cls.pool_config())
        ):
            log.info("%s refuses the browser's clearance over plain HTTP", target.site)
            creds = replace(creds, transport="browser")
            await store.save(creds, target.proxy_key)
        return creds

    # -- the pieces ---------------------------------------------------------------------

    @classmethod
    def pool_config(cls) -> PoolConfig:
        """The kept-alive connections' limits for this site (class attributes, env, defaults)."""
        return PoolConfig.resolve(cls.max_connections, cls.keepalive_timeout, cls.drain_timeout)

    @classmethod
    def _plan(cls, proxy: str | None) -> tuple[Target, Store, PoolConfig]:
        """:meth:`target`, the store and :meth:`pool_config` for one call, worked out
        once per (class settings, ``proxy``, environment): the environment is read
        on every call, as :meth:`target` promises, but only as the key of the
        decision (:func:`~scraper.proxy_env.environ_snapshot`), so a change to it
        takes effect on the next call without every call paying for the decision."""
        env = environ_snapshot(_PLAN_ENV)
        key = (
            cls.url,
            cls.chat_path,
            cls.cache_dir,
            cls.store,
            cls.max_connections,
            cls.keepalive_timeout,
            cls.drain_timeout,
            proxy,
            env,
        )
        plan = _PLANS.get(key)
        if plan is None:
            plan = (cls.target(proxy), store_for(cls.cache_dir, cls.store), cls.pool_config())
            # Worked out from os.environ: kept only if no other thread changed it meanwhile.
            if environ_snapshot(_PLAN_ENV) == env:
                if len(_PLANS) >= _MAX_PLANS:
                    _PLANS.clear()
                _PLANS[key] = plan
        return plan

    @classmethod
    def target(cls, proxy: str | None = None) -> Target:
        """Resolve ``url`` into the site origin and the pages to read, and the proxy in
        effect: ``proxy`` when given (``""``: none at all), else the environment's
        (``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``, unless ``NO_PROXY`` exempts the site).
        """
        # The environment is read on every call (a snapshot is the cache key), so a
        # change to it takes effect on the next call, as with curl or requests.
        env = _IGNORED_ENV if proxy is not None else ProxyEnv.from_environ()
        return _target(cls.url, cls.chat_path, proxy, env)

    @classmethod
    async def _refresh(
        cls,
        store: Store,
        target: Target,
        deadline: Deadline,
        caller_cookies: tuple[Cookie, ...],
        *,
        stale: Credentials | None,
        nonce_only: bool = False,
        browser: BrowserMode | None = None,
    ) -> Credentials:
        mode = browser or cls.browser

        async def fetch() -> Credentials:
            from scraper.obtain import obtain

            if nonce_only and stale is not None and stale.generation == "aipkit":
                fresh = await cls._new_aipkit_nonce(target, stale, deadline)
                if fresh is not None:
                    return fresh
            return await obtain(
                target.site,
                target.page_urls,
                proxy=target.proxy,
                deadline=deadline,
                cookies=caller_cookies,
                browser=mode,
                bot_id=cls.bot_id,
                pool=cls.pool_config(),
            )

        return await store.refresh(
            target.site, target.proxy_key, fetch, deadline=deadline, stale=stale
        )

    @classmethod
    async def _new_aipkit_nonce(
        cls, target: Target, stale: Credentials, deadline: Deadline
    ) -> Credentials | None:
        """aipkit's cheap refresh: ask the site for a new nonce, keeping cookies and UA."""
        with translate_errors("refreshing the nonce", target.proxy):
            client = borrow(
                target.site, target.proxy, cookies=stale.cookies, config=cls.pool_config()
            )
            nonce = await aipkit.new_nonce(client, stale, read_timeout=deadline.remaining())
        if nonce is None or nonce == stale.nonce:
            return None
        log.info("%s issued a new nonce", target.site)
        return stale.with_nonce(nonce, time.time())


_IGNORED_ENV = ProxyEnv()
#: Every variable a call's plan depends on (:meth:`ChatgptFree._plan`).
_PLAN_ENV = (*PROXY_VARIABLES, MAX_CONNECTIONS_ENV, KEEPALIVE_TIMEOUT_ENV, ENV_STORE, ENV_CACHE_DIR)
_PLANS: dict[tuple[Any, ...], tuple[Target, Store, PoolConfig]] = {}
_MAX_PLANS = 256


@functools.lru_cache(maxsize=256)
def _target(url: str, chat_path: str, proxy: str | None, env: ProxyEnv) -> Target:
    # Cached: every call resolves the same few (url, proxy, environment) triples;
    # raising calls (a bad URL or proxy) are not cached, so they raise every time.
    site = origin_of(url)
    if urlsplit(url).path not in ("", "/"):
        pages: tuple[str, ...] = (url,)
    elif chat_path not in ("", "/"):
        pages = (site + chat_path, site + "/")
    else:
        pages = (site + "/",)
    effective, source = resolve_proxy(site, proxy, env)
    return Target(site=site, page_urls=pages, proxy=effective, proxy_source=source)


async def _clearance_refused(
    target: Target, creds: Credentials, deadline: Deadline, pool: PoolConfig
) -> bool:
    """Whether plain HTTP, with the browser's cookies and User-Agent, still meets a challenge."""
    from scraper.http import fetch_page
    from scraper.verdict import verdict

    try:
        client = borrow(target.site, target.proxy, cookies=creds.cookies, config=pool)
        page = await fetch_page(
            client, creds.page_url, user_agent=creds.user_agent, deadline=deadline
        )
    except ProviderError as exc:  # a check, not the refresh: the next chat finds out anyway
        log.info("could not check the clearance over plain HTTP: %s", type(exc).__name__)
        return False
    return verdict(page.status, page.headers, page.body).kind == "challenge"


def _final(exc: Exception, site: str) -> Exception:
    if isinstance(exc, MaybeNonce):
        # Refused again with a fresh nonce: it was the refusal it looked like.
        return exc.final
    if isinstance(exc, Challenged):
        return ChallengeError(
            f"{site} kept answering with a bot-protection challenge after fresh credentials "
            "were obtained: the clearance does not hold (proxy exit or User-Agent changing?); "
            "retry, or run python -m provider.refresh --force"
        )
    if isinstance(exc, ActionUnknown):
        return ProtocolError(
            f"{site} does not know the chat action even after its page was read again: "
            "the site's chat plugin is inactive, removed, or a release this library does not "
            "speak; check that the chat works on the site in a browser"
        )
    return SessionExpiredError(
        f"{site} rejected the nonce again right after a fresh one was read: the site may be "
        "serving a stale cached page; retry later or run python -m provider.refresh --force"
    )


def _merge(site_cookies: tuple[Cookie, ...], caller: tuple[Cookie, ...]) -> tuple[Cookie, ...]:
    """The caller's cookies over the site's: a caller's name replaces the site's cookie."""
    if not caller:
        return site_cookies
    names = {c.name for c in caller}
    return tuple(c for c in site_cookies if c.name not in names) + caller


def _prompt_options(kwargs: dict[str, Any]) -> dict[str, bool]:
    return {k: bool(kwargs[k]) for k in ("do_continue", "include_system") if k in kwargs}


def _check_timeout(timeout: object) -> float:
    if (type(timeout) is int or type(timeout) is float) and 0 < timeout < math.inf:
        return float(timeout)  # the usual case, as the checks below decide it
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise InvalidInputError(
            f"timeout must be a number of seconds, not {type(timeout).__name__}"
        )
    if not math.isfinite(timeout) or timeout <= 0:
        raise InvalidInputError(f"timeout must be a positive number of seconds, not {timeout!r}")
    return float(timeout)


def _check_cookies(cookies: object, url: str) -> tuple[Cookie, ...]:
    if cookies is None:
        return ()
    if not isinstance(cookies, Mapping):
        raise InvalidInputError(
            f"cookies must be a dict of name -> value, not {type(cookies).__name__}"
        )
    host = (urlsplit(url).hostname or "").lower()
    out = []
    for name, value in cookies.items():
        if not isinstance(name, str) or not _COOKIE_NAME.match(name):
            raise InvalidInputError(f"cookie name {name!r} is not a valid cookie name")
        if not isinstance(value, str) or any(ch in value for ch in ";\r\n"):
            raise InvalidInputError(
                f"the value of cookie {name!r} must be a string without ';' or line breaks"
            )
        out.append(Cookie(name=name, value=value, domain=host, path="/"))
    return tuple(out)
