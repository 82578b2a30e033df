"""The end of a body belongs to the pool: once the answer is complete the caller's
generator ends, and what is left of the body (the chunked end marker, legacy's
trailing JSON) is read in the background, bounded, so the connection is kept.

The sandbox holds the body's end ``end_delay`` seconds after the answer's last
event, as a site whose script keeps working after its last flush does, and counts
the connections it accepted (``site.connections``).
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

import sandbox
from scraper.http import close_pools
from tests.conftest import USER, chat, provider_for
from tests.proxies import http_proxy

ANSWER = "You said: Hello sandbox"
GENERATIONS = ["legacy", "aipkit"]


def drains_left() -> list[asyncio.Task[object]]:
    """The pool's drain tasks still alive on this loop."""
    return [t for t in asyncio.all_tasks() if getattr(t.get_coro(), "__name__", "") == "_drain"]


def late_site(
    generation: str, end_delay: float, **fields: object
) -> AbstractAsyncContextManager[sandbox.Site]:
    """A site behind a keep-alive server whose bodies end ``end_delay`` s after the answer."""
    return sandbox.running(
        generation=generation,  # type: ignore[arg-type]
        keep_alive=True,
        framing="chunked",
        end_delay=end_delay,
        **fields,
    )


async def until(condition: object, what: str, seconds: float = 10.0) -> None:
    """Wait for ``condition()`` to hold (polling: the sandbox's counters have no event)."""
    async with asyncio.timeout(seconds):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.005)


@pytest.mark.parametrize("generation", GENERATIONS)
@pytest.mark.parametrize("tls", [False, True])
async def test_warm_chats_keep_one_connection_when_the_end_comes_late(
    generation: str, tls: bool, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with late_site(generation, 0.2, tls=tls) as site:
        if tls:
            monkeypatch.setenv("SSL_CERT_FILE", str(site.ca_file))
        provider = provider_for(site.url, cache_dir)
        assert await chat(provider) == ANSWER  # cold: the page, then the chat
        for _ in range(4):
            # Straight on: each chat starts while the last one's end is on its way,
            # and takes that connection over once the end has come.
            assert await chat(provider) == ANSWER
        await until(lambda: site.ended == 5, "the bodies' ends")
        assert site.hits["stream_hung_up"] == 0
        # Every request of the five chats (and the page) on one connection.
        assert site.connections == 1


@pytest.mark.parametrize("generation", GENERATIONS)
async def test_the_generator_ends_with_the_answer_not_the_body(
    generation: str, cache_dir: Path
) -> None:
    async with late_site(generation, 5.0) as site:
        provider = type("Slow", (provider_for(site.url, cache_dir),), {"drain_timeout": 30.0})
        got = await chat(provider)
        # The generator has ended: the answer is out, its body is still open.
        assert got == ANSWER
        assert site.answered == 1
        assert site.ended == 0
        # Legacy's trailing JSON (the whole answer again) never reached the caller.
        assert "success" not in got and "greeting" not in got


@pytest.mark.parametrize("generation", GENERATIONS)
async def test_a_body_that_does_not_end_within_the_bound_is_closed(
    generation: str, cache_dir: Path
) -> None:
    async with late_site(generation, 60.0) as site:
        provider = type("Bounded", (provider_for(site.url, cache_dir),), {"drain_timeout": 0.3})
        assert await chat(provider) == ANSWER
        # The client gives up on the body (the site sees the connection go)...
        await until(lambda: site.hits["stream_hung_up"] == 1, "the client closing the body")
        assert site.ended == 0
        # ...and the next chat is answered on a new connection.
        assert await chat(provider) == ANSWER
        assert site.connections == 2


@pytest.mark.parametrize("generation", GENERATIONS)
async def test_closing_the_pool_closes_a_body_being_drained(
    generation: str, cache_dir: Path
) -> None:
    async with late_site(generation, 60.0) as site:
        provider = type("Slow", (provider_for(site.url, cache_dir),), {"drain_timeout": 30.0})
        assert await chat(provider) == ANSWER
        assert len(drains_left()) == 1  # the body's rest is being read
        await close_pools()
        # No drain task left, and the site sees its connection closed.
        assert drains_left() == []
        await until(lambda: site.hits["stream_hung_up"] == 1, "the pool closing the body")


async def test_a_caller_that_stops_mid_answer_closes_the_connection_at_once(
    cache_dir: Path,
) -> None:
    async with late_site("legacy", 0.0, answer_bytes=200_000, chunk_delay=0.001) as site:
        provider = provider_for(site.url, cache_dir)
        chunks = provider.create_async_generator("", USER)
        first = await anext(chunks)  # type: ignore[call-overload]
        assert first
        await chunks.aclose()  # type: ignore[attr-defined]
        # Not drained (the rest is most of a long answer): closed, no task.
        assert drains_left() == []
        await until(lambda: site.hits["stream_hung_up"] == 1, "the connection closing")


@pytest.mark.parametrize("generation", GENERATIONS)
async def test_through_a_proxy_warm_chats_keep_the_tunnel(
    generation: str, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with (
        late_site(generation, 0.2, tls=True) as site,
        http_proxy() as proxy,
    ):
        monkeypatch.setenv("SSL_CERT_FILE", str(site.ca_file))
        url = f"http://{proxy.user}:{proxy.password}@127.0.0.1:{proxy.port}"
        provider = provider_for(site.url, cache_dir)
        for _ in range(3):
            assert await chat(provider, proxy=url) == ANSWER
        await until(lambda: site.ended == 3, "the bodies' ends")
        # One CONNECT tunnel for the page and every chat.
        assert len(proxy.targets) == 1
        assert site.connections == 1
