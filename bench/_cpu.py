"""Benchmark 12: the client's CPU time per warm chat, ours against the minimal client.

``python -m bench._cpu '<json options>'`` prints one JSON object. A child process
of its own, so the clock counts this benchmark alone; the sandbox runs in yet
another process (``_server``), connections kept alive, bodies chunked, so its CPU
is not counted. Options: ``generation``, ``concurrency`` (chats in flight at
once), ``chats`` (per round), ``rounds``, ``answer_bytes`` (``null``: the short
echo of 3 deltas; 32000 with 16-character deltas: 2,000 events).

Per round each client runs ``chats`` warm chats (credentials stored,
connections warm) with ``concurrency`` of them in flight, in a rotating order;
the process's user + system CPU time over the round, divided by the chats, is
one sample. Medians of the rounds.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench._chat import MESSAGES, PROMPT, provider_for
from bench._minimal import KeptAlive
from bench._server import RemoteSite
from bench._stats import median

Chat = Callable[[], Awaitable[None]]


async def _load(chat: Chat, concurrency: int, chats: int) -> float:
    """CPU seconds per chat for ``chats`` chats, ``concurrency`` at a time."""
    left = chats

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await chat()

    gc.collect()
    cpu0 = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - cpu0) / chats


async def measure(opts: dict[str, Any]) -> dict[str, Any]:
    generation = opts["generation"]
    concurrency = int(opts.get("concurrency", 50))
    chats = int(opts.get("chats", 500))
    rounds = int(opts.get("rounds", 5))
    knobs: dict[str, Any] = {"generation": generation, "keep_alive": True, "framing": "chunked"}
    if opts.get("answer_bytes"):
        knobs["answer_bytes"] = int(opts["answer_bytes"])
        knobs["delta_chars"] = 16
    with RemoteSite(**knobs) as site, tempfile.TemporaryDirectory() as cache:
        local = provider_for(site.url, cache)
        expected = 0

        async def ours() -> None:
            size = 0
            async for chunk in local.create_async_generator("", MESSAGES):
                size += len(chunk)
            assert size == expected, "ours: the answer came back incomplete"

        await ours_first(local)
        creds = local.stored_credentials()
        assert creds is not None
        kept = KeptAlive(creds)
        try:

            async def minimal() -> None:
                size = 0
                async for chunk in kept.chat(PROMPT):
                    size += len(chunk)
                assert size == expected, "minimal: the answer came back incomplete"

            expected = sum([len(c) async for c in kept.chat(PROMPT)])
            clients: dict[str, Chat] = {"ours": ours, "minimal": minimal}
            for chat in clients.values():  # settle: connections, imports, caches
                await _load(chat, concurrency, max(concurrency, chats // 10))
            samples: dict[str, list[float]] = {name: [] for name in clients}
            names = list(clients)
            for index in range(rounds):
                order = names[index % 2 :] + names[: index % 2]
                for name in order:
                    samples[name].append(await _load(clients[name], concurrency, chats))
        finally:
            await kept.close()
        connections = site.hits()  # the sandbox is alive and answered every chat
    ours_ms = median(samples["ours"]) * 1e3
    minimal_ms = median(samples["minimal"]) * 1e3
    return {
        "generation": generation,
        "concurrency": concurrency,
        "chats": chats,
        "rounds": rounds,
        "answer_chars": expected,
        "ours_ms": ours_ms,
        "minimal_ms": minimal_ms,
        "ratio": ours_ms / minimal_ms if minimal_ms else None,
        "samples_ms": {k: [x * 1e3 for x in v] for k, v in samples.items()},
        "site_requests": sum(connections.values()),
    }


async def ours_first(local: Any) -> None:
    """The cold chat that stores the credentials (not measured)."""
    async for _ in local.create_async_generator("", MESSAGES):
        pass


def main() -> None:
    opts = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {"generation": "aipkit"}
    print(json.dumps(asyncio.run(measure(opts))))


if __name__ == "__main__":
    main()
