"""``python -m provider.serve``: the command that serves the app until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence

from provider.commands import cli
from provider.commands.serve._app import DEFAULT_HOST, ENV_API_KEY, Server, refuse_exposure, running
from scraper.errors import InvalidInputError

DEFAULT_PORT = 1337


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
        "GET /v1/models, GET /health, GET /metrics (Prometheus).",
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
    refuse_exposure(args.host, api_key)  # before the sandbox starts: a usage error, exit 2
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
