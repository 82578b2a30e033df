"""``python -m sandbox``: serve the imitation site by hand until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

from ._config import AIPKIT_ERRORS, LEGACY_ERRORS
from ._server import running

EXAMPLES = """\
examples:
  python -m sandbox --generation aipkit
  python -m sandbox --generation legacy --port 8081 --tick-seconds 30
  python -m sandbox --release 1.9.0   # class L4: a bad nonce gets WordPress's 403 page
  python -m sandbox --release 2.3.5 --language de   # class A1, refusing in German
  python -m sandbox --generation legacy --challenge --clearance-ttl 60
  python -m sandbox --generation aipkit --answer-bytes 20000 --chunk-delay 0.05
  python -m sandbox --generation legacy --hard-block
  python -m sandbox --tls --port 8443   # HTTPS; trust the CA file it prints
  python -m sandbox --challenge --bind-tls   # a clearance that will not travel to plain HTTP
  python -m sandbox --generation aipkit --reply-error api_error

The site is a local imitation for tests; it is not chatgptfree.ai.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox",
        description="Serve a local imitation of a WordPress 'ChatGPT Free' site running the "
        "AI Power chat plugin (legacy 1.x or aipkit 2.x), optionally behind a "
        "Cloudflare-like challenge, block or rate limit.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--generation",
        choices=["legacy", "aipkit"],
        help="plugin generation (default: the --release's, else aipkit)",
    )
    parser.add_argument(
        "--release",
        metavar="X.Y[.Z]",
        help="plugin release to imitate, any of the history 1.8.79-2.4.71 (default 1.8.79 "
        "legacy, 2.4.71 aipkit); the site behaves as its class L1-L4 (legacy) or A1-A8 "
        "(aipkit); implies --generation, which must agree",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument(
        "--tls",
        action="store_true",
        help="serve HTTPS with a certificate made at start; prints the CA file to trust",
    )
    parser.add_argument(
        "--bind-tls",
        action="store_true",
        help="with --challenge: accept cf_clearance only from the TLS fingerprint that "
        "earned it (implies --tls)",
    )
    edge = parser.add_mutually_exclusive_group()
    edge.add_argument("--challenge", action="store_true", help="JavaScript challenge (403)")
    edge.add_argument("--hard-block", action="store_true", help="Cloudflare 1020 block (403)")
    edge.add_argument("--rate-limit", action="store_true", help="429 with Retry-After")
    parser.add_argument(
        "--protection",
        action="store_true",
        help="a challenge whose page detects automated browsers (the public signals) "
        "and refuses them the clearance",
    )
    parser.add_argument("--clearance-ttl", type=float, help="cf_clearance lifetime, seconds")
    parser.add_argument("--retry-after", type=int, help="Retry-After seconds for --rate-limit")
    parser.add_argument("--tick-seconds", type=float, help="WordPress nonce tick (43200)")
    parser.add_argument("--answer-bytes", type=int, help="long answers of exactly N bytes")
    parser.add_argument("--chunk-delay", type=float, help="seconds between deltas")
    parser.add_argument(
        "--end-delay",
        type=float,
        help="seconds between the answer's last event and the body's end",
    )
    parser.add_argument(
        "--keep-alive", action="store_true", help="keep connections open between replies"
    )
    parser.add_argument("--no-streaming", action="store_true", help="legacy: JSON replies")
    parser.add_argument(
        "--legacy-markup", choices=["shortcode", "widget", "both"], help="legacy page element"
    )
    parser.add_argument("--legacy-template", choices=["1.8", "1.7", "compact"])
    parser.add_argument(
        "--language", choices=["en", "de"], help="the site's language for its refusals"
    )
    parser.add_argument(
        "--text",
        action="append",
        metavar="KIND=TEXT",
        help="the site's own refusal text, e.g. banned_words='No such words here.' (repeatable)",
    )
    parser.add_argument(
        "--reply-error",
        choices=sorted(LEGACY_ERRORS | AIPKIT_ERRORS),
        help="make chat replies fail this way",
    )
    return parser


def _config_fields(args: argparse.Namespace) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in (
        "clearance_ttl",
        "retry_after",
        "tick_seconds",
        "answer_bytes",
        "chunk_delay",
        "end_delay",
        "legacy_markup",
        "legacy_template",
        "reply_error",
        "release",
        "language",
    ):
        value = getattr(args, name)
        if value is not None:
            fields[name] = value
    if args.text:
        fields["texts"] = dict(item.split("=", 1) for item in args.text if "=" in item)
    if args.no_streaming:
        fields["streaming"] = False
    if args.bind_tls:
        fields["bind_tls"] = True
    if args.protection:
        fields["protection"] = True
    if args.keep_alive:
        fields["keep_alive"] = True
    return fields


async def _serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with running(
        generation=args.generation,
        challenge=args.challenge,
        hard_block=args.hard_block,
        rate_limit=args.rate_limit,
        port=args.port,
        host=args.host,
        tls=args.tls,
        **_config_fields(args),
    ) as site:
        print(
            f"sandbox: local imitation of a ChatGPT Free site ({site.config.generation}, "
            f"release {site.config.plugin_release}, class {site.config.release_class}) "
            f"at {site.url} - for testing only, not the real site; Ctrl-C to stop",
            flush=True,
        )
        if site.ca_file is not None:
            print(f"sandbox: CA file (SSL_CERT_FILE={site.ca_file})", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except ValueError as exc:  # a SiteConfig value the site cannot act on
        print(f"sandbox: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
