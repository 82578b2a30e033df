"""The end of a body belongs to the pool: once the answer is complete the caller's
generator ends, and what is left of the body (the chunked end marker, legacy's
trailing JSON) is read in the background, bounded, so the connection is kept.

The sandbox holds the body's end ``end_delay`` seconds after the answer's last
event, as a site whose script keeps working after its last flush does, and counts
the connections it accepted (``site.connections``).
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

import sandbox
from scraper.http import DRAIN_WAIT, PoolConfig, close_pools
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
    generation: str, cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Neither the body nor its drain would end within the test's time by themselves.
    async with late_site(generation, 3600.0) as site:
        provider = type("Slow", (provider_for(site.url, cache_dir),), {"drain_timeout": 3600.0})
        assert await chat(provider) == ANSWER
        assert len(drains_left()) == 1  # the body's rest is being read
        async with asyncio.timeout(10):  # the close cancels the drain, not waits it out
            await close_pools()
        # No drain task left, and the site sees its connection closed.
        assert drains_left() == []
        await until(lambda: site.hits["stream_hung_up"] == 1, "the pool closing the body")
    # Quietly: no drain's end (its done callback) raised into the event loop's log.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


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


KIB = 1024


@pytest.mark.parametrize(
    ("fields", "connections"),
    [
        # Legacy's trailing JSON repeats the answer: a long one (600 KB) is drained
        # and its connection kept, the bound being 1 MiB on top of what the answer took.
        ({"answer_bytes": 600_000, "delta_chars": 4096}, 1),
        # 1.8.79's trailing JSON also carries the bot's system prompt: 768 KiB of it
        # is under the bound (kept), 1.5 MiB over it (closed, the next chat on a new one).
        ({"greeting_message": "x" * (768 * KIB)}, 1),
        ({"greeting_message": "x" * (1536 * KIB)}, 2),
    ],
    ids=["long-answer", "rest-under-1MiB", "rest-over-1MiB"],
)
async def test_a_bodys_rest_is_drained_up_to_1_mib_past_the_answer(
    fields: dict[str, object], connections: int, cache_dir: Path
) -> None:
    async with late_site("legacy", 0.01, release="1.8.79", **fields) as site:
        provider = type("Roomy", (provider_for(site.url, cache_dir),), {"drain_timeout": 30.0})
        for _ in range(2):
            assert (await chat(provider)).startswith("You said: Hello sandbox")
            await until(lambda: not drains_left(), "the body's rest drained or closed")
        assert site.connections == connections


@pytest.mark.parametrize("setting", ["drain_timeout", "keepalive_timeout"])
async def test_a_bound_under_a_second_still_keeps_a_body_ending_within_it(
    setting: str, cache_dir: Path
) -> None:
    # 0.9 s against an end 0.01 s after the answer: the body is drained, not closed.
    async with late_site("legacy", 0.01) as site:
        provider = type("Short", (provider_for(site.url, cache_dir),), {setting: 0.9})
        for _ in range(3):
            assert await chat(provider) == ANSWER
        await until(
            lambda: site.ended + site.hits["stream_hung_up"] == 3, "the bodies' ends or closes"
        )
        assert site.hits["stream_hung_up"] == 0
        assert site.connections == 1


@pytest.mark.parametrize("setting", ["drain_timeout", "keepalive_timeout"])
async def test_a_bound_of_0_closes_a_body_not_ended_with_the_answer(
    setting: str, cache_dir: Path
) -> None:
    """Promise (PoolConfig): ``drain_timeout=0`` closes a body not ended with the
    answer, ``keepalive_timeout=0`` every connection after its request: at once,
    with no drain in the background."""
    async with late_site("legacy", 60.0) as site:
        provider = type("Closing", (provider_for(site.url, cache_dir),), {setting: 0})
        assert await chat(provider) == ANSWER
        assert drains_left() == []
        await until(lambda: site.hits["stream_hung_up"] == 1, "the connection closing")
        before = site.connections  # keepalive_timeout=0: the page had one of its own
        assert await chat(provider) == ANSWER
        assert site.connections == before + 1


def test_the_drain_bounds_are_the_documented_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """Promise (docs/connections.md): a body's rest is read within ``drain_timeout``
    seconds, default 2, and a chat waits at most 0.5 s for the last one's body."""
    for name in ("PROVIDER_MAX_CONNECTIONS", "PROVIDER_KEEPALIVE_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    assert PoolConfig.resolve() == PoolConfig(100, 60.0, 2.0)
    assert DRAIN_WAIT == 0.5
