"""The commands with ``--store redis://…``: warm a fleet, export and import through Redis."""

from __future__ import annotations

from pathlib import Path

import redis as redis_sync

import sandbox
from tests.commands.test_commands import run
from tests.fleet.conftest import Fleet
from tests.fleet.redis_server import RedisServer, free_port


async def test_refresh_with_store_warms_every_host(
    redis: RedisServer, fleet: Fleet, tmp_path: Path
) -> None:
    async with sandbox.running() as site:
        warm = await run(
            "provider.refresh",
            "--url",
            site.url,
            "--store",
            redis.url,
            "--cache-dir",
            str(tmp_path / "warmer"),
            "--json",
        )
        assert warm.code == 0, warm
        assert warm.json()["sites"][0]["refreshed"] is True
        assert site.hits["GET /chat/"] == 1
        # Another host's refresh finds them fresh in Redis (not in its own empty folder).
        again = await run(
            "provider.refresh",
            "--url",
            site.url,
            "--store",
            redis.url,
            "--cache-dir",
            str(tmp_path / "other"),
            "--json",
        )
        assert again.json()["sites"][0]["refreshed"] is False
        hosts = await fleet.start(site.url, redis.url, "--chats", "10", count=2)
        for host in hosts:
            await host.go()
        for host in hosts:
            result = await host.result()
            assert result["errors"] == [] and result["answers"] == 10
        assert site.hits["GET /chat/"] == 1  # the fleet started warm


async def test_export_from_redis_and_import_into_another_redis(
    redis: RedisServer, tmp_path: Path
) -> None:
    export = tmp_path / "creds.json"
    other = RedisServer(port=free_port())
    other.start()
    try:
        async with sandbox.running() as site:
            made = await run(
                "provider.refresh",
                "--url",
                site.url,
                "--store",
                redis.url,
                "--cache-dir",
                str(tmp_path / "a"),
                "--export",
                str(export),
            )
            assert made.code == 0, made
            assert site.nonce() in export.read_text()
            imported = await run(
                "provider.refresh",
                "--store",
                other.url,
                "--cache-dir",
                str(tmp_path / "b"),
                "--import",
                str(export),
                "--json",
            )
            assert imported.code == 0, imported
            client = redis_sync.Redis.from_url(other.url)
            assert len(client.keys("chatgptfree:*:creds")) == 1
            client.close()
            chat = await run(
                "provider",
                "--url",
                site.url,
                "--store",
                other.url,
                "--cache-dir",
                str(tmp_path / "c"),
                "Hi",
            )
            assert chat.code == 0, chat
            assert site.hits["GET /chat/"] == 1  # the imported credentials served the chat
    finally:
        other.stop()
