"""``python -m provider.serve``: an OpenAI-compatible HTTP endpoint in front of ChatgptFree.

One host that can reach the site (and run a browser for its challenge) serves
every tool that already speaks the OpenAI API::

    python -m provider.serve --port 1337            # then base_url http://127.0.0.1:1337/v1

Routes (aiohttp.web, one small handler each):

* ``POST /v1/chat/completions`` — the OpenAI request shape; a ``chat.completion``
  object, or with ``"stream": true`` ``text/event-stream`` ``chat.completion.chunk``
  events ending with ``data: [DONE]``. Usage is estimated (characters / 4) and
  marked ``"estimated": true``.
* ``GET /v1/models``, ``GET /v1/models/{model}`` — the models and aliases.
* ``GET /health`` — liveness and the stored credentials' state (no secrets).

Errors come in OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``
with the status :data:`ERROR_STATUS` gives the library's error class. An error
after a stream has started arrives as a final ``data: {"error": …}`` event,
then the stream ends (without ``[DONE]``).

Every client shares the provider class's credential store, so its single-flight
refreshes (one page read, one browser) serve concurrent requests. A client that
hangs up cancels its request, which closes the library's async generator and
with it the upstream connection — this needs ``handler_cancellation=True`` on
the runner, which :func:`running` and the command set.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import math
import os
import secrets
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from provider import cli
from provider._browsers import WarmBrowser
from provider._provider import ChatgptFree
from scraper.errors import (
    AccessError,
    BrowserError,
    ConfigurationError,
    InvalidInputError,
    MessageRejectedError,
    ModelNotSupportedError,
    NetworkError,
    ProviderError,
    ProviderTimeoutError,
    QuotaExceededError,
    RateLimitedError,
    SiteError,
    UpstreamError,
    redact_url,
)

__all__ = [
    "ENV_API_KEY",
    "ERROR_STATUS",
    "Server",
    "ServerState",
    "is_loopback",
    "main",
    "make_app",
    "running",
]

log = logging.getLogger(__name__)

#: Environment variable holding the bearer key (``--api-key`` overrides it).
ENV_API_KEY = "PROVIDER_API_KEY"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 1337
#: Prompts are capped at 100,000 characters; leave room for JSON escaping and history.
MAX_BODY_BYTES = 4 * 1024 * 1024
#: A warm browser (browser transport) nobody chatted through for this long is closed.
BROWSER_IDLE_SECONDS = 300.0
#: Characters per token for the estimated usage (OpenAI's rule of thumb for English).
CHARS_PER_TOKEN = 4
OWNER = "chatgptfree"

#: Library error class → (HTTP status, OpenAI error type, code). The first match
#: in this order wins, so subclasses come before their bases.
ERROR_STATUS: tuple[tuple[type[ProviderError], int, str, str], ...] = (
    (ModelNotSupportedError, 404, "invalid_request_error", "model_not_found"),
    # A bad PROVIDER_CACHE_DIR or proxy is the server's own setting, not the client's.
    (ConfigurationError, 500, "server_error", "configuration_error"),
    (InvalidInputError, 400, "invalid_request_error", "invalid_request"),
    # Banned words / moderation / a ban on this visitor: the same request will not pass.
    (MessageRejectedError, 400, "invalid_request_error", "content_filter"),
    (QuotaExceededError, 429, "rate_limit_error", "insufficient_quota"),
    (RateLimitedError, 429, "rate_limit_error", "rate_limit_exceeded"),
    # Blocked, a challenge not passed, guests refused: this server cannot get through.
    (AccessError, 503, "server_error", "site_blocked"),
    (BrowserError, 503, "server_error", "browser_unavailable"),
    (ProviderTimeoutError, 504, "server_error", "timeout"),
    (NetworkError, 502, "server_error", "site_unreachable"),
    (UpstreamError, 502, "server_error", "upstream_error"),
    (SiteError, 502, "server_error", "site_error"),
    (ProviderError, 502, "server_error", "provider_error"),
)


# -- errors in OpenAI's shape ------------------------------------------------------------


class APIError(Exception):
    """An error answered in OpenAI's shape with its HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = dict(headers or {})

    @classmethod
    def from_provider(cls, exc: ProviderError) -> APIError:
        status, type_, code = next(
            (status, type_, code)
            for kind, status, type_, code in ERROR_STATUS
            if isinstance(exc, kind)
        )
        headers: dict[str, str] = {}
        retry_after = getattr(exc, "retry_after", None)
        if status == 429 and isinstance(retry_after, int | float) and retry_after >= 0:
            headers["Retry-After"] = str(math.ceil(retry_after))
        # The library's messages never carry a nonce, cookie value or proxy password.
        return cls(status, str(exc), type=type_, code=code, headers=headers)

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self) -> web.Response:
        return web.json_response(self.body(), status=self.status, headers=self.headers)


