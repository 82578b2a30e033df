"""A Cloudflare-like edge in front of every path: hard block, rate limit, JS challenge.

The challenge is real, not a marker: the page carries a freshly generated,
XOR-obfuscated JavaScript program (a random chain of 32-bit integer operations
seeded per challenge). The orchestrate script under ``/cdn-cgi/challenge-platform/``
decodes it, runs it with ``new Function``, and POSTs the result to the flow
endpoint, which checks it against the value Python computed when it generated
the program; on success it sets an HttpOnly ``cf_clearance`` cookie (bound to the
User-Agent and client address — with ``bind_tls`` also to the client's TLS
fingerprint — see ``_clearance``) and the script reloads the
original URL. A client without a JavaScript engine would have to interpret a
program whose shape changes every time.

Order at the edge: hard block (WAF rule 1020), then rate limit (1015), then the
challenge; the challenge machinery itself (``/cdn-cgi/challenge-platform/…``) is
never challenged.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from . import _clearance, _detect
from ._php import cloudflare_response
from ._site import SITE_KEY, PendingChallenge, Site

CHALLENGE_PREFIX = "/cdn-cgi/challenge-platform/"
SCRIPT_PATH = "/cdn-cgi/challenge-platform/h/b/orchestrate/chl_page/v1"
FLOW_PATH = "/cdn-cgi/challenge-platform/h/b/flow/ov1/{ray}"
PENDING_TTL = 300.0
_MASK = 0xFFFFFFFF

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _edge_headers(
    ray: str, content_type: str = "text/html; charset=UTF-8"
) -> list[tuple[str, str]]:
    return [
        ("Content-Type", content_type),
        (
            "Cache-Control",
            "private, max-age=0, no-store, no-cache, must-revalidate, post-check=0, pre-check=0",
        ),
        ("Expires", "Thu, 01 Jan 1970 00:00:01 GMT"),
        ("Referrer-Policy", "same-origin"),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "SAMEORIGIN"),
        ("Server", "cloudflare"),
        ("CF-RAY", f"{ray}-LHR"),
    ]


def _ray() -> str:
    return secrets.token_hex(8)


# --------------------------------------------------------------------------- the puzzle


def _make_program(rng: random.Random) -> tuple[str, str]:
    """A random JS program over a uint32 ``x`` and the hex string it returns,
    computed here in Python with the same 32-bit semantics."""
    x = rng.getrandbits(32)
    lines = [f"var x={x}>>>0;"]
    for _ in range(rng.randint(10, 16)):
        op = rng.randrange(6)
        if op == 0:
            c = rng.getrandbits(31)
            lines.append(f"x=(x+{c})>>>0;")
            x = (x + c) & _MASK
        elif op == 1:
            c = rng.getrandbits(31) | 1
            lines.append(f"x=Math.imul(x,{c})>>>0;")
            x = (x * c) & _MASK
        elif op == 2:
            s = rng.randint(1, 31)
            lines.append(f"x=(x^(x>>>{s}))>>>0;")
            x = x ^ (x >> s)
        elif op == 3:
            s = rng.randint(1, 31)
            lines.append(f"x=(x^(x<<{s}))>>>0;")
            x = (x ^ (x << s)) & _MASK
        elif op == 4:
            s = rng.randint(1, 31)
            lines.append(f"x=((x<<{s})|(x>>>{32 - s}))>>>0;")
            x = ((x << s) | (x >> (32 - s))) & _MASK
        else:
            word = "".join(
                rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(4, 9))
            )
            n = rng.randint(2, 6)
            lines.append(
                f"for(var i=0;i<{n};i++){{"
                f'x=(Math.imul(x,31)+"{word}".charCodeAt(i%{len(word)}))>>>0;}}'
            )
            for i in range(n):
                x = (x * 31 + ord(word[i % len(word)])) & _MASK
    lines.append('return ("00000000"+x.toString(16)).slice(-8);')
    return "".join(lines), f"{x:08x}"


def _obfuscate(source: str, key: int) -> str:
    raw = bytes(b ^ ((key + 7 * i) & 0xFF) for i, b in enumerate(source.encode()))
    return base64.b64encode(raw).decode()


ORCHESTRATE_JS = """(function(){
  var o = window._cf_chl_opt;
  var raw = atob(o.cPayload), src = "";
  for (var i = 0; i < raw.length; i++) {
    src += String.fromCharCode(raw.charCodeAt(i) ^ ((o.cKey + 7 * i) & 255));
  }
  var answer = new Function(src)();
  var body = "ray=" + encodeURIComponent(o.cRay) + "&answer=" + encodeURIComponent(answer);
  // With bot detection on, what the page found goes with the answer.
  var detect = window._cf_chl_detect ? window._cf_chl_detect() : Promise.resolve(null);
  detect.then(function (found) {
    if (found) body += "&signals=" + encodeURIComponent(JSON.stringify(found));
    return fetch(o.cFlow, {method: "POST", credentials: "same-origin",
                  headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: body});
  }).then(function (r) {
      if (r.ok) { location.replace(o.cUPMDTk); return; }
      return r.json().then(function (j) {
        if (j.detected) { location.replace(o.cUPMDTk); return; }  // a new challenge
        document.getElementById("challenge-error-text").textContent = "Verification failed.";
      });
    });
})();
"""


def _challenge_page(request: web.Request, site: Site) -> web.Response:
    ray = _ray()
    rng = random.Random(secrets.randbits(64))
    source, answer = _make_program(rng)
    key = rng.randrange(256)
    site.challenges[ray] = PendingChallenge(answer, time.monotonic() + PENDING_TTL)
    options = {
        "cvId": "3",
        "cZone": request.host,
        "cType": "managed",
        "cRay": ray,
        "cKey": key,
        "cPayload": _obfuscate(source, key),
        "cFlow": FLOW_PATH.format(ray=ray),
        "cUPMDTk": request.path_qs,
        "cITimeS": str(int(time.time())),
    }
    # JSON is valid JS; escaping "<" and "/" keeps the path from closing the script.
    opt = json.dumps(options).replace("<", "\\u003c").replace("/", "\\/")
    detector = f"<script>{_detect.DETECT_JS}</script>" if site.config.protection else ""
    body = f"""<!DOCTYPE html><html lang="en-US"><head>{detector}<title>Just a moment...</title>
