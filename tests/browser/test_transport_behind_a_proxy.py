"""The remembered browser transport through an authenticated proxy: it is stored under
the key every later call through that proxy derives, so the next call finds it."""

from __future__ import annotations

from pathlib import Path

import pytest

import sandbox
from tests.browser.test_transport import ANSWER, _public_call
from tests.conftest import provider_for
from tests.proxies import http_proxy

pytestmark = pytest.mark.browser
PASSWORD = "tr4nsport-pw"


async def test_the_browser_transport_is_remembered_through_an_authenticated_proxy(
    cache_dir: Path, chromium: str | None
) -> None:
    async with (
        http_proxy("dave", PASSWORD) as proxy,
        sandbox.running(generation="aipkit", challenge=True, bind_tls=True) as site,
    ):
        url = f"http://dave:{PASSWORD}@127.0.0.1:{proxy.port}"
        # The clearance is bound to the browser's TLS: the first call switches to the
        # browser transport (plain HTTP and Chromium both through the proxy)...
        assert await _public_call(site, cache_dir, proxy=url) == {"answer": ANSWER}
        tunnels = proxy.connections
        assert tunnels > 0
        # ...and the store holds that choice where a call through this proxy looks.
        creds = provider_for(site.url, cache_dir).stored_credentials(url)
        assert creds is not None and creds.transport == "browser"
        # The next call through the same proxy (a new process) goes straight to the
        # browser with the stored clearance: no challenge met, none solved.
        challenges, solved = site.hits["challenge"], site.hits["clearance"]
        assert await _public_call(site, cache_dir, proxy=url) == {"answer": ANSWER}
        assert (site.hits["challenge"], site.hits["clearance"]) == (challenges, solved)
        assert proxy.connections > tunnels  # and it went through the proxy again
        # A different password is a different proxy account: nothing is shared with it.
        other = provider_for(site.url, cache_dir).stored_credentials(url.replace(PASSWORD, "x"))
        assert other is None
    # No password in the store's file names.
    assert all(PASSWORD not in p.name for p in (cache_dir / "credentials").iterdir())