def _as_api_error(exc: BaseException) -> APIError:
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, ProviderError):
        return APIError.from_provider(exc)
    log.exception("internal error while answering", exc_info=exc)
    return APIError(
        500,
        f"internal error ({type(exc).__name__}); the server's log has the details",
        type="server_error",
        code="internal_error",
    )


# -- state and the app -------------------------------------------------------------------


@dataclass
class ServerState:
    """What every handler of one app shares."""

    provider: type[ChatgptFree]
    api_key: str | None = None
    timeout: float = 120
    proxy: str | None = None
    started: float = field(default_factory=time.time)
    #: Upstream chats open right now (a client that hung up must bring it back down).
    in_flight: int = 0
    served: int = 0
    #: The browser transport's warm browsers: one per (site, proxy) while the site
    #: needs it, shared by concurrent chats, closed when idle or with the app.
    browsers: WarmBrowser | None = None


STATE = web.AppKey("provider.serve.state", ServerState)


def make_app(
    provider_class: type[ChatgptFree] = ChatgptFree,
    *,
    api_key: str | None = None,
    timeout: float = 120,
    proxy: str | None = None,
) -> web.Application:
    """The aiohttp application serving ``provider_class`` (one site) the OpenAI way.

    ``api_key``: when set, every ``/v1`` route needs ``Authorization: Bearer <key>``.
    ``timeout`` and ``proxy`` go to every library call. Run it with
    ``handler_cancellation=True`` (as :func:`running` does) so a client that
    hangs up cancels its upstream stream.
    """
    app = web.Application(
        middlewares=[_errors_middleware, _auth_middleware], client_max_size=MAX_BODY_BYTES
    )
    browsers = WarmBrowser(idle_timeout=BROWSER_IDLE_SECONDS)
    app[STATE] = ServerState(
        provider=provider_class,
        api_key=api_key or None,
        timeout=timeout,
        proxy=proxy,
        browsers=browsers,
    )
    app.add_routes(ROUTES)

    async def close_browsers(_: web.Application) -> None:
        await browsers.aclose()

    app.on_cleanup.append(close_browsers)
    return app


