"""A status the site sends is the site's verdict, never the proxy's: only a 407 is
a proxy refusal (issue 27, a survivor of the mutation tool on
scraper/http_translate.py: ``status == 407`` read as ``>= 407``)."""

from __future__ import annotations

from pathlib import Path

import pytest

import sandbox
from provider.errors import NetworkError, RateLimitedError
from tests.conftest import chat, provider_for
from tests.proxies import http_proxy


async def test_a_rate_limited_page_through_a_proxy_is_the_sites_429(cache_dir: Path) -> None:
    """Promise (README's errors): a site that rate-limits the caller is a
    RateLimitedError with its Retry-After, even through a proxy; not a NetworkError
    telling the caller to fix proxy credentials that are right."""
    async with http_proxy() as proxy, sandbox.running(rate_limit=True, retry_after=17) as site:
        url = f"http://{proxy.user}:{proxy.password}@127.0.0.1:{proxy.port}"
        with pytest.raises(RateLimitedError) as caught:
            await chat(provider_for(site.url, cache_dir), proxy=url, timeout=10)
        assert not isinstance(caught.value, NetworkError)
        assert caught.value.retry_after == 17
        assert "407" not in str(caught.value) and "credentials" not in str(caught.value)
        assert site.hits["rate_limited"] >= 1
