"""``ChatgptFree``: the public face, the original g4f provider's contract made robust."""

from __future__ import annotations

import functools
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
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
from provider.store import Store, store_for
from scraper.credentials import Cookie, Credentials
from scraper.errors import (
    ChallengeError,
    InvalidInputError,
    ModelNotSupportedError,
    ProtocolError,
    SessionExpiredError,
)
from scraper.http import Deadline, Proxy, new_session, origin_of, translate_errors

if TYPE_CHECKING:
    from scraper.obtain import BrowserMode
else:  # scraper.obtain (page parsing, lxml) loads with the first refresh, not on import
    BrowserMode = Literal["auto", "never", "always"]

__all__ = ["ChatgptFree", "Target"]

log = logging.getLogger(__name__)

_COOKIE_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


@dataclass(frozen=True, slots=True)
class Target:
    """Where one call goes: the site, the pages that may hold the widget, the proxy."""

    site: str
    page_urls: tuple[str, ...]
    proxy: Proxy | None

    @property
    def proxy_key(self) -> str:
        return self.proxy.raw if self.proxy else ""


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
    ``browser`` (``auto``: only for a challenge; ``never``; ``always``) and
    ``cache_dir`` (default ``$PROVIDER_CACHE_DIR`` or the user cache dir) and
    ``store`` (a Redis URL shared by a fleet; default ``$PROVIDER_STORE``, else files).
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
    cache_dir: ClassVar[str | Path | None] = None
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
        site's own origin only, over the site's. Other keyword arguments
        (``stream=``, ``api_key=``…) are accepted and ignored, as g4f callers pass them.
        """
        cls.get_model(model)
        prompt = build_prompt(
            messages,
            **{k: bool(kwargs[k]) for k in ("do_continue", "include_system") if k in kwargs},
        )
        read_timeout = _check_timeout(timeout)
        caller_cookies = _check_cookies(cookies, cls.url)
        target = cls.target(proxy)
        store = store_for(cls.cache_dir, cls.store)
        deadline = Deadline(read_timeout)

        creds = await cls._credentials(store, target, deadline, caller_cookies)
        retried = False
        while True:
            yielded = False
            protocol = aipkit if creds.generation == "aipkit" else legacy
            try:
                # Inline, not a helper generator: every chunk of a long answer
                # passes through each generator layer on its way to the caller.
                with translate_errors(f"chatting with {target.site}", target.proxy):
                    async with new_session(
                        target.proxy,
                        site=target.site,
                        cookies=_merge(creds.cookies, caller_cookies),
                        connect_timeout=read_timeout,
                    ) as session:
                        async for chunk in protocol.chat(
                            session, creds, prompt, read_timeout=read_timeout
                        ):
                            yielded = True
                            yield chunk
                return
            except (StaleCredentials, Challenged) as exc:
                if yielded:
                    raise
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
    ) -> Credentials:
        """Fresh credentials for this site through ``proxy``, stored for every process.

        Without ``force``, credentials still fresh in the store are returned as
        they are. ``browser`` overrides the class's browser mode for this call.

        >>> creds = await ChatgptFree.refresh_credentials(force=True)  # doctest: +SKIP
        >>> creds.generation, creds.source                             # doctest: +SKIP
        ('aipkit', 'http')
        """
        target = cls.target(proxy)
        store = store_for(cls.cache_dir, cls.store)
        current = await store.load(target.site, target.proxy_key)
        if current is not None and current.fresh() and not force:
            return current
        return await cls._refresh(
            store,
            target,
            Deadline(_check_timeout(timeout)),
            _check_cookies(cookies, cls.url),
            stale=current,
            browser=browser,
        )

    # -- the pieces ---------------------------------------------------------------------

    @classmethod
    def target(cls, proxy: str | None = None) -> Target:
        """Resolve ``url`` into the site origin and the pages to read, and parse the proxy."""
        return _target(cls.url, cls.chat_path, proxy)

    @classmethod
    async def _credentials(
        cls,
        store: Store,
        target: Target,
        deadline: Deadline,
        caller_cookies: tuple[Cookie, ...],
    ) -> Credentials:
        creds = await store.load(target.site, target.proxy_key)
        if creds is not None and creds.fresh():
            return creds
        return await cls._refresh(store, target, deadline, caller_cookies, stale=creds)

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
            async with new_session(
                target.proxy, site=target.site, cookies=stale.cookies
            ) as session:
                nonce = await aipkit.new_nonce(session, stale, read_timeout=deadline.remaining())
        if nonce is None or nonce == stale.nonce:
            return None
        log.info("%s issued a new nonce", target.site)
        return stale.with_nonce(nonce, time.time())


@functools.lru_cache(maxsize=256)
def _target(url: str, chat_path: str, proxy: str | None) -> Target:
    # Cached: every call resolves the same few (url, proxy) pairs; raising
    # calls (a bad URL or proxy) are not cached, so they raise every time.
    site = origin_of(url)
    if urlsplit(url).path not in ("", "/"):
        pages: tuple[str, ...] = (url,)
    elif chat_path not in ("", "/"):
        pages = (site + chat_path, site + "/")
    else:
        pages = (site + "/",)
    return Target(site=site, page_urls=pages, proxy=Proxy.parse(proxy))


def _final(exc: Exception, site: str) -> Exception:
    if isinstance(exc, Challenged):
        return ChallengeError(
            f"{site} kept answering with a bot-protection challenge after fresh credentials "
            "were obtained: the clearance does not hold (proxy exit or User-Agent changing?); "
            "retry, or run python -m provider.refresh --force"
        )
    if isinstance(exc, ActionUnknown):
        return ProtocolError(
            f"{site} does not know the chat action even after its page was read again: "
            "the site's chat plugin is not one this library speaks (or was removed)"
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


def _check_timeout(timeout: object) -> float:
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
