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
LegacyError = Literal[
    "token_limit", "ip_ban", "banned_words", "moderation", "limited", "upstream", "upstream_429"
]
AipkitError = Literal[
    "quota",
    "api_rate_limit",
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


#: Every release in the plugin's history (one snapshot each; republished numbers once).
_HISTORY = (
    "1.8.79 1.8.80 1.8.81 1.8.82 1.8.83 1.8.84 1.8.85 1.8.86 1.8.87 1.8.88 1.8.89 1.8.90 "
    "1.8.91 1.8.92 1.8.93 1.8.94 1.8.95 1.8.96 1.8.97 1.8.98 1.8.99 1.9.0 1.9.1 1.9.2 1.9.3 "
    "1.9.4 1.9.5 1.9.6 1.9.7 1.9.8 1.9.9 1.9.11 1.9.12 1.9.13 1.9.14 1.9.16 1.9.17 1.9.18 2.2 "
    "2.3 2.3.1 2.3.2 2.3.3 2.3.4 2.3.5 2.3.6 2.3.7 2.3.8 2.3.10 2.3.11 2.3.13 2.3.14 2.3.15 "
    "2.3.16 2.3.17 2.3.18 2.3.19 2.3.20 2.3.21 2.3.22 2.3.23 2.3.24 2.3.25 2.3.26 2.3.27 2.3.28 "
    "2.3.29 2.3.30 2.3.31 2.3.32 2.3.33 2.3.34 2.3.35 2.3.36 2.3.37 2.3.38 2.3.39 2.3.40 2.3.41 "
    "2.3.42 2.3.43 2.3.69 2.3.70 2.3.71 2.3.72 2.3.73 2.3.74 2.3.75 2.3.76 2.3.77 2.3.78 2.3.79 "
    "2.3.80 2.3.81 2.3.82 2.3.83 2.3.84 2.3.85 2.3.86 2.3.87 2.3.88 2.3.89 2.3.90 2.3.91 2.3.92 "
    "2.3.93 2.3.94 2.4.0 2.4.1 2.4.2 2.4.3 2.4.4 2.4.5 2.4.6 2.4.7 2.4.8 2.4.9 2.4.10 2.4.11 "
    "2.4.12 2.4.13 2.4.14 2.4.15 2.4.16 2.4.17 2.4.18 2.4.19 2.4.20 2.4.21 2.4.23 2.4.24 2.4.25 "
    "2.4.26 2.4.27 2.4.28 2.4.29 2.4.31 2.4.32 2.4.33 2.4.34 2.4.35 2.4.36 2.4.37 2.4.38 2.4.39 "
    "2.4.41 2.4.42 2.4.43 2.4.44 2.4.45 2.4.46 2.4.47 2.4.48 2.4.49 2.4.51 2.4.52 2.4.53 2.4.54 "
    "2.4.55 2.4.56 2.4.57 2.4.58 2.4.59 2.4.61 2.4.62 2.4.63 2.4.64 2.4.65 2.4.66 2.4.67 2.4.68 "
    "2.4.69 2.4.71"
)
RELEASES: tuple[str, ...] = tuple(_HISTORY.split())
#: The release classes (PROTOCOL.md): each one's first release, oldest first; a class
#: runs to the next one's start. Each differs from the one before in one guest-facing way.
CLASS_STARTS: tuple[tuple[str, str], ...] = (
    ("L1", "1.8.79"), ("L2", "1.8.80"), ("L3", "1.8.85"), ("L4", "1.8.91"),
    ("A1", "2.3"), ("A2", "2.3.20"), ("A3", "2.3.31"), ("A4", "2.3.41"),
    ("A5", "2.3.69"), ("A6", "2.3.93"), ("A7", "2.4.1"), ("A8", "2.4.67"),
)  # fmt: skip
CLASSES: tuple[str, ...] = tuple(name for name, _ in CLASS_STARTS)


def _version(release: str) -> tuple[int, ...]:
    return tuple(int(part) for part in release.split("."))


def release_class(release: str) -> str:
    """The class (``L1``…``L4``, ``A1``…``A8``) of a release in the plugin's history;
    ValueError for a number that is not one (malformed, or never published)."""
    if _RELEASE.fullmatch(release) is None:
        raise ValueError(f"release={release!r}; expected a version such as 1.8.79 or 2.4.71")
    if release not in RELEASES:
        raise ValueError(
            f"release={release!r} is not in the plugin's history ({RELEASES[0]} to "
            f"{RELEASES[-1]}, {len(RELEASES)} releases; e.g. 1.9.10, 2.0, 2.1, 2.3.44-2.3.68 "
            "and 2.4.30 were never published)"
        )
    version = _version(release)
    return [name for name, first in CLASS_STARTS if _version(first) <= version][-1]


def release_generation(release: str) -> Generation:
    """The generation a plugin release speaks: 1.x and 2.2 legacy, 2.3 and later aipkit.
    ValueError for what is no release in its history."""
    return "legacy" if release_class(release).startswith("L") else "aipkit"


def wordpress_refuses_nonce(release: str) -> bool:
    """True from 1.8.91 through 2.2 (class L4), whose chat handler checks the nonce with
    ``check_admin_referer``: a bad one gets WordPress's 403 page, not the plugin's JSON."""
    return release_class(release) == "L4"


#: The plugin's refusals as its German translation would say them (language="de").
GERMAN: dict[str, str] = {
    "Security check failed. Please refresh the page and try again.": (
        "Sicherheitsprüfung fehlgeschlagen. Bitte laden Sie die Seite neu."
    ),
    "Security check failed (nonce).": "Sicherheitsprüfung fehlgeschlagen (Nonce).",
    "Invalid chatbot specified.": "Ungültiger Chatbot angegeben.",
    "You have reached your quota for this period.": (
        "Ihr Kontingent für diesen Zeitraum ist erschöpft."
    ),
    "Access disabled for guests.": "Zugang für Gäste deaktiviert.",
    "Access from your IP address has been blocked.": (
        "Der Zugriff von Ihrer IP-Adresse wurde gesperrt."
    ),
    "Sorry, your message could not be sent as it contains prohibited words.": (
        "Ihre Nachricht enthält verbotene Wörter und wurde nicht gesendet."
    ),
    "Your message was flagged by the moderation system and could not be sent.": (
        "Ihre Nachricht wurde von der Moderation markiert und nicht gesendet."
    ),
    "Nonce verification failed": "Nonce-Überprüfung fehlgeschlagen",
    "You have reached your token limit.": "Sie haben Ihr Token-Limit erreicht.",
    "You are not allowed to access this feature.": "Sie dürfen diese Funktion nicht nutzen.",
}  # fmt: skip

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

    texts: dict[str, str] = field(default_factory=dict)
    """The site's own refusal texts, by kind: aipkit ``security``, ``quota``,
    ``guest_disabled``, ``ip_blocked``, ``banned_words``, ``moderation``, ``bad_bot``;
    legacy ``nonce``, ``token_limit``, ``ip_ban``, ``banned_words``, ``moderation``
    (what an operator types in the plugin's settings). Over ``language``."""
    language: str = "en"
    """The site's language: ``de`` answers the plugin's refusals in German (its ``.pot``
    translated), as a site in another language does."""
    pro_plan: bool = False
    """aipkit A3+: a cross-origin cache step gets ``cors_denied`` (pro plan, origin not
    allowed) instead of ``embed_not_available`` (the free plan, as captured)."""
    compat_shortcode: bool = False
    """aipkit: the page uses the ``[wpaicg_chatgpt]`` compatibility shortcode (A1-A4
    render the chat; from A5 it is not registered: the page shows it as text)."""
    draft_bots: list[int] = field(default_factory=list)
    """aipkit: bots the page shows whose post is a draft: their stream answers
    ``Invalid chatbot specified.`` before ``message_start``."""
    google_bots: list[int] = field(default_factory=list)
    """aipkit A8: bots on a Google provider: their streams carry ``google_interaction_id``."""
    citations: bool = False
    """aipkit A6+: emit a ``citations`` event after the text (web search on)."""

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
    late_widget: bool = False
    """The theme's script adds the widget's markup a second after the page's load (a
    lazy-rendering theme or optimisation plugin): the HTML as served holds it only
    inside that script, so only a browser finds the widget, and only after the load."""
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
    end_delay: float = 0.0
    """Seconds between the answer's last event and the rest of the body (legacy's
    trailing JSON) with its end (the chunked end marker, with ``keep_alive``): a
    site's script still working after its last flush. Both generations."""

    # --- wire faults ------------------------------------------------------
    wire_chunk: int | None = None
    """Write chat streams to the socket in pieces of this many bytes (1 = byte by
    byte), ignoring event and UTF-8 boundaries, draining between writes."""
    drop_after_bytes: int | None = None
    """Abort the connection after this many body bytes of a chat stream."""
    abort_before_reply: bool = False
    """Read a chat request (counted in ``hits``), then abort the connection before any
    status line: a server that died with the request in hand, which a client must
    not send again on a fresh connection."""
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
        if self.language not in ("en", "de"):
            raise ValueError(f"language={self.language!r}; expected 'en' or 'de'")
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
        if not self.end_delay >= 0:  # also refuses NaN
            raise ValueError(f"end_delay={self.end_delay!r}; expected seconds >= 0")

    @property
    def plugin_release(self) -> str:
        """The release the site shows and behaves as (``release`` or the generation's default)."""
        return self.release or DEFAULT_RELEASE[self.generation]

    @property
    def release_class(self) -> str:
        """The class of :attr:`plugin_release` (``L1``…``L4``, ``A1``…``A8``)."""
        return release_class(self.plugin_release)

    def since(self, name: str) -> bool:
        """True when the imitated release is of class ``name`` or a later one."""
        return CLASSES.index(self.release_class) >= CLASSES.index(name)

    def text(self, kind: str, english: str) -> str:
        """A refusal's text: the site's own (``texts``), else in the site's language."""
        if kind in self.texts:
            return self.texts[kind]
        return GERMAN.get(english, english) if self.language == "de" else english


def config_field_names() -> frozenset[str]:
    """The names ``sandbox.running(**config_fields)`` accepts."""
    return frozenset(f.name for f in fields(SiteConfig))
