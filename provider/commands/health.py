"""``python -m provider.health``: the CI health check of a site.

Steps, each timed: the page is reachable; the block verdict (a challenge is
healthy when the browser fallback passes it); credentials are obtainable (with
the plugin's generation and release, from its scripts' ``?ver=``); and,
unless ``--no-chat``, one real round trip with a short prompt, with its time to
first chunk. ``--json`` prints one object with stable keys; ``--junit FILE``
writes a JUnit XML report so CI systems show the steps as tests.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from provider._browsers import WarmBrowser
from provider.commands import cli
from scraper.errors import InvalidInputError, ProviderError, redact_url
from scraper.http import DEFAULT_USER_AGENT, Deadline, Proxy, borrow, fetch_page
from scraper.releases import release_class
from scraper.verdict import verdict

#: Bumped only when a key is removed or changes meaning.
JSON_VERSION = 1

EXAMPLES = """\
  python -m provider.health                              # chatgptfree.ai, with one chat
  python -m provider.health --no-chat --json             # reachability and credentials only
  python -m provider.health --junit health.xml           # a report CI shows as tests
  python -m provider.health --sandbox challenge          # try it offline
  HTTPS_PROXY=http://proxy.corp:3128 python -m provider.health --json   # via the proxy
  python -m provider.health --no-proxy                   # directly, despite HTTPS_PROXY"""

EXIT_CODES = """\
  0  healthy: every step passed
  1  unhealthy: a step failed (see its error)
  2  usage error: bad arguments

JSON (--json), one object:
  {"version": 1, "healthy": bool, "site": URL, "seconds": float,
   "proxy": URL (password redacted) | null, "proxy_source": "argument" |
   "environment" | "none", "proxy_variable": "HTTPS_PROXY" | "NO_PROXY" | … | null,
   "steps": [{"name": "page" | "verdict" | "credentials" | "chat",
              "ok": bool, "seconds": float, "detail": str, "error": str | null,
              "error_type": str | null, "metrics": {...}}]}
  metrics: page {"status"}, verdict {"kind", "vendor"}, credentials {"generation",
  "release", "release_class", "source", "transport", "expires_at"}, chat
  {"first_chunk_seconds", "answer_chars", "transport"}; release is the plugin's,
  from the page's script ?ver= (null when the page does not show it), release_class
  its class, L1 … A8 (null when unknown); transport is "http" or "browser"
  (the chat runs in the browser page)"""

PROMPT = "Reply with the single word: pong"


@dataclass
class Step:
    name: str
    ok: bool = False
    seconds: float = 0.0
    detail: str = ""
    error: str | None = None
    error_type: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


@asynccontextmanager
async def timed(steps: list[Step], name: str) -> AsyncIterator[Step]:
    """Run one step: its time, and its error as data (a failed step ends the check)."""
    step = Step(name)
    steps.append(step)
    cli.status(f"{name}…")
    start = time.monotonic()
    try:
        yield step
        step.ok = step.error is None
    except ProviderError as exc:
        if isinstance(exc, InvalidInputError):
            raise
        step.error, step.error_type = str(exc), type(exc).__name__
        raise _Stop from None
    finally:
        step.seconds = round(time.monotonic() - start, 3)


class _Stop(Exception):
    """A step failed: the later steps are not run."""


def build_parser() -> argparse.ArgumentParser:
    p = cli.parser(
        "python -m provider.health",
        "Check that a ChatGPT Free site (or another site running the AI Power plugin) "
        "works from here: reachable, not blocked, credentials obtainable, and one chat.",
        EXAMPLES,
        EXIT_CODES,
    )
    cli.add_common(p)
    p.add_argument("--no-chat", action="store_true", help="skip the chat round trip")
    p.add_argument("--junit", metavar="FILE", help="also write a JUnit XML report to FILE")
    return p


async def check(args: argparse.Namespace) -> int:
    steps: list[Step] = []
    start = time.monotonic()
    async with cli.site_url(args) as urls:
        provider = cli.provider_class(urls[0], args)
        target = provider.target(args.proxy)
        # One browser for the credentials and the chat steps, if the site needs the
        # browser transport (closed at the end of the check).
        with suppress(_Stop):  # a failed step ends the check; the report says which
            async with WarmBrowser():
                await _run_steps(args, provider, target, steps)
    healthy = bool(steps) and all(s.ok for s in steps)
    report = {
        "version": JSON_VERSION,
        "healthy": healthy,
        "site": redact_url(urls[0]),
        **target.proxy_report(),
        "seconds": round(time.monotonic() - start, 3),
        "steps": [asdict(s) for s in steps],
    }
    cli.clear_status()
    if args.junit:
        write_junit(Path(args.junit), report)
    if args.json:
        print(json.dumps(report))
    else:
        print(f"proxy {target.describe_proxy()}")
        for s in steps:
            mark = "ok  " if s.ok else "FAIL"
            print(f"{mark} {s.name:<12} {s.seconds:7.3f} s  {s.detail if s.ok else s.error}")
        print("healthy" if healthy else "unhealthy")
    return cli.EXIT_OK if healthy else cli.EXIT_FAILURE


