"""What the three commands (chat, refresh, health) share: options, exit codes,
error reporting, the progress line, and the in-process sandbox.

Conventions: ``--help`` with examples; exit 0 success, 1 failure, 2 usage
error; human output on a terminal, one JSON object with ``--json``; errors as
one line on stderr, with the traceback only under ``--debug``; a status line on
stderr (terminals only) while something takes more than a moment.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from provider._provider import ChatgptFree
from scraper.errors import InvalidInputError, ProviderError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

ENVIRONMENT = """\
environment:
  PROVIDER_CACHE_DIR   folder of the credential store (default: the user cache dir)
  PROVIDER_STORE       redis://[user:password@]host:port/db (or rediss://): share the
                       credentials with a fleet through Redis (--store overrides it)
  PROVIDER_BROWSER     path to a Chromium binary for the browser fallback
  HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY (or lower case, which wins)
                       the proxy when --proxy is not given, as curl reads them;
                       --no-proxy ignores them"""

SANDBOX_WORDS = {"aipkit", "legacy", "challenge", "hard-block", "rate-limit"}


def parser(prog: str, description: str, examples: str, exit_codes: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=f"examples:\n{examples}\n\nexit codes:\n{exit_codes}\n\n{ENVIRONMENT}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_common(p: argparse.ArgumentParser, *, many_urls: bool = False) -> None:
    """The options every command takes: where, through what, how long, how to report."""
    if many_urls:
        p.add_argument(
            "--url",
            action="append",
            metavar="URL",
            help=f"site or chat page (repeatable; default {ChatgptFree.url})",
        )
    else:
        p.add_argument(
            "--url", metavar="URL", help=f"site or chat page (default {ChatgptFree.url})"
        )
    via = p.add_mutually_exclusive_group()
    via.add_argument(
        "--proxy",
        metavar="URL",
        help="http://, https:// or socks5://[user:pass@]host:port "
        "(default: $HTTPS_PROXY / $HTTP_PROXY / $ALL_PROXY, unless $NO_PROXY exempts the site)",
    )
    via.add_argument(
        "--no-proxy",
        action="store_true",
        help="connect directly, whatever the proxy variables of the environment say",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=120,
        metavar="SECONDS",
        help="budget for credentials, connecting and each gap in the answer (%(default)s)",
    )
    p.add_argument(
        "--browser",
        choices=["auto", "never", "always"],
        default="auto",
        help="headless Chromium: only for a challenge (auto), never, or always",
    )
    p.add_argument(
        "--transport",
        choices=["auto", "http", "browser"],
        default="auto",
        help="how chats travel: plain HTTP, inside the browser page that passed the "
        "challenge, or auto (the browser once its clearance is refused over HTTP)",
    )
    p.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="credential store folder (default: $PROVIDER_CACHE_DIR or the user cache dir)",
    )
    p.add_argument(
        "--store",
        metavar="URL",
        help="credential store shared by a fleet: redis://[user:password@]host:port/db or "
        "rediss://…; 'file' for the file store (default: $PROVIDER_STORE, else files)",
    )
    p.add_argument(
        "--sandbox",
        nargs="?",
        const="aipkit",
        metavar="MODE",
        help="start the bundled sandbox (a local imitation of the site) and use it, "
        "directly (the environment's proxy cannot reach it; --proxy still applies); "
        "MODE is aipkit (default), legacy, challenge, hard-block or rate-limit, "
        "comma-separated, e.g. legacy,challenge",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--debug", action="store_true", help="log everything and show tracebacks")


def names_sandbox_modes(value: str) -> bool:
    """Whether ``--sandbox VALUE`` meant modes (a typo among them is then an error)."""
    return any(word in SANDBOX_WORDS for word in value.split(","))


def sandbox_kwargs(spec: str) -> dict[str, Any]:
    words = set(spec.split(","))
    unknown = words - SANDBOX_WORDS
    if unknown:
        raise InvalidInputError(
            f"--sandbox {spec!r}: unknown mode {', '.join(sorted(unknown))}; "
            f"use {', '.join(sorted(SANDBOX_WORDS))}"
        )
    return {
        "generation": "legacy" if "legacy" in words else "aipkit",
        "challenge": "challenge" in words,
        "hard_block": "hard-block" in words,
        "rate_limit": "rate-limit" in words,
    }


@contextlib.asynccontextmanager
async def site_url(args: argparse.Namespace) -> AsyncIterator[list[str]]:
    """The URLs to work on: the bundled sandbox's (started here), or the ones given."""
    if args.sandbox:
        if args.url:
            raise InvalidInputError("--sandbox and --url exclude each other: pick one")
        import tempfile

        import sandbox  # only the commands use it, and only on request

        kwargs = sandbox_kwargs(args.sandbox)
        if args.proxy is None:
            # The sandbox listens on this machine's loopback, which the environment's
            # proxy (HTTPS_PROXY & co.) usually cannot reach: go there directly.
            args.proxy = ""
        with contextlib.ExitStack() as stack:
            if args.cache_dir is None:
                # Each run's sandbox has a new port: keep its credentials out of the user's store.
                tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="provider-sandbox-"))
                args.cache_dir = tmp
                os.environ["PROVIDER_CACHE_DIR"] = tmp
            async with sandbox.running(**kwargs) as site:
                yield [site.url]
        return
    urls = args.url if isinstance(args.url, list) else [args.url] if args.url else []
    yield urls or [ChatgptFree.url]


