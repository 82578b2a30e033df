"""Tell a bot-protection challenge or block from the site's own answer.

:func:`verdict` looks at one HTTP response (status, headers, the start of the
body) and says whether it is the site (``ok``), a challenge a real browser can
pass (``challenge``), a hard block no browser helps with (``blocked``), or rate
limiting (``rate_limited``). Cloudflare is covered exactly as PROTOCOL.md
describes it; Vercel, DataDome, PerimeterX, Akamai and Imperva are recognised
from their usual markers.

>>> v = verdict(403, {"cf-mitigated": "challenge", "server": "cloudflare"}, "")
>>> v.kind, v.vendor, v.evidence
('challenge', 'cloudflare', 'header cf-mitigated: challenge')
>>> verdict(200, {"server": "cloudflare"}, "<html>…</html>").kind
'ok'

The rule that shapes everything here: **no false positives**. The real site
sits behind Cloudflare even when nothing challenges, so a vendor's headers
alone only name the vendor; a verdict needs a decisive header
(``cf-mitigated``, ``x-vercel-mitigated``) or a page marker on an error status.
WordPress's own refusals (``-1`` / 403, ``0`` / 400, its error page, the plugin's
JSON 403) are ``ok``: the caller understands those, and :func:`wordpress_refusal`
tells them apart for the chat requests.
"""

from __future__ import annotations

import email.utils
import html
import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Literal

from scraper.errors import BlockedError, ChallengeError, RateLimitedError, redact_url

__all__ = [
    "WP_NONCE_AYS",
    "Kind",
    "Refusal",
    "RefusalKind",
    "Verdict",
    "parse_retry_after",
    "verdict",
    "wordpress_refusal",
]

Kind = Literal["ok", "challenge", "blocked", "rate_limited"]
RefusalKind = Literal["nonce", "unknown_action", "error_page"]

#: Challenge and block pages put their markers near the top; reading only this
#: much keeps a verdict on a multi-megabyte page cheap.
SCAN_BYTES = 64 * 1024

_DELTA_SECONDS = re.compile(r"[0-9]{1,10}(?:\.[0-9]{1,6})?")
#: Cloudflare's "Access denied" family: 1005 ASN banned, 1006-1008 IP banned,
#: 1009 country banned, 1010 browser signature banned, 1012, 1020 firewall rule.
_CF_ERROR_CODE = re.compile(r"(?:error code: ?|cf-error-code\">)(\d{4})")
_CF_BLOCK_CODES = frozenset({"1005", "1006", "1007", "1008", "1009", "1010", "1012", "1020"})

#: Markers found only on Cloudflare challenge pages: enough on a 403/503.
_CF_SPECIFIC = (
    ("_cf_chl_opt", "_cf_chl_opt"),
    ("cf-please-wait", 'id="cf-please-wait"'),
    ("jschl-answer", "jschl-answer form"),
    ("cf-captcha-container", "cf-captcha-container"),
)
#: Markers that also appear on ordinary pages (a site's own title, a Turnstile
#: field in a contact form): enough only with Cloudflare's headers on a 403/503.
_CF_WEAK = (
    ("<title>just a moment", "<title>Just a moment...</title>"),
    ("challenges.cloudflare.com/turnstile", "challenges.cloudflare.com/turnstile"),
)
_CF_PLATFORM = "/cdn-cgi/challenge-platform/"
#: Cloudflare injects /cdn-cgi/challenge-platform/scripts/jsd/main.js into
#: ordinary pages of sites with bot detection on; only other paths under the
#: challenge platform (h/…/orchestrate) belong to a challenge.
_CF_PLATFORM_ORDINARY = "/cdn-cgi/challenge-platform/scripts/"

_DATADOME_BODY = ("captcha-delivery.com",)
_PERIMETERX_BODY = (
    "px-captcha",
    "_pxappid",
    "captcha.px-cdn.net",
    "client.perimeterx.net",
    "/_px/",
    '"blockscript"',
)
_AKAMAI_CHALLENGE_BODY = ("/_sec/cp_challenge/", "sec-if-cpt")
_IMPERVA_CHALLENGE = "_incapsula_resource"