<meta http-equiv="Content-Type" content="text/html; charset=UTF-8">
<meta http-equiv="X-UA-Compatible" content="IE=Edge">
<meta name="robots" content="noindex,nofollow">
<meta name="viewport" content="width=device-width,initial-scale=1">
</head><body class="no-js">
<div class="main-wrapper" role="main"><div class="main-content">
<h1 class="zone-name-title h1">{request.host}</h1>
<p class="h2 spacer-bottom">Verifying you are human. This may take a few seconds.</p>
<div id="cf-please-wait"><p id="challenge-error-text"></p></div>
<p>(Sandbox imitation of a Cloudflare challenge, for local tests.)</p>
</div></div>
<script>(function(){{window._cf_chl_opt={opt};
var s=document.createElement('script');s.src='{SCRIPT_PATH}?ray={ray}';
document.getElementsByTagName('head')[0].appendChild(s);}})();</script>
<noscript><p>Enable JavaScript and cookies to continue</p></noscript>
<div class="footer" role="contentinfo">Ray ID: <code>{ray}</code> &bull;
Performance &amp; security by Cloudflare</div>
</body></html>"""
    headers = [
        ("cf-mitigated", "challenge"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
        ("Server-Timing", f'chlray;desc="{ray}"'),
        *_edge_headers(ray),
    ]
    return cloudflare_response(body, status=403, headers=headers)


def _blocked_page(request: web.Request) -> web.Response:
    ray = _ray()
    body = f"""<!DOCTYPE html>
<html lang="en-US"><head><title>Attention Required! | Cloudflare</title>
<meta charset="UTF-8" /></head><body>
<div id="cf-wrapper"><div id="cf-error-details" class="cf-error-details-wrapper">
<h1 data-translate="block_headline">Sorry, you have been blocked</h1>
<h2 class="cf-subheadline">Access denied</h2>
<p>You are unable to access {request.host}. error code: 1020</p>
<span class="cf-error-code">1020</span>
<p>(Sandbox imitation of a Cloudflare block, for local tests.)</p>
<span>Cloudflare Ray ID: <strong class="font-semibold">{ray}</strong></span>
</div></div></body></html>"""
    return cloudflare_response(body, status=403, headers=_edge_headers(ray))


def _rate_limited_page(request: web.Request, retry_after: int) -> web.Response:
    ray = _ray()
    body = f"""<!DOCTYPE html>
<html lang="en-US"><head>
<title>Access denied | {request.host} used Cloudflare to restrict access</title>
<meta charset="UTF-8" /></head><body>
<h1>Error 1015</h1><h2>You are being rate limited</h2>
<p>The owner of this website ({request.host}) has banned you temporarily
from accessing this website.</p>
<span class="cf-error-code">1015</span>
<p>(Sandbox imitation, for local tests.)</p>
</body></html>"""
    headers = [("Retry-After", str(retry_after)), *_edge_headers(ray)]
    return cloudflare_response(body, status=429, headers=headers)


# --------------------------------------------------------------------------- middleware


def _client(request: web.Request, site: Site) -> str:
    """What a clearance is bound to besides the User-Agent: the client address and,
    with ``bind_tls``, the client's TLS fingerprint."""
    address = request.remote or ""
    if not site.config.bind_tls:
        return address
    return f"{address}|tls:{tls_fingerprint(request)}"


