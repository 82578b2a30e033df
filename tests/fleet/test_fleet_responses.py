"""Responses-API conversations across a fleet: two ``python -m provider.serve --store
redis://…`` processes with separate cache folders, where the second continues what the
first answered (``previous_response_id``); and the store's values under Redis's TTL."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import openai

import sandbox
from provider.store import CredentialStore
from provider.store.redis import RedisStore
from tests.fleet.redis_server import RedisServer
from tests.fleet.test_fleet_serve import two_servers
from tests.serve.test_command import stop


async def test_a_conversation_continues_on_another_host(redis: RedisServer, tmp_path: Path) -> None:
    async with sandbox.running() as site, contextlib.AsyncExitStack() as stack:
        servers = await two_servers(stack, site.url, redis, tmp_path)
        one, two = (
            openai.AsyncOpenAI(base_url=f"{info['url']}/v1", api_key="unused", max_retries=0)
            for _, info in servers
        )
        first = await one.responses.create(model="", input="Hello sandbox")
        second = await two.responses.create(model="", input="again", previous_response_id=first.id)
        await one.close()
        await two.close()
        for proc, _ in servers:
            code, err = await stop(proc)
            assert code == 0, err
    assert second.output_text == "You said: Assistant:"  # a multi-turn prompt's last line
    assert list(site.prompts)[-1] == (
        f"User: Hello sandbox\nAssistant: {first.output_text}\nUser: again\nAssistant:"
    )
    # Nothing of it was written to either host's folder: it lives in Redis.
    assert not list(tmp_path.rglob("values/*/*.json"))


async def test_redis_values_expire_and_fall_back_to_files(
    redis: RedisServer, tmp_path: Path
) -> None:
    store = RedisStore(redis.url, CredentialStore(tmp_path))
    try:
        await store.put_value("responses", "resp_a", '{"x": 1}', ttl=60)
        await store.put_value("responses", "resp_b", "short", ttl=0.2)
        assert await store.get_value("responses", "resp_a") == '{"x": 1}'
        assert await store.get_value("other", "resp_a") is None  # namespaces are apart
        async with asyncio.timeout(5):
            while await store.get_value("responses", "resp_b") is not None:
                await asyncio.sleep(0.05)  # Redis drops it when its PX runs out
        redis.stop()
        await store.put_value("responses", "resp_c", "kept here", ttl=60)  # Redis is away
        assert await store.get_value("responses", "resp_c") == "kept here"
    finally:
        await store.aclose()