#: ``wp_nonce_ays()``'s words: WordPress refusing a nonce. Through admin-ajax.php
#: only the message is printed (capture legacy-1.9-bad-nonce.http, AI Power
#: 1.9.0 through 2.2), elsewhere it sits inside WordPress's error page.
WP_NONCE_AYS = "The link you followed has expired."
#: The body tag of WordPress's full error page (``_default_wp_die_handler``).
_WP_ERROR_PAGE = 'id="error-page"'
_TAG = re.compile(r"<[^>]*>")
_SPACES = re.compile(r"\s+")
_IMPERVA_INCIDENT = ("incapsula incident id", "request unsuccessful", "cwudnsai=")


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one response says about access to the site."""

    kind: Kind
    #: "cloudflare", "vercel", "datadome", "perimeterx", "akamai", "imperva" or None
    vendor: str | None
    #: the marker that decided, for humans; never a cookie or header secret
    evidence: str
    #: seconds to wait, for ``rate_limited`` when the response said
    retry_after: float | None = None

    def raise_for_access(self, url: str) -> None:
        """Raise the :mod:`scraper.errors` class for this verdict; ``ok`` returns."""
        where = redact_url(url) or "the site"
        by = f" by {_VENDOR_NAMES.get(self.vendor, self.vendor)}" if self.vendor else ""
        if self.kind == "blocked":
            raise BlockedError(
                f"Access to {where} is blocked{by} ({self.evidence}). This is a hard block "
                "that a browser does not get past: use another network or proxy."
            )
        if self.kind == "rate_limited":
            wait = (
                f"wait {math.ceil(self.retry_after)} s before retrying"
                if self.retry_after is not None
                else "wait a while before retrying (the response gave no usable Retry-After)"
            )
            raise RateLimitedError(
                f"{where} is rate limiting requests{by} ({self.evidence}): {wait}, or use "
                "another network or proxy.",
                retry_after=self.retry_after,
            )
        if self.kind == "challenge":
            raise ChallengeError(
                f"{where} answered with a bot-protection challenge{by} ({self.evidence}). "
                "Plain HTTP cannot pass it; the headless-browser fallback is needed: allow it, "
                "and install Chromium if it is missing (python -m playwright install chromium, "
                "or apt-get install chromium)."
            )


_VENDOR_NAMES = {
    "cloudflare": "Cloudflare",
    "vercel": "Vercel",
    "datadome": "DataDome",
    "perimeterx": "PerimeterX (HUMAN)",
    "akamai": "Akamai",
    "imperva": "Imperva (Incapsula)",
}

OK = Verdict("ok", None, "no bot-protection marker")


def verdict(
    status: int,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
    body: str | bytes | None,
) -> Verdict:
    """Classify one response. ``headers`` may be any mapping, a multidict or pairs.

    Only the first :data:`SCAN_BYTES` of ``body`` are read.
    """
    h = _normalise(headers)
    low = _head(body).lower()
    server = h.get("server", "").lower()
    cloudflare = "cloudflare" in server or "cf-ray" in h

    # Decisive headers: the vendor says outright that it intervened.
    if "challenge" in h.get("cf-mitigated", "").lower():
        return Verdict("challenge", "cloudflare", "header cf-mitigated: challenge")
    vercel = h.get("x-vercel-mitigated", "").lower()
    if "challenge" in vercel:
        return Verdict("challenge", "vercel", "header x-vercel-mitigated: challenge")
    if "deny" in vercel:
        return Verdict("blocked", "vercel", "header x-vercel-mitigated: deny")

    if status == 429:
        retry_after = parse_retry_after(h.get("retry-after"))
        wait = f", Retry-After {retry_after:g} s" if retry_after is not None else ""
        return Verdict("rate_limited", _vendor_hint(h), f"HTTP 429{wait}", retry_after)

    found = _cloudflare(status, h, low, cloudflare)
    if found is None and status >= 400:
        found = _other_vendors(status, h, low)
    # Imperva serves its JavaScript challenge with status 200 too. Its script
    # is injected into ordinary pages as well, so only the challenge page's
    # own text ("Request unsuccessful", the incident iframe) makes it one.
    if (
        found is None
        and _IMPERVA_CHALLENGE in low
        and any(marker in low for marker in _IMPERVA_INCIDENT)
        and _is_html(h, low)
    ):
        found = Verdict("challenge", "imperva", f"HTTP {status}, Incapsula challenge page")
    return found or OK


@dataclass(frozen=True, slots=True)
class Refusal:
    """WordPress's own refusal of an AJAX call: neither the plugin's answer nor an edge's."""

    #: ``nonce`` (``-1``, "The link you followed has expired."), ``unknown_action``
    #: (``0``: no handler for the action) or ``error_page`` (any other ``wp_die`` page)
    kind: RefusalKind
    status: int
    #: what decided, for humans: the status and WordPress's words (markup removed, short)
    evidence: str


