"""Faults and hostile input: nothing hangs, nothing is lost, the error is clear."""

from __future__ import annotations

import asyncio
import contextlib
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sandbox
from provider.errors import (
    NetworkError,
    ProtocolError,
    ProviderError,
    ProviderTimeoutError,
)
from provider.protocols import aipkit, legacy
from provider.protocols._common import texts
from tests.capture import capture
from tests.conftest import USER, chat, provider_for

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@contextlib.asynccontextmanager
async def serve(routes: dict[str, Handler]) -> AsyncIterator[str]:
    """A throwaway site on loopback with the given GET handlers."""
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_route("*", path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


# -- stream faults ------------------------------------------------------------------------


@pytest.mark.parametrize("framing", ["close", "chunked"])
@pytest.mark.parametrize("generation", ["legacy", "aipkit"])
async def test_connection_dropped_mid_answer(
    generation: str, framing: str, cache_dir: Path
) -> None:
    async with sandbox.running(
        generation=generation, answer_bytes=30_000, drop_after_bytes=12_000, framing=framing
    ) as site:
        got: list[str] = []
        with pytest.raises(NetworkError) as err:
            async for chunk in provider_for(site.url, cache_dir).create_async_generator(
                "", USER, timeout=5
            ):
                got.append(chunk)
        assert got and "".join(got).startswith("You said: ")
        assert "retry" in str(err.value)


async def test_trickling_stream_is_not_cut_by_the_timeout(cache_dir: Path) -> None:
    # The timeout bounds each gap, not the whole answer: a slow steady stream completes.
    async with sandbox.running(
        generation="aipkit", answer_bytes=600, delta_chars=4, chunk_delay=0.01, wire_chunk=1
    ) as site:
        start = time.monotonic()
        text = await chat(provider_for(site.url, cache_dir), timeout=0.5)
        assert len(text.encode()) == 600
        assert time.monotonic() - start > 0.5  # longer than the timeout in total


@pytest.mark.parametrize("generation", ["legacy", "aipkit"])
async def test_reply_that_never_starts_times_out(generation: str, cache_dir: Path) -> None:
    async with sandbox.running(generation=generation, first_byte_delay=30) as site:
        start = time.monotonic()
        with pytest.raises(ProviderTimeoutError):
            await chat(provider_for(site.url, cache_dir), timeout=1)
        assert time.monotonic() - start < 1 + 1


async def test_oversized_line_in_the_stream_keeps_memory_bounded(cache_dir: Path) -> None:
    huge = 20 * 1024 * 1024  # one 20 MB line without a newline, then a real answer

    async def stream(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        block = b"x" * 65536
        await resp.write(b"data: ")
        for _ in range(huge // len(block)):
            await resp.write(block)
        await resp.write(b"\n\n")
        for body in (
            b'{"choices":[{"delta":{"content":"ok"}}],"id":"1"}',
            b'{"choices":[{"delta":{},"finish_reason":"stop"}],"id":"1"}',
        ):
            await resp.write(b"data: " + body + b"\n\n")
        return resp

    async def page(request: web.Request) -> web.Response:
        return web.Response(
            content_type="text/html",
            text=(
                '<div class="wpaicg-chat-shortcode" data-nonce="abcdef0123" data-post-id="4" '
                f'data-url="{request.url.origin()}" data-bot-id="0" data-type="shortcode"></div>'
            ),
        )

    async with serve({"/chat/": page, "/wp-admin/admin-ajax.php": stream}) as url:
        tracemalloc.start()
        try:
            assert await chat(provider_for(url, cache_dir), timeout=20) == "ok"
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    # The line was skipped as it arrived, never held whole (the parser keeps ≤ 1 MiB).
    assert peak < huge / 4


# -- page faults --------------------------------------------------------------------------


@pytest.mark.parametrize("declared", [True, False])
async def test_huge_page_is_a_bounded_read_then_a_clear_error(
    declared: bool, cache_dir: Path
) -> None:
    # Declared: 6 MB announced, then a byte now and then: only refusing on the declared
    # size (before reading) ends the call; a reader would run into the timeout.
    # Undeclared: a page that never ends: only a read stopping at the limit ends it.
    async def page(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/html"})
        if declared:
            resp.content_length = 6 * 1024 * 1024
        await resp.prepare(request)
        block = b"<" if declared else b"<p>" + b"y" * 65533
        with contextlib.suppress(ConnectionError):
            while True:  # until the client goes
                await resp.write(block)
                if declared:
                    await asyncio.sleep(0.05)
        return resp

    async with serve({"/{tail:.*}": page}) as url:
        with pytest.raises(ProtocolError, match="byte limit"):
            await chat(provider_for(url, cache_dir), timeout=5)


async def test_an_oversized_json_reply_is_a_bounded_read_then_a_clear_error(
    cache_dir: Path,
) -> None:
    # A non-streaming legacy reply is JSON, read whole: past 4 MB it is not what the
    # plugin sends, and the read stops there instead of holding it all.
    async with sandbox.running(
        generation="legacy", streaming=False, answer_bytes=5 * 1024 * 1024
    ) as site:
        with pytest.raises(ProtocolError, match="over 4,194,304 bytes"):
            await chat(provider_for(site.url, cache_dir))


async def test_redirect_loop_is_a_clear_error(cache_dir: Path) -> None:
    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/a/" if request.path != "/a/" else "/b/")

    async with serve({"/{tail:.*}": loop}) as url:
        with pytest.raises(ProtocolError, match="redirect loop"):
            await chat(provider_for(url, cache_dir))


async def test_a_redirect_to_another_host_is_a_clear_error_and_nothing_follows(
    cache_dir: Path,
) -> None:
    # The other host is a working chat site (the sandbox, named "localhost"): followed,
    # it would get the caller's cookie, then the message itself.
    async with sandbox.running(generation="legacy") as site:
        elsewhere = site.url.replace("127.0.0.1", "localhost") + "/chat/"

        async def away(request: web.Request) -> web.Response:
            raise web.HTTPFound(elsewhere)

        async with serve({"/{tail:.*}": away}) as url:
            with pytest.raises(ProtocolError, match="redirects to another host") as caught:
                await chat(provider_for(url, cache_dir), cookies={"session": "caller-secret"})
        assert "localhost" in str(caught.value)
        assert not site.hits and not site.prompts


async def test_a_redirect_to_a_non_http_address_is_the_sites_error(cache_dir: Path) -> None:
    """Promise (fetch_page): a redirect off the site is a ProtocolError naming it, also
    when it is not even http(s) (not a configuration error of the caller's: the
    caller's URL is fine) (issue 27, a survivor of the mutation tool)."""

    async def away(request: web.Request) -> web.Response:
        raise web.HTTPFound("ftp://files.example.test/chat/")

    async with serve({"/{tail:.*}": away}) as url:
        with pytest.raises(ProtocolError, match="redirects to another host") as caught:
            await chat(provider_for(url, cache_dir))
    assert "ftp://files.example.test" in str(caught.value)


async def test_slow_page_byte_by_byte_sits_under_the_timeout(cache_dir: Path) -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/html"})
        await resp.prepare(request)
        with contextlib.suppress(ConnectionError):
            for byte in b"<html><body>" + b"z" * 10_000:
                await resp.write(bytes([byte]))
                await asyncio.sleep(0.01)
        return resp

    async with serve({"/{tail:.*}": slow}) as url:
        start = time.monotonic()
        with pytest.raises(ProviderTimeoutError):
            await chat(provider_for(url, cache_dir), timeout=1)
        assert time.monotonic() - start < 1 + 1


async def test_page_that_is_not_html_is_no_widget(cache_dir: Path) -> None:
    from provider.errors import NoChatWidgetError

    async def junk(request: web.Request) -> web.Response:
        return web.Response(body=bytes(range(256)) * 100, content_type="application/octet-stream")

    async with serve({"/{tail:.*}": junk}) as url:
        with pytest.raises(NoChatWidgetError):
            await chat(provider_for(url, cache_dir))


# -- parsers on arbitrary input -------------------------------------------------------------


async def _drain(gen: AsyncIterator[str]) -> list[str]:
    return [c async for c in gen]


async def _reads(body: bytes, cuts: list[int]) -> AsyncIterator[bytes]:
    points = sorted({min(c, len(body)) for c in cuts})
    for a, b in zip([0, *points], [*points, len(body)], strict=True):
        yield body[a:b]


PIECES = [
    capture(n).body
    for n in (
        "legacy-chat-stream.http",
        "aipkit-stream.http",
        "legacy-upstream-error.http",
        "aipkit-upstream-error.http",
    )
]


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.one_of(
        st.binary(max_size=3000),
        st.builds(
            lambda i, a, b, junk: PIECES[i][:a] + junk + PIECES[i][b:],
            st.integers(0, len(PIECES) - 1),
            st.integers(0, 3000),
            st.integers(0, 3000),
            st.binary(max_size=50),
        ),
    ),
    st.lists(st.integers(0, 3000), max_size=6),
)
def test_stream_interpreters_never_raise_anything_but_provider_errors(
    body: bytes, cuts: list[int]
) -> None:
    for interpreter in (legacy.LegacyStream, aipkit.AipkitStream):
        try:
            chunks = asyncio.run(_drain(texts(_reads(body, cuts), interpreter())))
        except ProviderError:
            continue
        assert all(isinstance(c, str) and c for c in chunks)
