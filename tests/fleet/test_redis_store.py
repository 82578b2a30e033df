"""The Redis store against a real redis-server, in one process: keys and values,
the lock, wake-ups, fleet-wide invalidation, outages, configuration errors."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import replace
from pathlib import Path

import pytest
import redis as redis_sync

from provider.store import CredentialStore, export_to, import_from, store_for
from provider.store import redis as rs
from provider.store.base import ENV_STORE, entry_key
from scraper.credentials import Credentials
from scraper.errors import ConfigurationError, ProviderTimeoutError
from scraper.http import Deadline
from tests.fleet.redis_server import RedisServer
from tests.provider.test_store import SITE, make

ROOT = Path(__file__).resolve().parents[2]
PROXY = "socks5://bob:hunter2@127.0.0.1:1080"


def host(tmp_path: Path, url: str, name: str, lock_ttl: float | None = None) -> rs.RedisStore:
    """A store as one host of the fleet has it: its own folder, its own origin."""
    query = f"?lock_ttl={lock_ttl:g}" if lock_ttl else ""
    return rs.RedisStore(
        rs.parse_url(url + query)[0],
        CredentialStore(tmp_path / name),
        lock_seconds=lock_ttl or rs.LOCK_SECONDS,
    )


@pytest.fixture
async def hosts(tmp_path: Path, redis: RedisServer) -> AsyncIterator[list[rs.RedisStore]]:
    stores = [host(tmp_path, redis.url, f"h{i}", lock_ttl=0.6) for i in range(2)]
    yield stores
    for store in stores:
        await store.aclose()


def counting_fetch(  # type: ignore[no-untyped-def]
    creds: Credentials,
    calls: list[str],
    *,
    seconds: float = 0.0,
    name: str = "",
    started: asyncio.Event | None = None,
):
    async def fetch() -> Credentials:
        calls.append(name)
        if started is not None:
            started.set()  # the fetch runs: its host holds the lock
        await asyncio.sleep(seconds)
        return creds

    return fetch


async def test_entries_use_the_hashed_key_the_file_json_and_the_credentials_ttl(
    hosts: list[rs.RedisStore], redis: RedisServer
) -> None:
    creds = make(nonce="n-redis-01")
    calls: list[str] = []
    got = await hosts[0].refresh(SITE, PROXY, counting_fetch(creds, calls), deadline=Deadline(5))
    assert got == creds and calls == [""]
    client = redis_sync.Redis.from_url(redis.url)
    names = [n.decode() for n in client.keys("*")]
    assert names == [f"chatgptfree:{{{entry_key(SITE, PROXY)}}}:creds"]  # the lock is gone
    assert not any("hunter2" in n or "bob" in n for n in names)
    value = json.loads(client.get(names[0]))
    assert value == {"version": 1, "credentials": creds.to_dict()}  # the files' JSON
    ttl = client.pttl(names[0]) / 1000
    assert abs(ttl - (creds.expires_at - time.time())) < 5
    client.close()
    # Another host finds it without fetching, and unknown keys (a newer version) are ignored.
    value["credentials"]["added_by_a_newer_version"] = "x"
    redis_sync.Redis.from_url(redis.url).set(names[0], json.dumps(value), px=60_000)
    assert await hosts[1].load(SITE, PROXY) == creds


async def test_a_saved_entry_reaches_every_host_with_its_ttl(
    hosts: list[rs.RedisStore], redis: RedisServer
) -> None:
    # What the browser transport does when it learns a site needs it: amend the entry.
    creds = replace(make(nonce="n-redis-save"), transport="browser")
    await hosts[0].save(creds, PROXY)
    assert await hosts[1].load(SITE, PROXY) == creds
    client = redis_sync.Redis.from_url(redis.url)
    (name,) = client.keys("*")
    assert abs(client.pttl(name) / 1000 - (creds.expires_at - time.time())) < 5
    client.close()


async def test_a_refresh_longer_than_the_lock_keeps_it_and_fetches_once(
    hosts: list[rs.RedisStore],
) -> None:
    creds = make(nonce="n-redis-02")
    calls: list[str] = []
    holding = asyncio.Event()
    # 2 s of fetching against a 0.6 s lock: only extending it keeps host 1 out.
    first = counting_fetch(creds, calls, seconds=2, name="a", started=holding)
    results = await asyncio.gather(
        hosts[0].refresh(SITE, "", first, deadline=Deadline(10)),
        _after(
            holding,
            hosts[1].refresh(
                SITE, "", counting_fetch(creds, calls, name="b"), deadline=Deadline(10)
            ),
        ),
    )
    assert calls == ["a"]
    assert results == [creds, creds]


async def _after(holding: asyncio.Event, call: Awaitable[Credentials]) -> Credentials:
    """``call``, started once the first host holds the lock (its fetch has begun)."""
    await holding.wait()
    return await call


async def test_a_waiter_is_woken_by_the_write_not_by_the_lock_expiring(
    tmp_path: Path, redis: RedisServer
) -> None:
    # A 60 s lock: a waiter that returns within the test's budget was woken by news.
    a, b = (host(tmp_path, redis.url, n, lock_ttl=60) for n in ("a", "b"))
    creds = make(nonce="n-redis-03")
    holding = asyncio.Event()
    calls: list[str] = []
    got = await asyncio.wait_for(
        asyncio.gather(
            a.refresh(
                SITE,
                "",
                counting_fetch(creds, calls, seconds=0.5, started=holding),
                deadline=Deadline(90),
            ),
            _after(
                holding, b.refresh(SITE, "", counting_fetch(creds, calls), deadline=Deadline(90))
            ),
        ),
        20,
    )
    assert got == [creds, creds] and calls == [""]
    await a.aclose()
    await b.aclose()


async def test_waiting_for_another_host_stays_under_the_callers_deadline(
    tmp_path: Path, redis: RedisServer
) -> None:
    a, b = (host(tmp_path, redis.url, n, lock_ttl=60) for n in ("a", "b"))
    release = asyncio.Event()

    holding = asyncio.Event()

    async def slow() -> Credentials:
        holding.set()
        await release.wait()
        return make()

    holder = asyncio.ensure_future(a.refresh(SITE, "", slow, deadline=Deadline(30)))
    await holding.wait()
    start = time.monotonic()
    with pytest.raises(ProviderTimeoutError):
        await b.refresh(SITE, "", slow, deadline=Deadline(0.5))
    assert time.monotonic() - start < 5
    release.set()
    await holder
    await a.aclose()
    await b.aclose()


async def test_rejected_credentials_are_dropped_on_every_host(
    hosts: list[rs.RedisStore],
) -> None:
    creds = make(nonce="n-redis-04")
    await hosts[0].refresh(SITE, "", counting_fetch(creds, []), deadline=Deadline(5))
    assert await hosts[1].load(SITE, "") == creds  # now in host 1's short cache
    key = entry_key(SITE, "")
    assert key in hosts[1]._local
    hosts[0].invalidate(creds, "")
    deadline = time.monotonic() + 5
    while key in hosts[1]._local:  # pub/sub tells host 1 to forget its copy
        assert time.monotonic() < deadline, "host 1 kept the rejected credentials"
        await asyncio.sleep(0.01)
    assert await hosts[1].load(SITE, "") is None  # and Redis no longer has them


async def test_an_outage_falls_back_to_files_with_one_warning_and_redis_is_used_again(
    tmp_path: Path,
    redis: RedisServer,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rs, "RETRY_SECONDS", 0.2)
    store = host(tmp_path, redis.url, "h")
    store.local_seconds = 0  # every read asks Redis
    first = make(nonce="n-redis-05")
    await store.refresh(SITE, "", counting_fetch(first, []), deadline=Deadline(5))
    redis.kill()
    with caplog.at_level(logging.WARNING, logger="provider.store.redis"):
        for _ in range(5):
            assert await store.load(SITE, "") == first  # the mirror in the file store
            await asyncio.sleep(0.1)
    assert caplog.text.count("is unreachable") == 1
    assert str(store.files.folder) in caplog.text
    redis.start()  # back, empty (as after a restart)
    second = make(nonce="n-redis-06")
    calls: list[str] = []
    deadline = time.monotonic() + 10
    while await store.load(SITE, "") is not None or store._down:
        assert time.monotonic() < deadline, "the store never went back to Redis"
        await asyncio.sleep(0.1)
    got = await store.refresh(SITE, "", counting_fetch(second, calls), deadline=Deadline(5))
    assert got == second and calls == [""]
    client = redis_sync.Redis.from_url(redis.url)
    assert client.exists(rs.entry_name(entry_key(SITE, "")))
    client.close()
    await store.aclose()


async def test_export_and_import_go_through_redis(
    hosts: list[rs.RedisStore], tmp_path: Path
) -> None:
    creds = make(nonce="n-redis-07")
    await hosts[0].refresh(SITE, PROXY, counting_fetch(creds, []), deadline=Deadline(5))
    path = tmp_path / "export.json"
    assert await export_to(hosts[0], path) == 1
    plain = CredentialStore(tmp_path / "plain")
    assert await import_from(plain, path) == [creds]
    assert plain.get(SITE, PROXY) == creds  # the same key on a file store


@pytest.mark.parametrize(
    "url",
    [
        "http://bob:hunter2@127.0.0.1:6379/0",
        "redis://bob:hunter2@127.0.0.1:notaport/0",
        "redis://bob:hunter2@127.0.0.1:6379/zero",
        "redis://bob:hunter2@127.0.0.1:6379/0?lock_ttl=soon",
        "redis://bob:hunter2@:6379/0",
    ],
)
def test_a_bad_url_names_the_variable_and_hides_the_password(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_STORE, url)
    with pytest.raises(ConfigurationError) as caught:
        store_for(tmp_path)
    assert ENV_STORE in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_a_bad_store_option_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "provider.refresh", "--store", "redis://u:hunter2@h:x/0"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PROVIDER_CACHE_DIR": str(tmp_path)},
    )
    assert result.returncode == 2
    assert "--store" in result.stderr and "hunter2" not in result.stderr + result.stdout
    from_env = subprocess.run(
        [sys.executable, "-m", "provider.serve", "--port", "0", "--sandbox"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env={
            "PATH": "/usr/bin:/bin",
            "PROVIDER_CACHE_DIR": str(tmp_path),
            ENV_STORE: "rediss://u:hunter2@h:6379/x",
        },
    )
    assert from_env.returncode == 2  # refused at start, not on every request
    assert ENV_STORE in from_env.stderr and "hunter2" not in from_env.stderr + from_env.stdout


async def test_redis_unreachable_at_start_the_file_store_serves_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from provider import _metrics
    from tests.fleet.redis_server import free_port

    fallbacks = _metrics.COUNTS.store_fallbacks
    store = host(tmp_path, f"redis://:hunter2@127.0.0.1:{free_port()}/0", "h")  # nobody there
    creds = make(nonce="n-redis-08")
    calls: list[str] = []
    with caplog.at_level(logging.WARNING, logger="provider.store.redis"):
        assert await store.load(SITE, "") is None
        got = await store.refresh(SITE, "", counting_fetch(creds, calls), deadline=Deadline(5))
        assert await store.load(SITE, "") == creds
    assert got == creds and calls == [""]
    assert store.files.get(SITE, "") == creds  # kept by the file store
    assert caplog.text.count("is unreachable") == 1
    assert "hunter2" not in caplog.text
    assert _metrics.COUNTS.store_fallbacks > fallbacks
    await store.aclose()


async def test_only_the_holder_releases_the_lock(
    hosts: list[rs.RedisStore], redis: RedisServer
) -> None:
    # Holder "a" overran its lock; "b" holds it now. a's release must leave b's lock alone.
    link = hosts[0]._link()
    name = rs.lock_name(entry_key(SITE, ""))
    client = redis_sync.Redis.from_url(redis.url)
    client.set(name, "token-b", px=60_000)
    released = await link.compare_and_delete(keys=[name], args=["token-a", "x", rs.CHANNEL])
    assert released == 0 and client.get(name) == b"token-b"
    extended = await link.extend(keys=[name], args=["token-a", 1])
    assert extended == 0 and client.pttl(name) > 1000  # nor extend it
    assert await link.compare_and_delete(keys=[name], args=["token-b", "x", rs.CHANNEL]) == 1
    assert not client.exists(name)
    client.close()