def wordpress_refusal(status: int, body: str | bytes | None) -> Refusal | None:
    """What WordPress itself answered an ``admin-ajax.php`` call, if it was a refusal.

    Only for the answers of admin-ajax.php: the same words elsewhere (a blog post
    quoting them) mean nothing. A bot-protection page is never one (no marker
    here appears on them), so call :func:`verdict` first and this for what it
    passes as ``ok``.

    >>> wordpress_refusal(403, "-1").kind
    'nonce'
    >>> wordpress_refusal(400, "0").evidence
    "HTTP 400, body '0'"
    >>> wordpress_refusal(200, '{"status":"error"}') is None
    True
    """
    head = _head(body)
    text = head.strip()
    if text == "-1":  # check_ajax_referer()
        return Refusal("nonce", status, f"HTTP {status}, body '-1'")
    # admin-ajax.php with no handler for the action: wp_die('0', 400); an empty
    # 400 is the same refusal with the body lost on the way.
    if text == "0" or (not text and status == 400):
        return Refusal("unknown_action", status, f"HTTP {status}, body '{text}'")
    low = text.lower()
    error_page = _WP_ERROR_PAGE in low
    if low.startswith(WP_NONCE_AYS.lower()) or (error_page and WP_NONCE_AYS.lower() in low):
        return Refusal("nonce", status, f"HTTP {status}, WordPress's {WP_NONCE_AYS!r}")
    if error_page:
        words = _page_words(head[head.lower().index(_WP_ERROR_PAGE) :])
        return Refusal("error_page", status, f"HTTP {status}, WordPress's error page: {words!r}")
    return None


