"""A lower library's error that carries the proxy's URL or its password (decoded or
as written) reaches the caller without it (issue 27). The sandboxed property test
(tests/faults/test_secrets_property.py) finds no such error among today's aiohttp and
python-socks releases; a future release's may, and then this edge is all that stands."""

from __future__ import annotations

import aiohttp
import pytest

from scraper.errors import NetworkError
from scraper.http_translate import translate_errors
from scraper.request import Proxy

RAW = "socks5://bob:p%40ss-w0rd-27@127.0.0.1:1080"
DECODED = "p@ss-w0rd-27"


def _raise_through(exc: Exception, proxy: Proxy | None) -> NetworkError:
    with pytest.raises(NetworkError) as caught, translate_errors("fetching the page", proxy):
        raise exc
    return caught.value


@pytest.mark.parametrize(
    "lower",
    [
        aiohttp.ClientOSError(1, f"lost the tunnel {RAW} midway"),
        aiohttp.ClientPayloadError(f"proxy said: bad credentials {DECODED!r}"),
        OSError(f"connect via {RAW} failed; auth {DECODED}"),
        EOFError(f"{RAW}"),
    ],
    ids=["raw-url", "decoded-password", "both", "eof"],
)
def test_a_lower_error_that_carries_the_proxy_secret_is_scrubbed(lower: Exception) -> None:
    proxy = Proxy.parse(RAW)
    error = _raise_through(lower, proxy)
    for text in (str(error), repr(error)):
        assert DECODED not in text and "p%40ss-w0rd-27" not in text, text
    assert "bob:***@127.0.0.1:1080" in str(error)  # the proxy is still named, redacted
    assert error.__cause__ is None and error.__suppress_context__  # no chained original


def test_without_a_proxy_the_text_is_kept() -> None:
    error = _raise_through(aiohttp.ClientOSError(1, "connection reset by peer"), None)
    assert "connection reset by peer" in str(error)


def test_a_proxy_without_credentials_is_named_and_the_error_kept() -> None:
    """Promise: a failure through a proxy that needs no credentials is a NetworkError
    naming that proxy and what failed (the scrub has no password to look for)."""
    proxy = Proxy.parse("http://127.0.0.1:3128")
    error = _raise_through(aiohttp.ClientOSError(1, "connection reset by peer"), proxy)
    assert "through proxy http://127.0.0.1:3128" in str(error)
    assert "connection reset by peer" in str(error)
