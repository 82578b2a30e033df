"""The promises an examiner's planted bugs broke unseen (issue 27), each with a test of
its own: a secret on a rare error path, a health check's verdict, the store's
permissions, the prompt limit's boundary, a percent-encoded proxy password, and a
request sent once on a fresh connection."""

from __future__ import annotations

import logging
import stat
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

import sandbox
from provider.errors import ChallengeError, InvalidInputError, NetworkError
from provider.prompt import MAX_PROMPT_CHARS, build_prompt
from provider.store import CredentialStore
from scraper.credentials import Credentials
from scraper.http import Deadline
from tests import procs
from tests.conftest import chat, provider_for
from tests.provider.test_store import SITE, make
from tests.proxies import ProxyServer, http_proxy, socks5_proxy

PASSWORD = "s3cr3t-pw-27"
PROXIES: dict[str, Callable[..., AbstractAsyncContextManager[ProxyServer]]] = {
    "http": http_proxy,
    "socks5": socks5_proxy,
}


def _proxy_url(scheme: str, user: str, password: str, port: int) -> str:
    return f"{scheme}://{user}:{password}@127.0.0.1:{port}"


# -- secrets: a NetworkError raised through an authenticated proxy ------------------------


@pytest.mark.parametrize("scheme", ["http", "socks5"])
@pytest.mark.parametrize("fault", ["abort_before_reply", "drop_after_bytes"])
async def test_a_network_error_through_an_authenticated_proxy_names_it_without_the_password(
    scheme: str, fault: str, cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    knobs: dict[str, object] = (
        {"abort_before_reply": True} if fault == "abort_before_reply" else {"drop_after_bytes": 40}
    )
    async with (
        PROXIES[scheme]("alice", PASSWORD) as proxy,
        sandbox.running(generation="aipkit", **knobs) as site,  # type: ignore[arg-type]
    ):
        url = _proxy_url(scheme, "alice", PASSWORD, proxy.port)
        with caplog.at_level(logging.DEBUG), pytest.raises(NetworkError) as caught:
            await chat(provider_for(site.url, cache_dir), proxy=url, timeout=20)
        assert proxy.connections > 0  # the failure happened behind the proxy
    err = caught.value
    text = f"{err}\n{err!r}\n{caplog.text}"
    assert PASSWORD not in text
    if fault == "abort_before_reply":
        # It says which proxy it went through, redacted.
        assert f"127.0.0.1:{proxy.port}" in str(err) and "alice" in str(err)


# -- health: a failed step is unhealthy ----------------------------------------------------


async def test_health_with_browser_never_meeting_a_challenge_is_unhealthy(
    cache_dir: Path,
) -> None:
    async with sandbox.running(generation="aipkit", challenge=True) as site:
        as_json = await procs.run_module(
            "provider.health", "--url", site.url, "--browser", "never", "--json", timeout=90
        )
        human = await procs.run_module(
            "provider.health", "--url", site.url, "--browser", "never", timeout=90
        )
        assert site.hits["challenge"] >= 2  # both met the challenge
    assert as_json.code == 1, as_json
    report = as_json.json()
    assert report["healthy"] is False
    steps = {s["name"]: s for s in report["steps"]}
    assert steps["page"]["ok"] is True
    assert steps["verdict"]["ok"] is False
    assert steps["verdict"]["error_type"] == "ChallengeError"
    assert "--browser never" in steps["verdict"]["error"]
    assert "credentials" not in steps  # a failed step ends the check
    assert human.code == 1, human
    assert human.out.strip().splitlines()[-1] == "unhealthy"
    assert "FAIL verdict" in human.out


async def test_chat_with_browser_never_meeting_a_challenge_is_a_challenge_error(
    cache_dir: Path,
) -> None:
    async with sandbox.running(generation="aipkit", challenge=True) as site:
        with pytest.raises(ChallengeError) as caught:
            await chat(provider_for(site.url, cache_dir, browser="never"), timeout=20)
        command = await procs.run_module(
            "provider", "--url", site.url, "--browser", "never", "--cache-dir",
            str(cache_dir / "cmd"), "Hi", timeout=90, merge_stderr=True,
        )  # fmt: skip
        assert site.hits["challenge"] >= 2 and site.hits["clearance"] == 0
    assert "browser" in str(caught.value)
    assert command.code == 1, command
    assert command.out.startswith("error: ") and "Traceback" not in command.out


# -- the store's permissions -----------------------------------------------------------------


async def test_a_cold_refresh_makes_the_store_folder_0700_and_its_files_0600(
    tmp_path: Path,
) -> None:
    store = CredentialStore(tmp_path / "fresh")
    assert not store.folder.exists()

    async def fetch() -> Credentials:
        return make()

    await store.refresh(SITE, "http://u:pw@127.0.0.1:9", fetch, deadline=Deadline(10))
    assert stat.S_IMODE(store.folder.stat().st_mode) == 0o700
    files = list(store.folder.iterdir())
    assert any(f.suffix == ".json" for f in files), files
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


async def test_the_refresh_command_makes_a_0700_cache_with_0600_files(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    async with sandbox.running(generation="aipkit") as site:
        result = await procs.run_module(
            "provider.refresh", "--url", site.url, "--cache-dir", str(cache), timeout=90
        )
    assert result.code == 0, result
    files = [p for p in cache.rglob("*") if p.is_file()]
    assert files
    # Every folder holding a secret is 0700 (the folders above it are the
    # caller's, made with the caller's umask), every file 0600.
    for f in files:
        assert stat.S_IMODE(f.parent.stat().st_mode) == 0o700, f.parent
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


# -- the prompt limit, at its boundary ---------------------------------------------------


def test_the_prompt_limit_is_inclusive() -> None:
    at = "x" * MAX_PROMPT_CHARS
    assert MAX_PROMPT_CHARS == 100_000  # the documented figure
    assert build_prompt([{"role": "user", "content": at}]) == at
    with pytest.raises(InvalidInputError, match="100,001 characters, over the limit of 100,000"):
        build_prompt([{"role": "user", "content": at + "x"}])


async def test_a_prompt_of_exactly_the_limit_reaches_the_site(cache_dir: Path) -> None:
    async with sandbox.running(generation="aipkit") as site:
        provider = provider_for(site.url, cache_dir)
        answer = await chat(provider, [{"role": "user", "content": "y" * MAX_PROMPT_CHARS}])
        assert answer.startswith("You said: yyy")
        sent = site.hits["admin-ajax:aipkit_frontend_chat_stream"]
        with pytest.raises(InvalidInputError):
            await chat(provider, [{"role": "user", "content": "y" * (MAX_PROMPT_CHARS + 1)}])
        assert site.hits["admin-ajax:aipkit_frontend_chat_stream"] == sent  # refused before


# -- a percent-encoded proxy password ---------------------------------------------------


@pytest.mark.parametrize("scheme", ["http", "socks5"])
async def test_a_percent_encoded_proxy_password_reaches_the_proxy_decoded(
    scheme: str, cache_dir: Path
) -> None:
    async with (
        PROXIES[scheme]("bob", "p@ss:w/rd") as proxy,
        sandbox.running(generation="aipkit") as site,
    ):
        url = _proxy_url(scheme, "bob", "p%40ss%3Aw%2Frd", proxy.port)
        assert await chat(provider_for(site.url, cache_dir), proxy=url) == "You said: Hello sandbox"
        # The proxy checked the decoded password and let every connection through.
        assert proxy.refused == 0 and proxy.connections > 0


# -- one try on a fresh connection --------------------------------------------------------


@pytest.mark.parametrize("generation", ["legacy", "aipkit"])
async def test_a_request_failing_on_a_fresh_connection_is_sent_once(
    generation: str, cache_dir: Path
) -> None:
    action = {"legacy": "wpaicg_chat_shortcode_message", "aipkit": "aipkit_frontend_chat_stream"}
    async with sandbox.running(generation=generation, abort_before_reply=True) as site:  # type: ignore[arg-type]
        with pytest.raises(NetworkError, match="ServerDisconnectedError"):
            await chat(provider_for(site.url, cache_dir), timeout=20)
        # The sandbox closes every connection after its answer (no keep-alive): the
        # chat request went out on a fresh one, and the site received it once.
        assert site.hits[f"admin-ajax:{action[generation]}"] == 1


# -- the keyless /metrics client -------------------------------------------------------


async def test_metrics_refuse_a_client_without_the_key(cache_dir: Path) -> None:
    import aiohttp

    from provider import serve

    async with (
        sandbox.running(generation="aipkit") as site,
        serve.running(provider_for(site.url, cache_dir), api_key="k-27-0123456789") as server,
        aiohttp.ClientSession() as http,
    ):
        for headers in ({}, {"Authorization": "Bearer k-27-wrong"}):
            async with http.get(server.url + "/metrics", headers=headers) as r:
                assert r.status == 401
                body = await r.text()
                assert "provider_serve_requests" not in body
        async with http.get(
            server.url + "/metrics", headers={"Authorization": "Bearer k-27-0123456789"}
        ) as r:
            assert r.status == 200 and "provider_serve_requests" in await r.text()


# -- found by the property test: a SOCKS proxy hanging up mid-handshake ----------------


async def test_a_socks_proxy_whose_target_refuses_is_a_network_error(cache_dir: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    async with socks5_proxy("alice", PASSWORD) as proxy:
        url = _proxy_url("socks5", "alice", PASSWORD, proxy.port)
        with pytest.raises(NetworkError) as caught:
            await chat(provider_for(f"http://127.0.0.1:{closed}", cache_dir), proxy=url)
        assert proxy.connections == 1  # the proxy tried the target, then hung up
    assert PASSWORD not in str(caught.value)
    assert "Check the network" in str(caught.value)


# -- the chat command's documented 130 -------------------------------------------------


async def test_the_chat_command_interrupted_mid_answer_exits_130(cache_dir: Path) -> None:
    import asyncio
    import signal
    import sys

    async with (
        sandbox.running(generation="aipkit", stall_after_deltas=1) as site,
        procs.started(
            sys.executable,
            "-m",
            "provider",
            "--url",
            site.url,
            "--cache-dir",
            str(cache_dir),
            "--timeout",
            "60",
            "Hi",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        ) as proc,  # fmt: skip
    ):
        assert proc.stdout is not None
        # The first chunk arrived: the chat is under way (then the site stalls).
        await asyncio.wait_for(proc.stdout.read(1), 30)
        proc.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(proc.wait(), 30)
    assert code == 130