def _page_words(fragment: str) -> str:
    """The text of an HTML fragment, one line, at most 200 characters."""
    text = _SPACES.sub(" ", html.unescape(_TAG.sub(" ", fragment.split(">", 1)[-1]))).strip()
    return text if len(text) <= 200 else text[:199] + "…"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP-date).

    None when absent or unparseable; a date in the past gives 0.

    >>> parse_retry_after("120")
    120.0
    >>> parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0)
    10.0
    """
    if value is None:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:  # pragma: no cover - Python < 3.10 returned None
        return None
    if when.tzinfo is None:  # "-0000" dates: HTTP-dates are UTC anyway
        when = when.replace(tzinfo=UTC)
    try:
        moment = when.timestamp()
    except (OverflowError, ValueError, OSError):
        return None
    return max(0.0, moment - (time.time() if now is None else now))


# ------------------------------------------------------------------------- vendors


def _cloudflare(status: int, h: Mapping[str, str], low: str, cloudflare: bool) -> Verdict | None:
    if status >= 400:
        for match in _CF_ERROR_CODE.finditer(low):
            if match.group(1) in _CF_BLOCK_CODES:
                return Verdict(
                    "blocked", "cloudflare", f"page says Cloudflare error code {match.group(1)}"
                )

    specific = [label for marker, label in _CF_SPECIFIC if marker in low]
    if low.count(_CF_PLATFORM) > low.count(_CF_PLATFORM_ORDINARY):
        specific.append(_CF_PLATFORM)
    weak = [label for marker, label in _CF_WEAK if marker in low]
    if status in (403, 503) and (specific or (cloudflare and weak)):
        via = ", Server: cloudflare" if "cloudflare" in h.get("server", "").lower() else ""
        via = via or (", cf-ray header" if "cf-ray" in h else "")
        return Verdict(
            "challenge",
            "cloudflare",
            f"HTTP {status}{via}, page marker {(specific + weak)[0]}",
        )
    # A challenge page served with another status (an intermediary rewrote it,
    # or a browser-rendered page): only the full set of markers counts, and
    # only on an HTML document, so an answer that quotes them is not one.
    if specific and weak[:1] == [_CF_WEAK[0][1]] and _is_html(h, low):
        return Verdict(
            "challenge",
            "cloudflare",
            f"HTTP {status}, page markers {weak[0]} and {specific[0]}",
        )

    if status >= 400:
        if "<title>attention required! | cloudflare" in low:
            return Verdict("blocked", "cloudflare", "page title Attention Required! | Cloudflare")
        if "<title>access denied" in low:
            vendor = _vendor_hint(h)
            if vendor == "akamai":
                return None  # Akamai's own rule names its Reference # too
            return Verdict("blocked", vendor, f"HTTP {status}, page title Access denied")
    return None


def _other_vendors(status: int, h: Mapping[str, str], low: str) -> Verdict | None:
    server = h.get("server", "").lower()
    cookies = _cookie_names(h)
    # Header-only signals ride on every response of a protected site, also on
    # WordPress's own 403 "-1": they count only on a page that is not one.
    foreign = not _app_answer(status, low)

    if "akamai" in server:
        if any(marker in low for marker in _AKAMAI_CHALLENGE_BODY):
            return Verdict("challenge", "akamai", f"HTTP {status}, Akamai bot-manager challenge")
        if status == 403 and ("access denied" in low or "reference #" in low):
            return Verdict("blocked", "akamai", "HTTP 403, Server: AkamaiGHost, Access Denied page")

    if status == 403:
        datadome = next((m for m in _DATADOME_BODY if m in low), None)
        if datadome or "x-dd-b" in h or ("x-datadome" in h and foreign):
            evidence = f"HTTP 403, {'page links ' + datadome if datadome else 'DataDome header'}"
            # DataDome's page says 't':'bv' for a banned visitor; anything else
            # is a captcha or device check a browser may pass.
            if "'t':'bv'" in low or '"t":"bv"' in low:
                return Verdict("blocked", "datadome", evidence + ", visitor banned")
            return Verdict("challenge", "datadome", evidence)

        perimeterx = next((m for m in _PERIMETERX_BODY if m in low), None)
        if perimeterx or ("_pxhd" in cookies and foreign):
            what = f"page marker {perimeterx}" if perimeterx else "cookie _pxhd set"
            return Verdict("challenge", "perimeterx", f"HTTP 403, {what}")

    if _IMPERVA_CHALLENGE in low:
        return Verdict("challenge", "imperva", f"HTTP {status}, Incapsula challenge script")
    if _IMPERVA_INCIDENT[0] in low:
        return Verdict("blocked", "imperva", f"HTTP {status}, Incapsula incident page")
    if status == 403 and foreign and ("x-iinfo" in h or "imperva" in h.get("x-cdn", "").lower()):
        return Verdict("blocked", "imperva", "HTTP 403 from Imperva (x-iinfo header)")
    return None


def _vendor_hint(h: Mapping[str, str]) -> str | None:
    """The vendor in front, from headers that every response of it carries."""
    server = h.get("server", "").lower()
    if "cloudflare" in server or "cf-ray" in h:
        return "cloudflare"
    if "akamai" in server:
        return "akamai"
    if "x-vercel-id" in h or server == "vercel":
        return "vercel"
    if "x-datadome" in h or "x-dd-b" in h:
        return "datadome"
    if "x-iinfo" in h or "imperva" in h.get("x-cdn", "").lower():
        return "imperva"
    return None


# ------------------------------------------------------------------------- helpers


def _normalise(headers: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> dict[str, str]:
    """Lower-cased names; repeated headers joined as HTTP joins them (``, ``)."""
    if headers is None:
        return {}
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for name, value in pairs:
        key = str(name).strip().lower()
        # Set-Cookie values may contain commas (Expires=…), so keep them apart.
        sep = "\n" if key == "set-cookie" else ", "
        out[key] = f"{out[key]}{sep}{value}" if key in out else str(value)
    return out


def _head(body: str | bytes | None) -> str:
    if not body:
        return ""
    if isinstance(body, bytes):
        return body[:SCAN_BYTES].decode("utf-8", "replace")
    return body[:SCAN_BYTES]


def _cookie_names(h: Mapping[str, str]) -> frozenset[str]:
    # Names only: cookie values never leave this function.
    return frozenset(
        line.split("=", 1)[0].strip().lower()
        for line in h.get("set-cookie", "").split("\n")
        if "=" in line
    )


def _app_answer(status: int, low: str) -> bool:
    """True for what WordPress and the plugin answer themselves: JSON, nothing, or
    one of WordPress's refusals (-1, 0, its nonce message, its error page)."""
    text = low.strip()
    return not text or text.startswith(("{", "[")) or wordpress_refusal(status, text) is not None


def _is_html(h: Mapping[str, str], low: str) -> bool:
    kind = h.get("content-type", "").lower()
    if kind:
        return "html" in kind
    return low.lstrip().startswith("<")