@dataclass
class Server:
    """A running server: its address and shared state."""

    url: str
    app: web.Application

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as ``base_url``."""
        return self.url + "/v1"

    @property
    def state(self) -> ServerState:
        return self.app[STATE]


@contextlib.asynccontextmanager
async def running(
    provider_class: type[ChatgptFree] = ChatgptFree,
    *,
    host: str = DEFAULT_HOST,
    port: int = 0,
    api_key: str | None = None,
    timeout: float = 120,  # noqa: ASYNC109 - the per-call budget handed to the library
    proxy: str | None = None,
    access_log: bool = False,
) -> AsyncIterator[Server]:
    """Serve in the current event loop (port 0: the OS picks one; see ``Server.url``).

    >>> async with running(MySite, api_key="k") as server:   # doctest: +SKIP
    ...     client = openai.AsyncOpenAI(base_url=server.base_url, api_key="k")
    """
    app = make_app(provider_class, api_key=api_key, timeout=timeout, proxy=proxy)
    runner = web.AppRunner(
        app,
        handler_cancellation=True,
        shutdown_timeout=1.0,
        access_log=logging.getLogger("provider.serve.access") if access_log else None,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0]
        bound_host = bound[0] if host in ("", "0.0.0.0", "::") else host
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        yield Server(url=f"http://{shown}:{bound[1]}", app=app)
    finally:
        await runner.cleanup()


# -- middlewares ---------------------------------------------------------------------------


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure, ours or aiohttp's (404 route, 405, 413), in OpenAI's error shape."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}
        return APIError(
            exc.status,
            exc.text or exc.reason,
            code=code.get(exc.status),
            headers={k: v for k, v in exc.headers.items() if k.lower() == "allow"},
        ).response()
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception as exc:
        return _as_api_error(exc).response()


@web.middleware
async def _auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    key = request.app[STATE].api_key
    if key is not None and request.path.startswith("/v1"):
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        # Constant-time compare, on bytes, so the time taken says nothing about the key.
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), key.encode()
        ):
            raise APIError(
                401,
                "Incorrect or missing API key: send 'Authorization: Bearer <key>' "
                "with the server's key",
                code="invalid_api_key",
                headers={"WWW-Authenticate": 'Bearer realm="provider.serve"'},
            )
    return await handler(request)


# -- the request ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: list[dict[str, Any]]
    stream: bool
    include_usage: bool


def parse_chat_request(body: object) -> ChatRequest:
    """The fields the site can act on; the rest (temperature, max_tokens…) are ignored."""
    if not isinstance(body, dict):
        raise APIError(400, "the request body must be a JSON object", code="invalid_request")
    model = body.get("model", "")
    if model is None:
        model = ""
    if not isinstance(model, str):
        raise APIError(400, "'model' must be a string", param="model", code="invalid_type")
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise APIError(400, "'stream' must be true or false", param="stream", code="invalid_type")
    n = body.get("n", 1)
    if n not in (1, None):
        raise APIError(400, "this site answers with one choice only: 'n' must be 1", param="n")
    options = body.get("stream_options") or {}
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    return ChatRequest(
        model=model,
        messages=_messages(body.get("messages")),
        stream=stream,
        include_usage=include_usage,
    )


def _messages(raw: object) -> list[dict[str, Any]]:
    """OpenAI messages → the library's ``{"role", "content": str}`` dicts.

    Content given as parts keeps its text parts (joined by newlines); the site
    takes text only, so any other part is refused. Roles and the rest are
    checked by the library.
    """
    if not isinstance(raw, list) or not raw:
        raise APIError(
            400,
            "'messages' must be a non-empty array of {role, content} objects",
            param="messages",
            code="invalid_type" if raw is not None else "missing_required_parameter",
        )
    out: list[dict[str, Any]] = []
    for i, message in enumerate(raw):
        if not isinstance(message, dict):
            raise APIError(400, f"messages[{i}] must be an object", param=f"messages[{i}]")
        content = message.get("content")
        if content is None:
            content = ""  # an assistant turn that only called tools
        elif isinstance(content, list):
            texts = []
            for j, part in enumerate(content):
                if not isinstance(part, dict) or part.get("type") != "text":
                    kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                    raise APIError(
                        400,
                        f"messages[{i}].content[{j}] is a {kind!r} part: this site takes text only",
                        param=f"messages[{i}].content",
                    )
                texts.append(str(part.get("text", "")))
            content = "\n".join(texts)
        out.append({"role": message.get("role"), "content": content})
    return out


async def _json_body(request: web.Request) -> object:
    try:
        return await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise APIError(400, "the request body is not valid JSON", code="invalid_json") from None


# -- handlers ------------------------------------------------------------------------------

ROUTES = web.RouteTableDef()


@ROUTES.post("/v1/chat/completions")
async def chat_completions(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    chat = parse_chat_request(await _json_body(request))
    model = state.provider.get_model(chat.model)  # unknown → ModelNotSupportedError → 404
    reply = _Reply(model=model, prompt_chars=sum(len(m["content"]) for m in chat.messages))
    async with _upstream(state, chat) as chunks:
        if chat.stream:
            return await _stream(request, chunks, reply, chat.include_usage)
        text = "".join([chunk async for chunk in chunks])
    reply.completion_chars = len(text)
    return web.json_response(
        {
            "id": reply.id,
            "object": "chat.completion",
            "created": reply.created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": reply.usage(),
            "system_fingerprint": None,
        }
    )


@ROUTES.get("/v1/models")
async def list_models(request: web.Request) -> web.Response:
    provider = request.app[STATE].provider
    return web.json_response({"object": "list", "data": _models(provider)})


@ROUTES.get("/v1/models/{model}")
async def retrieve_model(request: web.Request) -> web.Response:
    provider = request.app[STATE].provider
    wanted = request.match_info["model"]
    for entry in _models(provider):
        if entry["id"] == wanted:
            return web.json_response(entry)
    raise APIError(
        404,
        f"The model '{wanted}' does not exist here: see GET /v1/models",
        param="model",
        code="model_not_found",
    )


@ROUTES.get("/health")
async def health(request: web.Request) -> web.Response:
    """Liveness plus the stored credentials' state; never a nonce or a cookie value."""
    state = request.app[STATE]
    target = state.provider.target(state.proxy)
    try:
        creds = state.provider.stored_credentials(state.proxy)
    except ProviderError as exc:  # an unusable cache dir: say so, stay up
        credentials: dict[str, Any] | None = {"error": str(exc)}
    else:
        now = time.time()
        credentials = (
            None
            if creds is None
            else {
                "generation": creds.generation,
                "source": creds.source,
                "fresh": creds.fresh(now),
                "obtained_at": _iso(creds.obtained_at),
                "expires_at": _iso(creds.expires_at),
                "expires_in_seconds": round(creds.expires_at - now, 1),
                "clearance": any(c.name == "cf_clearance" for c in creds.cookies),
            }
        )
    return web.json_response(
        {
            "status": "ok",
            "uptime_seconds": round(time.time() - state.started, 3),
            "in_flight": state.in_flight,
            "served": state.served,
            "auth": state.api_key is not None,
            "sites": [
                {
                    "site": target.site,
                    "proxy": redact_url(state.proxy) or None,
                    "credentials": credentials,
                }
            ],
        }
    )


