"""What PHP and WordPress put on the wire, so answers match the captures byte for byte.

- ``wp_json``: ``wp_send_json`` output — compact, ``/`` escaped as ``\\/``, non-ASCII
  as ``\\uXXXX`` (PHP's ``json_encode`` defaults).
- Header sets in the order the captured PHP server sent them.
- ``on_prepare``: a response-prepare hook that puts ``Host``/``Date``/``Connection``
  first like PHP's built-in server does, drops aiohttp's ``Server`` header, and
  applies the site's body framing (close-delimited like the captures, or chunked).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aiohttp import hdrs, web
from aiohttp.http import StreamWriter

from ._site import SITE_KEY

Style = Literal["php", "cloudflare"]
STYLE = web.ResponseKey("sandbox_style", str)

POWERED_BY = ("X-Powered-By", "PHP/8.2.36")
NOCACHE_EXPIRES = ("Expires", "Wed, 11 Jan 1984 05:00:00 GMT")
NOCACHE_CONTROL = ("Cache-Control", "no-cache, must-revalidate, max-age=0")

# wp_send_json from admin-ajax.php (legacy-bad-nonce.http, aipkit-cache.http).
JSON_HEADERS: tuple[tuple[str, str], ...] = (
    POWERED_BY,
    ("X-Robots-Tag", "noindex"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "SAMEORIGIN"),
    ("Content-Type", "application/json; charset=UTF-8"),
    NOCACHE_EXPIRES,
    NOCACHE_CONTROL,
)

# admin-ajax.php before a handler changes anything (its `wp_die('0', 400)` answer).
AJAX_HEADERS: tuple[tuple[str, str], ...] = (
    POWERED_BY,
    ("X-Robots-Tag", "noindex"),
    ("X-Content-Type-Options", "nosniff"),
    NOCACHE_EXPIRES,
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "SAMEORIGIN"),
    ("Content-Type", "text/html; charset=UTF-8"),
    NOCACHE_CONTROL,
)

# wp_die() from admin-ajax.php after check_ajax_referer failed (legacy-1.9-bad-nonce.http):
# the Content-Type comes first, ahead of the admin-ajax headers.
WP_DIE_AJAX_HEADERS: tuple[tuple[str, str], ...] = (
    POWERED_BY,
    ("Content-Type", "text/html; charset=UTF-8"),
    ("X-Robots-Tag", "noindex"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "SAMEORIGIN"),
    NOCACHE_EXPIRES,
    NOCACHE_CONTROL,
)

# The legacy plugin's own header() calls (legacy-chat-stream.http), lower-case "type" and all.
LEGACY_STREAM_HEADERS: tuple[tuple[str, str], ...] = (
    POWERED_BY,
    ("X-Robots-Tag", "noindex"),
    ("X-Content-Type-Options", "nosniff"),
    NOCACHE_EXPIRES,
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "SAMEORIGIN"),
    ("Content-type", "text/event-stream;charset=UTF-8"),
    ("Cache-Control", "no-cache"),
    ("X-Accel-Buffering", "no"),
)

# aipkit's SSE headers (aipkit-stream.http), ending in a second, contradicting Connection.
AIPKIT_STREAM_HEADERS: tuple[tuple[str, str], ...] = (
    POWERED_BY,
    ("X-Robots-Tag", "noindex"),
    ("X-Content-Type-Options", "nosniff"),
    NOCACHE_EXPIRES,
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "SAMEORIGIN"),
    ("Cache-Control", "no-cache, no-store, must-revalidate, max-age=0, no-transform"),
    ("Pragma", "no-cache"),
    ("Content-Type", "text/event-stream; charset=utf-8"),
    ("X-Accel-Buffering", "no"),
    ("Connection", "keep-alive"),
)


def wp_json(payload: Any) -> str:
    """``wp_json_encode($payload)`` with PHP's default flags."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/")


def php_json_unescaped_unicode(payload: Any) -> str:
    """``json_encode($payload, JSON_UNESCAPED_UNICODE)``: raw UTF-8, ``/`` still escaped.

    aipkit writes its data-config this way (the captured page carries a raw "—"),
    and we assume its SSE lines too, so long answers put multi-byte text on the wire.
    """
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).replace("/", "\\/")


def _mark(response: web.StreamResponse, style: Style) -> web.StreamResponse:
    response[STYLE] = style  # on_prepare closes the connection unless keep_alive
    return response


def php_response(
    body: str | bytes,
    *,
    status: int = 200,
    headers: Iterable[tuple[str, str]] = AJAX_HEADERS,
) -> web.Response:
    """A complete (non-streamed) answer from PHP with the given header set."""
    response = web.Response(body=body.encode() if isinstance(body, str) else body, status=status)
    for name, value in headers:
        response.headers.add(name, value)
    _mark(response, "php")
    return response


def json_response(payload: Any, status: int = 200) -> web.Response:
    """``wp_send_json($payload, $status)``."""
    return php_response(wp_json(payload), status=status, headers=JSON_HEADERS)


def ajax_zero() -> web.Response:
    """admin-ajax.php's answer to an unknown or empty action: ``wp_die('0', 400)``."""
    return php_response("0", status=400, headers=AJAX_HEADERS)


