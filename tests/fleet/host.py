"""One "host" of a fleet, run as its own process by the fleet tests and the benchmark.

    python tests/fleet/host.py SITE_URL STORE_URL --chats 100 [--rounds 2] [--local-seconds 0]

It prints ``ready`` once imported, then for each round waits for a line on
stdin (``go``), runs ``--chats`` concurrent chats through its own
``PROVIDER_CACHE_DIR`` and the shared store, and prints one JSON line:
``{"round", "answers", "errors", "seconds", "warnings"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from provider import ChatgptFree
from provider.store import redis as redis_store

USER = [{"role": "user", "content": "Hello fleet"}]


class _Count(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def _chat(provider: type[ChatgptFree], timeout: float) -> str:
    return "".join([c async for c in provider.create_async_generator("", USER, timeout=timeout)])


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("site")
    p.add_argument("store")
    p.add_argument("--chats", type=int, default=1)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--local-seconds", type=float, default=None)
    p.add_argument("--browser", default="auto")
    args = p.parse_args()
    if args.local_seconds is not None:
        redis_store.LOCAL_SECONDS = args.local_seconds
    warnings = _Count()
    logging.getLogger("provider").addHandler(warnings)
    provider = type(
        "FleetHost",
        (ChatgptFree,),
        {"url": args.site, "store": args.store, "browser": args.browser},
    )
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    for n in range(1, args.rounds + 1):
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if line.strip() != "go":
            return
        start = time.monotonic()
        results = await asyncio.gather(
            *[_chat(provider, args.timeout) for _ in range(args.chats)], return_exceptions=True
        )
        print(
            json.dumps(
                {
                    "round": n,
                    "answers": sum(1 for r in results if isinstance(r, str) and r),
                    "errors": [
                        f"{type(r).__name__}: {r}" for r in results if not isinstance(r, str)
                    ],
                    "seconds": round(time.monotonic() - start, 3),
                    "warnings": warnings.messages,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    asyncio.run(main())
