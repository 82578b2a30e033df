"""A warm chat keeps its connection on real servers: nginx over TLS in front of
PHP-FPM (``nginx_fpm.py``), whose chunked body ends in a record of its own after
the answer's last event, and later still when the script works on after its last
flush. nginx's own log counts the connections (``$connection_requests``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import chat, provider_for
from tests.realserver.nginx_fpm import nginx_fpm

CHATS = 40


@pytest.mark.parametrize("late_ms", [0, 50])
@pytest.mark.parametrize("generation", ["legacy", "aipkit"])
async def test_warm_chats_open_no_new_connection_behind_nginx_and_php_fpm(
    generation: str,
    late_ms: int,
    tmp_path: Path,
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path / "servers"
    folder.mkdir()
    with nginx_fpm(folder, generation, late_ms=late_ms) as servers:
        monkeypatch.setenv("SSL_CERT_FILE", str(servers.ca_file))
        provider = provider_for(servers.url + "/chat/", cache_dir)
        assert await chat(provider, [{"role": "user", "content": "warm up"}]) == (
            "You said: warm up"
        )
        for i in range(CHATS):
            # each prompt comes back: the site read every form and query field
            assert await chat(provider, [{"role": "user", "content": f"chat {i}"}]) == (
                f"You said: chat {i}"
            )
        # the page, then the chats; nginx logs each once its body has ended
        per_chat = 2 if generation == "aipkit" else 1  # aipkit: the message, then its stream
        requests = await servers.logged(1 + per_chat * (CHATS + 1))
    assert all(r.status == 200 for r in requests), requests
    warm = requests[1 + per_chat :]
    assert [r for r in warm if r.nth == 1] == [], "a warm chat opened a new connection"
    assert len({r.connection for r in requests}) == 1


async def test_without_the_drain_every_late_end_costs_a_connection(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The servers do end late, and the count sees it: with the drain turned off
    (``drain_timeout = 0``: the rest of a body is not read) each chat's connection
    is closed, so every warm chat opens a new one."""
    folder = tmp_path / "servers"
    folder.mkdir()
    with nginx_fpm(folder, "legacy", late_ms=50) as servers:
        monkeypatch.setenv("SSL_CERT_FILE", str(servers.ca_file))
        provider = provider_for(servers.url + "/chat/", cache_dir, drain_timeout=0)
        for i in range(5):
            assert await chat(provider, [{"role": "user", "content": f"chat {i}"}]) == (
                f"You said: chat {i}"
            )
        chats = [r for r in await servers.logged(6) if r.method == "POST"]
    # in the order their bodies ended; the first chat rode the page's connection
    assert sorted(r.nth for r in chats) == [1, 1, 1, 1, 2]
