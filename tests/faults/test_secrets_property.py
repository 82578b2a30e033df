"""No secret on any failure path, by property (issue 27): hypothesis draws the failure
point (connect refused, TLS failure, proxy authentication, a drop before or during the
answer, a stall past the timeout), the proxy (none, HTTP, SOCKS5) and where the
answer is cut; with a proxy password, caller cookies and the site's nonce in play,
the error's text and ``repr``, every log record (at DEBUG), the endpoint's error
body and the commands' ``--json`` output carry none of them.

Each example starts its own sandbox and proxy (in-process, milliseconds), its own
cache folder and its own log handler: nothing is shared between examples, so
hypothesis may shrink freely. Browser crashes have their own tests
(tests/browser/test_lifecycle.py); a browser per example would cost seconds each.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sandbox
from provider import serve
from provider.errors import ProviderError
from tests import procs
from tests.conftest import USER, chat, provider_for
from tests.proxies import ProxyServer, http_proxy, socks5_proxy

PASSWORD = "pr0xy-Pa55-27"
COOKIE = "caller-cookie-27-9d1e"
API_KEY = "k-27-secret-0123456789"

POINTS = ["refused", "tls", "proxy_auth", "abort", "drop", "stall"]
PROXIES = ["none", "http", "socks5"]


@dataclass
class Scene:
    url: str
    proxy: str | None
    site: sandbox.Site | None
    secrets: set[str] = field(default_factory=set)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def _no_proxy() -> AsyncIterator[ProxyServer | None]:
    yield None


@contextlib.asynccontextmanager
async def scene(point: str, proxy_kind: str, cut: int) -> AsyncIterator[Scene]:
    """A site failing at ``point``, reached through ``proxy_kind``, its secrets listed."""
    knobs: dict[str, object] = {
        "tls": {"bind_tls": True},
        "abort": {"abort_before_reply": True},
        "drop": {"drop_after_bytes": cut},
        "stall": {"stall_after_deltas": cut % 3},
    }.get(point, {})
    proxies = {"http": http_proxy, "socks5": socks5_proxy}
    # A wrong password is the one the proxy expects; the one in the URL is the secret.
    expected = PASSWORD + "-other" if point == "proxy_auth" else PASSWORD
    opened = proxies[proxy_kind]("alice", expected) if proxy_kind in proxies else _no_proxy()
    async with opened as proxy, sandbox.running(generation="aipkit", **knobs) as site:  # type: ignore[arg-type]
        url = f"http://127.0.0.1:{_closed_port()}" if point == "refused" else site.url
        scheme = "socks5" if proxy_kind == "socks5" else "http"
        proxy_url = f"{scheme}://alice:{PASSWORD}@127.0.0.1:{proxy.port}" if proxy else None
        found = Scene(url, proxy_url, site, {PASSWORD, COOKIE, API_KEY, site.nonce()})
        yield found
        found.secrets.add(site.nonce())


def _secrets_in(provider: object, scene_: Scene) -> set[str]:
    """What the store came to hold (a nonce, the site's cookies) joins the secrets."""
    creds = provider.stored_credentials(scene_.proxy)  # type: ignore[attr-defined]
    if creds is None:
        return set()
    return {creds.nonce} | {c.value for c in creds.cookies if len(c.value) >= 8}


class _Records(logging.Handler):
    """Every record at DEBUG and up, formatted with its traceback (caplog is per test)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record))


@contextlib.contextmanager
def _logs() -> AsyncIterator[_Records]:  # type: ignore[misc]
    handler = _Records()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _point_is_possible(point: str, proxy_kind: str) -> bool:
    return not (point == "proxy_auth" and proxy_kind == "none")


SETTINGS = settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(
    point=st.sampled_from(POINTS),
    proxy_kind=st.sampled_from(PROXIES),
    cut=st.integers(min_value=0, max_value=400),
)
async def test_no_failure_of_the_library_or_the_endpoint_shows_a_secret(
    point: str, proxy_kind: str, cut: int
) -> None:
    if not _point_is_possible(point, proxy_kind):
        return
    with tempfile.TemporaryDirectory() as cache, _logs() as logs:
        async with scene(point, proxy_kind, cut) as s:
            provider = provider_for(s.url, Path(cache), browser="never")
            texts: list[str] = []
            try:
                await chat(provider, proxy=s.proxy, cookies={"pref": COOKIE}, timeout=2)
            except ProviderError as exc:
                texts += [str(exc), repr(exc)]
                failed = True
            else:
                failed = False
            # The same failure behind the endpoint: its error body (or stream).
            async with (
                serve.running(provider, api_key=API_KEY, timeout=2, proxy=s.proxy) as server,
                aiohttp.ClientSession() as http,
            ):
                for stream in (False, True):
                    async with http.post(
                        server.base_url + "/chat/completions",
                        json={"model": "", "messages": USER, "stream": stream},
                        headers={"Authorization": f"Bearer {API_KEY}"},
                    ) as r:
                        texts.append(await r.text())
            s.secrets |= _secrets_in(provider, s)
    # Every point but a drop past the end of the answer fails the chat.
    assert failed or point in ("drop", "stall"), (point, proxy_kind, cut)
    blob = "\n".join([*texts, *logs.texts])
    assert logs.texts  # there was logging to look at
    for secret in s.secrets:
        assert secret not in blob, (secret, point, proxy_kind, cut)


@settings(
    max_examples=10,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    point=st.sampled_from(POINTS),
    proxy_kind=st.sampled_from(PROXIES),
    command=st.sampled_from(["provider", "provider.refresh", "provider.health"]),
)
@pytest.mark.timeout(180)
async def test_no_failure_of_a_command_prints_a_secret_in_its_json(
    point: str, proxy_kind: str, command: str
) -> None:
    if not _point_is_possible(point, proxy_kind):
        return
    with tempfile.TemporaryDirectory() as cache:
        async with scene(point, proxy_kind, 120) as s:
            argv = [command, "--url", s.url, "--json", "--debug", "--cache-dir", cache]
            argv += ["--timeout", "3", "--browser", "never"]
            argv += ["--proxy", s.proxy] if s.proxy else ["--no-proxy"]
            if command == "provider":
                argv.append("Hi")
            if command == "provider.refresh":
                argv.append("--force")
            result = await procs.run_module(*argv, timeout=60)
            provider = provider_for(s.url, Path(cache))
            s.secrets |= _secrets_in(provider, s)
    assert result.code in (0, 1), result
    if result.out.strip():
        json.loads(result.out.strip().splitlines()[-1])  # one JSON object
    for secret in s.secrets - {API_KEY}:
        assert secret not in result.out + result.err, (secret, point, proxy_kind, command)
