"""The browser transport's carrier: the chat's requests run in the page that passed the challenge.

Some bot protection binds its clearance to more than the User-Agent and the
address: to the client's TLS fingerprint or HTTP version. Then the cookies a
browser earned are refused when plain HTTP presents them, and the only client
that can chat is the browser itself. :class:`PageSession` speaks the subset of
aiohttp's request API the protocols use (``post``/``get`` returning a reply with
``status``, ``headers``, ``url`` and a streamed ``content``), so the protocols'
requests and reply parsing are written once (:mod:`provider.protocols`) and
only the carrier differs.

How a request runs: ``fetch`` in an isolated world of the page (a world of its
own, made with the DevTools protocol's ``Page.createIsolatedWorld``: the page's
origin, cookies and connections, but none of its globals, so no page script sees
our calls or any name of ours), with an ``AbortController`` kept per request.
The body is pulled: each read from Python is one ``reader.read()`` in the page,
awaited there and returned by value (``Runtime.evaluate`` with
``awaitPromise``, which needs no ``Runtime.enable``). A pull model is its own
backpressure: the page reads only as fast as the caller asks. Leaving the reply
early (an error, the caller cancelling, the answer complete before the body
ended) aborts the request in the page, which closes its connection to the site.

Playwright is not imported here: the page comes from :mod:`scraper.browser`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import weakref
from collections.abc import AsyncIterator, Coroutine, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from scraper.errors import BrowserError, NetworkError, ProviderTimeoutError, redact_url

if TYPE_CHECKING:
    import aiohttp
    from multidict import CIMultiDictProxy
    from playwright.async_api import Page as PlaywrightPage

__all__ = ["PageSession", "Requests"]

log = logging.getLogger(__name__)

#: Seconds an abort in the page may take before we stop waiting for it.
ABORT_TIMEOUT = 2.0

#: Seconds making the isolated world may take (two DevTools calls on a loaded page).
WORLD_TIMEOUT = 10.0

#: Headers a page's fetch may not set (the browser sends its own): the
#: User-Agent, Origin and Referer are the page's, which is the point.
_BROWSER_OWNED = frozenset(
    {"user-agent", "origin", "referer", "cookie", "host", "connection", "content-length"}
)

#: The isolated world's side: start a request, pull its head or its next read, abort it.
#: State lives on the world's own global object, which the page cannot see.
_WORLD_JS = """(() => {
  const open = (globalThis.__open = new Map());
  globalThis.__start = (id, url, method, body, headers, redirect) => {
    const ctl = new AbortController();
    const init = {method, headers, credentials: "include", redirect, cache: "no-store",
                  signal: ctl.signal};
    if (body !== null) init.body = new URLSearchParams(body);
    const entry = {ctl, reader: null, text: new TextDecoder(), reply: fetch(url, init)};
    entry.reply.catch(() => {});  // read (and reported) by the first pull
    open.set(id, entry);
    return true;
  };
  globalThis.__pull = async (id) => {
    const entry = open.get(id);
    if (!entry) return {kind: "error", name: "AbortError", message: "no such request"};
    try {
      if (!entry.reader) {
        const r = await entry.reply;
        entry.reader = r.body ? r.body.getReader() : null;
        if (!entry.reader) entry.reader = {read: async () => ({done: true})};
        return {kind: "head", status: r.status, url: r.url, headers: [...r.headers]};
      }
      for (;;) {
        const {done, value} = await entry.reader.read();
        if (done) {
          open.delete(id);
          const tail = entry.text.decode();
          return tail ? {kind: "data", data: tail, last: true} : {kind: "end"};
        }
        const piece = entry.text.decode(value, {stream: true});
        if (piece) return {kind: "data", data: piece};
      }
    } catch (e) {
      open.delete(id);
      const name = (e && e.name) || "Error";
      return {kind: "error", name, message: String((e && e.message) || e)};
    }
  };
  globalThis.__abort = (id) => {
    const entry = open.get(id);
    open.delete(id);
    if (entry) entry.ctl.abort();
    return Boolean(entry);
  };
  return true;
})()"""

_ids = itertools.count(1)


class Requests:
    """The open requests of one browser's pages.

    A browser that crashes or closes fails every open request at once (instead
    of each waiting out its timeout), and every later one.
    """

    def __init__(self) -> None:
        self._gone: dict[int, asyncio.Future[None]] = {}
        self.failure: BrowserError | None = None
        #: requests started in this browser, for the health report and tests
        self.started = 0

    def open(self) -> tuple[int, asyncio.Future[None]]:
        if self.failure is not None:
            raise BrowserError(str(self.failure))  # a new one each time: no shared traceback
        request_id = next(_ids)
        gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._gone[request_id] = gone
        self.started += 1
        return request_id, gone

    def close(self, request_id: int) -> None:
        self._gone.pop(request_id, None)

    def fail_all(self, exc: BrowserError) -> None:
        """The page is gone: every open request ends with ``exc``, and so does every new one."""
        self.failure = exc
        for gone in self._gone.values():
            if not gone.done():
                gone.set_result(None)

    @property
    def open_count(self) -> int:
        return len(self._gone)


class _World:
    """An isolated world in a page's main frame, and the DevTools session that made it.

    Made on first use; made again when the page's document changed (a world
    belongs to one document).
    """

    def __init__(self, page: PlaywrightPage) -> None:
        self._page = page
        self._session: Any = None
        self._context_id: int | None = None
        self._making: asyncio.Lock = asyncio.Lock()

    async def _ensure(self) -> tuple[Any, int]:
        async with self._making:
            if self._session is None:
                self._session = await self._page.context.new_cdp_session(self._page)
            if self._context_id is None:
                tree = await self._session.send("Page.getFrameTree")
                made = await self._session.send(
                    "Page.createIsolatedWorld",
                    {"frameId": tree["frameTree"]["frame"]["id"], "worldName": "provider"},
                )
                context_id = int(made["executionContextId"])
                await self._evaluate(self._session, context_id, _WORLD_JS)
                self._context_id = context_id
            return self._session, self._context_id

    async def call(self, function: str, *args: Any) -> Any:
        """``function(*args)`` in the world, awaited there; its JSON value."""
        session, context_id = await asyncio.wait_for(self._ensure(), WORLD_TIMEOUT)
        expression = f"globalThis.{function}(...{json.dumps(list(args))})"
        try:
            return await self._evaluate(session, context_id, expression)
        except _WorldGone:
            self._context_id = None  # a new document: make the world again, once
            session, context_id = await asyncio.wait_for(self._ensure(), WORLD_TIMEOUT)
            return await self._evaluate(session, context_id, expression)

    @staticmethod
    async def _evaluate(session: Any, context_id: int, expression: str) -> Any:
        try:
            reply = await session.send(
                "Runtime.evaluate",
                {
                    "expression": expression,
                    "contextId": context_id,
                    "awaitPromise": True,
                    "returnByValue": True,
                },
            )
        except Exception as exc:  # the driver's error: the context or the page is gone
            if "context" in str(exc).lower():
                raise _WorldGone from None
            raise
        if "exceptionDetails" in reply:
            raise BrowserError(
                "the browser transport's script failed in the page: "
                f"{str(reply['exceptionDetails'].get('text', ''))[:200]}; retry"
            )
        return reply.get("result", {}).get("value")


class _WorldGone(Exception):
    """The world's document was replaced."""


