"""Every documented limit at its boundary (issue 27): the limit itself passes, one over
fails with an error naming it. Real loopback servers; the prompt limit is in
tests/faults/test_examined.py."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from provider.errors import ConfigurationError, ProtocolError
from scraper.http import (
    DEFAULT_USER_AGENT,
    MAX_PAGE_BYTES,
    MAX_REDIRECTS,
    Deadline,
    PoolConfig,
    borrow,
    fetch_page,
)


@contextlib.asynccontextmanager
async def pages() -> AsyncIterator[str]:
    """``/bytes/N`` (declared length), ``/stream/N`` (chunked, undeclared), ``/hops/N``
    (N redirects, then a page), ``/located`` (a 200 with a Location header)."""

    async def declared(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * int(request.match_info["n"]))

    async def undeclared(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        left = int(request.match_info["n"])
        while left:
            piece = min(left, 1 << 20)
            await resp.write(b"y" * piece)
            left -= piece
        await resp.write_eof()
        return resp

    async def hops(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        if n == 0:
            return web.Response(text="<html>arrived</html>", content_type="text/html")
        raise web.HTTPFound(f"/hops/{n - 1}")

    async def located(request: web.Request) -> web.Response:
        # A page that names another place but is no redirect (201-style Location).
        return web.Response(text="<html>here</html>", headers={"Location": "/hops/0"})

    app = web.Application()
    app.router.add_get("/located", located)
    app.router.add_get("/bytes/{n}", declared)
    app.router.add_get("/stream/{n}", undeclared)
    app.router.add_get("/hops/{n}", hops)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def _fetch(base: str, path: str) -> bytes:
    page = await fetch_page(
        borrow(base, None), base + path, user_agent=DEFAULT_USER_AGENT, deadline=Deadline(30)
    )
    return page.body


@pytest.mark.parametrize("kind", ["bytes", "stream"])
async def test_a_page_of_exactly_the_limit_is_read_and_one_byte_more_is_refused(
    kind: str,
) -> None:
    assert MAX_PAGE_BYTES == 5 * 1024 * 1024  # "a page over 5 MB is refused"
    async with pages() as base:
        assert len(await _fetch(base, f"/{kind}/{MAX_PAGE_BYTES}")) == MAX_PAGE_BYTES
        with pytest.raises(ProtocolError, match="over the 5,242,880 byte limit"):
            await _fetch(base, f"/{kind}/{MAX_PAGE_BYTES + 1}")


async def test_redirects_are_followed_up_to_the_limit_and_not_one_more() -> None:
    assert MAX_REDIRECTS == 5
    async with pages() as base:
        assert await _fetch(base, f"/hops/{MAX_REDIRECTS}") == b"<html>arrived</html>"
        with pytest.raises(ProtocolError, match="more than 5 redirects"):
            await _fetch(base, f"/hops/{MAX_REDIRECTS + 1}")


@pytest.mark.parametrize(
    ("knobs", "ok"),
    [
        ({"max_connections": 0}, True),  # 0 lifts the bound
        ({"max_connections": 1}, True),
        ({"max_connections": -1}, False),
        ({"keepalive_timeout": 0}, True),  # 0: no reuse
        ({"keepalive_timeout": 0.001}, True),
        ({"keepalive_timeout": -0.001}, False),
        ({"keepalive_timeout": float("inf")}, False),
    ],
)
def test_pool_bounds_at_their_edges(knobs: dict[str, float], ok: bool) -> None:
    if ok:
        config = PoolConfig.resolve(**knobs)  # type: ignore[arg-type]
        for name, value in knobs.items():
            assert getattr(config, name) == value
    else:
        with pytest.raises(ConfigurationError, match=">= 0"):
            PoolConfig.resolve(**knobs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("variable", "raw", "ok"),
    [
        ("PROVIDER_MAX_CONNECTIONS", "0", True),
        ("PROVIDER_MAX_CONNECTIONS", "-1", False),
        ("PROVIDER_KEEPALIVE_TIMEOUT", "0", True),
        ("PROVIDER_KEEPALIVE_TIMEOUT", "-1", False),
    ],
)
def test_pool_bounds_from_the_environment_at_their_edges(
    variable: str, raw: str, ok: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, raw)
    if ok:
        PoolConfig.resolve()
    else:
        with pytest.raises(ConfigurationError, match=f"from \\${variable}"):
            PoolConfig.resolve()


@pytest.mark.parametrize("limit", [True, 2.5, "8"], ids=["bool", "float", "str"])
def test_max_connections_must_be_a_whole_number(limit: object) -> None:
    """Promise (PoolConfig): max_connections is a whole number >= 0; a flag, a
    fraction or a text is refused by name, never taken as a bound (issue 27, a
    survivor of the mutation tool)."""
    with pytest.raises(ConfigurationError, match="max_connections must be a whole number"):
        PoolConfig.resolve(max_connections=limit)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("variable", "wanted"),
    [
        ("PROVIDER_MAX_CONNECTIONS", "a whole number of connections"),
        ("PROVIDER_KEEPALIVE_TIMEOUT", "a number of seconds"),
    ],
)
def test_a_pool_variable_that_is_no_number_says_what_to_give(
    variable: str, wanted: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Promise (every error names what to do): a pool variable that is not a number
    says which variable and what kind of number it takes."""
    monkeypatch.setenv(variable, "lots")
    with pytest.raises(ConfigurationError, match=f"\\${variable}='lots' is not a number") as err:
        PoolConfig.resolve()
    assert f"unset it or give {wanted}" in str(err.value)


async def test_a_page_with_a_location_but_no_redirect_status_is_the_page() -> None:
    """Promise (fetch_page): only a redirect status is followed; a page that carries a
    Location header with a 200 is that page (issue 27, a survivor of the mutation tool)."""
    async with pages() as base:
        assert await _fetch(base, "/located") == b"<html>here</html>"


@pytest.mark.parametrize("seconds", [True, "5"], ids=["bool", "str"])
def test_keepalive_timeout_must_be_a_number_of_seconds(seconds: object) -> None:
    """Promise (PoolConfig): keepalive_timeout is a number of seconds; a flag or a text
    is refused by name (issue 27, a survivor of the mutation tool)."""
    with pytest.raises(ConfigurationError, match="keepalive_timeout must be a number of sec"):
        PoolConfig.resolve(keepalive_timeout=seconds)  # type: ignore[arg-type]


def test_a_deadline_of_zero_is_spent_and_a_positive_one_is_not() -> None:
    from provider.errors import ProviderTimeoutError

    with pytest.raises(ProviderTimeoutError, match="within the timeout of 0 s"):
        Deadline(0).remaining("the call")
    assert Deadline(30).remaining() > 0


async def test_a_wait_past_its_deadline_is_the_providers_timeout_naming_the_wait() -> None:
    import asyncio

    from provider.errors import ProviderTimeoutError

    with pytest.raises(ProviderTimeoutError, match=r"^reading the page did not finish"):
        async with Deadline(0.05).within("reading the page"):
            await asyncio.Event().wait()
    # An inner wait's own timeout passes through the outer one untouched.
    with pytest.raises(ProviderTimeoutError, match=r"^the inner step did not finish"):
        async with Deadline(30).within("the call"), Deadline(0.05).within("the inner step"):
            await asyncio.Event().wait()


def test_an_empty_proxy_is_no_proxy() -> None:
    from scraper.http import Proxy

    assert Proxy.parse("") is None and Proxy.parse(None) is None