def provider_class(url: str, args: argparse.Namespace) -> type[ChatgptFree]:
    attrs: dict[str, Any] = {"url": url, "browser": args.browser}
    if getattr(args, "transport", None):
        attrs["transport"] = args.transport
    if args.cache_dir:
        attrs["cache_dir"] = Path(args.cache_dir)
    if getattr(args, "store", None):
        attrs["store"] = args.store
    # The class's name is what the library's messages call it ("Model is not supported:
    # X in: <name>", g4f's wording): the site's host, which the user gave, not ours.
    return type(site_name(url), (ChatgptFree,), attrs)


def site_name(url: str) -> str:
    """The host (and port) of ``url``: how the commands name the site's class."""
    return urlsplit(url).netloc.rpartition("@")[2] or url


class StatusLine(logging.Handler):
    """Shows the latest progress message on one rewritten stderr line (terminals only)."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(logging.INFO)
        self.stream = stream
        self.shown = False

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage().splitlines()[0][:110]
        self.stream.write(f"\r\x1b[K… {text}")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False


_status: StatusLine | None = None


def status(message: str) -> None:
    """Progress for a person at a terminal; silent otherwise."""
    if _status is not None:
        _status.emit(logging.makeLogRecord({"msg": message}))


def clear_status() -> None:
    if _status is not None:
        _status.clear()


def setup_logging(debug: bool, json_mode: bool) -> None:
    global _status
    root = logging.getLogger()
    root.handlers.clear()
    if debug:
        logging.basicConfig(
            level=logging.DEBUG,
            stream=sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        return
    warn = logging.StreamHandler(sys.stderr)
    warn.setLevel(logging.WARNING)
    warn.setFormatter(logging.Formatter("warning: %(message)s"))
    root.addHandler(warn)
    root.setLevel(logging.WARNING)
    if sys.stderr.isatty() and not json_mode:
        _status = StatusLine(sys.stderr)
        for name in ("scraper", "provider"):
            logger = logging.getLogger(name)
            logger.setLevel(logging.INFO)
            logger.addHandler(_status)


def run(args: argparse.Namespace, main: Callable[[argparse.Namespace], Awaitable[int]]) -> int:
    """Run ``main`` and turn every way it can end into an exit code and one stderr line."""
    setup_logging(args.debug, args.json)
    try:
        return asyncio.run(_checked(main, args))
    except KeyboardInterrupt:
        clear_status()
        print("interrupted", file=sys.stderr)
        return 130
    except InvalidInputError as exc:
        return _fail(args, exc, EXIT_USAGE)
    except ProviderError as exc:
        return _fail(args, exc, EXIT_FAILURE)
    except Exception as exc:  # a bug: say so plainly, keep the traceback for --debug
        return _fail(args, exc, EXIT_FAILURE, internal=True)
    finally:
        clear_status()


async def _checked(
    main: Callable[[argparse.Namespace], Awaitable[int]], args: argparse.Namespace
) -> int:
    if args.cache_dir is not None:
        os.environ["PROVIDER_CACHE_DIR"] = args.cache_dir
    if args.no_proxy:
        args.proxy = ""  # the library's "no proxy at all, despite the environment"
    # A bad store URL is a usage error before any work, not an error per chat.
    given, setting = getattr(args, "store", None), "--store"
    if not given:
        given, setting = os.environ.get("PROVIDER_STORE"), "PROVIDER_STORE"
    if given and given.strip().lower() != "file":
        from provider.store.redis import parse_url

        parse_url(given.strip(), setting)
    # So is a cache dir that is not a folder: every command needs it, and the server
    # would otherwise start and then fail every request with it.
    from provider.store import default_cache_dir

    default_cache_dir()
    return await main(args)


def _fail(args: argparse.Namespace, exc: BaseException, code: int, internal: bool = False) -> int:
    clear_status()
    if args.debug:
        traceback.print_exception(exc, file=sys.stderr)
    kind = type(exc).__name__
    text = f"internal error ({kind}): {exc}; run with --debug for details" if internal else str(exc)
    if args.json:
        print(json.dumps({"ok": False, "error": {"type": kind, "message": text}}))
    print(f"error: {text}", file=sys.stderr)
    return code
