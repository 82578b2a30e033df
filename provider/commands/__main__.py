"""``python -m provider "question"``: chat from the command line, the answer streamed to stdout."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

from provider._provider import ChatgptFree
from provider.commands import cli
from scraper.errors import InvalidInputError

EXAMPLES = """\
  python -m provider "What is the capital of France?"
  python -m provider --sandbox "Hello"                 # the bundled imitation site, offline
  python -m provider --sandbox legacy,challenge "Hi"   # through its challenge, in Chromium
  echo "Summarise this" | python -m provider --system "Be brief"
  python -m provider --proxy socks5://user:pass@127.0.0.1:1080 "Hi"
  HTTPS_PROXY=http://proxy.corp:3128 python -m provider "Hi"   # the environment's proxy
  python -m provider --no-proxy "Hi"                           # directly, despite it
  python -m provider --url https://example.org/chat/ --json "Hi\""""

EXIT_CODES = """\
  0  the answer arrived whole
  1  the chat failed (site, network, bot protection, timeout); the reason is on stderr
  2  usage error: bad arguments or input
  130 interrupted"""


def build_parser() -> argparse.ArgumentParser:
    p = cli.parser(
        "python -m provider",
        "Ask ChatGPT Free (or another site running the AI Power chat plugin) one question; "
        "the answer streams to stdout as it arrives. Without a question, it is read from stdin.",
        EXAMPLES,
        EXIT_CODES,
    )
    p.add_argument("question", nargs="*", help="the question (default: read stdin)")
    p.add_argument("--model", default="", help=f"model (default {ChatgptFree.default_model})")
    p.add_argument("--system", metavar="TEXT", help="a system message sent before the question")
    cli.add_common(p)
    return p


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    # `--sandbox "Hello"`: argparse hands the question to --sandbox's optional value.
    if args.sandbox and not cli.names_sandbox_modes(args.sandbox):
        args.question = [args.sandbox, *args.question]
        args.sandbox = "aipkit"
    return args


def read_question(args: argparse.Namespace) -> str:
    if args.question:
        return " ".join(args.question)
    if sys.stdin is None or sys.stdin.isatty():
        raise InvalidInputError("no question: give one as an argument or pipe it on stdin")
    text = sys.stdin.read()
    if not text.strip():
        raise InvalidInputError("stdin held no question: give one as an argument or pipe it")
    return text.strip("\n")


async def chat(args: argparse.Namespace) -> int:
    question = read_question(args)
    messages = [{"role": "user", "content": question}]
    if args.system:
        messages.insert(0, {"role": "system", "content": args.system})
    async with cli.site_url(args) as urls:
        provider = cli.provider_class(urls[0], args)
        provider.get_model(args.model)
        cli.status(f"asking {urls[0]}")
        start = time.monotonic()
        first: float | None = None
        parts: list[str] = []
        async for chunk in provider.create_async_generator(
            args.model, messages, proxy=args.proxy, timeout=args.timeout
        ):
            if first is None:
                first = time.monotonic() - start
                cli.clear_status()
            parts.append(chunk)
            if not args.json:
                sys.stdout.write(chunk)
                sys.stdout.flush()
        total = time.monotonic() - start
    if args.json:
        print(
            json.dumps(
                {
                    "ok": True,
                    "answer": "".join(parts),
                    "model": provider.get_model(args.model),
                    "site": urls[0],
                    **provider.target(args.proxy).proxy_report(),
                    "first_chunk_seconds": round(first or total, 3),
                    "total_seconds": round(total, 3),
                }
            )
        )
    else:
        sys.stdout.write("\n")
    return cli.EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(parse(argv), chat)


if __name__ == "__main__":
    sys.exit(main())
