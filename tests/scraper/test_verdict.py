"""scraper.verdict: every vendor's markers, and no false positives on the real site's answers."""

from __future__ import annotations

import email.utils
import time
from pathlib import Path

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from scraper.errors import AccessError, BlockedError, ChallengeError, RateLimitedError
from scraper.verdict import (
    SCAN_BYTES,
    Verdict,
    parse_retry_after,
    verdict,
    wordpress_refusal,
)

CAPTURES = Path(__file__).resolve().parents[1] / "captures"

CF = {"Server": "cloudflare", "CF-RAY": "8c1e2f3a4b5c6d7e-FRA"}
SECRET_COOKIE = "cf_clearance=SeCrEtClEaRaNcE123; __cf_bm=BmSeCrEt456; _pxhd=PxSeCrEt789"
SECRETS = ("SeCrEtClEaRaNcE123", "BmSeCrEt456", "PxSeCrEt789", "DdSeCrEt000")

CF_CHALLENGE_PAGE = """<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>
<meta http-equiv="Content-Type" content="text/html; charset=UTF-8"></head><body>
<div class="main-wrapper" role="main"><div class="main-content">
<noscript><div id="challenge-error-title">Enable JavaScript and cookies to continue</div></noscript>
</div></div><script>(function(){window._cf_chl_opt={cvId: '3',cZone: "example.com",
cType: 'managed'};
var cpo = document.createElement('script');
cpo.src = '/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1?ray=8c1e2f3a4b5c6d7e';
document.getElementsByTagName('head')[0].appendChild(cpo);}());</script></body></html>"""

CF_1020_PAGE = """<!DOCTYPE html><html><head>
<title>Access denied | example.com used Cloudflare to restrict access</title></head><body>
<div id="cf-wrapper"><div class="cf-alert cf-alert-error cf-cookie-error" id="cookie-alert">
Please enable cookies.</div><div id="cf-error-details" class="cf-error-details-wrapper">
<h1><span class="cf-error-type">Error</span><span class="cf-error-code">1020</span></h1>
<h2 class="cf-subheadline">Access denied</h2></div></div></body></html>"""

NORMAL_PAGE = """<!DOCTYPE html><html><head><title>ChatGPT Free</title>
<script src="/cdn-cgi/challenge-platform/scripts/jsd/main.js"></script></head><body>
<p>This site is protected by Cloudflare. Read how challenges.cloudflare.com/turnstile works,
and what a "Just a moment..." page or _cf_chl_opt means, on our blog.</p>
<form><div class="cf-turnstile" data-sitekey="0x4AAA"></div>
<script src="https://challenges.cloudflare.com/turnstile/v0/api.js" async defer></script></form>
</body></html>"""


def capture_body(name: str) -> tuple[int, dict[str, str], bytes]:
    raw = (CAPTURES / name).read_bytes()
    raw = raw[raw.index(b"HTTP/1.") :]  # some captures start with their request line
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").splitlines()
    status = int(lines[0].split()[1])
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return status, headers, body


# --------------------------------------------------------------------- cloudflare


def test_cf_mitigated_header_is_decisive() -> None:
    result = verdict(403, {"CF-Mitigated": "challenge", **CF}, "")
    assert result == Verdict("challenge", "cloudflare", "header cf-mitigated: challenge")
    # even with a 200 and an innocuous body
    assert verdict(200, {"cf-mitigated": "challenge"}, "<html></html>").kind == "challenge"


@pytest.mark.parametrize("status", [403, 503])
def test_cloudflare_challenge_page(status: int) -> None:
    result = verdict(status, {**CF, "Content-Type": "text/html; charset=UTF-8"}, CF_CHALLENGE_PAGE)
    assert (result.kind, result.vendor) == ("challenge", "cloudflare")
    assert f"HTTP {status}" in result.evidence


@pytest.mark.parametrize(
    ("marker", "needs_cf_headers"),
    [
        ("<title>Just a moment...</title>", True),
        ('<div id="cf-please-wait">', False),
        ("<script>window._cf_chl_opt={}</script>", False),
        ('<script src="/cdn-cgi/challenge-platform/h/b/orchestrate/jsch/v1"></script>', False),
        ('<script src="https://challenges.cloudflare.com/turnstile/v0/api.js"></script>', True),
    ],
)
def test_each_cloudflare_challenge_marker(marker: str, needs_cf_headers: bool) -> None:
    body = f"<html><head></head><body>{marker}</body></html>"
    assert verdict(403, {"server": "cloudflare"}, body).kind == "challenge"
    assert verdict(503, {"cf-ray": "1-FRA"}, body).kind == "challenge"
    without = verdict(403, {"server": "nginx"}, body).kind
    assert without == ("ok" if needs_cf_headers else "challenge")


