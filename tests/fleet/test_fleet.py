"""Fleets: hosts (separate processes) sharing credentials through a real redis-server."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import redis as redis_sync

import sandbox
from provider import ChatgptFree
from provider.store import redis as redis_store
from provider.store.base import entry_key
from provider.store.redis import entry_name, lock_name
from tests.fleet.conftest import Fleet
from tests.fleet.redis_server import RedisServer

HOSTS = 4
CHATS = 100


async def _all_go(hosts: list) -> list[dict]:  # type: ignore[type-arg]
    for host in hosts:
        await host.go()
    return [await host.result() for host in hosts]


def _assert_all_answered(results: list[dict], chats: int) -> None:  # type: ignore[type-arg]
    for result in results:
        assert result["errors"] == []
        assert result["answers"] == chats


async def _uncached_hosts(
    fleet: Fleet, site: str, store: str, *, chats: int, rounds: int, count: int
) -> list:  # type: ignore[type-arg]
    """Hosts whose every chat asks Redis (their short in-process cache off)."""
    return await fleet.start(
        site,
        store,
        *("--chats", str(chats), "--rounds", str(rounds), "--local-seconds", "0"),
        count=count,
    )


async def test_a_cold_fleet_reads_the_page_once(redis: RedisServer, fleet: Fleet) -> None:
    async with sandbox.running() as site:
        hosts = await fleet.start(site.url, redis.url, "--chats", str(CHATS), count=HOSTS)
        results = await _all_go(hosts)
        _assert_all_answered(results, CHATS)
        assert site.hits["GET /chat/"] == 1  # one page read for 4 hosts x 100 chats
        assert site.hits["admin-ajax:aipkit_frontend_chat_stream"] == HOSTS * CHATS


@pytest.mark.browser
async def test_a_cold_fleet_behind_a_challenge_solves_it_once(
    redis: RedisServer, fleet: Fleet
) -> None:
    async with sandbox.running(challenge=True) as site:
        hosts = await fleet.start(site.url, redis.url, "--chats", str(CHATS), count=HOSTS)
        results = await _all_go(hosts)
        _assert_all_answered(results, CHATS)
        assert site.hits["clearance"] == 1  # one browser solve for the whole fleet
        assert site.hits["challenge_failed"] == 0


@pytest.mark.browser
async def test_when_the_lock_holder_dies_mid_solve_another_host_takes_over(
    redis: RedisServer, fleet: Fleet, tmp_path: Path
) -> None:
    lock_ttl = 3.0
    store = f"{redis.url}?lock_ttl={lock_ttl:g}"
    async with sandbox.running(challenge=True) as site:
        # What one solve takes here, measured on this machine now (its own store).
        solo = type("Solo", (ChatgptFree,), {"url": site.url, "cache_dir": tmp_path / "solo"})
        start = time.monotonic()
        await solo.refresh_credentials(timeout=60)
        one_solve = time.monotonic() - start

        key = entry_key(solo.target().site, "")
        client = redis_sync.Redis.from_url(redis.url)
        (holder,) = await fleet.start(site.url, store, "--chats", "5", count=1)
        waiters = await fleet.start(site.url, store, "--chats", "5", count=2)
        challenged = site.hits["challenge"]
        await holder.go()
        # Mid-solve: the holder has the lock and its page read met the challenge.
        deadline = time.monotonic() + 30
        while not (client.exists(lock_name(key)) and site.hits["challenge"] > challenged):
            assert time.monotonic() < deadline, "the holder never took the lock"
            await asyncio.sleep(0.005)
        for host in waiters:
            await host.go()  # they find the lock held, and wait on it
        holder.kill()
        killed = time.monotonic()
        assert not client.exists(entry_name(key))  # killed before it could store anything
        results = [await host.result() for host in waiters]
        took_over = time.monotonic() - killed
        _assert_all_answered(results, 5)
        # The lock expires (it is not extended by a dead holder), one waiter solves.
        assert took_over <= lock_ttl + one_solve * 2 + 2, (took_over, one_solve)
        assert client.exists(entry_name(key))
        client.close()
    await fleet.stop()
    # The killed holder's Playwright driver took its Chromium down with it.
    assert fleet.leftovers == []


async def test_redis_killed_mid_run_every_chat_still_answers(
    redis: RedisServer, fleet: Fleet
) -> None:
    async with sandbox.running() as site:
        # Every chat asks Redis, so the second round meets the dead one.
        hosts = await _uncached_hosts(fleet, site.url, redis.url, chats=20, rounds=2, count=2)
        _assert_all_answered(await _all_go(hosts), 20)
        redis.kill()
        results = await _all_go(hosts)
        _assert_all_answered(results, 20)
        for result in results:
            unreachable = [w for w in result["warnings"] if "is unreachable" in w]
            assert len(unreachable) == 1, result["warnings"]  # one warning, not one per chat
            assert "file store" in unreachable[0]
        # The fallback started warm: the mirror of what Redis held, no page read again.
        assert site.hits["GET /chat/"] == 1


async def test_redis_restarted_empty_costs_the_fleet_one_refresh(
    redis: RedisServer, fleet: Fleet
) -> None:
    async with sandbox.running() as site:
        hosts = await _uncached_hosts(fleet, site.url, redis.url, chats=10, rounds=3, count=3)
        _assert_all_answered(await _all_go(hosts), 10)
        assert site.hits["GET /chat/"] == 1
        redis.kill()
        redis.start()  # the same port, empty
        _assert_all_answered(await _all_go(hosts), 10)  # files meanwhile, or Redis again
        # Past the retry interval every host is back on Redis, which refreshed once.
        await asyncio.sleep(redis_store.RETRY_SECONDS + 0.5)
        _assert_all_answered(await _all_go(hosts), 10)
        assert site.hits["GET /chat/"] == 2  # one page read after the restart, fleet-wide
        client = redis_sync.Redis.from_url(redis.url)
        assert len(client.keys("chatgptfree:*:creds")) == 1
        client.close()
