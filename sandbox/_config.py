"""The knobs of the imitation site: one mutable dataclass, read on every request.

Tests hold the live instance (``site.config``) and flip fields between requests,
so nothing here is cached by the handlers: a change applies to the next request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Literal, get_args

Generation = Literal["legacy", "aipkit"]
LegacyMarkup = Literal["shortcode", "widget", "both"]
LegacyTemplate = Literal["1.8", "1.7", "compact"]
NonceWording = Literal["current", "1.7", "old"]
Framing = Literal["close", "chunked"]
LegacyError = Literal["token_limit", "ip_ban", "banned_words", "moderation", "limited", "upstream"]
AipkitError = Literal[
    "quota",
    "guest_disabled",
    "ip_blocked",
    "banned_words",
    "moderation",
    "api_error",
    "connection_error",
    "no_data",
    "cors_denied",
]

#: The release each generation imitates unless told: the ones the captures come from.
DEFAULT_RELEASE: dict[str, str] = {"legacy": "1.8.79", "aipkit": "2.4.71"}
_RELEASE = re.compile(r"([0-9]{1,3})\.([0-9]{1,3})(?:\.([0-9]{1,3}))?")


def release_generation(release: str) -> Generation:
    """The generation a plugin release speaks: 1.x and 2.0-2.2 legacy (2.2 was the last
    legacy release), 2.3 and later aipkit. ValueError for what is no release of it."""
    match = _RELEASE.fullmatch(release)
    if match is None:
        raise ValueError(f"release={release!r}; expected a version such as 1.9, 1.8.79 or 2.4.71")
    version = (int(match.group(1)), int(match.group(2)))
    if version[0] == 1 or (2, 0) <= version < (2, 3):
        return "legacy"
    if version[0] == 2:
        return "aipkit"
    raise ValueError(f"release={release!r}: the plugin has only 1.x and 2.x releases")


def wordpress_refuses_nonce(release: str) -> bool:
    """True from 1.9.0 through 2.2, whose chat handler checks the nonce with
    ``check_ajax_referer``: a bad one gets WordPress's 403 page, not the plugin's JSON."""
    major, minor = (int(part) for part in release.split(".")[:2])
    return release_generation(release) == "legacy" and (major, minor) >= (1, 9)


LEGACY_ERRORS: frozenset[str] = frozenset(get_args(LegacyError))
AIPKIT_ERRORS: frozenset[str] = frozenset(get_args(AipkitError))

# What the captured 1.8.79 install sends as `greeting_message` (its system prompt).
DEFAULT_GREETING = (
    "Converse as if you were an AI assistant. Answer the question as truthfully as "
    "possible using the provided context. Tone: Friendly.\n, Current context: "
    '"Legacy chat"'
)


# slots: assigning a misspelt or unknown field on the live config raises
# AttributeError instead of silently doing nothing.
@dataclass(slots=True)
class SiteConfig:
    """Everything the imitation can be told to do.

    Example::

        async with sandbox.running(generation="legacy", streaming=False) as site:
            site.config.nonce_wording = "1.7"   # applies to the next request
    """

    # --- which site -------------------------------------------------------
    generation: Generation = "aipkit"
    """``legacy`` (AI Power 1.x, ``wpaicg``) or ``aipkit`` (2.x, ``aipkit``)."""
    release: str | None = None
    """The plugin release imitated, shown as ``?ver=`` on the plugin's script and style
    tags; ``None``: the generation's captured one (``DEFAULT_RELEASE``). Legacy 1.8.x
    refuses a bad nonce with the plugin's JSON, 1.9.0 through 2.2 with WordPress's
    403 page ("The link you followed has expired."); 2.3 and later are aipkit.
    ``running(release=…)`` and ``--release`` take the generation from it; a
    ``generation`` given as well must agree (else ValueError)."""

    # --- bot protection in front of every path ----------------------------
    challenge: bool = False
    """Cloudflare-like JavaScript challenge (403 + ``cf-mitigated: challenge``)."""
    protection: bool = False
    """Bot detection (implies ``challenge``): the challenge page checks the browser for
    automation (``sandbox._detect``) and refuses the clearance when any signal fires;
    every page keeps watching and a report revokes the clearance. ``site.detections``."""
    hard_block: bool = False
    """Cloudflare 1020 "Access denied" on every path; a browser will not help."""
    rate_limit: bool = False
    """429 with ``Retry-After`` on every path."""
    retry_after: int = 30
    """Seconds announced in ``Retry-After`` when ``rate_limit`` is on."""
    clearance_ttl: float = 1800.0
    """Lifetime of a ``cf_clearance`` token (cookie Max-Age and server-side check)."""
    bind_tls: bool = False
    """Serve over TLS and bind ``cf_clearance`` to the TLS fingerprint of the client
    that solved the challenge (the cipher suites it offered): the clearance a
    browser earned is refused from another TLS client, as on sites whose
    protection fingerprints TLS — handing cookies to plain HTTP then fails."""

    # --- WordPress --------------------------------------------------------
    tick_seconds: float = 43200.0
    """WordPress nonce tick (half a nonce's life). Tests use e.g. 2 to expire in seconds."""
    home_post_id: int = 6
    """Post id of ``/`` (the front page)."""
    chat_post_id: int = 12
    """Post id of ``/chat/``."""
    no_widget: bool = False
    """Render the pages without any chat widget (a site that removed it)."""
    page_nonce: str | None = None
    """A page cache serving a stale copy: pages print this nonce instead of a current
    one (AJAX answers, like the aipkit nonce refresh, are not cached)."""
    framing: Framing = "close"
    """``close``: like the captured PHP server, no Content-Length and no chunking, the
    body ends when the connection closes. ``chunked``: what a CDN/proxy in front
    produces (``Transfer-Encoding: chunked``), where a cut stream is a visible error."""
    keep_alive: bool = False
    """Keep connections open between requests, as the CDN or web server in front of
    a real site does (chatgptfree.ai sits behind Cloudflare): every reply is framed
    (Content-Length or chunked, whatever ``framing`` says). Off: close after every
    reply, like PHP's built-in server in the captures."""

    # --- legacy generation ------------------------------------------------
    legacy_markup: LegacyMarkup = "shortcode"
    """Which element the page carries: the shortcode, the footer widget, or both."""
    legacy_template: LegacyTemplate = "1.8"
    """Attribute order/spacing: ``1.8`` (as captured), ``1.7`` (older order, no
    ``data-openai_stream_nav``, ``data-nonce = "…"`` spaced) or ``compact`` (one line)."""
    legacy_wpaicg_params: bool = True
    """Emit the inline ``var wpaicgParams = {…}`` script."""
    legacy_img_nonce_decoy: bool = True
    """Emit ``<input id="wpaicg-img-nonce">`` holding a nonce for another action."""
    streaming: bool = True
    """The site's "stream" option; off → one JSON reply."""
    nonce_wording: NonceWording = "current"
    """Bad-nonce text: ``current`` (1.8), ``1.7`` (long text) or ``old`` (Security check)."""
    greeting_message: str = DEFAULT_GREETING
    """The bot's system prompt, echoed in the trailing JSON as ``greeting_message``."""

    # --- aipkit generation ------------------------------------------------
    aipkit_bots: list[int] = field(default_factory=lambda: [5])
    """Bot ids on the page; each gets its own container and ``data-config``."""
    aipkit_popup: bool = False
    """Put ``data-config`` on ``div.aipkit_popup_wrapper`` instead of the container."""
    responses_api: bool = True
    """Emit ``event: status`` and ``event: openai_response_id`` (Responses API upstream);
    off → the chat-completions shape (deltas only)."""
    warning: bool = False
    """Emit ``event: warning`` ``{"error":" (Warning: Content Filtered)"}`` mid-stream."""
    guest_quota: int | None = None
    """Messages allowed per ``session_id``; the next one gets the quota error."""
    cache_ttl: float = 60.0
    """Seconds a cached message (``aipkit_sse_…`` key) stays usable."""

    # --- the answer -------------------------------------------------------
    answer_bytes: int | None = None
    """Instead of the short echo, a deterministic answer of exactly this many UTF-8 bytes."""
    delta_chars: int = 16
    """Characters per delta for long answers."""
    first_byte_delay: float = 0.0
    """Seconds before a chat reply starts (before its status line)."""
    chunk_delay: float = 0.0
    """Seconds between two text deltas."""

    # --- wire faults ------------------------------------------------------
    wire_chunk: int | None = None
    """Write chat streams to the socket in pieces of this many bytes (1 = byte by
    byte), ignoring event and UTF-8 boundaries, draining between writes."""
    drop_after_bytes: int | None = None
    """Abort the connection after this many body bytes of a chat stream."""
    garbage_lines: bool = False
    """Mix comments, ``retry:``/``id:`` fields, a colon-less line and an over-long
    (100 000 byte) comment line into chat streams; none of them carries data."""
    stall_after_deltas: int | None = None
    """After this many text deltas, send nothing more but keep the connection open."""
    nonce_refused_after_deltas: int | None = None
    """After this many text deltas, the chat stream carries the plugin's own bad-nonce
    error (legacy: its ``{"status":"error","msg":…}`` as an event; aipkit: the
    ``Security check failed`` error event, then ``done``) and ends: a nonce refused
    once part of the answer went out."""
    hold_pages: bool = False
    """Page requests (anything but admin-ajax and the edge's own paths) are counted in
    ``hits`` on arrival, then get no reply until this is turned off or the server
    stops: a page that is still loading."""

    # --- errors on demand -------------------------------------------------
    reply_error: str | None = None
    """Make chat replies fail. legacy: token_limit, ip_ban, banned_words, moderation,
    limited, upstream. aipkit: quota, guest_disabled, ip_blocked, banned_words,
    moderation, api_error, connection_error, no_data, cors_denied (cache step)."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError for values the site cannot act on (caught early, not mid-request)."""
        checks: list[tuple[str, object, tuple[object, ...]]] = [
            ("generation", self.generation, get_args(Generation)),
            ("legacy_markup", self.legacy_markup, get_args(LegacyMarkup)),
            ("legacy_template", self.legacy_template, get_args(LegacyTemplate)),
            ("nonce_wording", self.nonce_wording, get_args(NonceWording)),
            ("framing", self.framing, get_args(Framing)),
        ]
        for name, value, allowed in checks:
            if value not in allowed:
                raise ValueError(f"{name}={value!r}; expected one of {allowed}")
        if self.release is not None and release_generation(self.release) != self.generation:
            raise ValueError(
                f"release={self.release!r} belongs to the {release_generation(self.release)} "
                f"generation, not generation={self.generation!r}: give one of them, or both "
                "in agreement"
            )
        if self.reply_error is not None and self.reply_error not in LEGACY_ERRORS | AIPKIT_ERRORS:
            raise ValueError(f"reply_error={self.reply_error!r} is not a known error")
        if self.tick_seconds <= 0 or self.delta_chars <= 0:
            raise ValueError("tick_seconds and delta_chars must be positive")
        if self.wire_chunk is not None and self.wire_chunk <= 0:
            raise ValueError("wire_chunk must be positive")

    @property
    def plugin_release(self) -> str:
        """The release the site shows and behaves as (``release`` or the generation's default)."""
        return self.release or DEFAULT_RELEASE[self.generation]


def config_field_names() -> frozenset[str]:
    """The names ``sandbox.running(**config_fields)`` accepts."""
    return frozenset(f.name for f in fields(SiteConfig))
