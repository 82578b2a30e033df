"""Which proxy is in effect for a site: the caller's, else the environment's.

People on restricted networks set their proxy once, in the environment, as
curl, pip and requests read it. The rules, in order:

1. An explicit proxy (``proxy=`` / ``--proxy``) always wins; the empty string
   (``proxy=""`` / ``--no-proxy``) means *no proxy at all*, whatever the
   environment says.
2. Otherwise ``NO_PROXY`` may exempt the site: comma- or space-separated host
   names (``example.org`` also covers its subdomains; a leading ``.`` or
   ``*.`` is the same), IP addresses, CIDR blocks (``10.0.0.0/8``,
   ``fd00::/8``), any of them with ``:port`` to exempt one port only, or
   ``*`` for every host. Names are compared as written, never resolved (as
   curl does), so ``127.0.0.0/8`` exempts ``127.0.0.1`` but not ``localhost``.
3. Otherwise ``HTTPS_PROXY`` for an https site, ``HTTP_PROXY`` for an http
   one, else ``ALL_PROXY``.

Each name is read in lower and upper case, and the lower-case one wins when
both are set (curl's order; urllib's too). An empty variable counts as unset
(curl). Under CGI (``REQUEST_METHOD`` set) the upper-case ``HTTP_PROXY`` is
ignored: a client's ``Proxy:`` request header arrives there ("httpoxy"), as
urllib and requests also guard. A value without a scheme (``proxy.corp:3128``)
means ``http://``, as in curl and requests.

Why not ``urllib.request.getproxies()`` / ``proxy_bypass()``: they say which
variable decided only by losing it, read only ``os.environ``, and
``proxy_bypass_environment`` knows neither CIDR blocks nor IPv6 literals, and
treats ``*`` only as the whole value. The matching rules are theirs otherwise.

>>> env = ProxyEnv.from_environ({"HTTPS_PROXY": "http://p:3128", "NO_PROXY": ".corp,10.0.0.0/8"})
>>> proxy, source = resolve_proxy("https://chatgptfree.ai", None, env)
>>> proxy.url, source.describe()
('http://p:3128', 'environment variable HTTPS_PROXY')
>>> resolve_proxy("https://10.1.2.3", None, env)[1].describe()
'none: NO_PROXY exempts this site'
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from scraper.errors import ConfigurationError
from scraper.http import Proxy

__all__ = [
    "PROXY_VARIABLES",
    "ProxyEnv",
    "ProxySource",
    "describe_proxy",
    "environ_snapshot",
    "no_proxy_exempts",
    "proxy_report",
    "resolve_proxy",
]

log = logging.getLogger(__name__)

Variable = tuple[str, str]  # (name as spelled in the environment, value)
SourceKind = Literal["argument", "environment", "none"]


#: The proxy variables :meth:`ProxyEnv.from_environ` reads, in ProxyEnv's field order.
_LOWER_NAMES = ("https_proxy", "http_proxy", "all_proxy", "no_proxy")


@dataclass(frozen=True, slots=True)
class ProxyEnv:
    """The proxy variables of one environment: a hashable snapshot, so a
    resolution can be cached for as long as the environment stays the same."""

    https: Variable | None = None
    http: Variable | None = None
    all: Variable | None = None
    no: Variable | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> ProxyEnv:
        """Read ``environ`` (default ``os.environ``): lower case first, then upper case."""
        env = os.environ if environ is None else environ
        cgi = "REQUEST_METHOD" in env

        def pick(lower: str) -> Variable | None:
            for name in (lower, lower.upper()):
                if cgi and name == "HTTP_PROXY":
                    continue
                value = env.get(name, "").strip()
                if value:
                    return name, value
            return None

        https, http, all_, no = (pick(name) for name in _LOWER_NAMES)
        if https is None and http is None and all_ is None:
            return _NO_PROXY_ENV  # the usual case; NO_PROXY alone changes nothing
        return cls(https, http, all_, no)


_NO_PROXY_ENV = ProxyEnv()

#: Every variable :meth:`ProxyEnv.from_environ` looks at, each lower then upper case,
#: and the CGI marker that makes it skip ``HTTP_PROXY``.
PROXY_VARIABLES = (
    *(name for lower in _LOWER_NAMES for name in (lower, lower.upper())),
    "REQUEST_METHOD",
)

_ENCODED: dict[tuple[str, ...], tuple[bytes, ...]] = {}


def environ_snapshot(names: tuple[str, ...]) -> tuple[object, ...]:
    """The values of ``names`` in ``os.environ`` now (None for unset), as a hashable key.

    For a decision made from these variables and cached on their values: the
    environment is read on every call, so a change takes effect on the next one,
    at the cost of one dictionary look-up per name. On POSIX the values are read
    from the mapping ``os.environ`` keeps its bytes in (what ``os.environ.get``
    reads after encoding the name, ten times faster); raw bytes are as good a
    key as the decoded text. Elsewhere, or with ``os.environ`` replaced by a
    plain mapping, through ``os.environ.get``.

    >>> environ_snapshot(("A_VARIABLE_NOBODY_SETS",))
    (None,)
    """
    env = os.environ
    raw = getattr(env, "_data", None)
    if os.name == "posix" and type(raw) is dict:
        keys = _ENCODED.get(names)
        if keys is None:
            keys = _ENCODED[names] = tuple(os.fsencode(name) for name in names)
        return tuple(map(raw.get, keys))
    return tuple(map(env.get, names))


@dataclass(frozen=True, slots=True)
class ProxySource:
    """Where the proxy in effect came from.

    ``kind``: ``argument`` (the caller's ``proxy=``/``--proxy``, or their
    explicit no-proxy), ``environment`` (``variable`` says which: a proxy
    variable, or ``NO_PROXY``/``no_proxy`` when it exempts the site), or
    ``none`` (no argument, nothing in the environment).
    """

    kind: SourceKind
    variable: str | None = None

    def describe(self) -> str:
        if self.kind == "argument":
            return "argument"
        if self.variable is None:
            return "none: no proxy given or set in the environment"
        if self.variable.lower() == "no_proxy":
            return f"none: {self.variable} exempts this site"
        return f"environment variable {self.variable}"


def proxy_report(proxy: Proxy | None, source: ProxySource) -> dict[str, str | None]:
    """What reports (``--json``, ``/health``) show of the proxy in effect: its URL
    with the password redacted (``None``: a direct connection), and where it came
    from (``argument``, ``environment`` or ``none``, and the variable that decided).

    >>> proxy_report(Proxy.parse("http://u:pw@p:1"), ProxySource("environment", "HTTPS_PROXY"))
    {'proxy': 'http://u:***@p:1', 'proxy_source': 'environment', 'proxy_variable': 'HTTPS_PROXY'}
    """
    return {
        "proxy": proxy.redacted if proxy is not None else None,
        "proxy_source": source.kind,
        "proxy_variable": source.variable,
    }


def describe_proxy(proxy: Proxy | None, source: ProxySource) -> str:
    """One line for people: the proxy in effect (password redacted) and why.

    >>> describe_proxy(None, ProxySource("environment", "no_proxy"))
    'none (no_proxy exempts this site)'
    """
    if proxy is None:
        if source.kind == "argument":
            return 'none (--no-proxy / proxy="")'
        if source.variable is not None:
            return f"none ({source.variable} exempts this site)"
        return "none"
    why = "--proxy / proxy=" if source.kind == "argument" else source.variable
    return f"{proxy.redacted} (from {why})"


def resolve_proxy(
    site: str, proxy: str | None, env: ProxyEnv | None = None
) -> tuple[Proxy | None, ProxySource]:
    """The proxy in effect for ``site`` (an absolute http(s) URL) and its source.

    ``proxy``: the caller's (wins), ``""`` for none despite the environment,
    ``None`` to follow ``env`` (default: read ``os.environ`` now).
    ConfigurationError for a proxy that cannot be used, naming the variable
    when it came from the environment (never with its password).
    """
    if proxy is not None:
        parsed = Proxy.parse(proxy)
        return parsed, ProxySource("argument")
    return _from_env(site, ProxyEnv.from_environ() if env is None else env)


@functools.lru_cache(maxsize=256)
def _from_env(site: str, env: ProxyEnv) -> tuple[Proxy | None, ProxySource]:
    # Cached per (site, environment snapshot): a warm chat resolves the same
    # pair every time. Raising calls are not cached, so a bad variable raises
    # every time until it is fixed.
    parts = urlsplit(site)
    scheme = parts.scheme.lower()
    chosen = (env.https if scheme == "https" else env.http if scheme == "http" else None) or env.all
    if chosen is None:
        return None, ProxySource("none")
    host = parts.hostname or ""
    port = parts.port or {"https": 443, "http": 80}.get(scheme)
    if env.no is not None and no_proxy_exempts(env.no[1], host, port):
        log.debug("%s exempts %s from the environment's proxy", env.no[0], host)
        return None, ProxySource("environment", env.no[0])
    name, value = chosen
    proxy = _parse_variable(name, value)
    if proxy is not None:  # once per (site, environment): the resolution is cached
        log.info("%s goes through the proxy %s (from %s)", site, proxy.redacted, name)
    return proxy, ProxySource("environment", name)


def _parse_variable(name: str, value: str) -> Proxy | None:
    # curl and requests take "proxy.corp:3128" as an http proxy.
    url = value if "://" in value else "http://" + value
    try:
        return Proxy.parse(url)
    except ConfigurationError as exc:
        raise ConfigurationError(
            f"environment variable {name}: {_scrub(str(exc), value)}; "
            f"fix or unset {name}, or override it with proxy= / --proxy "
            '(proxy="" / --no-proxy for none)'
        ) from None


def _scrub(text: str, value: str) -> str:
    """Drop the user-info of ``value`` from ``text`` whatever shape the value had:
    a malformed URL can defeat redact_url (no scheme, a typo in ``://``)."""
    before_host = value.rpartition("@")[0]
    if not before_host:
        return text
    userinfo = before_host.split("://", 1)[-1]
    secrets = {userinfo, userinfo.partition(":")[2], before_host}
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


_SEPARATORS = re.compile(r"[,\s]+")


def no_proxy_exempts(no_proxy: str, host: str, port: int | None = None) -> bool:
    """Whether a ``NO_PROXY`` value exempts ``host`` (and ``port``) from the proxy.

    >>> no_proxy_exempts("example.org, 10.0.0.0/8", "www.example.org")
    True
    >>> no_proxy_exempts("example.org", "badexample.org")
    False
    >>> no_proxy_exempts("10.0.0.0/8,[::1]:8080", "::1", 8080)
    True
    """
    host = host.strip("[]").rstrip(".").lower()
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in _SEPARATORS.split(no_proxy.strip().lower()):
        if not entry:
            continue
        if entry == "*":
            return True
        name, entry_port = _split_port(entry)
        if entry_port is not None and entry_port != port:
            continue
        if "/" in name:
            try:
                network = ipaddress.ip_network(name, strict=False)
            except ValueError:
                log.debug("NO_PROXY entry %r is neither a name nor a CIDR block", entry)
                continue
            if address is not None and address in network:
                return True
            continue
        try:
            entry_address = ipaddress.ip_address(name)
        except ValueError:
            pass
        else:
            if address is not None and address == entry_address:
                return True
            continue
        # ".example.org" and "*.example.org" mean what "example.org" means: it and below.
        name = name.removeprefix("*").lstrip(".").rstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def _split_port(entry: str) -> tuple[str, int | None]:
    """``host:port``, ``[v6]:port`` → (host, port); a bare IPv6 address keeps its colons."""
    if entry.startswith("["):
        inside, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return inside, int(port) if port.isdigit() else None
    if entry.count(":") == 1:
        name, _, port = entry.partition(":")
        if port.isdigit():
            return name, int(port)
    return entry, None