# -- the pieces ------------------------------------------------------------------------------


@dataclass
class _Reply:
    model: str
    prompt_chars: int
    completion_chars: int = 0
    id: str = field(default_factory=lambda: "chatcmpl-" + secrets.token_hex(12))
    created: int = field(default_factory=lambda: int(time.time()))

    def usage(self) -> dict[str, Any]:
        prompt = math.ceil(self.prompt_chars / CHARS_PER_TOKEN)
        completion = math.ceil(self.completion_chars / CHARS_PER_TOKEN)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            # The site reports no token counts: these are characters / 4.
            "estimated": True,
        }

    def chunk(
        self, delta: dict[str, Any] | None, finish_reason: str | None = None, **extra: Any
    ) -> bytes:
        event = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": (
                [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
                if delta is not None
                else []
            ),
            **extra,
        }
        return _sse(event)


def _sse(data: object) -> bytes:
    return b"data: " + json.dumps(data, ensure_ascii=False).encode() + b"\n\n"


@contextlib.asynccontextmanager
async def _upstream(state: ServerState, chat: ChatRequest) -> AsyncIterator[AsyncIterator[str]]:
    """The library's generator, counted while open and always closed (aclose) at the end:
    on success, error, and when a client that hung up cancels the handler."""
    chunks = state.provider.create_async_generator(
        chat.model, chat.messages, proxy=state.proxy, timeout=state.timeout
    )
    state.in_flight += 1
    state.served += 1
    try:
        # The chat's browser, if its site needs the browser transport, is the server's
        # warm one (the generator runs in this task, inside this block).
        with state.browsers.use() if state.browsers else contextlib.nullcontext():
            yield chunks
    finally:
        try:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()
        finally:
            state.in_flight -= 1


async def _stream(
    request: web.Request, chunks: AsyncIterator[str], reply: _Reply, include_usage: bool
) -> web.StreamResponse:
    # Wait for the first chunk before sending headers: an error before any text
    # still gets its own HTTP status (401/404/429/503/504) instead of an event.
    iterator = aiter(chunks)
    first: str | None
    try:
        first = await anext(iterator)
    except StopAsyncIteration:
        first = None
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # tell nginx in front not to buffer
        }
    )
    await response.prepare(request)
    try:
        await response.write(reply.chunk({"role": "assistant", "content": ""}))
        if first:
            reply.completion_chars += len(first)
            await response.write(reply.chunk({"content": first}))
        if first is not None:
            async for text in iterator:
                if text:
                    reply.completion_chars += len(text)
                    await response.write(reply.chunk({"content": text}))
        await response.write(reply.chunk({}, "stop"))
        if include_usage:
            await response.write(reply.chunk(None, usage=reply.usage()))
        await response.write(b"data: [DONE]\n\n")
    except ConnectionResetError:
        raise  # the client left: the caller's finally closes the upstream
    except Exception as exc:
        # Headers are gone: the error becomes the last event, then the stream ends.
        await response.write(_sse(_as_api_error(exc).body()))
    await response.write_eof()
    return response


