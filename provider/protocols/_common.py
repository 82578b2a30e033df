"""What both plugin generations' chat code needs: reading replies safely and the retry signals."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol

from provider.sse import Event, SSEParser
from scraper.credentials import Credentials
from scraper.errors import (
    ChallengeError,
    NetworkError,
    ProtocolError,
    ProviderError,
    SessionExpiredError,
    UpstreamError,
)
from scraper.http import check_proxy_reply, read_at_most, request_headers

if TYPE_CHECKING:  # imported by the first request, not by `import provider`
    import aiohttp

    from scraper.verdict import Refusal

log = logging.getLogger(__name__)

#: A JSON reply (not a stream) is small; past this it is not the plugin talking.
MAX_JSON_BYTES = 4 * 1024 * 1024
#: Enough of an HTML body to tell a challenge page from anything else.
SNIFF_BYTES = 64 * 1024


# -- the carrier seam ------------------------------------------------------------------
#
# The protocols write each request and read each reply once; what carries them is
# a ``Session``: aiohttp's ClientSession over plain HTTP, or
# :class:`scraper.inpage.PageSession`, which runs them in the browser page that
# passed the challenge (its fetch, so its TLS, cookies, User-Agent and HTTP
# version). Only the subset of aiohttp's request API the protocols use is named.


class Body(Protocol):
    """A reply body, read as it arrives."""

    def iter_any(self) -> AsyncIterator[bytes]:
        """Each read as it arrives (one chunk per network read)."""

    def iter_chunked(self, n: int) -> AsyncIterator[bytes]:
        """Reads of at most ``n`` bytes."""


class Reply(Protocol):
    """What the protocols read of a reply (aiohttp's ClientResponse is one)."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]:
        """Looked up case-insensitively."""

    @property
    def url(self) -> object: ...

    @property
    def content(self) -> Body: ...


class Session(Protocol):
    """A carrier of the protocols' requests (aiohttp's ClientSession is one)."""

    def post(
        self,
        url: str,
        *,
        data: dict[str, str] = ...,
        headers: dict[str, str] = ...,
        timeout: aiohttp.ClientTimeout = ...,
        allow_redirects: bool = ...,
    ) -> AbstractAsyncContextManager[Reply]: ...

    def get(
        self,
        url: str,
        *,
        params: dict[str, str] = ...,
        headers: dict[str, str] = ...,
        timeout: aiohttp.ClientTimeout = ...,
        allow_redirects: bool = ...,
    ) -> AbstractAsyncContextManager[Reply]: ...


def chat_headers(creds: Credentials, accept: str) -> dict[str, str]:
    """The headers of a chat request: the page's browser, coming from the page."""
    headers = request_headers(creds.user_agent, referer=creds.page_url)
    headers["Origin"] = creds.site
    headers["Accept"] = accept
    return headers


@functools.lru_cache(maxsize=64)
def read_timeout_for(seconds: float) -> aiohttp.ClientTimeout:
    """Connecting (waiting for a free pooled connection included) and every gap
    between two reads bounded; the whole answer not. (Cached: a frozen value every
    request of a call, and every call with the same timeout, shares.)"""
    import aiohttp

    return aiohttp.ClientTimeout(
        total=None, connect=seconds, sock_connect=seconds, sock_read=seconds
    )


class StaleCredentials(SessionExpiredError):
    """Internal signal: the site no longer accepts the credentials. The provider
    refreshes them once and resends the message once."""


class NonceRejected(StaleCredentials):
    """Internal signal: the site said the nonce is bad (expired, or read from a cached page)."""


class ActionUnknown(StaleCredentials):
    """Internal signal: the site does not know the chat action (its plugin changed generation)."""


class Challenged(ChallengeError):
    """Internal signal: a request with stored credentials met a challenge again."""


def reply_kind(resp: Reply) -> str:
    """``stream``, ``json`` or ``other`` from the Content-Type (the plugin sets it reliably)."""
    ctype = resp.headers.get("Content-Type", "").lower()
    if "text/event-stream" in ctype:
        return "stream"
    if "json" in ctype:
        return "json"
    return "other"


async def read_limited(resp: Reply, limit: int) -> bytes:
    body = await read_at_most(resp, limit)
    if body is None:
        raise ProtocolError(f"the site's reply is over {limit:,} bytes where a short one was due")
    return body


async def read_json(resp: Reply) -> Any:
    """The reply as JSON, or None for WordPress's bare ``0`` / ``-1`` answers."""
    body = await read_limited(resp, MAX_JSON_BYTES)
    try:
        return json.loads(body)
    except ValueError:
        raise ProtocolError(
            f"the site answered HTTP {resp.status} with a body that is not JSON "
            f"({len(body)} bytes): the plugin may have changed"
        ) from None


async def check_not_page(resp: Reply, what: str) -> None:
    """Raise the right error when ``resp`` is an HTML page (or junk) where a reply was due.

    This is the original client's silent failure — a challenge page with
    status 200 yielded nothing — turned into a clear error. Bot protection
    decides first (a 403 from it stays a challenge or a block); then WordPress's
    own refusals of the chat request (:func:`refused_by_wordpress`).
    """
    from scraper.verdict import verdict, wordpress_refusal

    check_proxy_reply(resp.status, None)
    body = (await read_limited(resp, MAX_JSON_BYTES))[:SNIFF_BYTES]
    found = verdict(resp.status, {k.lower(): v for k, v in resp.headers.items()}, body)
    if found.kind == "challenge":
        raise Challenged(f"{what}: bot protection answered with a challenge ({found.evidence})")
    found.raise_for_access(str(resp.url))
    refusal = wordpress_refusal(resp.status, body)
    if refusal is not None:
        raise refused_by_wordpress(refusal, what)
    raise ProtocolError(
        f"{what}: expected the plugin's reply, got HTTP {resp.status} "
        f"{resp.headers.get('Content-Type', 'without a content type')}: the site may have changed"
    )


def refused_by_wordpress(refusal: Refusal, what: str) -> ProviderError:
    """The error for WordPress's own refusal of a chat request (admin-ajax.php).

    A rejected nonce — ``-1``, or "The link you followed has expired." from
    AI Power 1.9.0 through 2.2 — and an unknown action are the provider's
    signals to refresh once and resend once; another error page is final.
    """
    if refusal.kind == "nonce":
        return NonceRejected(
            f"{what}: WordPress rejected the nonce ({refusal.evidence}): "
            "it expired or the page was cached"
        )
    if refusal.kind == "unknown_action":
        return ActionUnknown(
            f"{what}: WordPress has no handler for the chat action ({refusal.evidence}): "
            "the chat plugin is inactive, or the site switched plugin generation"
        )
    if refusal.status >= 500:
        return UpstreamError(
            f"{what}: the site failed ({refusal.evidence}); retry later "
            "(the site's operator has to fix this if it persists)"
        )
    return ProtocolError(
        f"{what}: WordPress refused the request before the chat plugin answered "
        f"({refusal.evidence}); check that the chat works on the site in a browser"
    )


class Interpreter(Protocol):
    """One generation's reading of its event stream, event by event (no I/O)."""

    done: bool
    """Set once the answer is complete: nothing after it is read."""

    def on_event(self, event: Event) -> str | None:
        """The text this event adds, if any; raises the error the event reports."""

    def on_end(self) -> None:
        """The stream ended before ``done``: raise what that means."""


def texts(
    chunks: AsyncIterable[bytes],
    interpreter: Interpreter,
    exchange: AbstractAsyncContextManager[Any] | None = None,
) -> Texts:
    """The answer's text, one chunk per network read, as the reads arrive (see :class:`Texts`)."""
    return Texts(chunks, interpreter, exchange)


class Answer(Protocol):
    """An answer being read: its text chunks as they arrive; ``aclose`` stops it early."""

    def __aiter__(self) -> AsyncIterator[str]: ...

    def __anext__(self) -> Awaitable[str]: ...

    def aclose(self) -> Awaitable[None]: ...


async def opened(exchange: AbstractAsyncContextManager[Reply]) -> Reply:
    """Enter a request's ``async with`` by hand, for a reply that outlives the function
    that sent it (the caller reads the answer): leave it with :func:`left`."""
    return await exchange.__aenter__()


async def left(exchange: AbstractAsyncContextManager[Any], exc: BaseException | None) -> None:
    """Leave an :func:`opened` exchange, as an ``async with`` would on ``exc`` (None: cleanly)."""
    await exchange.__aexit__(
        None if exc is None else type(exc), exc, None if exc is None else exc.__traceback__
    )


class Opener(Protocol):
    """A generation's ``open_answer``: send the prompt, return the answer being read."""

    def __call__(
        self, client: Session, creds: Credentials, prompt: str, *, read_timeout: float
    ) -> Awaitable[Answer]: ...


class Chat(Protocol):
    """A generation's ``chat``: send the prompt, yield the answer's text."""

    def __call__(
        self, client: Session, creds: Credentials, prompt: str, *, read_timeout: float
    ) -> AsyncIterator[str]: ...


def chat_of(open_answer: Opener) -> Chat:
    """The generator form of ``open_answer`` (each protocol's ``chat``): the answer is
    closed when the generator is, whether read to its end or left early."""

    async def chat(
        client: Session, creds: Credentials, prompt: str, *, read_timeout: float
    ) -> AsyncIterator[str]:
        answer = await open_answer(client, creds, prompt, read_timeout=read_timeout)
        async with contextlib.aclosing(answer):
            async for text in answer:
                yield text

    chat.__doc__ = "Send ``prompt``; yield the answer's text as it streams in."
    return chat


class Whole:
    """An answer that came in one piece (legacy's JSON reply): one chunk."""

    __slots__ = ("_text",)

    def __init__(self, text: str) -> None:
        self._text: str | None = text

    def __aiter__(self) -> Whole:
        return self

    async def __anext__(self) -> str:
        text, self._text = self._text, None
        if text is None:
            raise StopAsyncIteration
        return text

    async def aclose(self) -> None:
        self._text = None


class Texts:
    """The answer's text, one chunk per network read, as the reads arrive.

    Everything one read completes is joined into one chunk: the caller gets it
    at the same moment it would have got the pieces, with one hop instead of one
    per event (what makes a 10 MB answer cheap). Text that came before an error
    in the same read is delivered, then the error.

    An async iterator of its own rather than an async generator: a warm chat
    passes through it once, and every async generator costs a registration with
    the event loop and a layer per chunk. With ``exchange`` (the reply's
    ``async with``, entered by the caller) it also ends the reply: cleanly once
    the answer is complete (the pool keeps the connection), as an error
    otherwise — or when :meth:`aclose` stops it early.
    """

    __slots__ = ("_chunks", "_exchange", "_interpreter", "_parser", "_pending", "_stream_ended")

    def __init__(
        self,
        chunks: AsyncIterable[bytes],
        interpreter: Interpreter,
        exchange: AbstractAsyncContextManager[Any] | None = None,
    ) -> None:
        self._chunks = chunks.__aiter__()
        self._interpreter = interpreter
        self._parser = SSEParser()
        self._exchange = exchange
        self._pending: ProviderError | None = None  # raised after the text that came with it
        self._stream_ended = False

    def __aiter__(self) -> Texts:
        return self

    async def __anext__(self) -> str:
        try:
            return await self._next()
        except StopAsyncIteration:
            await self._end(None)
            raise
        except BaseException as exc:
            await self._end(exc)
            raise

    async def aclose(self) -> None:
        """Stop reading: the reply ends cleanly if the answer was complete, else as cut."""
        if self._exchange is not None:
            await self._end(None if self._interpreter.done else GeneratorExit())

    async def _end(self, exc: BaseException | None) -> None:
        exchange, self._exchange = self._exchange, None
        if exchange is not None:
            await left(exchange, exc)

    async def _next(self) -> str:
        pending = self._pending
        if pending is not None:
            self._pending = None
            raise pending
        interpreter = self._interpreter
        if interpreter.done:
            raise StopAsyncIteration
        feed, on_event = self._parser.feed, interpreter.on_event
        while not self._stream_ended:
            try:
                chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                self._stream_ended = True
                break
            except _payload_error() as exc:  # evaluated only when something was raised
                raise NetworkError(
                    f"the connection broke in the middle of the answer ({type(exc).__name__}); "
                    "what arrived before was delivered: retry to get the whole answer"
                ) from None
            parts: list[str] = []
            try:
                for event in feed(chunk):
                    text = on_event(event)
                    if text:
                        parts.append(text)
                    if interpreter.done:
                        break
            except ProviderError as exc:
                if not parts:
                    raise
                self._pending = exc
            if parts:
                return parts[0] if len(parts) == 1 else "".join(parts)
            if interpreter.done:
                raise StopAsyncIteration
        # The body ended: what the parser held back, then what an early end means.
        parts = []
        for event in self._parser.end():
            text = on_event(event)
            if text:
                parts.append(text)
            if interpreter.done:
                break
        if parts:
            return "".join(parts)
        if not interpreter.done:
            interpreter.on_end()
        raise StopAsyncIteration


def _payload_error() -> type[Exception]:
    """aiohttp's broken-body error (aiohttp is imported by the time a body is read)."""
    from aiohttp import ClientPayloadError

    return ClientPayloadError


def cut_short() -> NetworkError:
    return NetworkError(
        "the site closed the stream before the answer finished; what arrived before was "
        "delivered: retry to get the whole answer"
    )
