"""The browser transport: the chat runs inside the page that passed the challenge.

Real Chromium, real sandbox. Every test is checked by the autouse fixture for
Chromium processes it left behind (descendants of this test process only).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest

import sandbox
from provider import WarmBrowser, store_for
from provider.errors import (
    ChallengeError,
    ProviderTimeoutError,
    QuotaExceededError,
    SessionExpiredError,
    UpstreamError,
)
from scraper.credentials import Cookie
from tests.conftest import USER, chat, chat_until, provider_for

pytestmark = pytest.mark.browser
ANSWER = "You said: Hello sandbox"
ROOT = Path(__file__).resolve().parents[2]

Waiter = Callable[[Callable[[], object], float, str], Awaitable[None]]


@pytest.mark.parametrize("generation", ["legacy", "aipkit"])
async def test_both_generations_answer_through_the_page(
    generation: str, cache_dir: Path, chromium: str | None
) -> None:
    async with sandbox.running(generation=generation, challenge=True) as site:
        provider = provider_for(site.url, cache_dir)
        assert await chat(provider, transport="browser", timeout=60) == ANSWER
        chat_action = (
            "admin-ajax:aipkit_frontend_chat_stream"
            if generation == "aipkit"
            else "admin-ajax:wpaicg_chat_shortcode_message"
        )
        assert site.hits[chat_action] == 1
        creds = provider.stored_credentials()
        assert creds is not None and creds.transport == "browser"


@pytest.mark.parametrize("generation", ["legacy", "aipkit"])
async def test_the_in_page_stream_is_chunked_and_closing_it_aborts_the_request(
    generation: str, cache_dir: Path, chromium: str | None, wait_for: Waiter
) -> None:
    # The site sends two deltas, then holds the connection open and sends nothing:
    # it never finishes the answer. A carrier that waited for the whole body would
    # deliver nothing (and time out); a chunked one delivers the first deltas now.
    async with sandbox.running(
        generation=generation, answer_bytes=2000, delta_chars=16, stall_after_deltas=2
    ) as site:
        provider = provider_for(site.url, cache_dir, transport="browser")
        async with WarmBrowser() as warm:  # the browser stays up: only an abort ends the fetch
            chunks = provider.create_async_generator("", USER, timeout=60)
            first = await asyncio.wait_for(anext(chunks), 60)
            assert first and len(first) < 2000
            assert site.hits["stream_hung_up"] == 0
            # Leaving early aborts the request in the page: the site sees the hang-up.
            await chunks.aclose()  # type: ignore[attr-defined]
            await wait_for(lambda: site.hits["stream_hung_up"] == 1, 10, "the site saw no hang-up")
            assert all(live.alive for live in warm.browsers().values())


@pytest.mark.parametrize("generation", ["legacy", "aipkit"])
async def test_a_long_answer_arrives_whole_and_in_order_through_the_page(
    generation: str, cache_dir: Path, chromium: str | None
) -> None:
    # Many reads (and a full queue now and then: backpressure) must not reorder text.
    async with sandbox.running(generation=generation, answer_bytes=300_000) as site:
        over_http = await chat(provider_for(site.url, cache_dir / "http"), timeout=60)
        in_page = await chat(
            provider_for(site.url, cache_dir / "browser"), transport="browser", timeout=60
        )
        assert len(over_http.encode()) == 300_000
        assert in_page == over_http


async def test_timeout_bounds_each_gap_of_the_in_page_stream(
    cache_dir: Path, chromium: str | None
) -> None:
    async with sandbox.running(generation="aipkit", stall_after_deltas=1) as site:
        provider = provider_for(site.url, cache_dir, transport="browser")
        got: list[str] = []
        with pytest.raises(ProviderTimeoutError):
            async for chunk in provider.create_async_generator("", USER, timeout=8):
                got.append(chunk)
        assert got  # what came before the stall was delivered first


@pytest.mark.parametrize("generation", ["legacy", "aipkit"])
async def test_a_nonce_refused_after_text_in_the_page_is_not_resent(
    generation: str, cache_dir: Path, chromium: str | None
) -> None:
    async with sandbox.running(generation=generation, nonce_refused_after_deltas=1) as site:
        provider = provider_for(site.url, cache_dir, transport="browser")
        got, _ = await chat_until(SessionExpiredError, provider, timeout=60)
        assert got == "You said: "
        assert list(site.prompts) == ["Hello sandbox"]  # no reload, no resend
        assert site.hits["GET /chat/"] == 1


@pytest.mark.parametrize(
    ("generation", "error", "raised"),
    [
        ("aipkit", "quota", QuotaExceededError),
        ("legacy", "token_limit", QuotaExceededError),
        ("aipkit", "api_error", UpstreamError),
        ("legacy", "upstream", UpstreamError),
    ],
)
async def test_site_errors_map_as_on_plain_http(
    generation: str,
    error: str,
    raised: type[Exception],
    cache_dir: Path,
    chromium: str | None,
) -> None:
    async with sandbox.running(generation=generation, reply_error=error) as site:
        with pytest.raises(raised):
            await chat(provider_for(site.url, cache_dir), transport="browser", timeout=60)


async def test_a_rejected_nonce_reloads_the_page_once_in_a_warm_browser(
    cache_dir: Path, chromium: str | None
) -> None:
    async with sandbox.running(generation="aipkit", challenge=True) as site:
        provider = provider_for(site.url, cache_dir, transport="browser")
        async with WarmBrowser() as warm:
            assert await chat(provider, timeout=60) == ANSWER
            pages = site.hits["GET /chat/"]
            site.rotate_nonce()  # every nonce issued so far stops verifying
            assert await chat(provider, timeout=60) == ANSWER
            assert site.hits["GET /chat/"] == pages + 1  # one reload, in the same browser
            assert warm.launches == 1


async def test_warm_browser_serves_many_calls_and_closes_at_the_end_of_its_block(
    cache_dir: Path, chromium: str | None, browser_processes: Callable[[], set[int]]
) -> None:
    before = browser_processes()
    async with sandbox.running(generation="legacy", challenge=True) as site:
        provider = provider_for(site.url, cache_dir, transport="browser")
        async with WarmBrowser() as warm:
            for _ in range(3):
                assert await chat(provider, timeout=60) == ANSWER
            assert warm.launches == 1
            assert len(warm.browsers()) == 1
            assert browser_processes() - before  # still up between calls
        assert site.hits["clearance"] == 1
    assert not warm.browsers()
    # The autouse fixture checks that no Chromium is left.


async def test_a_browser_that_died_is_restarted(
    cache_dir: Path, chromium: str | None, wait_for: Waiter
) -> None:
    async with sandbox.running(generation="aipkit") as site:
        provider = provider_for(site.url, cache_dir, transport="browser")
        async with WarmBrowser() as warm:
            assert await chat(provider, timeout=60) == ANSWER
            (live,) = warm.browsers().values()
            await live._browser.close()  # type: ignore[union-attr]  # as a crash would
            await wait_for(lambda: not live.alive, 10, "the browser still looks alive")
            assert await chat(provider, timeout=60) == ANSWER
            assert warm.launches == 2


async def test_an_idle_browser_is_closed_after_the_idle_timeout(
    cache_dir: Path,
    chromium: str | None,
    wait_for: Waiter,
    browser_processes: Callable[[], set[int]],
) -> None:
    before = browser_processes()
    async with sandbox.running(generation="aipkit") as site:
        provider = provider_for(site.url, cache_dir, transport="browser")
        async with WarmBrowser(idle_timeout=0.5) as warm:
            assert await chat(provider, timeout=60) == ANSWER
            await wait_for(lambda: not warm.browsers(), 10, "the idle browser was not closed")
            await wait_for(lambda: not browser_processes() - before, 10, "Chromium still runs")
            assert await chat(provider, timeout=60) == ANSWER  # started again when needed
            assert warm.launches == 2


async def test_a_library_call_leaves_no_chromium_and_concurrent_calls_share_one(
    cache_dir: Path, chromium: str | None, browser_processes: Callable[[], set[int]]
) -> None:
    before = browser_processes()
    async with sandbox.running(generation="aipkit", challenge=True) as site:
        provider = provider_for(site.url, cache_dir, transport="browser")
        answers = await asyncio.gather(*(chat(provider, timeout=90) for _ in range(5)))
        assert set(answers) == {ANSWER}
        assert site.hits["clearance"] == 1  # one browser passed the challenge for all five
        # Checked right when the calls returned, not after a grace period.
        assert not browser_processes() - before


@pytest.mark.parametrize("when", ["the_browser_starts", "the_page_loads"])
async def test_a_call_cancelled_while_its_browser_opens_leaves_no_chromium(
    when: str,
    cache_dir: Path,
    chromium: str | None,
    wait_for: Waiter,
    browser_processes: Callable[[], set[int]],
) -> None:
    before = browser_processes()
    # the page loads: the site holds the page, so the browser asked for it and waits.
    knobs = {"challenge": True} if when == "the_browser_starts" else {"hold_pages": True}
    async with sandbox.running(generation="aipkit", **knobs) as site:  # type: ignore[arg-type]
        provider = provider_for(site.url, cache_dir, transport="browser")
        task = asyncio.ensure_future(chat(provider, timeout=120))
        if when == "the_browser_starts":
            await wait_for(lambda: browser_processes() - before, 60, "no browser started")
        else:
            await wait_for(lambda: site.hits["GET /chat/"] >= 1, 60, "the page was never asked for")
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not browser_processes() - before  # closed before the call returned


async def test_the_chosen_bot_answers_in_the_page(cache_dir: Path, chromium: str | None) -> None:
    async with sandbox.running(generation="aipkit", aipkit_bots=[5, 9]) as site:
        provider = provider_for(site.url, cache_dir, bot_id=9)
        assert await chat(provider, transport="browser", timeout=60) == ANSWER
        assert list(site.bots) == [9]  # not the page's first bot


#: A User-Agent no Chromium of ours announces (Chrome/120, an extra product token).
IMPORTED_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36 Imported/1.0"
)


@pytest.mark.parametrize("generation", ["legacy", "aipkit"])
async def test_the_browser_opens_with_the_stored_user_agent_and_keeps_its_clearance(
    generation: str, cache_dir: Path, chromium: str | None
) -> None:
    # Credentials earned under another User-Agent (imported, or solved on another
    # host): the clearance is bound to that UA, so the browser must announce it.
    async with sandbox.running(generation=generation) as site:
        provider = provider_for(site.url, cache_dir)
        assert await chat(provider, transport="http") == ANSWER
        creds = provider.stored_credentials()
        assert creds is not None
        clearance = Cookie("cf_clearance", site.issue_clearance(IMPORTED_UA), "127.0.0.1")
        imported = replace(creds, user_agent=IMPORTED_UA, cookies=(*creds.cookies, clearance))
        store_for(cache_dir).put(imported, "")
        site.config.challenge = True
        site.reset_hits()
        assert await chat(provider, transport="browser", timeout=60) == ANSWER
        # The stored clearance let the browser straight in: no challenge, no new solve.
        assert (site.hits["challenge"], site.hits["clearance"]) == (0, 0)
        stored = provider.stored_credentials()
        assert stored is not None and stored.user_agent == IMPORTED_UA


# -- bind_tls: the clearance will not travel ---------------------------------------------

_SCRIPT = """
import asyncio, json, sys
from provider import ChatgptFree
from provider.errors import ProviderError

