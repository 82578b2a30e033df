"""The application: its middlewares, :func:`make_app` and :func:`running`."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from provider._browsers import WarmBrowser
from provider._provider import ChatgptFree
from provider.commands.serve._routes import ROUTES
from provider.commands.serve._state import BROWSER_IDLE_SECONDS, STATE, ServerState
from provider.commands.serve._wire import APIError, _as_api_error
from scraper.errors import InvalidInputError

DEFAULT_HOST = "127.0.0.1"
#: Environment variable holding the bearer key (``--api-key`` overrides it).
ENV_API_KEY = "PROVIDER_API_KEY"
#: Prompts are capped at 100,000 characters; leave room for JSON escaping and history.
MAX_BODY_BYTES = 4 * 1024 * 1024


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name, or empty (every interface): assume it reaches further


def refuse_exposure(host: str, api_key: str | None) -> None:
    """The loopback-or-key rule: raise :class:`InvalidInputError` when ``host``
    reaches beyond this machine and no API key guards the server. Called where
    the server is built (:func:`make_app`, hence :func:`running` and the command)."""
    if not api_key and not is_loopback(host):
        raise InvalidInputError(
            f"refusing to serve on {host or 'every interface'}, beyond this machine, "
            f"without an API key: set {ENV_API_KEY} (or --api-key), or bind 127.0.0.1"
        )


def make_app(
    provider_class: type[ChatgptFree] = ChatgptFree,
    *,
    api_key: str | None = None,
    timeout: float = 120,
    proxy: str | None = None,
    host: str = DEFAULT_HOST,
) -> web.Application:
    """The aiohttp application serving ``provider_class`` (one site) the OpenAI way.

    ``api_key``: when set, every ``/v1`` route needs ``Authorization: Bearer <key>``.
    ``host``: the address it will be bound to; beyond loopback it needs ``api_key``
    (:func:`refuse_exposure`). ``timeout`` and ``proxy`` go to every library call.
    Run it with ``handler_cancellation=True`` (as :func:`running` does) so a client
    that hangs up cancels its upstream stream.
    """
    refuse_exposure(host, api_key)
    app = web.Application(
        middlewares=[_metrics_middleware, _errors_middleware, _auth_middleware],
        client_max_size=MAX_BODY_BYTES,
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
    app = make_app(provider_class, api_key=api_key, timeout=timeout, proxy=proxy, host=host)
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
        request.app[STATE].metrics.error(exc)
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
        request.app[STATE].metrics.error(exc)
        return _as_api_error(exc).response()


@web.middleware
async def _metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every request by route (its pattern, not its path) and final status."""
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except (asyncio.CancelledError, ConnectionResetError):
        status = 499  # the client hung up (nginx's word for it)
        raise
    finally:
        resource = getattr(request.match_info.route, "resource", None)
        route = resource.canonical if resource is not None else "unmatched"
        request.app[STATE].metrics.requests.labels(
            route=route, method=request.method, status=str(status)
        ).inc()


@web.middleware
async def _auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    key = request.app[STATE].api_key
    if key is not None and (request.path.startswith("/v1") or request.path == "/metrics"):
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