def wp_nonce_ays(request: web.Request, globals_: Superglobals) -> web.Response:
    """WordPress refusing a nonce inside admin-ajax.php: ``wp_nonce_ays()``'s message
    alone (the AJAX die handler prints no page), with a link back to the referring
    page when WordPress accepts the referer, status 403 (legacy-1.9-bad-nonce.http)."""
    message = "The link you followed has expired."
    referer = wp_get_referer(request, globals_)
    if referer is not None:
        message += f'</p><p><a href="{esc_url(referer)}">Please try again.</a>'
    # The captured answer ends with a newline after the message.
    return php_response(message + "\n", status=403, headers=WP_DIE_AJAX_HEADERS)


def wp_get_referer(request: web.Request, globals_: Superglobals) -> str | None:
    """``remove_query_arg('updated', wp_get_referer())``: the referer (``_wp_http_referer``
    field, else the header) unless it is this very request or another host's page."""
    referer = globals_.request.get("_wp_http_referer") or request.headers.get("Referer", "")
    if not referer or referer in (
        request.path_qs,
        f"{request.scheme}://{request.host}{request.path_qs}",
    ):
        return None
    try:
        parts = urlsplit(referer)
        host = parts.hostname
    except ValueError:
        return None
    # wp_validate_redirect(): only the site's own host (any port), over http(s).
    if parts.scheme not in ("http", "https") or host != request.url.host:
        return None
    query = urlencode(
        [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "updated"]
    )
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


_URL_DROPPED = re.compile(r"[^a-z0-9\-~+_.?#=!&;,/:%@$|*'()\[\]\x80-\U0010ffff]", re.I)


def esc_url(url: str) -> str:
    """WordPress's ``esc_url`` for display: characters URLs may not hold dropped,
    ``&`` and ``'`` as entities."""
    return _URL_DROPPED.sub("", url).replace("&", "&#038;").replace("'", "&#039;")


def php_stream(headers: Iterable[tuple[str, str]]) -> web.StreamResponse:
    """A streamed PHP answer (not yet prepared) with the given header set."""
    response = web.StreamResponse(status=200)
    for name, value in headers:
        response.headers.add(name, value)
    _mark(response, "php")
    return response


def cloudflare_response(
    body: str, *, status: int, headers: Iterable[tuple[str, str]]
) -> web.Response:
    """An answer from the edge (Cloudflare) rather than from PHP."""
    response = web.Response(body=body.encode(), status=status)
    for name, value in headers:
        response.headers.add(name, value)
    _mark(response, "cloudflare")
    return response


async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Rewrite aiohttp's headers into the shape the captured servers produce.

    Runs after aiohttp has filled in Date/Server/Connection/Transfer-Encoding and
    before anything is written, so it can still change the framing.
    """
    style = response.get(STYLE)
    if style is None:
        return
    keep_alive = request.app[SITE_KEY].config.keep_alive
    if not keep_alive:
        response.force_close()  # PHP's built-in server closes after every reply
    if request.app[SITE_KEY].config.framing == "close" and not keep_alive:
        # The PHP built-in server neither chunks nor sends Content-Length: the
        # body ends with the connection. Undo aiohttp's HTTP/1.1 chunking.
        writer = request.writer
        if isinstance(writer, StreamWriter):
            writer.chunked = False
        response.headers.popall(hdrs.TRANSFER_ENCODING, None)
        response.headers.popall(hdrs.CONTENT_LENGTH, None)
    date = response.headers.get(hdrs.DATE, "")
    rest = [
        (name, value)
        for name, value in response.headers.items()
        if name.lower() != "date"
        # aiohttp's "Server: Python/… aiohttp/…" goes; the edge's "Server: cloudflare" stays.
        and not (name.lower() == "server" and value.startswith("Python/"))
        # aiohttp's own "Connection: close" goes; a handler's keep-alive (aipkit) stays put.
        and not (name.lower() == "connection" and value == "close")
    ]
    response.headers.clear()
    if style == "php":
        # PHP's CLI server echoes the request's Host and starts with Date/Connection.
        response.headers.add("Host", request.host)
        response.headers.add(hdrs.DATE, date)
        response.headers.add(hdrs.CONNECTION, "keep-alive" if keep_alive else "close")
        for name, value in rest:
            response.headers.add(name, value)
    else:
        response.headers.add(hdrs.DATE, date)
        for name, value in rest:
            response.headers.add(name, value)
        if not keep_alive:
            response.headers.add(hdrs.CONNECTION, "close")


class Superglobals:
    """``$_GET``, ``$_POST`` and ``$_REQUEST`` of one admin-ajax request.

    Handlers read what the plugin reads: legacy reads ``$_REQUEST`` (so GET and
    POST both work), aipkit reads the nonce from ``$_POST`` for the cache step and
    everything from ``$_GET`` for the stream.
    """

    def __init__(self, get: dict[str, str], post: dict[str, str]) -> None:
        self.get = get
        self.post = post
        # PHP's default request_order "GP": POST values override GET values.
        self.request = {**get, **post}

    @classmethod
    async def read(cls, request: web.Request) -> Superglobals:
        post: dict[str, str] = {}
        if request.method == "POST" and request.can_read_body:
            # Handles urlencoded and multipart alike; uploaded files are not strings: skipped.
            form = await request.post()
            post = {key: value for key, value in form.items() if isinstance(value, str)}
        return cls(dict(request.query), post)


def php_empty(value: str | None) -> bool:
    """PHP's ``empty()`` on a request string: "" and "0" are empty."""
    return value is None or value in ("", "0")