class Site(ChatgptFree):
    url = sys.argv[1]
    cache_dir = sys.argv[2]

async def main():
    kwargs = json.loads(sys.argv[3])
    try:
        chunks = Site.create_async_generator(
            "", [{"role": "user", "content": "Hello sandbox"}], timeout=90, **kwargs)
        answer = "".join([c async for c in chunks])
        print(json.dumps({"answer": answer}))
    except ProviderError as exc:
        print(json.dumps({"error": type(exc).__name__}))

asyncio.run(main())
"""


async def _public_call(site: sandbox.Site, cache_dir: Path, **kwargs: object) -> dict[str, str]:
    """One call through the public API in a fresh process that trusts the sandbox's CA
    through SSL_CERT_FILE only (as a user's process would)."""
    env = {**os.environ, "SSL_CERT_FILE": str(site.ca_file)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _SCRIPT,
        site.url,
        str(cache_dir),
        json.dumps(kwargs),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 180)
    assert proc.returncode == 0, err.decode()[-2000:]
    result: dict[str, str] = json.loads(out.decode().strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("generation", ["legacy", "aipkit"])
async def test_bind_tls_both_generations_answer_over_https_through_the_browser(
    generation: str, cache_dir: Path, chromium: str | None
) -> None:
    async with sandbox.running(generation=generation, challenge=True, bind_tls=True) as site:
        assert site.url.startswith("https://")
        # Handing the clearance to plain HTTP fails here, as on such sites...
        assert await _public_call(site, cache_dir, transport="http") == {
            "error": ChallengeError.__name__
        }
        solved = site.hits["clearance"]
        assert solved >= 1
        # ...and the default (auto) switches to chatting through the browser.
        assert await _public_call(site, cache_dir) == {"answer": ANSWER}
        creds = store_for(cache_dir).get(site.url, "")
        assert creds is not None and creds.transport == "browser"
        # Remembered: the next call goes straight to the browser, with the stored
        # clearance (no challenge met, none solved).
        challenges, solved = site.hits["challenge"], site.hits["clearance"]
        assert await _public_call(site, cache_dir) == {"answer": ANSWER}
        assert (site.hits["challenge"], site.hits["clearance"]) == (challenges, solved)


# -- provider.serve: one warm browser for every client ----------------------------------


async def test_serve_answers_50_concurrent_chats_through_one_warm_browser(
    cache_dir: Path, chromium: str | None, browser_processes: Callable[[], set[int]]
) -> None:
    import aiohttp

    from provider import serve

    before = browser_processes()
    async with sandbox.running(generation="aipkit", challenge=True) as site:
        provider = provider_for(site.url, cache_dir, transport="browser")
        async with serve.running(provider, timeout=120) as server, aiohttp.ClientSession() as http:

            async def ask(i: int) -> str:
                body = {"model": "", "messages": [{"role": "user", "content": f"Hello {i}"}]}
                async with http.post(server.url + "/v1/chat/completions", json=body) as resp:
                    assert resp.status == 200, await resp.text()
                    reply = await resp.json()
                    return str(reply["choices"][0]["message"]["content"])

            answers = await asyncio.gather(*(ask(i) for i in range(50)))
            assert answers == [f"You said: Hello {i}" for i in range(50)]
            browsers = server.state.browsers
            assert browsers is not None and browsers.launches == 1
            (live,) = browsers.browsers().values()
            assert live.requests.started >= 50  # every chat ran in that one page
            assert site.hits["clearance"] == 1
            assert browser_processes() - before  # kept warm for the next client
            async with http.get(server.url + "/health") as resp:
                (entry,) = (await resp.json())["sites"]
            assert entry["credentials"]["transport"] == "browser"
    # Stopping the server closed it (the autouse fixture checks no Chromium is left).


# -- the commands report the transport ----------------------------------------------------


async def _command(site: sandbox.Site, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "SSL_CERT_FILE": str(site.ca_file)} if site.ca_file else None
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        *args,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 180)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_refresh_and_health_say_the_site_needs_the_browser_transport(
    cache_dir: Path, chromium: str | None
) -> None:
    async with sandbox.running(generation="aipkit", challenge=True, bind_tls=True) as site:
        code, out, err = await _command(site, "provider.refresh", "--url", site.url, "--json")
        assert code == 0, err
        (row,) = json.loads(out)["sites"]
        assert (row["source"], row["transport"]) == ("browser", "browser")
        code, out, err = await _command(site, "provider.health", "--url", site.url, "--json")
        assert code == 0, err
        steps = {s["name"]: s for s in json.loads(out)["steps"]}
        assert steps["credentials"]["metrics"]["transport"] == "browser"
        assert steps["chat"]["metrics"]["transport"] == "browser"
        assert steps["chat"]["metrics"]["answer_chars"] > 0
        code, out, err = await _command(
            site, "provider", "--url", site.url, "--transport", "http", "--json", "Hi"
        )
        assert code == 1 and json.loads(out)["error"]["type"] == "ChallengeError"


async def test_the_chat_command_takes_transport_browser(
    cache_dir: Path, chromium: str | None
) -> None:
    async with sandbox.running(generation="legacy") as site:
        code, out, err = await _command(
            site, "provider", "--url", site.url, "--transport", "browser", "Hello sandbox"
        )
        assert code == 0, err
        assert out.strip() == ANSWER
        creds = store_for(cache_dir).get(site.url, "")
        assert creds is not None and creds.transport == "browser"
