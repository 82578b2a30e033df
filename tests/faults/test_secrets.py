"""No nonce, cookie value or proxy password in logs, errors or command output."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import sandbox
from provider import ChatgptFree
from provider.errors import ProviderError
from tests import procs
from tests.conftest import chat, provider_for
from tests.proxies import http_proxy

CALLER_COOKIE = "caller-cookie-value-7f3a"
PASSWORD = "pr0xy-pa55word"


def secrets_of(site: sandbox.Site, provider: type[ChatgptFree], proxy: str) -> set[str]:
    creds = provider.stored_credentials(proxy)
    assert creds is not None
    found = {site.nonce(), CALLER_COOKIE, PASSWORD, creds.nonce}
    found |= {c.value for c in creds.cookies if len(c.value) >= 8}
    return found


@pytest.mark.browser
@pytest.mark.parametrize("generation", ["legacy", "aipkit"])
async def test_full_session_through_proxy_and_browser_leaks_nothing_at_debug(
    generation: str, cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    texts: list[str] = []
    async with (
        http_proxy("alice", PASSWORD) as proxy,
        sandbox.running(generation=generation, challenge=True) as site,
    ):
        url = f"http://alice:{PASSWORD}@127.0.0.1:{proxy.port}"
        provider = provider_for(site.url, cache_dir)
        with caplog.at_level(logging.DEBUG):
            assert await chat(provider, proxy=url, cookies={"pref": CALLER_COOKIE})
            creds = provider.stored_credentials(url)
            assert creds is not None and creds.source == "browser"
            texts.append(repr(creds))
            # The nonce goes bad: refresh and retry, all logged at DEBUG.
            site.rotate_nonce()
            assert await chat(provider, proxy=url, cookies={"pref": CALLER_COOKIE})
            # Errors on the way: a wrong proxy password, then a hard block.
            for bad_proxy, knob in (
                (f"http://alice:{PASSWORD}x@127.0.0.1:{proxy.port}", None),
                (url, "hard_block"),
            ):
                if knob:
                    site.config.hard_block = True
                with pytest.raises(ProviderError) as err:
                    await chat(
                        provider_for(site.url, cache_dir / "other"), proxy=bad_proxy, timeout=10
                    )
                texts.append(str(err.value))
        secrets = secrets_of(site, provider, url)
        assert proxy.connections > 0  # the browser and plain HTTP both went through it
    texts.append(caplog.text)
    texts.extend(r.getMessage() for r in caplog.records)
    blob = "\n".join(texts)
    # There was logging to look at, from the code that handles the secrets, at DEBUG:
    # the browser's solve (cookies, nonce) and the refresh after the nonce went bad.
    seen = {(r.name, r.levelno) for r in caplog.records}
    assert any(
        r.name == "scraper.browser._solve"
        and r.levelno == logging.DEBUG
        and r.getMessage().startswith("widget shown")
        for r in caplog.records
    ), sorted(seen)
    assert any(
        r.name == "provider._provider" and "refreshing the credentials once" in r.getMessage()
        for r in caplog.records
    ), sorted(seen)
    for secret in secrets:
        assert secret not in blob, "a secret leaked into logs or errors"


async def run_command(*args: str) -> tuple[int, str]:
    result = await procs.run_module(*args, merge_stderr=True, timeout=90)
    return result.code, result.out


async def test_commands_at_debug_with_json_print_no_secret(cache_dir: Path) -> None:
    async with http_proxy("alice", PASSWORD) as proxy, sandbox.running(generation="aipkit") as site:
        url = f"http://alice:{PASSWORD}@127.0.0.1:{proxy.port}"
        outputs = []
        for command in (
            ["provider", "--url", site.url, "--proxy", url, "--debug", "--json", "Hi"],
            ["provider.refresh", "--url", site.url, "--proxy", url, "--debug", "--json", "--force"],
            ["provider.health", "--url", site.url, "--proxy", url, "--debug", "--json"],
            [
                "provider.health",
                "--url",
                site.url,
                "--proxy",
                url.replace(PASSWORD, "nope"),
                "--debug",
                "--json",
            ],
        ):
            outputs.append(await run_command(*command))
        nonce = site.nonce()
        fetched = site.hits["GET /chat/"]
    # Each command did its work, so there were secrets to leak: the chat got its answer
    # (a nonce was read), the refresh stored a fresh one, the health check chatted too;
    # only the wrong password is unhealthy, and says so.
    assert [code for code, _ in outputs] == [0, 0, 0, 1], outputs
    assert '"answer": "You said: Hi"' in outputs[0][1]
    assert '"refreshed": true' in outputs[1][1]
    assert '"healthy": true' in outputs[2][1] and '"healthy": false' in outputs[3][1]
    assert fetched >= 3  # chat, forced refresh, health: each read the page with a nonce
    blob = "\n".join(out for _, out in outputs)
    assert "DEBUG" in blob
    assert nonce not in blob
    assert PASSWORD not in blob
