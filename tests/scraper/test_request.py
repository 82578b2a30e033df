"""What every request carries (scraper/request.py): the caller's deadline, the proxy it
parses, the site's origin. Each test here kills survivors of the mutation tool
(issue 27, docs/reliability.md); the behaviour is the manual's, held at its edges."""

from __future__ import annotations

import re

import pytest

from provider.errors import ConfigurationError, ProviderTimeoutError
from scraper.request import Deadline, Proxy, ProxyAuth, origin_of


def test_a_deadline_holds_its_own_seconds_even_under_one() -> None:
    """Promise (docs/library.md, ``timeout``): one budget for the whole call, no more
    and no less. A fresh deadline has at most its seconds left (not a multiple of the
    clock), and a budget under a second is not spent at once."""
    assert 0 < Deadline(5).remaining() <= 5
    assert 0 < Deadline(0.5).remaining("a short wait") <= 0.5
    with pytest.raises(ProviderTimeoutError, match=r"^a spent wait did not finish"):
        Deadline(-1).remaining("a spent wait")


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://Site.Example:80/chat/", "http://site.example"),
        ("https://site.example:443", "https://site.example"),
        ("http://site.example", "http://site.example"),
        ("https://site.example/", "https://site.example"),
        ("http://site.example:81/", "http://site.example:81"),
        ("http://site.example:79/", "http://site.example:79"),
        ("https://site.example:444/x", "https://site.example:444"),
        ("https://site.example:442/x", "https://site.example:442"),
        ("http://site.example:443/", "http://site.example:443"),
        ("https://[::1]:8443/", "https://[::1]:8443"),
    ],
)
def test_a_sites_origin_drops_only_its_schemes_default_port(url: str, origin: str) -> None:
    """Promise (docs/library.md): credentials are kept per site and caller cookies go to
    the site's origin only. A site written with or without its default port is one
    origin; any other port is another."""
    assert origin_of(url) == origin


@pytest.mark.parametrize("url", ["ftp://site.example/", "http:///chat/", "site.example"])
def test_a_site_url_that_is_no_absolute_http_url_is_refused_by_name(url: str) -> None:
    with pytest.raises(ConfigurationError, match="must be an absolute http"):
        origin_of(url)


def test_a_proxy_that_is_no_text_is_refused_by_name() -> None:
    with pytest.raises(ConfigurationError, match="proxy must be a URL string, not int"):
        Proxy.parse(1080)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("proxy", "says"),
    [
        ("ftp://127.0.0.1:21", "proxy scheme 'ftp' is not supported"),
        ("//127.0.0.1:1080", "proxy scheme '(none)' is not supported"),
        ("http://127.0.0.1", "needs a host and a port"),
        ("socks5://:1080", "needs a host and a port"),
        ("http://alice:s3cr3t-27@127.0.0.1:99999", "is not a valid URL"),
        ("http://alice:s3cr3t-27@127.0.0.1:port", "is not a valid URL"),
    ],
)
def test_a_proxy_that_cannot_be_used_says_why_without_its_password(proxy: str, says: str) -> None:
    """Promise (docs/library.md, errors): a bad proxy is a ConfigurationError naming
    what is wrong, never a bare ValueError, and never with the password in it."""
    with pytest.raises(ConfigurationError, match=re.escape(says)) as caught:
        Proxy.parse(proxy)
    assert "s3cr3t" not in str(caught.value)


def test_a_parsed_proxy_keeps_its_password_out_of_every_repr() -> None:
    """Promise (README, "none carries a secret"): a Proxy or its ProxyAuth in a log line
    or a traceback's locals shows no password, decoded or as written."""
    proxy = Proxy.parse("socks5://bob:p%40ss-27@127.0.0.1:1080")
    assert proxy is not None and proxy.auth == ProxyAuth("bob", "p@ss-27")
    for text in (repr(proxy), repr(proxy.auth), proxy.redacted, proxy.url):
        assert "p@ss-27" not in text and "p%40ss-27" not in text
    assert proxy.url == "socks5://127.0.0.1:1080"