def _models(provider: type[ChatgptFree]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = [
        {"id": m, "object": "model", "created": 0, "owned_by": OWNER} for m in provider.models
    ]
    if provider.default_model not in provider.models:
        entries.insert(
            0, {"id": provider.default_model, "object": "model", "created": 0, "owned_by": OWNER}
        )
    for alias, target in provider.model_aliases.items():
        entries.append(
            {"id": alias, "object": "model", "created": 0, "owned_by": OWNER, "alias_of": target}
        )
    return entries


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name, or empty (every interface): assume it reaches further


# -- the command -------------------------------------------------------------------------------

EXAMPLES = f"""\
  python -m provider.serve                                   # http://127.0.0.1:{DEFAULT_PORT}/v1
  python -m provider.serve --sandbox --port 0                # the bundled imitation site, any port
  python -m provider.serve --sandbox legacy,challenge        # its challenge, passed in Chromium
  {ENV_API_KEY}=secret python -m provider.serve --host 0.0.0.0 --url https://example.org/chat/

  curl http://127.0.0.1:{DEFAULT_PORT}/v1/chat/completions -H 'Content-Type: application/json' \\
       -d '{{"model": "gpt-4o-mini", "messages": [{{"role": "user", "content": "Hi"}}]}}'"""

EXIT_CODES = f"""\
  0  stopped by SIGINT/SIGTERM after serving
  1  could not serve (the port is taken, the address is not ours)
  2  usage error: bad arguments, or a non-loopback --host without an API key

On start it prints the OpenAI base URL on stdout (with --json one object:
{{"url", "base_url", "site", "auth"}}); errors and progress go to stderr.

HTTP statuses, with OpenAI's error body {{"error": {{"message", "type", "param", "code"}}}}:
  400  bad request, or the site rejected the message (code content_filter)
  401  missing or wrong bearer key         404  unknown model
  429  rate limited or guest quota (Retry-After when the site says)
  502  the site, its AI backend or the network failed
  503  the site blocks this server (hard block, challenge not passed, no browser)
  504  the timeout passed
An error after a stream has started is its last event, without [DONE].

environment of this command:
  {ENV_API_KEY}     the bearer key clients must send (--api-key overrides it);
                       required when --host is not a loopback address"""


def build_parser() -> argparse.ArgumentParser:
    p = cli.parser(
        "python -m provider.serve",
        "Serve ChatGPT Free (or another site running the AI Power chat plugin) as an "
        "OpenAI-compatible API: POST /v1/chat/completions (streaming or not), "
        "GET /v1/models, GET /health.",
        EXAMPLES,
        EXIT_CODES,
    )
    p.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help="address to bind (%(default)s); anything beyond loopback needs an API key",
    )
    p.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port (%(default)s; 0: any free one)"
    )
    p.add_argument(
        "--api-key",
        metavar="KEY",
        help=f"bearer key clients must send (default ${ENV_API_KEY}; the variable keeps it "
        "out of the process list)",
    )
    cli.add_common(p)
    return p


async def serve(args: argparse.Namespace) -> int:
    api_key = args.api_key or os.environ.get(ENV_API_KEY) or None
    if not is_loopback(args.host) and api_key is None:
        raise InvalidInputError(
            f"refusing to serve on {args.host}, beyond this machine, without an API key: "
            f"set {ENV_API_KEY} (or --api-key), or bind 127.0.0.1"
        )
    if not 0 <= args.port <= 65535:
        raise InvalidInputError(f"--port {args.port} is not a port number (0-65535)")
    async with cli.site_url(args) as urls:
        provider = cli.provider_class(urls[0], args)
        provider.target(args.proxy)  # a bad proxy URL is a usage error now, not per request
        timeout = _check_timeout(args.timeout)
        async with contextlib.AsyncExitStack() as stack:
            try:
                server = await stack.enter_async_context(
                    running(
                        provider,
                        host=args.host,
                        port=args.port,
                        api_key=api_key,
                        timeout=timeout,
                        proxy=args.proxy,
                        access_log=args.debug,
                    )
                )
            except OSError as exc:
                cli.clear_status()
                print(
                    f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
                    file=sys.stderr,
                )
                return cli.EXIT_FAILURE
            async with _stop_signals() as stop:  # before the announcement: a test may stop us
                _announce(args, server, urls[0], api_key is not None)
                await stop.wait()
    return cli.EXIT_OK


def _check_timeout(timeout: float) -> float:
    if not math.isfinite(timeout) or timeout <= 0:
        raise InvalidInputError(f"--timeout must be a positive number of seconds, not {timeout}")
    return timeout


def _announce(args: argparse.Namespace, server: Server, site: str, auth: bool) -> None:
    if args.json:
        print(
            json.dumps(
                {"url": server.url, "base_url": server.base_url, "site": site, "auth": auth}
            ),
            flush=True,
        )
    else:
        print(f"OpenAI-compatible endpoint: {server.base_url}", flush=True)
        print(
            f"serving {site}{' (bearer key required)' if auth else ''}; Ctrl-C stops",
            file=sys.stderr,
            flush=True,
        )


@contextlib.asynccontextmanager
async def _stop_signals() -> AsyncIterator[asyncio.Event]:
    """An event SIGINT and SIGTERM set: the server stops cleanly, exit 0."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows
            loop.add_signal_handler(sig, stop.set)
    try:
        yield stop
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(build_parser().parse_args(argv), serve)


if __name__ == "__main__":
    sys.exit(main())