class PageSession:
    """aiohttp's ``post``/``get`` for the protocols, carried by the page's own ``fetch``.

    >>> async with PageSession(page, requests, "https://example.org").post(  # doctest: +SKIP
    ...     ajax_url, data=form, headers=headers, timeout=timeout) as reply:
    ...     async for read in reply.content.iter_any(): ...
    """

    def __init__(self, page: PlaywrightPage, requests: Requests, site: str) -> None:
        self._page = page
        self._requests = requests
        self._site = site
        self._world = _world(page)

    def post(
        self,
        url: str,
        *,
        data: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
        allow_redirects: bool = True,
    ) -> _Exchange:
        return _Exchange(self, "POST", url, data or {}, headers, timeout, allow_redirects)

    def get(
        self,
        url: str,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
        allow_redirects: bool = True,
    ) -> _Exchange:
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params)
        return _Exchange(self, "GET", url, None, headers, timeout, allow_redirects)


class _Exchange:
    """One request in the page, as an async context manager yielding its reply."""

    def __init__(
        self,
        session: PageSession,
        method: str,
        url: str,
        form: dict[str, str] | None,
        headers: dict[str, str] | None,
        timeout: aiohttp.ClientTimeout | None,
        allow_redirects: bool,
    ) -> None:
        self._session = session
        self._method = method
        self._url = url
        self._form = form
        self._headers = {
            k: v for k, v in (headers or {}).items() if k.lower() not in _BROWSER_OWNED
        }
        self._gap = (timeout.sock_read or timeout.total) if timeout is not None else None
        self._redirect = "follow" if allow_redirects else "manual"
        self._id: int | None = None
        self._reply: PageReply | None = None

    async def __aenter__(self) -> PageReply:
        requests = self._session._requests
        request_id, gone = requests.open()
        self._id = request_id
        what = f"the browser's request to {redact_url(self._url)}"
        world = self._session._world
        args = [request_id, self._url, self._method, self._form, self._headers, self._redirect]
        try:
            try:
                await _pulled(world.call("__start", *args), gone, None, what)
            except BrowserError:
                raise
            except Exception as exc:  # the driver's error: the page or browser is gone
                raise BrowserError(
                    f"{what} could not start: the browser page is gone "
                    f"({type(exc).__name__}); retry (a new browser is started)"
                ) from None
            head = await _pull(world, request_id, gone, self._gap, what)
        except BaseException:
            await self._abort()
            raise
        if head.get("kind") != "head":
            await self._abort()
            raise _failure(head, what, started=False)
        self._reply = PageReply(head, world, request_id, gone, self._gap, what)
        return self._reply

    async def __aexit__(self, *_: object) -> None:
        if self._reply is not None and self._reply.ended:
            self._session._requests.close(self._id or 0)
            return
        # Left before the body ended (done reading, an error, a cancellation):
        # stop the request in the page so its connection to the site closes.
        await self._abort()

    async def _abort(self) -> None:
        if self._id is None:
            return
        request_id, self._id = self._id, None
        self._session._requests.close(request_id)
        world = self._session._world

        async def abort() -> None:
            try:
                await asyncio.wait_for(world.call("__abort", request_id), ABORT_TIMEOUT)
            except Exception as exc:  # a closed page has nothing left to abort
                log.debug("aborting an in-page request: %s", type(exc).__name__)

        # Shielded: a cancelled caller still stops the request it leaves behind.
        task = asyncio.ensure_future(abort())
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({task}, timeout=ABORT_TIMEOUT)
            raise


