"""The sandbox over HTTPS, and the test proxies' names of their own."""

from __future__ import annotations

import ssl
import urllib.request
from pathlib import Path

import aiohttp
import pytest

import sandbox
from tests.proxies import http_proxy, socks5_proxy


def _trusting(ca_file: Path | None) -> ssl.SSLContext:
    assert ca_file is not None
    return ssl.create_default_context(cafile=str(ca_file))


async def test_https_serves_the_page_with_a_certificate_its_ca_verifies() -> None:
    async with sandbox.running(generation="legacy", tls=True) as site:
        assert site.url.startswith("https://127.0.0.1:")
        ca_file = site.ca_file
        assert ca_file is not None and ca_file.is_file()
        async with aiohttp.ClientSession() as http:
            for url in (site.url, site.url.replace("127.0.0.1", "localhost")):
                async with http.get(url + "/chat/", ssl=_trusting(ca_file)) as resp:
                    assert resp.status == 200
                    assert "wpaicg-chat-shortcode" in await resp.text()
            # Without the CA the certificate does not verify: it is a real chain.
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await http.get(site.url + "/chat/")
        assert site.hits["GET /chat/"] == 2
    assert not ca_file.exists()  # the throwaway CA goes with the site


async def test_plain_http_by_default() -> None:
    async with sandbox.running() as site:
        assert site.url.startswith("http://") and site.ca_file is None


def test_serve_in_thread_over_tls() -> None:
    with sandbox.serve_in_thread(generation="aipkit", tls=True) as site:
        ctx = _trusting(site.ca_file)
        with urllib.request.urlopen(site.url + "/chat/", context=ctx) as r:
            assert r.status == 200 and b"aipkit_chat_container" in r.read()


@pytest.mark.parametrize("kind", ["connect", "socks5"])
async def test_a_name_only_the_proxy_resolves(kind: str) -> None:
    name = "chatgptfree.test"
    async with sandbox.running(tls=True, tls_names=(name,)) as site:
        port = site.url.rsplit(":", 1)[1]
        url = f"https://{name}:{port}/chat/"
        ctx = _trusting(site.ca_file)
        async with aiohttp.ClientSession() as http:
            # The client alone cannot resolve the name...
            with pytest.raises(aiohttp.ClientConnectorError):
                await http.get(url, ssl=ctx)
            # ...the proxy can, and the certificate covers it.
            if kind == "connect":
                async with http_proxy(hosts={name: "127.0.0.1"}) as proxy:
                    proxy_url = f"http://alice:s3cr3t-pw@127.0.0.1:{proxy.port}"
                    async with http.get(url, ssl=ctx, proxy=proxy_url) as resp:
                        assert resp.status == 200
                    assert proxy.targets == [f"{name}:{port}"]
                return
        from aiohttp_socks import ProxyConnector

        async with socks5_proxy(hosts={name: "127.0.0.1"}) as proxy:
            connector = ProxyConnector.from_url(
                f"socks5://bob:s0cks-pw@127.0.0.1:{proxy.port}", rdns=True
            )
            async with (
                aiohttp.ClientSession(connector=connector) as http,
                http.get(url, ssl=ctx) as resp,
            ):
                assert resp.status == 200
            assert proxy.targets == [f"{name}:{port}"]
