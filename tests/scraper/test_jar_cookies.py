"""The cookies a site sets reach the stored credentials as the site meant them
(issue 27, survivors of the mutation tool on scraper/http_translate.py): those of the
site's host and its parent domains, with their expiry from ``Max-Age`` (which wins)
or ``Expires``; another host's stay out. A real aiohttp jar, fed real Set-Cookie text."""

from __future__ import annotations

import time
from email.utils import formatdate
from http.cookies import SimpleCookie

import aiohttp
import pytest
from yarl import URL

from scraper.credentials import Cookie
from scraper.http_translate import jar_cookies, load_cookies

SITE = "https://chat.example.test/chat/"


def _jar(*set_cookies: tuple[str, str]) -> aiohttp.CookieJar:
    """A jar as aiohttp fills it from replies: (replying URL, Set-Cookie header)."""
    jar = aiohttp.CookieJar(unsafe=True)
    for url, header in set_cookies:
        parsed: SimpleCookie = SimpleCookie()
        parsed.load(header)
        jar.update_cookies(parsed, response_url=URL(url))
    return jar


async def test_the_sites_host_and_parent_domain_cookies_are_kept_another_hosts_are_not() -> None:
    """Promise (jar_cookies): the cookies that belong to the site's host, a parent
    domain's included; a cookie of another host never joins the site's credentials."""
    jar = _jar(  # another host's first: the ones after it are still looked at
        ("https://other.test/", "other=3; Path=/"),
        ("https://an.other.test/", "another=4; Path=/"),  # sorts before the host
        ("https://chat.example.test/", "host=1; Path=/; SameSite=Lax"),
        ("https://chat.example.test/", "parent=2; Domain=example.test; Path=/"),
    )
    found = {c.name: c for c in jar_cookies(jar, SITE)}
    assert sorted(found) == ["host", "parent"]
    assert (found["host"].value, found["host"].domain) == ("1", "chat.example.test")
    assert found["parent"].domain.lstrip(".") == "example.test"
    assert (found["host"].same_site, found["parent"].same_site) == ("Lax", None)


async def test_a_cookies_expiry_comes_from_max_age_else_from_expires() -> None:
    """Promise (jar_cookies: "with their attributes"): a stored cookie expires when
    the site said, so a stale clearance is never sent; Max-Age wins over Expires."""
    later = time.time() + 3600
    jar = _jar(
        ("https://chat.example.test/", "aged=1; Max-Age=600; Path=/"),
        ("https://chat.example.test/", f"dated=2; Expires={formatdate(later, usegmt=True)}"),
        (
            "https://chat.example.test/",
            f"both=3; Max-Age=600; Expires={formatdate(later, usegmt=True)}",
        ),
        ("https://chat.example.test/", "session=4; Path=/"),
    )
    before = time.time()
    found = {c.name: c for c in jar_cookies(jar, SITE)}
    for name in ("aged", "both"):
        expires = found[name].expires
        assert expires is not None and before + 590 <= expires <= time.time() + 610, name
    dated = found["dated"].expires
    assert dated is not None and abs(dated - later) <= 1
    assert found["session"].expires is None


async def test_stored_cookies_go_back_into_a_jar_as_they_came() -> None:
    """Promise: credentials' cookies loaded into a call's jar come out unchanged
    (name, value, domain, path, flags, expiry), so the site sees them again on the
    next call, a parent domain's cookie on its other hosts too."""
    first = jar_cookies(
        _jar(
            ("https://chat.example.test/", "aged=1; Max-Age=600; Path=/; Secure; HttpOnly"),
            ("https://chat.example.test/", "parent=2; Domain=example.test; Path=/chat"),
        ),
        SITE,
    )
    jar = aiohttp.CookieJar(unsafe=True)
    load_cookies(jar, first, SITE)
    again = {c.name: c for c in jar_cookies(jar, SITE)}
    for cookie in first:
        back = again[cookie.name]
        assert (back.value, back.domain, back.path, back.secure, back.http_only) == (
            cookie.value,
            cookie.domain,
            cookie.path,
            cookie.secure,
            cookie.http_only,
        ), cookie.name
        if cookie.expires is None:
            assert back.expires is None
        else:
            assert back.expires is not None and abs(back.expires - cookie.expires) <= 1
    assert again["parent"].path == "/chat" and again["aged"].secure


async def test_a_stored_cookies_expiry_holds_in_any_time_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Promise: a cookie's expiry is an instant, the same on a machine whose clock
    shows another zone (its Expires goes into the jar as GMT, not "-0000", which
    reads back as local time)."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        expires = time.time() + 3600
        jar = aiohttp.CookieJar(unsafe=True)
        load_cookies(jar, [Cookie("c", "1", "chat.example.test", "/", expires)], SITE)
        (back,) = jar_cookies(jar, SITE)
        assert back.expires is not None and abs(back.expires - expires) <= 1
    finally:
        monkeypatch.undo()
        time.tzset()


async def test_an_expired_stored_cookie_stays_out_and_the_others_go_in() -> None:
    """Promise (Cookie.expired): a stored cookie past its expiry is never sent again;
    the ones after it in the credentials still are."""
    now = time.time()
    stored = [
        Cookie("old", "1", "chat.example.test", "/", now - 60),
        Cookie("fresh", "2", "chat.example.test", "/", now + 600),
        Cookie("session", "3", "chat.example.test", "/"),
    ]
    jar = aiohttp.CookieJar(unsafe=True)
    load_cookies(jar, stored, SITE)
    assert sorted(c.name for c in jar_cookies(jar, SITE)) == ["fresh", "session"]
