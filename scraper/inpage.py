"""The browser transport's carrier: the chat's requests run in the page that passed the challenge.

Some bot protection binds its clearance to more than the User-Agent and the
address: to the client's TLS fingerprint or HTTP version. Then the cookies a
browser earned are refused when plain HTTP presents them, and the only client
that can chat is the browser itself. :class:`PageSession` speaks the subset of
aiohttp's request API the protocols use (``post``/``get`` returning a reply with
``status``, ``headers``, ``url`` and a streamed ``content``), so the protocols'
requests and reply parsing are written once (:mod:`provider.protocols`) and
only the carrier differs.

How a request runs: ``fetch`` in the page, with an ``AbortController`` kept per
request; its body is read with a ``ReadableStream`` reader and every read is
pushed to Python through a binding (``page.expose_binding``) as it arrives —
no polling, one hop per network read. A bounded queue per request gives
backpressure: the page awaits each read it pushes, and a push into a full
queue is acknowledged only once there is room, so a slow caller slows the
page's reads instead of piling the answer up in memory. Leaving the reply early (an
error, the caller cancelling, the answer complete before the body ended)
aborts the request in the page, which closes its connection to the site.

Playwright is not imported here: the page comes from :mod:`scraper.browser`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Coroutine, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from scraper.errors import BrowserError, NetworkError, ProviderTimeoutError, redact_url

if TYPE_CHECKING:
    import aiohttp
    from multidict import CIMultiDictProxy
    from playwright.async_api import Page as PlaywrightPage

__all__ = ["BINDING", "PageSession", "Requests"]

log = logging.getLogger(__name__)

#: The page-side name of the binding every read is pushed through.
BINDING = "__providerPush"

#: Reads queued per request before the page waits (backpressure).
QUEUE_READS = 64

#: Seconds an abort in the page may take before we stop waiting for it.
ABORT_TIMEOUT = 2.0

#: Headers a page's fetch may not set (the browser sends its own): the
#: User-Agent, Origin and Referer are the page's, which is the point.
_BROWSER_OWNED = frozenset(
    {"user-agent", "origin", "referer", "cookie", "host", "connection", "content-length"}
)

#: Starts one request and returns at once; the reads come through the binding.
_FETCH_JS = """([id, url, method, body, headers, redirect]) => {
  const aborts = (window.__providerAborts = window.__providerAborts || new Map());
  const push = window.BINDING;
  const ctl = new AbortController();
  aborts.set(id, ctl);
  (async () => {
    try {
      const init = {method, headers, credentials: "include", redirect, cache: "no-store",
                    signal: ctl.signal};
      if (body !== null) init.body = new URLSearchParams(body);
      const r = await fetch(url, init);
      // Not awaited: the body's first read need not wait for Python's acknowledgement.
      push(id, "head", {status: r.status, url: r.url, headers: [...r.headers]});
      if (r.body) {
        const reader = r.body.getReader();
        const text = new TextDecoder();
        for (;;) {
          const {done, value} = await reader.read();
          if (done) break;
          const piece = text.decode(value, {stream: true});
          if (piece) await push(id, "data", piece);
        }
        const tail = text.decode();
        if (tail) await push(id, "data", tail);
      }
      await push(id, "end", null);
    } catch (e) {
      const name = (e && e.name) || "Error";
      if (!ctl.signal.aborted)  // not our own abort: Python is waiting to hear of it
        await push(id, "error", {name, message: String((e && e.message) || e)}).catch(() => {});
    } finally {
      aborts.delete(id);
    }
  })();
  return true;
}""".replace("BINDING", BINDING)

_ABORT_JS = """(id) => {
  const ctl = window.__providerAborts && window.__providerAborts.get(id);
  if (ctl) ctl.abort();
  return Boolean(ctl);
}"""

_ids = itertools.count(1)


class Requests:
    """The open requests of one browser's pages, fed by the binding installed in its context.

    ``push`` is the binding's handler: it routes each read to its request's
    queue. A browser that crashes or closes fails every open request at once
    (instead of each waiting out its timeout), and every later one.
    """

    def __init__(self) -> None:
        self._queues: dict[int, asyncio.Queue[tuple[str, Any]]] = {}
        self.failure: BrowserError | None = None
        #: requests started in this page, for the health report and tests
        self.started = 0

    def push(
        self, _source: object, request_id: int, kind: str, payload: Any
    ) -> Coroutine[Any, Any, None] | None:
        # Synchronous while the queue has room: Playwright runs binding calls in the
        # order the page made them, and a handler that never suspends before queueing
        # keeps that order (the page awaits every read it pushes, so a full queue —
        # a slow caller — holds the page's next read back until there is room).
        queue = self._queues.get(request_id)
        if queue is None:
            return None
        if queue.full():
            return queue.put((kind, payload))
        queue.put_nowait((kind, payload))
        return None

    def open(self) -> tuple[int, asyncio.Queue[tuple[str, Any]]]:
        if self.failure is not None:
            raise BrowserError(str(self.failure))  # a new one each time: no shared traceback
        request_id = next(_ids)
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(QUEUE_READS)
        self._queues[request_id] = queue
        self.started += 1
        return request_id, queue

    def close(self, request_id: int) -> None:
        queue = self._queues.pop(request_id, None)
        while queue is not None and not queue.empty():
            queue.get_nowait()  # frees a push waiting on a full queue

    def fail_all(self, exc: BrowserError) -> None:
        """The page is gone: every open request ends with ``exc``, and so does every new one."""
        self.failure = exc
        for queue in self._queues.values():
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(("gone", None))

    @property
    def open_count(self) -> int:
        return len(self._queues)


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
        request_id, queue = requests.open()
        self._id = request_id
        what = f"the browser's request to {redact_url(self._url)}"
        args = [request_id, self._url, self._method, self._form, self._headers, self._redirect]
        try:
            try:
                await self._session._page.evaluate(_FETCH_JS, args)
            except Exception as exc:  # Playwright's error: the page or browser is gone
                raise BrowserError(
                    f"{what} could not start: the browser page is gone "
                    f"({type(exc).__name__}); retry (a new browser is started)"
                ) from None
            kind, head = await _next(queue, self._gap, what)
        except BaseException:
            await self._abort()
            raise
        if kind != "head":
            await self._abort()
            raise _failure(kind, head, what, started=False)
        self._reply = PageReply(head, queue, self._gap, what)
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
        page = self._session._page

        async def abort() -> None:
            try:
                await asyncio.wait_for(page.evaluate(_ABORT_JS, request_id), ABORT_TIMEOUT)
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
        queue: asyncio.Queue[tuple[str, Any]],
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
        self._queue = queue
        self._gap = gap
        self._what = what

    async def iter_any(self) -> AsyncIterator[bytes]:
        """Each read of the page's stream reader, as it arrives."""
        while not self.ended:
            kind, payload = await _next(self._queue, self._gap, self._what)
            if kind == "data":
                yield str(payload).encode()
            elif kind == "end":
                self.ended = True
            else:
                raise _failure(kind, payload, self._what, started=True)

    async def iter_chunked(self, n: int) -> AsyncIterator[bytes]:
        async for read in self.iter_any():
            for start in range(0, len(read), n):
                yield read[start : start + n]


async def _next(
    queue: asyncio.Queue[tuple[str, Any]], gap: float | None, what: str
) -> tuple[str, Any]:
    try:
        async with asyncio.timeout(gap):
            return await queue.get()
    except TimeoutError:
        raise ProviderTimeoutError(
            f"{what}: the site sent nothing within the timeout ({gap:g} s); "
            "retry or raise the timeout"
        ) from None


def _failure(kind: str, payload: Any, what: str, *, started: bool) -> Exception:
    if kind == "gone":
        return BrowserError(
            f"{what} failed: the browser page closed or crashed; retry (a new browser is started)"
        )
    detail = payload if isinstance(payload, Mapping) else {}
    name = str(detail.get("name", "Error"))[:40]
    message = str(detail.get("message", ""))[:200]
    if started:
        return NetworkError(
            f"{what}: the connection broke in the middle of the answer ({name}: {message}); "
            "what arrived before was delivered: retry to get the whole answer"
        )
    return NetworkError(
        f"{what} failed ({name}: {message}): check the network, the site URL and the proxy"
    )
