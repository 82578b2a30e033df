"""The fleet store when Redis takes connections but never answers (hung, partitioned),
and its lock when a holder outlived it: the holder's write must leave the next
holder's lock alone."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis as redis_sync

import sandbox
from provider.store import redis as rs
from provider.store.base import entry_key
from scraper.credentials import Credentials
from scraper.http import Deadline
from tests.conftest import chat, provider_for
from tests.fleet.redis_server import RedisServer
from tests.fleet.test_redis_store import host
from tests.provider.test_store import SITE, make

ANSWER = "You said: Hello sandbox"


@contextlib.asynccontextmanager
async def silent_listener() -> AsyncIterator[str]:
    """A loopback TCP server that accepts every connection, reads what it is sent, and
    never answers: a Redis URL whose every command hangs."""
    held: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                pass

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"redis://:hunter2@127.0.0.1:{port}/0"
    finally:
        server.close()
        for writer in held:
            writer.close()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def stopped(redis: RedisServer) -> AsyncIterator[str]:
    """The real redis-server, frozen by SIGSTOP: its socket still takes connections (the
    kernel's backlog) but nothing answers. Thawed by its PID whatever happens."""
    assert redis.process is not None
    os.kill(redis.process.pid, signal.SIGSTOP)
    try:
        yield redis.url
    finally:
        os.kill(redis.process.pid, signal.SIGCONT)


@pytest.mark.parametrize("hang", ["silent-listener", "sigstopped-redis"])
async def test_a_redis_that_never_answers_hands_over_to_the_file_store(
    hang: str, cache_dir: Path, redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """README: Redis unreachable → the file store serves, with one warning. A hung Redis
    is unreachable too: no timeout error reaches the caller."""
    hung = silent_listener() if hang == "silent-listener" else stopped(redis)
    async with hung as url, sandbox.running(generation="aipkit") as site:
        provider = provider_for(site.url, cache_dir, store=url)
        with caplog.at_level(logging.WARNING, logger="provider.store.redis"):
            assert await chat(provider, timeout=30) == ANSWER
            assert await chat(provider, timeout=30) == ANSWER
        files = provider_for(site.url, cache_dir)  # the file store alone, same folder
        assert files.stored_credentials() is not None  # the fallback kept them
        assert site.hits["GET /chat/"] == 1  # the second chat used them
    warnings = [r for r in caplog.records if "is unreachable" in r.getMessage()]
    assert len(warnings) == 1 and "TimeoutError" in warnings[0].getMessage()
    assert "hunter2" not in caplog.text


async def test_a_hung_redis_at_load_and_refresh_falls_back_without_raising(
    tmp_path: Path,
) -> None:
    async with silent_listener() as url:
        store = host(tmp_path, url, "h")
        creds = make(nonce="n-hung-01")
        assert await store.load(SITE, "") is None
        got = await store.refresh(SITE, "", _returning(creds), deadline=Deadline(20))
        assert got == creds and store.files.get(SITE, "") == creds
        await store.aclose()


def _returning(creds: Credentials):  # type: ignore[no-untyped-def]
    async def fetch() -> Credentials:
        return creds

    return fetch


# -- the lock outlived by its holder --------------------------------------------------


async def test_the_store_script_leaves_another_holders_lock(
    redis: RedisServer, tmp_path: Path
) -> None:
    store = host(tmp_path, redis.url, "h")
    link = store._link()
    key = entry_key(SITE, "")
    client = redis_sync.Redis.from_url(redis.url)
    try:
        client.set(rs.lock_name(key), "token-b", px=60_000)
        creds = make(nonce="n-lock-01")
        await link.store(
            keys=[rs.entry_name(key), rs.lock_name(key)],
            args=[rs.encode(creds), 60_000, "token-a", "written x y", rs.CHANNEL],
        )
        assert client.get(rs.entry_name(key)) == rs.encode(creds)  # the write lands
        assert client.get(rs.lock_name(key)) == b"token-b"  # b's lock stays
        await link.store(
            keys=[rs.entry_name(key), rs.lock_name(key)],
            args=[rs.encode(creds), 60_000, "token-b", "written x y", rs.CHANNEL],
        )
        assert not client.exists(rs.lock_name(key))  # its holder's write releases it
    finally:
        client.close()
        await store.aclose()


@pytest.mark.parametrize("outcome", ["writes", "fails"])
async def test_a_holder_whose_lock_expired_leaves_the_next_holders_lock(
    outcome: str, redis: RedisServer, tmp_path: Path
) -> None:
    """Host a stalls past its lock (a paused process: it does not extend it); host b takes
    the lock over and refreshes. When a wakes and writes (or fails), b's lock must stay:
    else a third host would refresh alongside b."""
    a, b = (host(tmp_path, redis.url, name, lock_ttl=0.5) for name in ("a", "b"))

    async def never_extend(*_: object) -> None:
        await asyncio.Event().wait()

    a._keep = never_extend  # type: ignore[method-assign]
    key = entry_key(SITE, "")
    a_holds, a_go, b_holds, b_go = (asyncio.Event() for _ in range(4))

    async def fetch_a() -> Credentials:
        a_holds.set()
        await a_go.wait()
        if outcome == "fails":
            raise RuntimeError("a's fetch failed")
        return make(nonce="n-lock-a")

    async def fetch_b() -> Credentials:
        b_holds.set()
        await b_go.wait()
        return make(nonce="n-lock-b")

    client = redis_sync.Redis.from_url(redis.url)
    try:
        task_a = asyncio.create_task(a.refresh(SITE, "", fetch_a, deadline=Deadline(20)))
        await asyncio.wait_for(a_holds.wait(), 10)
        task_b = asyncio.create_task(b.refresh(SITE, "", fetch_b, deadline=Deadline(20)))
        await asyncio.wait_for(b_holds.wait(), 10)  # a's lock expired; b holds it now
        b_token = client.get(rs.lock_name(key))
        assert b_token is not None
        a_go.set()
        with contextlib.suppress(RuntimeError):
            await asyncio.wait_for(task_a, 10)
        assert client.get(rs.lock_name(key)) == b_token, "a removed b's lock"
        b_go.set()
        assert (await asyncio.wait_for(task_b, 10)).nonce == "n-lock-b"
        assert not client.exists(rs.lock_name(key))  # b's own write released it
    finally:
        a_go.set()
        b_go.set()
        client.close()
        await a.aclose()
        await b.aclose()
