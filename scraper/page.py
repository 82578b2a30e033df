"""Find the chat widget of the AI Power plugin in a page and read what a chat needs.

Both plugin generations are recognised (see PROTOCOL.md, "Page markup"):

* **legacy** (1.x): ``div.wpaicg-chat-shortcode`` and/or the footer widget
  ``div.wpaicg-chatbox`` with ``data-nonce``, ``data-post-id``, ``data-url``,
  ``data-bot-id`` and ``data-type``; the AJAX URL comes from the inline
  ``var wpaicgParams = {...}`` script;
* **aipkit** (2.x): ``div.aipkit_chat_container#aipkit_chat_container_<bot>``
  with an HTML-entity-encoded JSON ``data-config``, which in popup mode sits on
  ``div.aipkit_popup_wrapper#aipkit_popup_wrapper_<bot>`` instead.

The plugin's release shows in the page as ``?ver=<release>`` on the scripts
and styles WordPress enqueues from the plugin's folder; each widget carries it
(``None`` when the page does not say).

>>> info = parse_page(html, "https://chatgptfree.ai/chat/")   # doctest: +SKIP
>>> widget = info.primary()                                   # doctest: +SKIP
>>> widget.generation, widget.bot_id, widget.release          # doctest: +SKIP
('aipkit', 5, '2.4.71')

The page is parsed with BeautifulSoup on its ``"lxml"`` builder (libxml2's HTML
parser, lenient the way browsers are), and searched with bs4's own
``find_all``. A :class:`~bs4.filter.SoupStrainer` builds only the widget
elements and the scripts: a full soup of a dense 1 MB page is a second of
Python objects on a small machine, the strained one a fraction of that. Still,
a parse costs tens of milliseconds per 100 KB, so the async callers
(:func:`read_widget`) run it in a worker thread, never on the
event loop that carries other chats' streams.

Whatever the input, :func:`parse_page` returns a :class:`PageInfo` or raises
:class:`~scraper.errors.NoChatWidgetError`; nothing else escapes.

One idea despite its length: reading the chat widget out of a page (decoding, both
generations' markup, and the field checks they share).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, urljoin, urlsplit, urlunsplit

from bs4 import BeautifulSoup, ParserRejectedMarkup, Tag
from bs4.dammit import EncodingDetector
from bs4.filter import SoupStrainer

from scraper.errors import NoChatWidgetError, redact_url

if TYPE_CHECKING:  # the type only: parsing needs no HTTP
    from scraper.request import Deadline

__all__ = ["PageInfo", "Widget", "parse_page", "read_widget"]

log = logging.getLogger(__name__)

Generation = Literal["legacy", "aipkit"]

#: WordPress nonces are 10 hex characters; other plugins hooking the nonce
#: functions make other tokens, so accept any short URL-safe token and reject
#: anything that could not be one (markup, spaces, template placeholders).
_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: Ids are small non-negative integers; the length cap keeps ``int()`` away
#: from multi-megabyte digit strings (which it refuses with ValueError).
_INT_RE = re.compile(r"[0-9]{1,18}")
#: ``var wpaicgParams = {`` as written by ``wp_localize_script``. Every part is
#: a plain run of one character class, so matching stays linear.
_PARAMS_RE = re.compile(r"wpaicgParams\s*=\s*")
#: How far into a byte page to look for the charset declaration (the HTML
#: standard prescans 1024 bytes; themes sometimes put more before it).
_CHARSET_PRESCAN = 4096
#: How browsers read these labels (WHATWG Encoding): as windows-1252, which
#: Python's latin-1 and ascii codecs are not for bytes 0x80-0x9F.
_BROWSER_LABELS = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
}

_LEGACY_SHORTCODE = "wpaicg-chat-shortcode"
_LEGACY_WIDGET = "wpaicg-chatbox"
_AIPKIT_CONTAINER = "aipkit_chat_container"
_AIPKIT_POPUP = "aipkit_popup_wrapper"
_CLASSES = frozenset((_LEGACY_SHORTCODE, _LEGACY_WIDGET, _AIPKIT_CONTAINER, _AIPKIT_POPUP))
_AJAX_PATH = "/wp-admin/admin-ajax.php"
#: The plugin's folder (its WordPress slug, or the premium build's): the scripts and
#: styles WordPress enqueues from it carry ``?ver=<the plugin's release>``.
_PLUGIN_DIR = re.compile(r"/plugins/gpt3-ai-content-generator[a-z0-9-]{0,20}/")
_RELEASE_RE = re.compile(r"[0-9]{1,4}(?:\.[0-9]{1,4}){1,3}")
#: A URL no HTTP client would send: spaces or control characters inside.
_BAD_URL_CHAR = re.compile(r"[\s\x00-\x1f\x7f]")
#: Longer "URLs" are junk in hostile markup, not an admin-ajax.php address.
_MAX_URL = 8192


@dataclass(frozen=True, slots=True)
class Widget:
    """One usable chat widget: what the chat requests of its generation need."""

    generation: Generation
    #: legacy ``data-nonce``; aipkit ``config["nonce"]``
    nonce: str = field(repr=False)
    #: legacy ``data-post-id``; aipkit ``config["postId"]`` (0 when not a single post)
    post_id: int
    #: legacy ``data-bot-id`` (0 by default); aipkit ``config["botId"]``
    bot_id: int
    #: absolute URL of ``admin-ajax.php``
    ajax_url: str
    #: legacy ``shortcode`` | ``widget``; aipkit ``inline`` | ``popup``
    widget_type: str
    #: legacy ``data-url`` (sent back as the ``url`` field); aipkit the page URL
    referer_url: str
    #: the plugin's release, from the page's plugin scripts' ``?ver=``; None when unknown
    release: str | None = None
    #: aipkit: every bot id the page offers, in page order (to name them in errors)
    page_bots: tuple[int, ...] = ()


def _rank(widget: Widget) -> int:
    # aipkit is what sites run today; a legacy page's shortcode is the chat the
    # page is about, the footer widget is the site-wide fallback.
    if widget.generation == "aipkit":
        return 0
    return 1 if widget.widget_type == "shortcode" else 2


@dataclass(frozen=True, slots=True)
class PageInfo:
    """Every usable chat widget on a page, in page order."""

    widgets: tuple[Widget, ...]

    @property
    def release(self) -> str | None:
        """The plugin's release the page shows (its scripts' ``?ver=``), None when unknown."""
        return self.widgets[0].release if self.widgets else None

    def primary(self, bot_id: int | None = None) -> Widget:
        """The widget a chat uses.

        With ``bot_id``, the widget of that bot (raises
        :class:`NoChatWidgetError` naming the bots present when there is none).
        Otherwise, and among several widgets of one bot, aipkit before legacy
        and the legacy shortcode before the footer widget; ties go to page order.
        """
        pool = (
            self.widgets if bot_id is None else tuple(w for w in self.widgets if w.bot_id == bot_id)
        )
        if not pool:
            if bot_id is None:
                raise NoChatWidgetError(
                    "The page holds no usable chat widget. Fetch a page of the site that "
                    "shows the chat."
                )
            present = ", ".join(dict.fromkeys(f"{w.bot_id} ({w.generation})" for w in self.widgets))
            raise NoChatWidgetError(
                f"The page has no chat widget for bot id {bot_id}; bots present: "
                f"{present or 'none'}. Pass one of those bot ids, or none to use the "
                "page's main chat."
            )
        # min() keeps the first of equal ranks, so page order breaks ties.
        return min(pool, key=_rank)


def parse_page(html: str | bytes, page_url: str) -> PageInfo:
    """Read every usable chat widget from ``html``, the page fetched from ``page_url``.

    ``page_url`` resolves relative URLs and supplies the fallbacks for the AJAX
    URL. Widgets with a missing or malformed nonce or a broken config are
    skipped (logged at debug level, without the nonce).

    Raises :class:`NoChatWidgetError` when no usable widget remains.
    """
    text = _decode(html) if isinstance(html, bytes) else html
    candidates = 0
    widgets: list[Widget] = []
    # Without a tag, or without any class name of either generation, there is
    # nothing to find: skip the parse (challenge pages, error pages, random input).
    if "<" in text and ("wpaicg" in text or "aipkit" in text):
        soup = _soup(text)
        if soup is not None:
            candidates, widgets = _extract(soup, page_url)
            release = _release(soup) if widgets else None
            bots = tuple(dict.fromkeys(w.bot_id for w in widgets if w.generation == "aipkit"))
            if release is not None or bots:
                widgets = [replace(w, release=release, page_bots=bots) for w in widgets]
    if not widgets:
        found = (
            f"; found {candidates} such element(s), but none with a valid nonce and configuration"
            if candidates
            else ""
        )
        raise NoChatWidgetError(
            f"No usable chat widget on {_display_url(page_url)}: looked for the "
            "AI Power plugin's legacy markup (div.wpaicg-chat-shortcode or div.wpaicg-chatbox "
            "with data-nonce) and its aipkit markup (div.aipkit_chat_container or "
            f"div.aipkit_popup_wrapper with data-config){found}. Check that the URL is a page "
            "of the site that shows the chat (such as its /chat/ page); if it is, the site "
            "changed or removed the plugin."
        )
    return PageInfo(tuple(widgets))


async def read_widget(
    html: str | bytes, page_url: str, bot_id: int | None, deadline: Deadline
) -> Widget:
    """The chat widget of a fetched or rendered page: ``bot_id``'s, or the page's main one.

    The page is parsed in a worker thread: BeautifulSoup takes a tenth of a
    second or more on a big page, and this event loop may be carrying other
    chats' streams (``provider.serve``), which must not stall meanwhile. The
    wait sits under ``deadline``; past it the caller gets its timeout at once,
    while the thread (which cannot be stopped) finishes the parse, bounded by
    the page size limit, and its result is dropped.
    """
    async with deadline.within("reading the chat widget from the page"):
        info = await asyncio.to_thread(parse_page, html, page_url)
    return info.primary(bot_id)


def _display_url(url: str) -> str:
    # The query may carry tokens (preview links, tracking ids): leave it out.
    return redact_url(url).split("?", 1)[0] or "the page"


# --------------------------------------------------------------------------- input


def _decode(data: bytes) -> str:
    """Decode a byte page as a browser would: BOM, else its declared charset, else UTF-8.

    bs4's EncodingDetector finds the byte-order mark and the declaration
    (``<meta charset>``, ``http-equiv``, ``<?xml encoding?>``). What stays here
    is what bs4 does not do: browsers' reading of the label (below), and
    decoding with replacement. UnicodeDammit would instead, on the first bad
    byte, move on to a statistical guess (whichever of chardet or
    charset-normalizer happens to be installed) that can mangle the whole page;
    a browser keeps the declared charset and replaces the bad bytes, and what
    the browser shows is what the plugin's own script reads.
    """
    data, bom = EncodingDetector.strip_byte_order_mark(data)
    if bom is not None:
        return data.decode(bom, "replace")
    # Bounded: bs4's own reach is 5 % of the page, where its regex backtracks
    # quadratically over unclosed "<meta" tags (a minute for a hostile 5 MB page).
    declared = EncodingDetector.find_declared_encoding(
        data[:_CHARSET_PRESCAN], is_html=True, search_entire_document=True
    )
    if declared:
        label = _BROWSER_LABELS.get(declared, declared)
        if label.startswith(("utf-16", "utf16", "utf-32", "utf32")):
            # A page we could read the label in is ASCII-compatible: the HTML
            # standard reads a UTF-16/32 label there as UTF-8.
            label = "utf-8"
        try:
            return data.decode(label, "replace")
        except (LookupError, ValueError, TypeError):
            # Unknown labels, non-text codecs (base64, rot13) and codecs that
            # refuse "replace" (idna) all fall back to UTF-8.
            log.debug("unusable charset %r declared; decoding as UTF-8", label)
    return data.decode("utf-8", "replace")


class _WidgetsAndScripts(SoupStrainer):
    """Let BeautifulSoup build only what the search reads.

    The widget elements of either generation (with everything inside them, so
    a container stays inside its popup wrapper), the scripts (for
    ``wpaicgParams`` and the release) and the plugin's stylesheets; every other
    tag and string is dropped as it is parsed, which spares most of the Python
    objects a dense page would cost.
    """

    def allow_tag_creation(
        self, nsprefix: str | None, name: str, attrs: Mapping[str, Any] | None
    ) -> bool:
        if name == "script":
            return True
        if name == "link":  # the plugin's stylesheets, for its release
            href = attrs.get("href") if attrs else None
            return isinstance(href, str) and _PLUGIN_DIR.search(href) is not None
        value = attrs.get("class") if attrs else None
        # At this point the class attribute is still the raw string.
        return isinstance(value, str) and not _CLASSES.isdisjoint(value.split())

    def allow_string_creation(self, string: str) -> bool:
        return False


_ONLY_WIDGETS = _WidgetsAndScripts()


def _soup(text: str) -> BeautifulSoup | None:
    """BeautifulSoup (lxml builder) of ``text``, or None when the parser finds no document."""
    # UTF-8 bytes with the encoding given: bs4 hands both to lxml, so libxml2
    # ignores any (possibly lying) declaration inside. Lone surrogates (from a
    # caller's str) cannot be encoded, so they become "?". NUL needs nothing:
    # libxml2 2.14 (lxml 6) reads it as U+FFFD, as the HTML standard does.
    data = text.encode("utf-8", "replace")
    if data.startswith(b"<?xml"):
        # bs4 would warn the program using this library (XMLParsedAsHTMLWarning)
        # about a page it never wrote. A warnings filter is process-wide, not
        # per call, and undone by any catch_warnings() around our import; a
        # leading newline, which HTML parsing skips, is what bs4 does not flag.
        data = b"\n" + data
    try:
        # huge_tree lifts libxml2's 10 MB text limit and its 256-level depth
        # limit (to about 2000 levels, deeper than any real page nests).
        return BeautifulSoup(
            data, "lxml", from_encoding="utf-8", parse_only=_ONLY_WIDGETS, huge_tree=True
        )
    except ParserRejectedMarkup as exc:
        log.debug("page did not parse as HTML: %s", type(exc).__name__)
        return None


# ------------------------------------------------------------------------ widgets


def _extract(soup: BeautifulSoup, page_url: str) -> tuple[int, list[Widget]]:
    # Page order, both generations in one pass.
    elements: list[Tag] = soup.find_all(_is_candidate)
    where = redact_url(page_url)
    params_ajax = _params_ajax_url(soup, page_url)
    origin_ajax = _join_path(_origin(page_url), _AJAX_PATH)
    page_ref = _strip_fragment(page_url)
    popups = {
        el_id: el for el in elements if _AIPKIT_POPUP in _classes(el) and (el_id := _attr(el, "id"))
    }

    widgets: list[Widget] = []
    aipkit_at: dict[int, int] = {}  # bot id -> index in widgets (dedupe wrapper + container)
    for position, el in enumerate(elements):
        classes = _classes(el)
        if _LEGACY_SHORTCODE in classes or _LEGACY_WIDGET in classes:
            legacy = _legacy(el, classes, page_url, params_ajax, origin_ajax)
            if legacy is None:
                log.debug("skipped legacy element #%d on %s", position, where)
            elif legacy not in widgets:
                widgets.append(legacy)
            continue
        aipkit = _aipkit(el, classes, popups, page_url, page_ref, origin_ajax)
        if aipkit is None:
            log.debug("skipped aipkit element #%d on %s", position, where)
            continue
        seen = aipkit_at.get(aipkit.bot_id)
        if seen is None:
            aipkit_at[aipkit.bot_id] = len(widgets)
            widgets.append(aipkit)
        elif aipkit.widget_type == "popup" and widgets[seen].widget_type != "popup":
            # The same bot met again through its popup wrapper: one widget, in
            # the place it first appeared, known to be a popup.
            widgets[seen] = replace(widgets[seen], widget_type="popup")
    return len(elements), widgets


def _legacy(
    el: Tag,
    classes: frozenset[str],
    page_url: str,
    params_ajax: str | None,
    origin_ajax: str | None,
) -> Widget | None:
    nonce = _nonce(_attr(el, "data-nonce"))
    if nonce is None:
        log.debug("legacy widget: data-nonce missing or malformed")
        return None
    data_url = _http_url(page_url, _attr(el, "data-url") or "")
    # data-url is the home URL the plugin wants back as `url`; when it is
    # missing, the site's origin is the closest stand-in.
    referer = data_url or _origin(page_url)
    ajax = params_ajax or (_join_path(data_url, _AJAX_PATH) if data_url else None) or origin_ajax
    if referer is None or ajax is None:
        log.debug("legacy widget: no absolute AJAX URL can be made")
        return None
    kind = (_attr(el, "data-type") or "").strip().lower()
    if kind not in ("shortcode", "widget"):
        kind = "shortcode" if _LEGACY_SHORTCODE in classes else "widget"
    return Widget(
        generation="legacy",
        nonce=nonce,
        post_id=_int(_attr(el, "data-post-id")) or 0,
        bot_id=_int(_attr(el, "data-bot-id")) or 0,
        ajax_url=ajax,
        widget_type=kind,
        referer_url=referer,
    )


def _aipkit(
    el: Tag,
    classes: frozenset[str],
    popups: dict[str, Tag],
    page_url: str,
    page_ref: str | None,
    origin_ajax: str | None,
) -> Widget | None:
    is_popup = _AIPKIT_POPUP in classes
    wrapper = el if is_popup else _popup_ancestor(el)
    id_bot = _id_suffix(_attr(el, "id"))
    if wrapper is None and id_bot is not None:
        # Popup wrappers are found by id too, in case a theme moved the
        # container out of its wrapper.
        wrapper = popups.get(f"{_AIPKIT_POPUP}_{id_bot}")
    raw = _attr(el, "data-config") or (
        _attr(wrapper, "data-config") if wrapper is not None else None
    )
    if not raw:
        log.debug("aipkit widget: no data-config on the container or its popup wrapper")
        return None
    config = _json_object(raw.strip())
    if config is None:
        log.debug("aipkit widget: data-config is not a JSON object")
        return None
    bot_id = _int(config.get("botId"))
    if bot_id is None:
        bot_id = _int(_attr(el, "data-bot-id"))
    if bot_id is None and wrapper is not None:
        bot_id = _int(_attr(wrapper, "data-bot-id"))
    if bot_id is None:
        bot_id = id_bot
    if bot_id is None:
        log.debug("aipkit widget: no bot id in the config, data-bot-id or element id")
        return None
    nonce = _nonce(config.get("nonce"))
    if nonce is None:
        log.debug("aipkit widget for bot %d: nonce missing or malformed", bot_id)
        return None
    ajax_value = config.get("ajaxUrl")
    # The plugin always writes an absolute ajaxUrl; the origin's admin-ajax.php
    # is where WordPress puts it when a theme strips the key.
    ajax = (_http_url(page_url, ajax_value) if isinstance(ajax_value, str) else None) or origin_ajax
    if ajax is None or page_ref is None:
        log.debug("aipkit widget for bot %d: no absolute AJAX URL can be made", bot_id)
        return None
    popup = wrapper is not None or config.get("popupEnabled") is True
    return Widget(
        generation="aipkit",
        nonce=nonce,
        post_id=_int(config.get("postId")) or 0,
        bot_id=bot_id,
        ajax_url=ajax,
        widget_type="popup" if popup else "inline",
        referer_url=page_ref,
    )


def _params_ajax_url(soup: BeautifulSoup, page_url: str) -> str | None:
    """``ajax_url`` of the first well-formed ``var wpaicgParams = {...}`` on the page."""
    for script in soup.find_all("script"):
        source = script.get_text()
        if "wpaicgParams" not in source:
            continue
        for match in _PARAMS_RE.finditer(source):
            params = _json_object(source, match.end())
            ajax = params.get("ajax_url") if params is not None else None
            if isinstance(ajax, str):
                url = _http_url(page_url, ajax)
                if url is not None:
                    return url
    return None


def _release(soup: BeautifulSoup) -> str | None:
    """The plugin's release: the ``?ver=`` of the scripts and styles WordPress enqueues
    from the plugin's folder (the most common one, should a cache plugin mix them)."""
    seen: Counter[str] = Counter()
    for el in soup.find_all(["script", "link"]):
        url = _attr(el, "src") if el.name == "script" else _attr(el, "href")
        if not url or len(url) > _MAX_URL or _PLUGIN_DIR.search(url) is None:
            continue
        try:
            query = parse_qsl(urlsplit(url.strip()).query)
        except ValueError:
            continue
        for name, value in query:
            if name == "ver" and _RELEASE_RE.fullmatch(value):
                seen[value] += 1
    return seen.most_common(1)[0][0] if seen else None


