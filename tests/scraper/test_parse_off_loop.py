"""A page is parsed in a worker thread, and other chats keep streaming meanwhile.

Both call sites of the parser (plain HTTP in ``scraper.obtain``, the browser in
``scraper.browser``) go through ``scraper.page.read_widget``. The real parser
runs in every test here; it is only wrapped, to see where it runs and what the
event loop does while it is under way. No speed is measured: the proofs are a
thread identity and a count of chunks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import sandbox
import scraper.page
from bench._parse import Streams, streaming
from scraper.errors import ProviderTimeoutError
from scraper.http import Deadline
from scraper.obtain import obtain
from scraper.page import PageInfo, parse_page, read_widget

#: Chunks the other streams must deliver while one parse is under way.
FLOWED = 60
#: How long a parse waits for them before it gives up (only so that a parse
#: on the loop thread fails the test instead of hanging it: it can never see
#: a chunk then).
GIVE_UP_S = 10.0


class Spy:
    """Wraps the real ``parse_page``: records the thread, optionally holds the parse."""

    def __init__(self, before: Callable[[], None] = lambda: None) -> None:
        self.threads: list[int] = []
        self.before = before

    def __call__(self, html: str | bytes, page_url: str) -> PageInfo:
        self.threads.append(threading.get_ident())
        self.before()
        return parse_page(html, page_url)


async def test_plain_http_page_is_parsed_off_the_loop_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spy = Spy()
    monkeypatch.setattr(scraper.page, "parse_page", spy)
    async with sandbox.running(generation="aipkit") as site:
        creds = await obtain(
            site.url, [site.url + "/chat/"], proxy=None, deadline=Deadline(20), browser="never"
        )
    assert creds.source == "http" and creds.generation == "aipkit" and creds.nonce
    assert len(spy.threads) == 1
    assert spy.threads[0] != threading.get_ident()  # this test runs on the loop's thread


@pytest.mark.browser
async def test_rendered_page_is_parsed_off_the_loop_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from scraper.browser import find_chromium, solve

    if find_chromium() is None:
        pytest.skip("no Chromium on this machine")
    spy = Spy()
    monkeypatch.setattr(scraper.page, "parse_page", spy)
    async with sandbox.running(generation="legacy", challenge=True) as site:
        creds = await solve(site.url, site.url + "/chat/", proxy=None, deadline=Deadline(40))
    assert creds.source == "browser" and creds.generation == "legacy" and creds.nonce
    assert len(spy.threads) == 1
    assert spy.threads[0] != threading.get_ident()


class Flowed:
    """Holds a parse until the other streams have delivered FLOWED more chunks."""

    def __init__(self, streams: Streams) -> None:
        self.streams = streams
        self.target: int | None = None
        self.event = threading.Event()
        streams.on_chunk = self.count

    def count(self, chunks: int) -> None:  # on the loop, per chunk
        if self.target is not None and chunks >= self.target:
            self.event.set()

    def hold(self) -> None:  # in the parse's thread
        self.target = self.streams.chunks + FLOWED
        self.event.wait(GIVE_UP_S)


async def test_other_streams_keep_flowing_while_a_page_parses(
    monkeypatch: pytest.MonkeyPatch, cache_dir: Path
) -> None:
    # Long answers, paced, so the streams are mid-answer for the whole test.
    async with (
        sandbox.running(generation="aipkit", answer_bytes=100_000, chunk_delay=0.01) as site,
        streaming(site.url, cache_dir, n=10) as streams,
    ):
        flowed = Flowed(streams)
        spy = Spy(before=flowed.hold)
        monkeypatch.setattr(scraper.page, "parse_page", spy)
        during = streams.chunks
        creds = await obtain(
            site.url, [site.url + "/chat/"], proxy=None, deadline=Deadline(30), browser="never"
        )
        delivered = streams.chunks - during
    assert creds.nonce and len(spy.threads) == 1
    # The parse began only once FLOWED chunks had arrived after it was entered:
    # the event loop kept serving the other chats while the parse was under way.
    assert flowed.event.is_set(), f"only {delivered} chunks arrived during the whole call"


async def test_a_parse_past_the_deadline_times_out_the_caller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = threading.Event()
    spy = Spy(before=lambda: release.wait(GIVE_UP_S))
    monkeypatch.setattr(scraper.page, "parse_page", spy)
    html = '<div class="wpaicg-chatbox" data-nonce="0a1b2c3d4e"></div>'
    try:
        with pytest.raises(ProviderTimeoutError, match="reading the chat widget"):
            await read_widget(html, "https://example.com/", None, Deadline(0.5))
    finally:
        release.set()
    assert len(spy.threads) == 1
