"""``python -m provider.refresh``: warm up the credential store.

Obtains fresh credentials (over plain HTTP, or in headless Chromium when the
site puts up a challenge) and stores them, so later library calls skip the
scraping and the browser. ``--export`` / ``--import`` carry them to a host
that cannot run a browser itself; ``--store redis://…`` warms a whole fleet
that shares one Redis.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from provider._provider import ChatgptFree
from provider.commands import cli
from provider.store import export_to, import_from, store_for
from scraper.credentials import Credentials
from scraper.errors import InvalidInputError, ProviderError
from scraper.releases import release_class

EXAMPLES = """\
  python -m provider.refresh                                  # chatgptfree.ai
  python -m provider.refresh --url https://a.example --url https://b.example
  python -m provider.refresh --proxy socks5://user:pass@10.0.0.2:1080 --force
  python -m provider.refresh --browser always --export creds.json   # on a host with Chromium
  python -m provider.refresh --import creds.json                    # on the host that chats
  python -m provider.refresh --sandbox challenge                    # try it offline
  python -m provider.refresh --no-proxy --json   # directly, despite HTTPS_PROXY & co.
  python -m provider.refresh --store redis://10.0.0.5:6379/0        # warm a whole fleet

--export writes SECRETS (nonces and cookies, a bot-protection clearance among
them) to FILE with mode 0600: move it like a password. A clearance only works
from the same exit address, so the importing host must use the same proxy (or
the same public address) and the library sends the User-Agent stored with it."""

EXIT_CODES = """\
  0  every site refreshed (or was fresh already, without --force); --import: stored
  1  at least one site could not be refreshed; each reason is on stderr / in the JSON
  2  usage error: bad arguments, an unreadable --import file"""


def _release(row: dict[str, Any]) -> str:
    """`` 2.4.71 (class A8)``, or nothing when the page showed no release."""
    if not row.get("release"):
        return ""
    return f" {row['release']} (class {row.get('release_class') or 'unknown'})"


def build_parser() -> argparse.ArgumentParser:
    p = cli.parser(
        "python -m provider.refresh",
        "Obtain fresh credentials for one or more sites and store them for every "
        "process of this user.",
        EXAMPLES,
        EXIT_CODES,
    )
    cli.add_common(p, many_urls=True)
    p.add_argument(
        "--force",
        action="store_true",
        help="refresh even when the stored credentials are still fresh",
    )
    p.add_argument(
        "--export",
        metavar="FILE",
        help="after refreshing, write the whole store to FILE (0600, holds secrets)",
    )
    p.add_argument(
        "--import",
        dest="import_file",
        metavar="FILE",
        help="store the credentials of an --export FILE; contacts no site",
    )
    return p


def describe(creds: Credentials) -> dict[str, Any]:
    """What a person or a script may see of credentials: never the nonce or a cookie value."""
    return {
        "site": creds.site,
        "generation": creds.generation,
        "release": creds.release,  # the plugin's, from the page's ?ver=; None when unseen
        "release_class": release_class(creds.release),  # L1 … A8 (docs/library.md)
        "source": creds.source,
        "transport": creds.transport,
        "obtained_at": _iso(creds.obtained_at),
        "expires_at": _iso(creds.expires_at),
        "cookies": sorted(c.name for c in creds.cookies),
    }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


async def refresh(args: argparse.Namespace) -> int:
    if args.import_file:
        if args.url or args.sandbox or args.export or args.force:
            raise InvalidInputError("--import stores a file and contacts no site: use it alone")
        imported = await import_from(store_for(args.cache_dir, args.store), Path(args.import_file))
        rows = [describe(c) | {"ok": True} for c in imported]
        _report(args, rows, f"imported {len(rows)} credential set(s) from {args.import_file}")
        return cli.EXIT_OK
    rows = []
    async with cli.site_url(args) as urls:
        for url in urls:
            provider = cli.provider_class(url, args)
            via = provider.target(args.proxy)  # a bad proxy (argument or environment): exit 2
            cli.status(f"refreshing {url}")
            start = time.monotonic()
            before = await _stored(provider, args.proxy)
            try:
                creds = await provider.refresh_credentials(
                    args.proxy, timeout=args.timeout, force=args.force
                )
            except ProviderError as exc:
                if isinstance(exc, InvalidInputError):
                    raise
                rows.append(
                    {
                        "site": url,
                        "ok": False,
                        "error": str(exc),
                        "error_type": type(exc).__name__,
                        "seconds": round(time.monotonic() - start, 3),
                        **via.proxy_report(),
                    }
                )
                continue
            refreshed = before is None or before.obtained_at != creds.obtained_at
            rows.append(
                describe(creds)
                | {
                    "ok": True,
                    "refreshed": refreshed,
                    "seconds": round(time.monotonic() - start, 3),
                    **via.proxy_report(),
                }
            )
        cli.clear_status()
        exported = None
        if args.export:
            exported = await export_to(store_for(args.cache_dir, args.store), Path(args.export))
    summary = (
        f"exported {exported} credential set(s) to {args.export} (mode 0600)"
        if (exported is not None)
        else None
    )
    _report(args, rows, summary)
    return cli.EXIT_OK if all(r["ok"] for r in rows) else cli.EXIT_FAILURE


async def _stored(provider: type[ChatgptFree], proxy: str | None) -> Credentials | None:
    """What the store holds now (a shared store is asked, not this process's memory)."""
    target = provider.target(proxy)
    return await store_for(provider.cache_dir, provider.store).load(target.site, target.proxy_key)


def _report(args: argparse.Namespace, rows: list[dict[str, Any]], summary: str | None) -> None:
    ok = all(r["ok"] for r in rows)
    if args.json:
        print(json.dumps({"ok": ok, "sites": rows, "summary": summary}))
        return
    for row in rows:
        if row["ok"]:
            how = "refreshed" if row.get("refreshed", True) else "still fresh"
            took = f" in {row['seconds']:.2f} s" if "seconds" in row else ""
            proxy = f", through proxy {row['proxy']}" if row.get("proxy") else ""
            print(
                f"{row['site']}: {how}{took} — {row['generation']} generation"
                f"{_release(row)}, "
                f"via {row['source']}{proxy}, chats over {row['transport']}, "
                f"good until {row['expires_at']}"
            )
        else:
            print(f"error: {row['site']}: {row['error']}", file=sys.stderr)
    if summary:
        print(summary)


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(build_parser().parse_args(argv), refresh)


if __name__ == "__main__":
    sys.exit(main())
