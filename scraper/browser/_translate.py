"""Between Playwright and the project: cookies both ways, and Playwright's errors as ours,
with no secret in the text."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from scraper.browser._chromium import _INSTALL_HINT
from scraper.credentials import Cookie
from scraper.errors import BrowserError, NetworkError, ProviderError, redact_url
from scraper.http import Deadline, Proxy

if TYPE_CHECKING:  # types only: the runtime import stays inside the functions
    from playwright._impl._api_structures import SetCookieParam  # the add_cookies entry type


log = logging.getLogger(__name__)

#: Seconds of the deadline kept for closing the browser (at most a tenth of it);
#: a close takes about 0.2 s here.
_CLEANUP_RESERVE = 0.5

_WHAT = "solving the challenge in the browser"


@dataclass(slots=True)
class _Progress:
    """Where a solve is, for the timeout message and the timings in the log."""

    phase: str = "starting the browser"
    launched_in: float | None = None
    last_status: int | None = None
    retry_after: float | None = None
    challenged: bool = False
    #: whether the main frame's latest document is the challenge page
    on_challenge: bool = False
    #: set when the challenge comes back after the browser answered it
    refused: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@contextlib.asynccontextmanager
async def _translated(
    deadline: Deadline,
    progress: _Progress,
    url: str,
    proxy: Proxy | None,
    cookies: Sequence[Cookie],
) -> AsyncIterator[None]:
    """Run a browser step under the deadline (minus the time closing needs) and turn
    Playwright's errors into the project's, with no secret in the text."""
    from scraper.browser._driver import api

    PlaywrightError, PlaywrightTimeoutError = api().Error, api().TimeoutError

    remaining = deadline.remaining(_WHAT)
    # Stop waiting a little early, so closing the browser fits in the budget too.
    budget = remaining - min(_CLEANUP_RESERVE, remaining * 0.1)
    try:
        async with asyncio.timeout(budget):
            yield
    except ProviderError:
        raise
    except (TimeoutError, PlaywrightTimeoutError):
        raise deadline.error(f"{_WHAT} ({progress.phase})") from None
    except PlaywrightError as exc:
        raise _translate(exc, progress, url, proxy, cookies) from None
    except OSError as exc:  # the Node.js driver could not start
        raise BrowserError(
            f"the Playwright driver could not start ({type(exc).__name__}: {exc.strerror or exc}): "
            "reinstall playwright (pip install --force-reinstall playwright)"
        ) from None
    except Exception as exc:
        # Playwright raises a bare Exception when its driver dies ("Connection
        # closed while reading from the driver"); anything else is a bug: let it be.
        if type(exc) is not Exception:
            raise
        raise BrowserError(
            f"the Playwright driver failed while {progress.phase}: "
            f"{_scrub(str(exc), proxy, cookies)[:300]}; retry, or reinstall playwright"
        ) from None


def _ms(deadline: Deadline) -> float:
    """What is left of the budget, as a Playwright timeout (where 0 would mean "none")."""
    return max(1.0, deadline.remaining(_WHAT) * 1000.0)


_SAME_SITE: dict[str, Literal["Strict", "Lax", "None"]] = {
    "strict": "Strict",
    "lax": "Lax",
    "none": "None",
}


def _to_playwright_cookies(cookies: Sequence[Cookie], site: str) -> list[SetCookieParam]:
    now = time.time()
    out: list[SetCookieParam] = []
    for cookie in cookies:
        if cookie.expired(now):
            continue
        entry: SetCookieParam = {
            "name": cookie.name,
            "value": cookie.value,
            "httpOnly": cookie.http_only,
            "secure": cookie.secure,
        }
        if cookie.domain:
            entry["domain"] = cookie.domain
            entry["path"] = cookie.path or "/"
        else:  # host-only: bound to the site's own host
            entry["url"] = site.rstrip("/") + (cookie.path or "/")
        if cookie.expires is not None:
            entry["expires"] = cookie.expires
        same_site = _SAME_SITE.get((cookie.same_site or "").lower())
        # Chromium refuses SameSite=None on a cookie that is not Secure.
        if same_site is not None and (same_site != "None" or cookie.secure):
            entry["sameSite"] = same_site
        out.append(entry)
    return out


def _from_playwright_cookies(jar: Sequence[Any], given: Sequence[Cookie]) -> tuple[Cookie, ...]:
    """The browser's cookies as :class:`Cookie` values, minus the caller's own
    (unchanged ones are the caller's to keep, as on the plain-HTTP path)."""
    unchanged = {(c.name, c.value) for c in given}
    found: dict[tuple[str, str, str], Cookie] = {}
    for raw in jar:
        name, value = str(raw.get("name", "")), str(raw.get("value", ""))
        if not name or (name, value) in unchanged:
            continue
        expires = raw.get("expires")
        cookie = Cookie(
            name=name,
            value=value,
            domain=str(raw.get("domain", "")),
            path=str(raw.get("path") or "/"),
            expires=float(expires) if isinstance(expires, int | float) and expires >= 0 else None,
            secure=bool(raw.get("secure", False)),
            http_only=bool(raw.get("httpOnly", False)),
            same_site=str(raw["sameSite"]) if raw.get("sameSite") else None,
        )
        found[(cookie.name, cookie.domain, cookie.path)] = cookie
    return tuple(found.values())


def _translate(
    exc: Exception,
    progress: _Progress,
    url: str,
    proxy: Proxy | None,
    cookies: Sequence[Cookie],
) -> ProviderError:
    """A Playwright error as one of ours, with no secret in the text."""
    kind = type(exc).__name__
    message = getattr(exc, "message", None) or str(exc)
    first = _scrub(message.strip().splitlines()[0] if message.strip() else kind, proxy, cookies)
    if len(first) > 300:
        first = first[:300] + "…"
    if progress.launched_in is None:
        return BrowserError(
            f"headless Chromium could not start ({kind}: {first}): check that the browser "
            f"runs on this machine, or {_INSTALL_HINT}"
        )
    if "net::ERR_" in message:
        code = message[message.index("net::ERR_") :].split()[0]
        if proxy is not None and ("PROXY" in code or "TUNNEL" in code):
            return NetworkError(
                f"the browser could not reach {redact_url(url)} through the proxy "
                f"{proxy.redacted} ({code}): check the proxy address and credentials"
            )
        via = f" through {proxy.redacted}" if proxy else ""
        return NetworkError(
            f"the browser could not load {redact_url(url)}{via} ({code}): "
            "check the network, the site URL and the proxy"
        )
    return BrowserError(
        f"headless Chromium failed while {progress.phase} ({kind}: {first}): "
        "the browser crashed or was closed; retry"
    )


def _scrub(text: str, proxy: Proxy | None, cookies: Sequence[Cookie]) -> str:
    if proxy is not None:
        text = text.replace(proxy.raw, proxy.redacted)
        if proxy.auth is not None and proxy.auth.password:
            text = text.replace(proxy.auth.password, "***")
    for cookie in cookies:
        if len(cookie.value) >= 4:
            text = text.replace(cookie.value, "***")
    return text