def test_challenge_page_with_status_200_is_still_a_challenge() -> None:
    # What the original client met: a 200 that silently held a challenge.
    result = verdict(200, {**CF, "content-type": "text/html"}, CF_CHALLENGE_PAGE)
    assert (result.kind, result.vendor) == ("challenge", "cloudflare")


@pytest.mark.parametrize(
    "body",
    [
        CF_1020_PAGE,
        "error code: 1020",
        "<html><head><title>Access denied</title></head><body>denied</body></html>",
        "<html><head><title>Attention Required! | Cloudflare</title></head></html>",
        '<span class="cf-error-code">1009</span>',
    ],
)
def test_cloudflare_hard_blocks(body: str) -> None:
    result = verdict(403, CF, body)
    assert (result.kind, result.vendor) == ("blocked", "cloudflare")


def test_rate_limited_with_retry_after_seconds() -> None:
    result = verdict(429, {**CF, "Retry-After": "30"}, "error code: 1015")
    assert result == Verdict("rate_limited", "cloudflare", "HTTP 429, Retry-After 30 s", 30.0)


def test_rate_limited_with_http_date_and_without() -> None:
    later = email.utils.formatdate(time.time() + 120, usegmt=True)
    result = verdict(429, {"retry-after": later}, "")
    assert result.kind == "rate_limited"
    assert result.retry_after is not None and 100 < result.retry_after <= 121
    assert verdict(429, {}, "").retry_after is None
    assert verdict(429, {"Retry-After": "soon"}, "").retry_after is None


# -------------------------------------------------------------------- other vendors


def test_vercel() -> None:
    result = verdict(403, {"x-vercel-mitigated": "challenge", "x-vercel-id": "fra1::x"}, "")
    assert (result.kind, result.vendor) == ("challenge", "vercel")
    assert verdict(403, {"X-Vercel-Mitigated": "deny"}, "").kind == "blocked"


def test_datadome() -> None:
    body = (
        "<html><head><title>example.com</title></head><body><script>var dd={'rt':'c','cid':'AHr',"
        "'hsh':'AC81','t':'fe','host':'geo.captcha-delivery.com'}</script>"
        '<script src="https://ct.captcha-delivery.com/c.js"></script></body></html>'
    )
    result = verdict(403, {"x-datadome": "protected", "set-cookie": "datadome=DdSeCrEt000"}, body)
    assert (result.kind, result.vendor) == ("challenge", "datadome")
    banned = body.replace("'t':'fe'", "'t':'bv'")
    assert verdict(403, {"x-datadome": "protected"}, banned).kind == "blocked"
    assert verdict(403, {"x-dd-b": "1"}, "").vendor == "datadome"
    # XHR answers of DataDome are JSON holding the captcha URL
    xhr = '{"url":"https://geo.captcha-delivery.com/captcha/?initialCid=AHr"}'
    assert verdict(403, {}, xhr).vendor == "datadome"


def test_perimeterx() -> None:
    body = (
        '<html><head><meta name="robots" content="noindex"></head><body><div id="px-captcha">'
        "</div><script>window._pxAppId = 'PXabc123';</script></body></html>"
    )
    result = verdict(403, {"set-cookie": SECRET_COOKIE}, body)
    assert (result.kind, result.vendor) == ("challenge", "perimeterx")
    assert verdict(403, {"Set-Cookie": "_pxhd=abc; path=/"}, "<html>Blocked</html>").kind == (
        "challenge"
    )


def test_akamai() -> None:
    body = (
        "<HTML><HEAD>\n<TITLE>Access Denied</TITLE>\n</HEAD><BODY>\n<H1>Access Denied</H1>\n"
        'You don\'t have permission to access "http&#58;&#47;&#47;example&#46;com&#47;" on '
        "this server.<P>\nReference&#32;&#35;18&#46;5e1b3c17&#46;1700000000&#46;1a2b3c\n"
        "<P>https&#58;&#47;&#47;errors&#46;edgesuite&#46;net</P></BODY>\n</HTML>"
    )
    result = verdict(403, {"Server": "AkamaiGHost", "Mime-Version": "1.0"}, body)
    assert (result.kind, result.vendor) == ("blocked", "akamai")
    plain = "Access Denied. Reference #18.5e1b3c17.1700000000.1a2b3c"
    assert verdict(403, {"Server": "AkamaiGHost"}, plain).kind == "blocked"
    sec = '<html><script src="/_sec/cp_challenge/ak-challenge-4-3.js"></script></html>'
    assert verdict(428, {"server": "AkamaiGHost"}, sec).kind == "challenge"