def tls_fingerprint(request: web.Request) -> str:
    """A hash of the cipher suites the client offered (those this server also speaks).

    A stand-in for JA3: what a TLS library offers is fixed by its build and
    configuration, so Chromium's offer differs from Python's ssl module's.
    ``"plain"`` when the request did not come over TLS.
    """
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_object is None:
        return "plain"
    offered = sorted(name for name, _, _ in ssl_object.shared_ciphers() or [])
    return hashlib.sha256("|".join(offered).encode()).hexdigest()[:16]


def _cleared(request: web.Request, site: Site) -> bool:
    if request.cookies.get("cf_clearance") in site.revoked:
        return False
    return _clearance.is_valid(
        site.clearance_secret,
        request.cookies.get("cf_clearance"),
        request.headers.get("User-Agent", ""),
        _client(request, site),
        time.time(),
        site.config.clearance_ttl,
    )


@web.middleware
async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
    """What sits in front of the WordPress site, for every path."""
    site = request.app[SITE_KEY]
    config = site.config
    if config.hard_block:
        site.hits["blocked"] += 1
        return _blocked_page(request)
    if config.rate_limit:
        site.hits["rate_limited"] += 1
        return _rate_limited_page(request, config.retry_after)
    if request.path.startswith(CHALLENGE_PREFIX):
        return await handler(request)
    if (config.challenge or config.protection) and not _cleared(request, site):
        site.hits["challenge"] += 1
        return _challenge_page(request, site)
    response = await handler(request)
    if config.protection:
        _watch_page(response)
    return response


def _watch_page(response: web.StreamResponse) -> None:
    """Bot detection goes on in every page of the site: the watch goes first in its head."""
    if not isinstance(response, web.Response) or response.content_type != "text/html":
        return
    body = response.body
    if not isinstance(body, bytes) or b"<head>" not in body:
        return
    script = f"<script>{_detect.PAGE_JS}</script>".encode()
    response.body = body.replace(b"<head>", b"<head>" + script, 1)


async def report(request: web.Request) -> web.StreamResponse:
    """A page's watch found automation: record it and revoke the clearance it ran under."""
    site = request.app[SITE_KEY]
    try:
        found = json.loads(await request.text())
    except ValueError:
        found = {}
    fired = sorted(
        {str(n) for n in found.get("fired", []) if str(n) in _detect.SIGNALS}
        if isinstance(found, dict)
        else set()
    )
    if fired:
        site.hits["detected"] += 1
        site.detections.append({"where": "page", "signals": fired})
        clearance = request.cookies.get("cf_clearance")
        if clearance:
            site.revoked.add(clearance)
    return cloudflare_response("", status=204, headers=_edge_headers(_ray(), "text/plain"))


# --------------------------------------------------------------------------- endpoints


async def orchestrate_script(request: web.Request) -> web.StreamResponse:
    """The challenge's script: decode the program, run it, post the answer, reload."""
    return cloudflare_response(
        ORCHESTRATE_JS, status=200, headers=_edge_headers(_ray(), "application/javascript")
    )


async def flow(request: web.Request) -> web.StreamResponse:
    """Check a challenge answer; on success set ``cf_clearance``."""
    site = request.app[SITE_KEY]
    ray = request.match_info["ray"]
    form = await request.post()
    now = time.monotonic()
    for stale in [k for k, v in site.challenges.items() if v.expires < now]:
        del site.challenges[stale]
    pending = site.challenges.pop(ray, None)  # one attempt per challenge
    if pending is None or form.get("answer") != pending.answer:
        site.hits["challenge_failed"] += 1
        return cloudflare_response(
            '{"success":false}', status=403, headers=_edge_headers(ray, "application/json")
        )
    if site.config.protection:
        fired = _detect.verdict(str(form.get("signals") or ""), request.headers)
        if fired:  # the puzzle was solved, by an automated browser: no clearance
            site.hits["detected"] += 1
            site.detections.append({"where": "challenge", "signals": fired})
            return cloudflare_response(
                '{"success":false,"detected":true}',
                status=403,
                headers=_edge_headers(ray, "application/json"),
            )
    site.hits["clearance"] += 1
    token = _clearance.issue(
        site.clearance_secret,
        request.headers.get("User-Agent", ""),
        _client(request, site),
        time.time(),
    )
    response = cloudflare_response(
        '{"success":true}', status=200, headers=_edge_headers(ray, "application/json")
    )
    ttl = site.config.clearance_ttl
    response.set_cookie(
        "cf_clearance",
        token,
        path="/",
        max_age=max(1, int(ttl + 0.999)),
        expires=time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + ttl)),
        httponly=True,
        samesite="Lax",
    )
    return response
