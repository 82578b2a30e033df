"""``GET /metrics``: scraped and parsed with prometheus_client's own text parser."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.serve.conftest import KEY, USER, wait_until
from tests.serve.test_command import run_python


async def scrape(url: str, key: str | None = KEY) -> dict[str, list[Any]]:
    """Every sample of /metrics by family name (text format parsed, nothing by regex)."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with aiohttp.ClientSession() as http, http.get(url + "/metrics", headers=headers) as r:
        assert r.status == 200, await r.text()
        assert r.headers["Content-Type"].startswith("text/plain; version=")
        text = await r.text()
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def value(families: dict[str, list[Any]], name: str, **labels: str) -> float:
    return sum(
        s.value
        for samples in families.values()
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


async def test_metrics_count_requests_latency_refreshes_and_errors(
    served: Callable[..., Any],
) -> None:
    async with served() as s:
        before = await scrape(s.server.url)
        began = time.monotonic()
        refreshes = value(
            before, "provider_credential_refreshes_total", source="http", outcome="ok"
        )
        answers = await asyncio.gather(
            *[
                s.client.chat.completions.create(model="gpt-4o-mini", messages=USER)
                for _ in range(3)
            ]
        )
        assert all(a.choices[0].message.content for a in answers)
        stream = await s.client.chat.completions.create(
            model="gpt-4o-mini", messages=USER, stream=True
        )
        assert [c async for c in stream]
        with pytest.raises(openai.NotFoundError):
            await s.client.chat.completions.create(model="no-such-model", messages=USER)

        after = await scrape(s.server.url)
        spent = time.monotonic() - began
        route = "/v1/chat/completions"
        assert value(after, "provider_serve_requests_total", route=route, status="200") == 4
        assert value(after, "provider_serve_requests_total", route=route, status="404") == 1
        assert value(after, "provider_serve_first_chunk_seconds_count") == 4
        # Each of the 4 waited for its first chunk within the time this test spent.
        assert 0 < value(after, "provider_serve_first_chunk_seconds_sum") <= 4 * spent
        assert value(after, "provider_serve_errors_total", type="model_not_found") == 1
        assert value(after, "provider_serve_chats_in_flight") == 0
        # One page read for the 3 concurrent chats (and the 2 that waited on it).
        assert (
            value(after, "provider_credential_refreshes_total", source="http", outcome="ok")
            == refreshes + 1
        )
        assert (
            value(after, "provider_single_flight_waits_total", scope="task")
            >= value(before, "provider_single_flight_waits_total", scope="task") + 2
        )
        assert "provider_store_fallbacks_total" in {
            s.name for family in after.values() for s in family
        }


async def test_chats_in_flight_rise_while_a_stream_is_open(served: Callable[..., Any]) -> None:
    async with served(first_byte_delay=1.0) as s:
        chat = asyncio.ensure_future(
            s.client.chat.completions.create(model="gpt-4o-mini", messages=USER)
        )
        await wait_until(lambda: s.server.state.in_flight == 1, 10, "the chat to start")
        assert value(await scrape(s.server.url), "provider_serve_chats_in_flight") == 1
        await chat
        assert value(await scrape(s.server.url), "provider_serve_chats_in_flight") == 0


async def test_a_client_hanging_up_mid_stream_is_counted_as_499(
    served: Callable[..., Any],
) -> None:
    """docs/openai.md: ``provider_serve_requests_total``'s status 499 is a client that
    hung up; a route nobody serves is counted under one label, not its path."""
    async with served(answer_bytes=4000, stall_after_deltas=3) as s:
        stream = await s.client.chat.completions.create(model="", messages=USER, stream=True)
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                break
        await stream.close()  # the client hangs up mid-answer
        await wait_until(lambda: s.server.state.in_flight == 0, 5, "the stream to end")
        # The count is taken as the cancelled handler unwinds: await it, bounded.
        route = "/v1/chat/completions"

        async def counted() -> float:
            return value(await scrape(s.server.url), "provider_serve_requests_total", route=route)

        await wait_until(counted, 5, "the hung-up request counted")
        async with aiohttp.ClientSession() as http:
            for path in ("/v1/nowhere", "/v1/elsewhere"):
                headers = {"Authorization": f"Bearer {KEY}"}
                async with http.get(s.server.url + path, headers=headers) as r:
                    assert r.status == 404
        after = await scrape(s.server.url)
    assert value(after, "provider_serve_requests_total", route=route, status="499") == 1
    assert value(after, "provider_serve_requests_total", route=route) == 1
    unmatched = [
        s.labels
        for s in after["provider_serve_requests"]
        if s.name == "provider_serve_requests_total" and s.labels["status"] == "404"
    ]
    assert unmatched == [{"route": "unmatched", "method": "GET", "status": "404"}]
    assert value(after, "provider_serve_requests_total", route="unmatched") == 2


async def test_metrics_are_behind_the_api_key(served: Callable[..., Any]) -> None:
    async with served() as s, aiohttp.ClientSession() as http:
        async with http.get(s.server.url + "/metrics") as r:
            assert r.status == 401
        async with http.get(
            s.server.url + "/metrics", headers={"Authorization": "Bearer wrong"}
        ) as r:
            assert r.status == 401
    async with served(api_key=None) as s:
        assert "provider_serve_requests" in await scrape(s.server.url, key=None)


async def test_the_library_counts_without_importing_prometheus() -> None:
    # prometheus-client takes ~0.1 s to import: only the server may pay for it.
    code = (
        "import asyncio, sys, tempfile, sandbox\n"
        "from provider import ChatgptFree, _metrics\n"
        "async def main():\n"
        "    async with sandbox.running() as site:\n"
        "        cache = tempfile.mkdtemp()\n"
        "        P = type('P', (ChatgptFree,), {'url': site.url, 'cache_dir': cache})\n"
        "        await P.refresh_credentials(force=True)\n"
        "asyncio.run(main())\n"
        "print(_metrics.COUNTS.refreshes[('http', 'ok')], 'prometheus_client' in sys.modules)\n"
    )
    status, out = await run_python(code)
    assert (status, out) == (0, "1 False")