async def _run_steps(
    args: argparse.Namespace, provider: Any, target: Any, steps: list[Step]
) -> None:
    proxy: Proxy | None = target.proxy
    page_url = target.page_urls[0]
    async with timed(steps, "page") as step:
        deadline = Deadline(args.timeout)
        page = await fetch_page(
            borrow(target.site, proxy, config=provider.pool_config()),
            page_url,
            user_agent=DEFAULT_USER_AGENT,
            deadline=deadline,
        )
        step.metrics = {"status": page.status}
        step.detail = f"HTTP {page.status} from {redact_url(page.url)}"
    async with timed(steps, "verdict") as step:
        found = verdict(page.status, page.headers, page.body)
        step.metrics = {"kind": found.kind, "vendor": found.vendor}
        step.detail = found.kind + (f" ({found.evidence})" if found.evidence else "")
        if found.kind == "challenge" and args.browser == "never":
            step.error = "a challenge, and --browser never forbids the browser that passes it"
            step.error_type = "ChallengeError"
        elif found.kind != "challenge":
            found.raise_for_access(page.url)
    if step.error:
        raise _Stop
    async with timed(steps, "credentials") as step:
        creds = await provider.refresh_credentials(args.proxy, timeout=args.timeout, force=True)
        step.metrics = {
            "generation": creds.generation,
            "release": creds.release,
            "source": creds.source,
            "transport": creds.transport,
            "expires_at": creds.expires_at,
        }
        cls = release_class(creds.release)
        step.metrics["release_class"] = cls
        release = (
            f"release {creds.release} (class {cls or 'unknown'})"
            if creds.release
            else "release unknown (no ?ver= on the plugin's scripts)"
        )
        step.detail = (
            f"{creds.generation} generation, {release}, via {creds.source}, "
            f"chats over {creds.transport}"
        )
    if args.no_chat:
        return
    async with timed(steps, "chat") as step:
        sent = time.monotonic()
        first: float | None = None
        chars = 0
        async for chunk in provider.create_async_generator(
            "", [{"role": "user", "content": PROMPT}], proxy=args.proxy, timeout=args.timeout
        ):
            if first is None:
                first = time.monotonic() - sent
            chars += len(chunk)
        if not chars:
            step.error, step.error_type = "the site sent an empty answer", "UpstreamError"
        used = provider.stored_credentials(args.proxy)
        transport = used.transport if used is not None else "http"
        step.metrics = {
            "first_chunk_seconds": round(first or 0.0, 3),
            "answer_chars": chars,
            "transport": transport,
        }
        step.detail = f"first chunk after {first or 0:.3f} s, {chars} characters, over {transport}"


def write_junit(path: Path, report: dict[str, Any]) -> None:
    """One ``testsuite`` with a ``testcase`` per step; failed steps carry a ``failure``."""
    steps = report["steps"]
    suite = ET.Element(
        "testsuite",
        {
            "name": "provider.health",
            "tests": str(len(steps)),
            "failures": str(sum(1 for s in steps if not s["ok"])),
            "errors": "0",
            "time": f"{report['seconds']:.3f}",
        },
    )
    ET.SubElement(
        ET.SubElement(suite, "properties"), "property", {"name": "site", "value": report["site"]}
    )
    for s in steps:
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": "provider.health",
                "name": s["name"],
                "time": f"{s['seconds']:.3f}",
            },
        )
        if not s["ok"]:
            failure = ET.SubElement(
                case,
                "failure",
                {
                    "type": s["error_type"] or "Failure",
                    "message": s["error"] or "failed",
                },
            )
            failure.text = s["error"]
        elif s["detail"]:
            ET.SubElement(case, "system-out").text = s["detail"]
    root = ET.Element("testsuites")
    root.append(suite)
    tree = ET.ElementTree(root)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(build_parser().parse_args(argv), check)


if __name__ == "__main__":
    sys.exit(main())
