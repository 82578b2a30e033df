"""What every request carries: its deadline, its proxy, its headers (plain HTTP and browser alike).

Re-exported by :mod:`scraper.http`, the plumbing that sends them.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote_plus, urlsplit

from scraper.errors import ConfigurationError, ProviderError, ProviderTimeoutError, redact_url

__all__ = [
    "DEFAULT_USER_AGENT",
    "FORM_TYPE",
    "Deadline",
    "Proxy",
    "ProxyAuth",
    "encode_form",
    "origin_of",
    "request_headers",
]


#: What the plain-HTTP layer calls itself until a browser hands over its own UA:
#: a current desktop Chrome, never "python-aiohttp" (which bot protection flags).
DEFAULT_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/142.0.0.0 Safari/537.36"
)


class Deadline:
    """One caller's time budget, shared by every wait of a call.

    >>> d = Deadline(120)
    >>> 0 < d.remaining() <= 120
    True
    """

    __slots__ = ("_at", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._at = time.monotonic() + seconds

    def remaining(self, what: str = "the call") -> float:
        left = self._at - time.monotonic()
        if left <= 0:
            raise self.error(what)
        return left

    def error(self, what: str) -> ProviderTimeoutError:
        return ProviderTimeoutError(
            f"{what} did not finish within the timeout of {self.seconds:g} s: "
            "the site or proxy is slow or stalled; retry, or pass a larger timeout"
        )

    @contextlib.asynccontextmanager
    async def within(self, what: str) -> AsyncIterator[None]:
        """Run the block under what is left of the budget; raise ProviderTimeoutError past it."""
        import asyncio

        left = self.remaining(what)
        try:
            async with asyncio.timeout(left):
                yield
        except TimeoutError as exc:
            if isinstance(exc, ProviderError):
                raise
            raise self.error(what) from None


@dataclass(frozen=True, slots=True)
class ProxyAuth:
    """A proxy's user name and password (the password never goes into messages or logs)."""

    login: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Proxy:
    """A parsed proxy URL: http(s) goes through aiohttp, socks through aiohttp-socks."""

    url: str  # without credentials
    scheme: str
    auth: ProxyAuth | None
    raw: str = field(repr=False)  # as given (holds the password: never log it, use redacted)

    @property
    def redacted(self) -> str:
        return redact_url(self.raw)

    @property
    def is_socks(self) -> bool:
        return self.scheme.startswith("socks")

    @classmethod
    def parse(cls, proxy: str | None) -> Proxy | None:
        """``None`` for no proxy; ConfigurationError for one we cannot use."""
        if proxy is None or proxy == "":
            return None
        if not isinstance(proxy, str):
            raise ConfigurationError(f"proxy must be a URL string, not {type(proxy).__name__}")
        try:
            parts = urlsplit(proxy)
            port = parts.port
        except ValueError:
            raise ConfigurationError(
                f"proxy {redact_url(proxy)!r} is not a valid URL: "
                "use scheme://[user:password@]host:port"
            ) from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https", "socks4", "socks4a", "socks5", "socks5h"):
            raise ConfigurationError(
                f"proxy scheme {scheme or '(none)'!r} is not supported: use http://, https://, "
                "socks4://, socks4a://, socks5:// or socks5h://host:port"
            )
        if not parts.hostname or port is None:
            raise ConfigurationError(
                f"proxy {redact_url(proxy)!r} needs a host and a port, e.g. socks5://127.0.0.1:1080"
            )
        auth = None
        if parts.username is not None:
            from urllib.parse import unquote

            auth = ProxyAuth(unquote(parts.username), unquote(parts.password or ""))
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        return cls(url=f"{scheme}://{host}:{port}", scheme=scheme, auth=auth, raw=proxy)


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url`` (lower-cased), the key a site is known by."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"site URL {redact_url(url)!r} must be an absolute http(s) URL")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}[parts.scheme]
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    return f"{parts.scheme}://{host}{port}"


def request_headers(user_agent: str, referer: str | None = None) -> dict[str, str]:
    """The headers every request sends: one browser's, consistently."""
    headers = {
        "User-Agent": user_agent,
        "Accept-Language": "en-US,en;q=0.9",
    }
    if referer:
        headers["Referer"] = referer
    return headers


#: The body type of a form, as a browser (and the plugin's own script) posts it.
FORM_TYPE = "application/x-www-form-urlencoded"

#: What ``quote_plus`` leaves as it is: a field made only of these needs no quoting.
_FORM_SAFE = re.compile(r"[A-Za-z0-9_.~-]*")


def encode_form(fields: Mapping[str, str]) -> bytes:
    """``fields`` as an urlencoded body, byte for byte what ``urlencode`` (and
    aiohttp's form encoding) makes, in their order.

    Every chat posts one: its names, the action, nonce, ids and the client id
    need no quoting, and one match tells so at a fraction of ``quote_plus``'s
    cost, so only the message and the page URL go through it. (aiohttp's own form
    encoding, a ``FormData`` per request, was a tenth of a warm chat's CPU.)

    >>> encode_form({"action": "chat", "message": "a b&c=é", "url": "https://x/y"})
    b'action=chat&message=a+b%26c%3D%C3%A9&url=https%3A%2F%2Fx%2Fy'
    """
    safe = _FORM_SAFE.fullmatch
    return "&".join(
        [
            f"{k if safe(k) else quote_plus(k)}={v if safe(v) else quote_plus(v)}"
            for k, v in fields.items()
        ]
    ).encode("ascii")
