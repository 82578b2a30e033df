"""Who owns the browsers of the browser transport, and for how long.

* A library call on its own: the browser it needs lives exactly as long as the
  calls using it. Concurrent calls in one event loop share it (one browser,
  one page, many requests in it); the last call to finish closes it before it
  returns, so no Chromium outlives the calls.
* :class:`WarmBrowser`: an explicit owner that keeps one browser per
  (site, proxy) warm for its ``async with`` block — or, with ``idle_timeout``,
  until nobody used it for that long — and restarts one that died.
  ``provider.serve`` runs with one.

>>> async with WarmBrowser():                         # doctest: +SKIP
...     for question in questions:                    # one browser for all of them
...         async for chunk in MySite.create_async_generator("", ask(question)): ...
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from scraper.http import Deadline

if TYPE_CHECKING:  # asyncio loads with the first call, not with `import provider`
    import asyncio

    from scraper.browser import LivePage

__all__ = ["WarmBrowser", "current"]

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (site, proxy URL as given)


@dataclass
class _Entry:
    live: LivePage | None = None
    opening: asyncio.Task[LivePage] | None = None
    users: int = 0
    idle: asyncio.TimerHandle | None = None
    closing: set[asyncio.Task[None]] = field(default_factory=set)


class WarmBrowser:
    """Keeps the browser transport's Chromium warm: one per (site, proxy), shared.

    Use it as an async context manager around the calls that should share a
    warm browser; every call made inside the block (in this task and the tasks
    it starts) uses it. At the end of the block every browser it started is
    closed. ``idle_timeout`` (seconds) closes a browser nobody used for that
    long (it starts again when needed); ``None`` keeps it for the whole block.

    Only sites that need the browser transport start a browser here; plain-HTTP
    chats are not affected.
    """

    def __init__(self, idle_timeout: float | None = None) -> None:
        if idle_timeout is not None and idle_timeout < 0:
            raise ValueError("idle_timeout must be >= 0 seconds, or None")
        self.idle_timeout = idle_timeout
        self._entries: dict[Key, _Entry] = {}
        self._closed = False
        self._token: contextvars.Token[WarmBrowser | None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        #: browsers started so far (restarts included), for reports and tests
        self.launches = 0

    async def __aenter__(self) -> WarmBrowser:
        self._token = _CURRENT.set(self)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._token is not None:
            _CURRENT.reset(self._token)
            self._token = None
        await self.aclose()

    @contextlib.contextmanager
    def use(self) -> Iterator[WarmBrowser]:
        """Make the calls in this block (this task) use these browsers, without closing them
        at its end — for an owner whose lifetime spans many tasks (a server)."""
        token = _CURRENT.set(self)
        try:
            yield self
        finally:
            _CURRENT.reset(token)

    def browsers(self) -> dict[Key, LivePage]:
        """The live browsers by (site, proxy)."""
        return {k: e.live for k, e in self._entries.items() if e.live is not None}

    @contextlib.asynccontextmanager
    async def page(
        self, key: Key, opener: Callable[[], Awaitable[LivePage]], deadline: Deadline
    ) -> AsyncIterator[LivePage]:
        """The warm browser for ``key`` (opened by ``opener`` when there is none, once
        for every concurrent caller), held for the block."""
        if self._closed:
            raise RuntimeError("this WarmBrowser is closed")
        entry = self._entries.setdefault(key, _Entry())
        entry.users += 1
        if entry.idle is not None:
            entry.idle.cancel()
            entry.idle = None
        try:
            live = await self._live(key, entry, opener, deadline)
            yield live
        finally:
            entry.users -= 1
            if entry.users == 0:
                await self._idle(key, entry)

    async def _live(
        self,
        key: Key,
        entry: _Entry,
        opener: Callable[[], Awaitable[LivePage]],
        deadline: Deadline,
    ) -> LivePage:
        import asyncio

        if entry.live is not None and not entry.live.alive:
            log.warning("the browser for %s died; starting a new one", key[0])
            dead, entry.live = entry.live, None
            self._close_soon(entry, dead)
        if entry.live is not None:
            return entry.live
        if entry.opening is None or entry.opening.done():
            entry.opening = asyncio.get_running_loop().create_task(
                self._open(entry, opener), name=f"browser for {key[0]}"
            )
            entry.opening.add_done_callback(_retrieve)
        async with deadline.within("starting the browser transport"):
            # Shielded: one caller giving up does not stop the start the others await;
            # whoever releases last closes what it started.
            return await asyncio.shield(entry.opening)

    async def _open(self, entry: _Entry, opener: Callable[[], Awaitable[LivePage]]) -> LivePage:
        live = await opener()
        self.launches += 1
        entry.live = live
        return live

    async def _idle(self, key: Key, entry: _Entry) -> None:
        """Nobody holds ``key``'s browser now: close it now, later, or at the block's end."""
        import asyncio

        if self.idle_timeout is None and not self._closed:
            return
        if self.idle_timeout == 0 or self._closed:
            await self._retire(key, entry)
            return
        loop = asyncio.get_running_loop()
        entry.idle = loop.call_later(
            self.idle_timeout or 0.0, lambda: self._close_soon(entry, None, key=key)
        )

    async def _retire(self, key: Key, entry: _Entry) -> None:
        import asyncio

        if self._entries.get(key) is entry:
            del self._entries[key]
        opening, entry.opening = entry.opening, None
        if opening is not None and not opening.done():
            # Started for callers who all left: stop it (LivePage.open closes whatever
            # it had started; its launch and close are shielded, so this is bounded).
            opening.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait({opening})
        live, entry.live = entry.live, None
        if live is not None:
            await live.close()
        if entry.closing:
            await asyncio.wait(entry.closing)

    def _close_soon(self, entry: _Entry, live: LivePage | None, key: Key | None = None) -> None:
        import asyncio

        if key is not None:  # the idle timer fired
            entry.idle = None
            if entry.users:
                return
            if self._entries.get(key) is entry:
                del self._entries[key]
            live, entry.live = entry.live, None
            if live is not None:
                log.info("closing the idle browser for %s", key[0])
        if live is None:
            return
        task = asyncio.get_running_loop().create_task(live.close())
        entry.closing.add(task)
        task.add_done_callback(entry.closing.discard)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        """Close every browser this owner started (waiting for closes already under way)."""
        import asyncio

        self._closed = True
        entries = list(self._entries.items())
        for key, entry in entries:
            if entry.idle is not None:
                entry.idle.cancel()
            await self._retire(key, entry)
        if self._closing:  # browsers an idle timer or a restart is closing right now
            await asyncio.wait(set(self._closing), timeout=15)


_CURRENT: contextvars.ContextVar[WarmBrowser | None] = contextvars.ContextVar(
    "provider_warm_browser", default=None
)
#: Per event loop: the browsers of calls made outside any WarmBrowser block,
#: closed as soon as the last call using one ends.
_DEFAULT: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, WarmBrowser] = (
    weakref.WeakKeyDictionary()
)


def current() -> WarmBrowser:
    """The owner the browser transport uses here: the enclosing :class:`WarmBrowser`, or
    the event loop's own, which keeps a browser only while calls use it."""
    import asyncio

    owner = _CURRENT.get()
    if owner is not None:
        return owner
    loop = asyncio.get_running_loop()
    owner = _DEFAULT.get(loop)
    if owner is None:
        owner = _DEFAULT[loop] = WarmBrowser(idle_timeout=0)
    return owner


def _retrieve(task: asyncio.Task[LivePage]) -> None:
    if not task.cancelled():
        task.exception()  # the waiters got it; nobody waiting is fine too