# ------------------------------------------------------------------------ helpers


def _attr(el: Tag, name: str) -> str | None:
    """A single-valued attribute (bs4 gives multi-valued ones, like class, as lists)."""
    value = el.get(name)
    return value if isinstance(value, str) else None


def _classes(el: Tag) -> frozenset[str]:
    return frozenset(el.get_attribute_list("class"))


def _is_candidate(el: Tag) -> bool:
    return not _CLASSES.isdisjoint(_classes(el))


def _popup_ancestor(el: Tag) -> Tag | None:
    for ancestor in el.parents:
        if _AIPKIT_POPUP in _classes(ancestor):
            return ancestor
    return None


def _id_suffix(element_id: str | None) -> int | None:
    # aipkit_chat_container_<bot> / aipkit_popup_wrapper_<bot>
    if not element_id:
        return None
    return _int(element_id.rpartition("_")[2])


def _nonce(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if _NONCE_RE.fullmatch(value) else None


def _int(value: object) -> int | None:
    if isinstance(value, bool):  # JSON true is not bot 1
        return None
    if isinstance(value, int):
        return value if 0 <= value < 10**18 else None
    if isinstance(value, str):
        value = value.strip()
        return int(value) if _INT_RE.fullmatch(value) else None
    return None


def _json_object(text: str, start: int | None = None) -> dict[str, Any] | None:
    """The JSON object that is ``text`` (or that starts at ``text[start]``), or None."""
    try:
        if start is None:
            value = json.loads(text)
        else:
            # wpaicgParams is followed by `;` and more script: decode one value.
            value, _ = json.JSONDecoder().raw_decode(text, start)
    except (ValueError, RecursionError):
        # RecursionError: absurdly nested arrays in hostile input.
        return None
    return value if isinstance(value, dict) else None


def _http_url(base: str, ref: str) -> str | None:
    """``ref`` resolved against ``base`` if that gives a usable http(s) URL."""
    ref = ref.strip()
    if not ref:
        return None
    try:
        url = urljoin(base, ref)
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises ValueError on a malformed port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if len(url) > _MAX_URL or _BAD_URL_CHAR.search(url):
        return None
    return url


def _origin(url: str) -> str | None:
    checked = _http_url(url, url)
    if checked is None:
        return None
    parts = urlsplit(checked)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def _join_path(base: str | None, path: str) -> str | None:
    """``base``'s scheme, host and path (no query) with ``path`` appended."""
    checked = _http_url(base, base) if base else None
    if checked is None:
        return None
    parts = urlsplit(checked)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + path, "", ""))


def _strip_fragment(url: str) -> str | None:
    checked = _http_url(url, url)
    return checked.split("#", 1)[0] if checked is not None else None
