"""Which proxy is in effect: the rules of scraper.proxy_env, case by case."""

from __future__ import annotations

import doctest

import pytest

import scraper.proxy_env
from scraper.errors import ConfigurationError
from scraper.proxy_env import (
    ProxyEnv,
    ProxySource,
    describe_proxy,
    no_proxy_exempts,
    proxy_report,
    resolve_proxy,
)


def resolve(site: str, env: dict[str, str], proxy: str | None = None) -> tuple[str | None, str]:
    """(proxy URL with credentials, where from) for ``site`` under ``env``."""
    found, source = resolve_proxy(site, proxy, ProxyEnv.from_environ(env))
    return (found.raw if found else None), source.describe()


def test_the_module_examples_hold() -> None:
    assert doctest.testmod(scraper.proxy_env).failed == 0


def test_https_and_http_sites_take_their_own_variable() -> None:
    env = {"HTTPS_PROXY": "http://secure:1", "HTTP_PROXY": "http://plain:2"}
    assert resolve("https://site.example", env) == (
        "http://secure:1",
        "environment variable HTTPS_PROXY",
    )
    assert resolve("http://site.example:8080", env) == (
        "http://plain:2",
        "environment variable HTTP_PROXY",
    )


def test_all_proxy_is_the_fallback_only() -> None:
    env = {"ALL_PROXY": "socks5://all:3", "HTTPS_PROXY": "http://secure:1"}
    assert resolve("https://site.example", env)[0] == "http://secure:1"
    assert resolve("http://site.example", env) == (
        "socks5://all:3",
        "environment variable ALL_PROXY",
    )


@pytest.mark.parametrize("name", ["https_proxy", "http_proxy", "all_proxy", "no_proxy"])
def test_lower_case_wins_over_upper_case(name: str) -> None:
    site = "http://site.example" if name == "http_proxy" else "https://site.example"
    if name == "no_proxy":
        env = {"HTTPS_PROXY": "http://p:1", "no_proxy": "other.example", "NO_PROXY": "*"}
        assert resolve(site, env)[0] == "http://p:1"
        env = {"HTTPS_PROXY": "http://p:1", "no_proxy": "*", "NO_PROXY": "other.example"}
        assert resolve(site, env) == (None, "none: no_proxy exempts this site")
        return
    env = {name: "http://lower:1", name.upper(): "http://upper:2"}
    assert resolve(site, env) == ("http://lower:1", f"environment variable {name}")
    # Only one set: either case counts.
    assert resolve(site, {name.upper(): "http://upper:2"})[0] == "http://upper:2"


def test_an_empty_variable_counts_as_unset() -> None:
    env = {"https_proxy": "", "HTTPS_PROXY": "http://upper:2", "ALL_PROXY": "  "}
    assert resolve("https://site.example", env)[0] == "http://upper:2"
    assert resolve("http://site.example", env) == (
        None,
        "none: no proxy given or set in the environment",
    )


def test_under_cgi_upper_case_http_proxy_is_ignored() -> None:
    # httpoxy: a CGI script gets the client's "Proxy:" header as HTTP_PROXY.
    env = {"REQUEST_METHOD": "GET", "HTTP_PROXY": "http://attacker:1"}
    assert resolve("http://site.example", env)[0] is None
    env["http_proxy"] = "http://mine:2"
    assert resolve("http://site.example", env)[0] == "http://mine:2"


def test_a_value_without_a_scheme_is_an_http_proxy() -> None:
    proxy, _ = resolve_proxy(
        "https://site.example", None, ProxyEnv.from_environ({"HTTPS_PROXY": "u:pw@corp:3128"})
    )
    assert proxy is not None
    assert (proxy.url, proxy.auth and proxy.auth.login) == ("http://corp:3128", "u")