class PageReply:
    """A reply read in the page: status, headers and the body as it streams in."""

    def __init__(
        self,
        head: Mapping[str, Any],
        world: _World,
        request_id: int,
        gone: asyncio.Future[None],
        gap: float | None,
        what: str,
    ) -> None:
        from multidict import CIMultiDict, CIMultiDictProxy

        self.status = int(head.get("status", 0))
        self.url = str(head.get("url", ""))
        self.headers: CIMultiDictProxy[str] = CIMultiDictProxy(
            CIMultiDict((str(k), str(v)) for k, v in head.get("headers", []))
        )
        self.content = self
        self.ended = False
        self._world = world
        self._id = request_id
        self._gone = gone
        self._gap = gap
        self._what = what

    async def iter_any(self) -> AsyncIterator[bytes]:
        """Each read of the page's stream reader, as the caller asks for it."""
        while not self.ended:
            read = await _pull(self._world, self._id, self._gone, self._gap, self._what)
            kind = read.get("kind")
            if kind == "data":
                self.ended = bool(read.get("last"))
                yield str(read.get("data", "")).encode()
            elif kind == "end":
                self.ended = True
            else:
                raise _failure(read, self._what, started=True)

    async def iter_chunked(self, n: int) -> AsyncIterator[bytes]:
        async for read in self.iter_any():
            for start in range(0, len(read), n):
                yield read[start : start + n]


#: One world per page, shared by its sessions (a page holds one isolated world of ours).
_worlds: weakref.WeakKeyDictionary[Any, _World] = weakref.WeakKeyDictionary()


def _world(page: PlaywrightPage) -> _World:
    world = _worlds.get(page)
    if world is None:
        world = _worlds[page] = _World(page)
    return world


async def _pull(
    world: _World, request_id: int, gone: asyncio.Future[None], gap: float | None, what: str
) -> Mapping[str, Any]:
    read = await _pulled(world.call("__pull", request_id), gone, gap, what)
    return read if isinstance(read, Mapping) else {"kind": "error", "name": "Error"}


async def _pulled(
    call: Coroutine[Any, Any, Any], gone: asyncio.Future[None], gap: float | None, what: str
) -> Any:
    """``call``'s value, or the page's loss, or a timeout after ``gap`` seconds."""
    task = asyncio.ensure_future(call)
    try:
        done, _ = await asyncio.wait({task, gone}, timeout=gap, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()
        raise
    if task in done:
        return task.result()
    task.cancel()
    if gone.done():
        raise _failure({"kind": "gone"}, what, started=True)
    raise ProviderTimeoutError(
        f"{what}: the site sent nothing within the timeout ({gap:g} s); retry or raise the timeout"
    )


def _failure(read: Mapping[str, Any], what: str, *, started: bool) -> Exception:
    if read.get("kind") == "gone":
        return BrowserError(
            f"{what} failed: the browser page closed or crashed; retry (a new browser is started)"
        )
    name = str(read.get("name", "Error"))[:40]
    message = str(read.get("message", ""))[:200]
    if started:
        return NetworkError(
            f"{what}: the connection broke in the middle of the answer ({name}: {message}); "
            "what arrived before was delivered: retry to get the whole answer"
        )
    return NetworkError(
        f"{what} failed ({name}: {message}): check the network, the site URL and the proxy"
    )
