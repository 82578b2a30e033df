"""Two ``python -m provider.serve --store redis://…`` processes behind one "load balancer"
(the test, alternating between them): one refresh for both, seen in their /metrics."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import aiohttp

import sandbox
from tests.fleet.redis_server import RedisServer
from tests.serve.conftest import USER
from tests.serve.test_command import serving, stop
from tests.serve.test_metrics import scrape, value

CHATS = 20


async def two_servers(
    stack: contextlib.AsyncExitStack, url: str, redis: RedisServer, tmp_path: Path
) -> list[tuple[asyncio.subprocess.Process, dict[str, object]]]:
    """Two servers of ``url`` sharing ``redis``, each with its own cache folder.
    (serving kills a server and its group if the test fails before stop())"""
    return [
        await stack.enter_async_context(
            serving("--url", url, "--store", redis.url, "--cache-dir", str(tmp_path / f"s{n}"))
        )
        for n in range(2)
    ]


async def test_two_servers_sharing_redis_refresh_once(redis: RedisServer, tmp_path: Path) -> None:
    async with sandbox.running() as site, contextlib.AsyncExitStack() as stack:
        servers = await two_servers(stack, site.url, redis, tmp_path)
        urls = [str(info["url"]) for _, info in servers]
        async with aiohttp.ClientSession() as http:

            async def chat(url: str) -> int:
                body = {"model": "gpt-4o-mini", "messages": USER}
                async with http.post(url + "/v1/chat/completions", json=body) as r:
                    await r.read()
                    return r.status

            statuses = await asyncio.gather(*[chat(urls[n % 2]) for n in range(CHATS)])
        assert statuses == [200] * CHATS
        assert site.hits["GET /chat/"] == 1
        scraped = [await scrape(url, key=None) for url in urls]
        refreshes = [
            value(s, "provider_credential_refreshes_total", source="http", outcome="ok")
            for s in scraped
        ]
        assert sorted(refreshes) == [0, 1]  # one refresh ran, on one of the two
        assert (
            sum(
                value(s, "provider_serve_requests_total", route="/v1/chat/completions")
                for s in scraped
            )
            == CHATS
        )
        for proc, _ in servers:
            code, err = await stop(proc)
            assert code == 0, err
            assert "Traceback" not in err
