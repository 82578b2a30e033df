"""Starting and stopping the imitation: in the caller's event loop or on its own thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from aiohttp import web

from ._app import make_app
from ._config import Generation, SiteConfig, release_generation
from ._site import Site
from ._tls import make_tls


def _make_site(
    generation: Generation | None,
    challenge: bool,
    hard_block: bool,
    rate_limit: bool,
    fields: dict[str, Any],
) -> Site:
    if generation is None:  # the release's generation, else today's site (aipkit)
        release = fields.get("release")
        generation = release_generation(release) if isinstance(release, str) else "aipkit"
    config = SiteConfig(
        generation=generation,
        challenge=challenge,
        hard_block=hard_block,
        rate_limit=rate_limit,
        **fields,
    )
    return Site(config)


@contextlib.asynccontextmanager
async def _serve(
    site: Site, host: str, port: int, tls: bool = False, tls_names: tuple[str, ...] = ()
) -> AsyncIterator[Site]:
    site.closing = asyncio.Event()  # bound to the loop that serves
    # bind_tls fingerprints the client's TLS: it needs TLS.
    made = make_tls(tls_names) if tls or site.config.bind_tls else None
    # handler_cancellation: a client that hangs up cancels its handler (stalled streams).
    # A short shutdown_timeout: a test's exit must not wait for open streams.
    runner = web.AppRunner(
        make_app(site), handler_cancellation=True, shutdown_timeout=0.5, access_log=None
    )
    await runner.setup()
    try:
        tcp = web.TCPSite(runner, host, port, ssl_context=made.context if made else None)
        await tcp.start()
        bound_port = runner.addresses[0][1]  # the port the OS picked when asked for 0
        shown_host = f"[{host}]" if ":" in host else host
        site.url = f"{'https' if made else 'http'}://{shown_host}:{bound_port}"
        site.ca_file = made.ca_file if made else None
        yield site
    finally:
        site.closing.set()
        await runner.cleanup()
        if made is not None:
            made.remove()


@contextlib.asynccontextmanager
async def running(
    generation: Generation | None = None,
    challenge: bool = False,
    hard_block: bool = False,
    rate_limit: bool = False,
    port: int = 0,
    host: str = "127.0.0.1",
    tls: bool = False,
    tls_names: tuple[str, ...] = (),
    **config_fields: Any,
) -> AsyncIterator[Site]:
    """Serve an imitation site in the current event loop.

    Example::

        async with sandbox.running(generation="legacy", tick_seconds=2) as site:
            async with aiohttp.ClientSession() as http:
                page = await (await http.get(site.url + "/chat/")).text()

    ``tls=True`` serves HTTPS with a certificate for 127.0.0.1, localhost and
    ``tls_names``, signed by a CA made at start: ``site.url`` is then
    ``https://…`` and ``site.ca_file`` the CA's PEM file (gone when the site stops),
    for ``SSL_CERT_FILE`` or a client's ``cafile``.

    ``generation`` defaults to the one of ``release`` (``release="1.9"``: legacy,
    refusing a bad nonce with WordPress's 403 page), else ``aipkit``; given both,
    they must agree. ``config_fields`` are any other ``SiteConfig`` fields.
    """
    site = _make_site(generation, challenge, hard_block, rate_limit, config_fields)
    async with _serve(site, host, port, tls, tls_names) as served:
        yield served


@contextlib.contextmanager
def serve_in_thread(
    generation: Generation | None = None,
    challenge: bool = False,
    hard_block: bool = False,
    rate_limit: bool = False,
    port: int = 0,
    host: str = "127.0.0.1",
    tls: bool = False,
    tls_names: tuple[str, ...] = (),
    **config_fields: Any,
) -> Iterator[Site]:
    """Like ``running`` but on a thread with its own event loop, for sync code
    (pytest-playwright's sync ``page``, urllib). Yields once the port is bound."""
    site = _make_site(generation, challenge, hard_block, rate_limit, config_fields)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    failure: list[BaseException] = []
    stop: asyncio.Event | None = None

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        try:
            async with _serve(site, host, port, tls, tls_names):
                ready.set()
                await stop.wait()
        except BaseException as exc:  # reported to the caller's thread below
            failure.append(exc)
            ready.set()

    def run() -> None:
        try:
            loop.run_until_complete(main())
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="sandbox-server", daemon=True)
    thread.start()
    ready.wait()
    try:
        if failure:
            raise failure[0]
        yield site
    finally:
        if stop is not None and thread.is_alive():
            loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)