def test_imperva() -> None:
    challenge = (
        '<html><head><META NAME="robots" CONTENT="noindex,nofollow"><script '
        'src="/_Incapsula_Resource?SWJIYLWA=5074a744e2e3d891814e9a2dace20bd4,719d34d31c8e3a6e6ff'
        'fd425f7e032f3"></script></head><body><iframe src="/_Incapsula_Resource?CWUDNSAI=9&xinfo='
        '1-2-3&incident_id=0-1&edet=12">Request unsuccessful. Incapsula incident ID: 0-1</iframe>'
        "</body></html>"
    )
    result = verdict(200, {"X-Iinfo": "1-2-3 NNNN CT(0 0 0)", "X-CDN": "Imperva"}, challenge)
    assert (result.kind, result.vendor) == ("challenge", "imperva")
    blocked = "<html><body>Request unsuccessful. Incapsula incident ID: 123-456</body></html>"
    assert verdict(403, {"X-Iinfo": "1"}, blocked).kind == "blocked"
    # the script Imperva injects into ordinary pages is not a challenge
    ordinary = (
        '<html><body>Hi<script src="/_Incapsula_Resource?SWJIYLWA=71"></script></body></html>'
    )
    assert verdict(200, {"X-Iinfo": "1", "content-type": "text/html"}, ordinary).kind == "ok"
    assert verdict(403, {"X-Iinfo": "1"}, "<html><body>Forbidden</body></html>").vendor == (
        "imperva"
    )


# ------------------------------------------------------------- no false positives


def test_normal_page_behind_cloudflare_is_ok() -> None:
    headers = {**CF, "Content-Type": "text/html; charset=UTF-8", "Set-Cookie": SECRET_COOKIE}
    assert verdict(200, headers, NORMAL_PAGE).kind == "ok"


def test_normal_page_titled_just_a_moment_without_challenge_script_is_ok() -> None:
    body = "<html><head><title>Just a moment...</title></head><body>Loading</body></html>"
    assert verdict(200, CF, body).kind == "ok"


def test_sse_answer_quoting_a_challenge_page_is_ok() -> None:
    quoted = "data: " + CF_CHALLENGE_PAGE.replace("\n", " ") + "\n\n"
    assert verdict(200, {**CF, "content-type": "text/event-stream"}, quoted).kind == "ok"


WP_ERROR_PAGE = """<!DOCTYPE html>
<html lang="en-US">
<head>
	<meta http-equiv="Content-Type" content="text/html; charset=utf-8" />
		<title>WordPress &rsaquo; Error</title>
</head>
<body id="error-page">
	<div class="wp-die-message">{}</div></body>
</html>
"""


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (403, "-1"),
        (400, "0"),
        (403, b"-1"),
        (403, ""),
        (503, "<html>Maintenance</html>"),
        (403, capture_body("legacy-1.9-bad-nonce.http")[2]),
        (403, WP_ERROR_PAGE.format("Sorry, you are not allowed to access this page.")),
    ],
)
def test_wordpress_refusals_are_ok(status: int, body: str | bytes) -> None:
    headers = {
        **CF,
        "x-datadome": "protected",
        "X-Iinfo": "1-2-3",
        "Set-Cookie": "_pxhd=PxSeCrEt789; path=/",
    }
    assert verdict(status, headers, body).kind == "ok"


def test_plugin_json_403_is_ok() -> None:
    status, headers, body = capture_body("aipkit-bad-nonce-cache.http")
    assert status == 403
    assert verdict(status, {**headers, **CF}, body).kind == "ok"


@pytest.mark.parametrize("name", [p.name for p in sorted(CAPTURES.glob("*.http"))])
def test_every_genuine_plugin_answer_is_ok(name: str) -> None:
    status, headers, body = capture_body(name)
    assert verdict(status, {**headers, **CF}, body).kind == "ok"


def test_blog_post_quoting_error_1020_with_status_200_is_ok() -> None:
    blog = "<p>Seeing error code: 1020? Access denied pages explained</p>"
    assert verdict(200, CF, blog).kind == "ok"


def test_markers_past_the_scan_window_are_not_read() -> None:
    body = "<html>" + " " * SCAN_BYTES + "window._cf_chl_opt={}</html>"
    assert verdict(403, CF, body).kind == "ok"
    assert verdict(403, CF, body.encode()).kind == "ok"