def test_an_explicit_proxy_wins_and_empty_means_none() -> None:
    env = {"HTTPS_PROXY": "http://env:1", "NO_PROXY": "*"}
    assert resolve("https://site.example", env, "socks5://mine:2") == (
        "socks5://mine:2",
        "argument",
    )
    assert resolve("https://site.example", env, "") == (None, "argument")
    # A bad environment proxy does not matter when the caller chose.
    bad = {"HTTPS_PROXY": "ftp://u:pw@h:1"}
    assert resolve("https://site.example", bad, "") == (None, "argument")


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "exempt"),
    [
        ("*", "anything.example", None, True),
        ("a.example, *", "b.example", None, True),
        ("example.org", "example.org", None, True),
        ("example.org", "www.example.org", None, True),
        (".example.org", "example.org", None, True),
        (".example.org", "deep.www.example.org", None, True),
        ("*.example.org", "www.example.org", None, True),
        ("example.org", "badexample.org", None, False),
        ("www.example.org", "example.org", None, False),
        ("EXAMPLE.org", "Www.Example.ORG.", None, True),
        ("a.example b.example", "b.example", None, True),
        ("10.0.0.0/8", "10.200.3.4", None, True),
        ("10.0.0.0/8", "11.0.0.1", None, False),
        ("127.0.0.0/8", "localhost", None, False),  # names are not resolved
        ("192.168.1.7", "192.168.1.7", None, True),
        ("192.168.1.7", "192.168.1.70", None, False),
        ("::1", "[::1]", None, True),
        ("fd00::/8", "fd12::5", None, True),
        ("fd00::/8", "10.0.0.1", None, False),
        ("example.org:8080", "example.org", 8080, True),
        ("example.org:8080", "example.org", 443, False),
        ("[::1]:8080", "::1", 8080, True),
        ("10.0.0.0/8:80", "10.1.1.1", 80, True),
        ("not/a/cidr, ,", "example.org", None, False),
        ("", "example.org", None, False),
    ],
)
def test_no_proxy_entries(no_proxy: str, host: str, port: int | None, exempt: bool) -> None:
    assert no_proxy_exempts(no_proxy, host, port) is exempt


def test_no_proxy_uses_the_sites_default_port() -> None:
    env = {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "site.example:443"}
    assert resolve("https://site.example", env)[0] is None
    assert resolve("https://site.example:8443", env)[0] == "http://p:1"


def test_no_proxy_exempts_before_the_proxy_is_read() -> None:
    # Like curl: an exempt site never looks at the (here unusable) proxy.
    env = {"HTTPS_PROXY": "ftp://h:1", "NO_PROXY": "site.example"}
    assert resolve("https://site.example", env) == (None, "none: NO_PROXY exempts this site")


@pytest.mark.parametrize(
    "value",
    [
        "ftp://alice:hunter2-pw@proxy:21",  # unsupported scheme
        "http://alice:hunter2-pw@proxy",  # no port
        "http://alice:hunter2-pw@proxy:notaport",  # bad port
        "ftp://alice:hunter2-pw@proxy:1080",
        "alice:hunter2-pw@proxy",  # no scheme, no port
        "http//alice:hunter2-pw@proxy:1",  # a typo in the scheme
        "http://alice:hunter2-pw@[::1:1",  # broken brackets
    ],
)
def test_a_bad_environment_proxy_names_the_variable_not_the_password(value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        resolve("https://site.example", {"https_proxy": value})
    message = str(caught.value)
    assert message.startswith("environment variable https_proxy: ")
    assert "hunter2" not in message
    assert "--no-proxy" in message


def test_a_bad_environment_proxy_raises_every_time() -> None:
    env = ProxyEnv.from_environ({"HTTPS_PROXY": "ftp://h:1"})
    for _ in range(2):
        with pytest.raises(ConfigurationError, match="HTTPS_PROXY"):
            resolve_proxy("https://site.example", None, env)


def test_the_environment_is_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert resolve_proxy("https://site.example", None)[0] is None
    monkeypatch.setenv("HTTPS_PROXY", "http://now:1")
    found, _ = resolve_proxy("https://site.example", None)
    assert found is not None and found.raw == "http://now:1"


def test_the_report_redacts_the_password() -> None:
    proxy, source = resolve_proxy(
        "https://site.example",
        None,
        ProxyEnv.from_environ({"HTTPS_PROXY": "http://alice:hunter2-pw@p:3128"}),
    )
    assert proxy_report(proxy, source) == {
        "proxy": "http://alice:***@p:3128",
        "proxy_source": "environment",
        "proxy_variable": "HTTPS_PROXY",
    }
    assert describe_proxy(proxy, source) == "http://alice:***@p:3128 (from HTTPS_PROXY)"
    assert proxy_report(None, ProxySource("argument")) == {
        "proxy": None,
        "proxy_source": "argument",
        "proxy_variable": None,
    }
    assert describe_proxy(None, ProxySource("argument")) == 'none (--no-proxy / proxy="")'
    assert describe_proxy(None, ProxySource("none")) == "none"
