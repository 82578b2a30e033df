"""The commands and the server, as real subprocesses, follow the environment's proxy
as the library does: through real proxies that alone resolve the site's name."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

import sandbox
from tests.commands.test_commands import assert_clean_error, run
from tests.proxies import ProxyServer, http_proxy
from tests.serve.test_command import serving, stop

NAME = "chatgptfree.test"
HOSTS = {NAME: "127.0.0.1"}
PASSWORD = "s3cr3t-pw"  # tests.proxies' default for the http proxy


def proxy_url(proxy: ProxyServer) -> str:
    return f"http://{proxy.user}:{proxy.password}@127.0.0.1:{proxy.port}"


def redacted(proxy: ProxyServer) -> str:
    return f"http://{proxy.user}:***@127.0.0.1:{proxy.port}"


def named(url: str) -> str:
    return url.replace("127.0.0.1", NAME)


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
async def test_chat_follows_the_environments_proxy(variable: str, cache_dir: Path) -> None:
    async with http_proxy(hosts=HOSTS) as proxy, sandbox.running(generation="aipkit") as site:
        result = await run(
            "provider", "--url", named(site.url), "--json", "Hi", env={variable: proxy_url(proxy)}
        )
        assert result.code == 0, result
        out = json.loads(result.out)
        assert out["answer"] == "You said: Hi"
        assert (out["proxy"], out["proxy_source"], out["proxy_variable"]) == (
            redacted(proxy),
            "environment",
            variable,
        )
        assert proxy.connections == sum(site.hits.values())
        assert PASSWORD not in result.out + result.err


async def test_no_proxy_flag_and_variable_and_explicit_proxy(cache_dir: Path) -> None:
    async with (
        http_proxy(hosts=HOSTS) as env_proxy,
        http_proxy("carol", "expl1cit-pw", hosts=HOSTS) as explicit,
        sandbox.running(generation="aipkit") as site,
    ):
        env = {"HTTP_PROXY": proxy_url(env_proxy)}
        # --no-proxy: directly, so the name does not resolve.
        result = await run("provider", "--url", named(site.url), "--no-proxy", "Hi", env=env)
        assert_clean_error(result, 1)
        assert "NetworkError" in result.err or "Cannot connect" in result.err
        # NO_PROXY exempts the site: directly too.
        result = await run(
            "provider.refresh", "--url", named(site.url), "--json",
            env={**env, "no_proxy": f".{NAME}"},
        )  # fmt: skip
        assert result.code == 1, result
        row = json.loads(result.out)["sites"][0]
        assert (row["ok"], row["proxy"], row["proxy_source"], row["proxy_variable"]) == (
            False,
            None,
            "environment",
            "no_proxy",
        )
        assert env_proxy.connections == 0
        # --proxy wins over the environment.
        result = await run(
            "provider.refresh", "--url", named(site.url), "--json",
            "--proxy", proxy_url(explicit), env=env,
        )  # fmt: skip
        assert result.code == 0, result
        row = json.loads(result.out)["sites"][0]
        assert (row["ok"], row["proxy_source"], row["proxy_variable"]) == (True, "argument", None)
        assert row["proxy"] == redacted(explicit)
        assert explicit.connections > 0
        assert env_proxy.connections == 0
        assert "expl1cit-pw" not in result.out + result.err


async def test_refresh_and_health_through_https_proxy_to_an_https_site(
    cache_dir: Path,
) -> None:
    async with (
        http_proxy(hosts=HOSTS) as proxy,
        sandbox.running(generation="legacy", tls=True, tls_names=(NAME,)) as site,
    ):
        assert site.ca_file is not None
        env = {"HTTPS_PROXY": proxy_url(proxy), "SSL_CERT_FILE": str(site.ca_file)}
        result = await run("provider.refresh", "--url", named(site.url), "--json", env=env)
        assert result.code == 0, result
        row = json.loads(result.out)["sites"][0]
        assert (row["proxy"], row["proxy_source"], row["proxy_variable"]) == (
            redacted(proxy),
            "environment",
            "HTTPS_PROXY",
        )
        # https goes through CONNECT, by name: only the proxy resolved it.
        assert proxy.targets and set(proxy.targets) == {named(site.url).split("//")[1]}

        result = await run("provider.health", "--url", named(site.url), "--json", env=env)
        assert result.code == 0, result
        report = json.loads(result.out)
        assert report["healthy"] is True
        assert (report["proxy"], report["proxy_source"], report["proxy_variable"]) == (
            redacted(proxy),
            "environment",
            "HTTPS_PROXY",
        )
        human = await run("provider.health", "--url", named(site.url), "--no-chat", env=env)
        assert human.code == 0, human
        assert f"proxy {redacted(proxy)} (from HTTPS_PROXY)" in human.out
        assert PASSWORD not in result.out + result.err + human.out + human.err


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("provider", ["Hi"]),
        ("provider.refresh", []),
        ("provider.health", []),
        ("provider.serve", ["--port", "0"]),
    ],
)
async def test_a_bad_environment_proxy_is_a_usage_error_naming_the_variable(
    command: str, args: list[str], cache_dir: Path
) -> None:
    result = await run(
        command, "--url", "https://chatgptfree.test", *args,
        env={"https_proxy": "ftp://alice:hunter2-pw@127.0.0.1:1080"},
    )  # fmt: skip
    assert_clean_error(result, 2)
    assert "environment variable https_proxy" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert "hunter2" not in result.err + result.out


async def test_with_no_proxy_or_the_sandbox_a_bad_environment_proxy_is_never_read(
    cache_dir: Path, unused_tcp_port: int
) -> None:
    bad = {"http_proxy": "ftp://alice:hunter2-pw@127.0.0.1:1080"}
    async with sandbox.running(generation="aipkit") as site:
        result = await run("provider.refresh", "--url", site.url, "--no-proxy", env=bad)
        assert result.code == 0, result
    # --sandbox goes to its loopback site directly: neither a bad nor a dead proxy matters.
    result = await run("provider", "--sandbox", "Hi", env=bad)
    assert result.code == 0, result
    dead = {"HTTP_PROXY": f"http://127.0.0.1:{unused_tcp_port}"}
    result = await run("provider", "--sandbox", "--json", "Hi", env=dead)
    assert result.code == 0, result
    assert json.loads(result.out)["proxy_source"] == "argument"


async def test_proxy_and_no_proxy_exclude_each_other(cache_dir: Path) -> None:
    result = await run("provider.refresh", "--proxy", "http://h:1", "--no-proxy")
    assert result.code == 2
    assert "not allowed with argument" in result.err


async def _health(url: str) -> dict[str, object]:
    async with aiohttp.ClientSession() as http, http.get(url + "/health") as resp:
        assert resp.status == 200
        data: dict[str, object] = await resp.json()
        return data


async def test_serve_follows_the_environment_and_reports_it(cache_dir: Path) -> None:
    async with http_proxy(hosts=HOSTS) as proxy, sandbox.running(generation="aipkit") as site:
        env = {"HTTP_PROXY": proxy_url(proxy), "PROVIDER_CACHE_DIR": str(cache_dir)}
        async with serving("--url", named(site.url), env=env) as (proc, info):
            body = {"model": "", "messages": [{"role": "user", "content": "Hi"}]}
            async with (
                aiohttp.ClientSession() as http,
                http.post(f"{info['base_url']}/chat/completions", json=body) as resp,
            ):
                reply = await resp.json()
                assert resp.status == 200, reply
            assert reply["choices"][0]["message"]["content"] == "You said: Hi"
            assert proxy.connections == sum(site.hits.values()) > 0
            health = await _health(str(info["url"]))
            entry = health["sites"][0]  # type: ignore[index]
            assert (entry["proxy"], entry["proxy_source"], entry["proxy_variable"]) == (
                redacted(proxy),
                "environment",
                "HTTP_PROXY",
            )
            assert entry["credentials"]["source"] == "http"
            assert PASSWORD not in json.dumps(health)
            code, err = await stop(proc)
        assert code == 0, err

        # --no-proxy: the environment's proxy is not used, and /health says so.
        connections = proxy.connections
        async with serving("--url", named(site.url), "--no-proxy", env=env) as (proc, info):
            async with (
                aiohttp.ClientSession() as http,
                http.post(f"{info['base_url']}/chat/completions", json=body) as resp,
            ):
                assert resp.status == 502  # the name resolves nowhere but at the proxy
                assert (await resp.json())["error"]["code"] == "site_unreachable"
            entry = (await _health(str(info["url"])))["sites"][0]  # type: ignore[index]
            assert (entry["proxy"], entry["proxy_source"], entry["proxy_variable"]) == (
                None,
                "argument",
                None,
            )
            assert proxy.connections == connections
            code, err = await stop(proc)
        assert code == 0, err