def test_header_forms() -> None:
    multi = CIMultiDict([("Server", "cloudflare"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
    assert verdict(403, CIMultiDictProxy(multi), CF_CHALLENGE_PAGE).kind == "challenge"
    assert verdict(403, [("CF-MITIGATED", "challenge")], b"").kind == "challenge"
    assert verdict(200, None, None).kind == "ok"


# ------------------------------------------------------------------- Retry-After


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 10.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # in the past
        ("Wednesday, 21-Oct-15 07:28:00 GMT", 10.0),  # RFC 850 form
        (None, None),
        ("", None),
        ("-5", None),
        ("soon", None),
        ("9" * 400, None),
        ("Wed, 99 Foo 2015 07:28:00 GMT", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=1445412470.0) == expected


# -------------------------------------------------------------- raise_for_access


URL = "https://bob:hunter2@chatgptfree.ai/chat/?token=s3cr3t"


def assert_clean(message: str) -> None:
    for secret in (*SECRETS, "hunter2", "s3cr3t"):
        assert secret not in message


def test_ok_does_not_raise() -> None:
    verdict(200, CF, NORMAL_PAGE).raise_for_access(URL)


def test_challenge_raises_challenge_error() -> None:
    headers = {"cf-mitigated": "challenge", "Set-Cookie": SECRET_COOKIE, **CF}
    with pytest.raises(ChallengeError) as excinfo:
        verdict(403, headers, CF_CHALLENGE_PAGE).raise_for_access(URL)
    message = str(excinfo.value)
    assert_clean(message)
    assert "cf-mitigated: challenge" in message and "Cloudflare" in message
    assert "browser" in message and "Chromium" in message
    assert "https://bob:***@chatgptfree.ai/chat/" in message


def test_blocked_raises_blocked_error() -> None:
    with pytest.raises(BlockedError) as excinfo:
        verdict(403, {**CF, "Set-Cookie": SECRET_COOKIE}, CF_1020_PAGE).raise_for_access(URL)
    message = str(excinfo.value)
    assert_clean(message)
    assert "1020" in message and "proxy" in message


def test_rate_limited_raises_with_retry_after() -> None:
    headers = {"Retry-After": "42", "Set-Cookie": SECRET_COOKIE}
    with pytest.raises(RateLimitedError) as excinfo:
        verdict(429, headers, "").raise_for_access(URL)
    assert excinfo.value.retry_after == 42.0
    assert "wait 42 s" in str(excinfo.value)
    assert_clean(str(excinfo.value))
    with pytest.raises(RateLimitedError, match="no usable Retry-After") as excinfo:
        verdict(429, {}, "").raise_for_access(URL)
    assert excinfo.value.retry_after is None


@pytest.mark.parametrize(
    ("status", "headers", "body"),
    [
        (403, {"set-cookie": SECRET_COOKIE}, "<div id='px-captcha'></div>"),
        (403, {"set-cookie": "datadome=DdSeCrEt000; Path=/", "x-datadome": "1"}, "<html></html>"),
        (403, {"x-iinfo": "1", "set-cookie": "incap_ses_1=DdSeCrEt000"}, "<html>no</html>"),
    ],
)
def test_evidence_never_carries_cookie_values(
    status: int, headers: dict[str, str], body: str
) -> None:
    result = verdict(status, headers, body)
    assert result.kind != "ok"
    assert_clean(result.evidence)
    with pytest.raises(AccessError) as excinfo:
        result.raise_for_access(URL)
    assert_clean(str(excinfo.value))


# ------------------------------------------------------------ WordPress's own refusals


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (403, "-1", "nonce"),
        (200, b" -1\n", "nonce"),
        (403, capture_body("legacy-1.9-bad-nonce.http")[2], "nonce"),
        (403, WP_ERROR_PAGE.format("The link you followed has expired."), "nonce"),
        (400, "0", "unknown_action"),
        (200, "0", "unknown_action"),
        (400, "", "unknown_action"),
        (403, WP_ERROR_PAGE.format("Sorry, you are not allowed to do that."), "error_page"),
        (500, WP_ERROR_PAGE.format("There has been a critical error."), "error_page"),
    ],
)
def test_wordpress_refusal_kinds(status: int, body: str | bytes, kind: str) -> None:
    found = wordpress_refusal(status, body)
    assert found is not None and found.kind == kind and found.status == status
    assert f"HTTP {status}" in found.evidence


def test_wordpress_error_page_evidence_is_its_message_in_one_line() -> None:
    found = wordpress_refusal(403, WP_ERROR_PAGE.format("Sorry, <b>you</b> &amp; me."))
    assert found is not None
    assert found.evidence == "HTTP 403, WordPress's error page: 'Sorry, you & me.'"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, '{"status":"error","msg":"Nonce verification failed"}'),
        (403, CF_CHALLENGE_PAGE),
        (403, CF_1020_PAGE),
        (200, "<p>Blog: why 'The link you followed has expired.' shows up</p>"),
        (403, "<html><body><h1>Forbidden</h1>by the firewall</body></html>"),
        (200, "-10"),
        (200, "0123"),
        (200, ""),
    ],
)
def test_other_answers_are_no_wordpress_refusal(status: int, body: str) -> None:
    assert wordpress_refusal(status, body) is None
