"""scraper.page against the genuine plugin's markup and every variant PROTOCOL.md names."""

from __future__ import annotations

import html as html_lib
import json
import logging
import re
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scraper.errors import NoChatWidgetError
from scraper.page import PageInfo, Widget, parse_page

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
LEGACY_TAG = (CAPTURES / "legacy-widget.html").read_text(encoding="utf-8").strip()
AIPKIT_TAG = (CAPTURES / "aipkit-widget.html").read_text(encoding="utf-8").strip()

LEGACY_URL = "http://127.0.0.1:8081/"
AIPKIT_URL = "http://127.0.0.1:8082/"


def page(*fragments: str, head: str = "") -> str:
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Chat</title>'
        f"{head}</head><body><main>{''.join(fragments)}</main></body></html>"
    )


def legacy_div(
    cls: str = "wpaicg-chat-shortcode",
    nonce: str = "0a1b2c3d4e",
    post_id: str = "12",
    url: str = "https://example.com",
    bot_id: str = "0",
    kind: str | None = "shortcode",
    extra: str = "",
) -> str:
    type_attr = f' data-type="{kind}"' if kind is not None else ""
    return (
        f'<div class="{cls}" data-nonce="{nonce}" data-post-id="{post_id}" '
        f'data-url="{url}" data-bot-id="{bot_id}"{type_attr}{extra}></div>'
    )


def aipkit_config(bot: int, nonce: str = "feedbeef01", **more: object) -> dict[str, object]:
    config: dict[str, object] = {
        "botId": bot,
        "ajaxUrl": "https://example.com/wp-admin/admin-ajax.php",
        "nonce": nonce,
        "postId": 0,
        "provider": "OpenAI",
        "popupEnabled": False,
    }
    config.update(more)
    return config


def encode_config(config: dict[str, object]) -> str:
    """What PHP's wp_json_encode + esc_attr produce: \\/ in URLs, <>&' hex-escaped, &quot;."""
    text = json.dumps(config, separators=(",", ":")).replace("/", "\\/")
    for char, escape in (("<", "\\u003C"), (">", "\\u003E"), ("&", "\\u0026"), ("'", "\\u0027")):
        text = text.replace(char, escape)
    return html_lib.escape(text, quote=True).replace("&#x27;", "&#039;")


def aipkit_div(bot: int, config: dict[str, object] | None = None, inner: str = "") -> str:
    config_attr = f" data-config='{encode_config(config)}'" if config is not None else ""
    return (
        f'<div class="aipkit_chat_container aipkit-theme-dark" id="aipkit_chat_container_{bot}" '
        f'data-bot-id="{bot}"{config_attr}>{inner}</div>'
    )


def popup_wrapper(bot: int, config: dict[str, object], inner: str) -> str:
    return (
        f'<div class="aipkit_popup_wrapper" id="aipkit_popup_wrapper_{bot}" '
        f"data-config='{encode_config(config)}'>{inner}</div>"
    )


# ------------------------------------------------------------------- ground truth


def test_captured_legacy_shortcode() -> None:
    info = parse_page(page(LEGACY_TAG, "</div>"), LEGACY_URL)
    assert info.widgets == (
        Widget(
            generation="legacy",
            nonce="cd072c0ea6",
            post_id=4,
            bot_id=0,
            ajax_url="http://127.0.0.1:8081/wp-admin/admin-ajax.php",
            widget_type="shortcode",
            referer_url="http://127.0.0.1:8081",
        ),
    )


def test_captured_aipkit_container() -> None:
    info = parse_page(page(AIPKIT_TAG, "</div>"), AIPKIT_URL + "chat/#top")
    assert info.widgets == (
        Widget(
            generation="aipkit",
            nonce="d32416e2cd",
            post_id=6,
            bot_id=5,
            ajax_url="http://127.0.0.1:8082/wp-admin/admin-ajax.php",
            widget_type="inline",
            referer_url="http://127.0.0.1:8082/chat/",
            page_bots=(5,),
        ),
    )


def test_captured_markup_as_bytes() -> None:
    info = parse_page(page(AIPKIT_TAG, "</div>").encode("utf-8"), AIPKIT_URL)
    assert info.primary().nonce == "d32416e2cd"


def test_nonce_stays_out_of_repr() -> None:
    info = parse_page(page(LEGACY_TAG, "</div>", AIPKIT_TAG, "</div>"), LEGACY_URL)
    assert "cd072c0ea6" not in repr(info)
    assert "d32416e2cd" not in repr(info)
    assert "cd072c0ea6" not in str(info.widgets[0])


# ------------------------------------------------------------------------ legacy


@pytest.mark.parametrize(
    "tag",
    [
        # attribute order reversed, double quotes
        '<div data-type="shortcode" data-bot-id="3" data-url="https://example.com" '
        'data-post-id="12" data-nonce="0a1b2c3d4e" class="wpaicg-chat-shortcode">',
        # single quotes and spaces around `=`
        "<div class = 'wpaicg-chat-shortcode' data-nonce = '0a1b2c3d4e' data-post-id= '12' "
        "data-url ='https://example.com' data-bot-id = '3' data-type = 'shortcode'>",
        # uppercase tag and attribute names, unquoted values, newlines between
        "<DIV\n CLASS=wpaicg-chat-shortcode\n DATA-NONCE=0a1b2c3d4e\n DATA-POST-ID=12\n"
        " DATA-URL=https://example.com DATA-BOT-ID=3 DATA-TYPE=shortcode>",
        # extra classes and style attributes around, data-type missing
        '<div style="width:100%" class="foo wpaicg-chat-shortcode bar" data-color="#fff" '
        'data-nonce="0a1b2c3d4e" data-typewriter-effect = "" data-post-id="12" '
        'data-url="https://example.com" data-bot-id="3">',
    ],
)
def test_legacy_markup_variants(tag: str) -> None:
    widget = parse_page(page(tag, "</div>"), "https://example.com/chat/").primary()
    assert (widget.generation, widget.nonce, widget.post_id, widget.bot_id) == (
        "legacy",
        "0a1b2c3d4e",
        12,
        3,
    )
    assert widget.widget_type == "shortcode"
    assert widget.referer_url == "https://example.com"
    assert widget.ajax_url == "https://example.com/wp-admin/admin-ajax.php"


def test_footer_widget_only() -> None:
    footer = (
        '<div class="wpaicg_chat_widget"><div class="wpaicg_chat_widget_content">'
        + legacy_div(cls="wpaicg-chatbox", kind=None, post_id="7")
        + "</div></div>"
    )
    widget = parse_page(page(footer), "https://example.com/").primary()
    assert widget.widget_type == "widget"  # from the class, data-type being absent
    assert widget.post_id == 7


def test_shortcode_preferred_over_footer_widget() -> None:
    footer = (
        '<div class="wpaicg_chat_widget">'
        + legacy_div(cls="wpaicg-chatbox", kind="widget", nonce="ffffffffff")
        + "</div>"
    )
    # The footer comes first in the markup here; the shortcode still wins.
    info = parse_page(page(footer, legacy_div(nonce="0a1b2c3d4e")), "https://example.com/")
    assert [w.widget_type for w in info.widgets] == ["widget", "shortcode"]
    assert info.primary().widget_type == "shortcode"
    assert info.primary().nonce == "0a1b2c3d4e"


def test_wpaicg_params_gives_ajax_url_and_decoy_nonce_is_ignored() -> None:
    head = (
        '<script id="wpaicg-init-js-extra">\n/* <![CDATA[ */\nvar wpaicgParams = '
        '{"ajax_url":"https:\\/\\/cdn-site.example.org\\/blog\\/wp-admin\\/admin-ajax.php",'
        '"search_nonce":"9999999999","logged_in":"0"};\n/* ]]> */\n</script>'
    )
    decoy = '<input type="hidden" id="wpaicg-img-nonce" data-nonce="1111111111" value="1111111111">'
    info = parse_page(
        page(decoy, legacy_div(nonce="0a1b2c3d4e"), head=head), "https://example.com/"
    )
    widget = info.primary()
    assert widget.ajax_url == "https://cdn-site.example.org/blog/wp-admin/admin-ajax.php"
    assert widget.nonce == "0a1b2c3d4e"
    assert len(info.widgets) == 1


def test_broken_wpaicg_params_falls_back_to_data_url() -> None:
    head = '<script>var wpaicgParams = {"ajax_url": broken;</script>'
    widget = parse_page(
        page(legacy_div(url="https://example.com/blog/"), head=head), "https://example.com/chat/"
    ).primary()
    assert widget.ajax_url == "https://example.com/blog/wp-admin/admin-ajax.php"


def test_ajax_url_falls_back_to_page_origin_without_data_url() -> None:
    tag = '<div class="wpaicg-chat-shortcode" data-nonce="0a1b2c3d4e" data-post-id="2"></div>'
    widget = parse_page(page(tag), "https://example.com/some/page/?x=1").primary()
    assert widget.ajax_url == "https://example.com/wp-admin/admin-ajax.php"
    assert widget.referer_url == "https://example.com"
    assert (widget.post_id, widget.bot_id) == (2, 0)


def test_relative_ajax_url_is_resolved_against_the_page() -> None:
    head = '<script>var wpaicgParams = {"ajax_url":"\\/wp-admin\\/admin-ajax.php"};</script>'
    widget = parse_page(page(legacy_div(), head=head), "https://other.example/chat/").primary()
    assert widget.ajax_url == "https://other.example/wp-admin/admin-ajax.php"

    config = aipkit_config(4, ajaxUrl="../wp-admin/admin-ajax.php")
    widget = parse_page(page(aipkit_div(4, config)), "https://s.example/site/chat/").primary()
    assert widget.ajax_url == "https://s.example/site/wp-admin/admin-ajax.php"


@pytest.mark.parametrize(
    "nonce", ["", "   ", "abc def", "<?php echo $nonce ?>", "x" * 65, "nonce\u00e9", "a;b"]
)
def test_malformed_nonce_is_skipped(nonce: str, caplog: pytest.LogCaptureFixture) -> None:
    good = legacy_div(cls="wpaicg-chatbox", kind="widget", nonce="GoodNonce_1")
    bad = legacy_div(nonce=html_lib.escape(nonce))
    with caplog.at_level(logging.DEBUG, logger="scraper.page"):
        info = parse_page(page(bad, good), "https://example.com/")
    assert [w.nonce for w in info.widgets] == ["GoodNonce_1"]
    assert "skipped" in caplog.text
    assert "GoodNonce_1" not in caplog.text


def test_plugin_style_nonces_are_accepted() -> None:
    info = parse_page(page(legacy_div(nonce="A-z_09" * 10)), "https://example.com/")
    assert info.primary().nonce == "A-z_09" * 10


def test_missing_nonce_attribute_is_skipped() -> None:
    tag = '<div class="wpaicg-chat-shortcode" data-post-id="2"></div>'
    with pytest.raises(NoChatWidgetError, match="found 1 such element"):
        parse_page(page(tag), "https://example.com/")


def test_garbage_ids_become_zero() -> None:
    tag = legacy_div(post_id="abc", bot_id="9" * 400)
    widget = parse_page(page(tag), "https://example.com/").primary()
    assert (widget.post_id, widget.bot_id) == (0, 0)


def test_widget_inside_script_or_comment_is_not_a_widget() -> None:
    text = page(
        f"<!-- {legacy_div()} -->",
        f"<script>var tpl = '{legacy_div()}';</script>",
        f"<textarea>{legacy_div()}</textarea>",
    )
    with pytest.raises(NoChatWidgetError):
        parse_page(text, "https://example.com/")


# ------------------------------------------------------------------------ aipkit


def test_entity_encoded_config_with_unicode_escapes() -> None:
    config = aipkit_config(
        9,
        nonce="abcdef0123",
        postId=31,
        text={"initialGreeting": "<b>Hi</b> & 'welcome' \u00e9"},
        starters=["What's <new>?"],
    )
    encoded = encode_config(config)
    assert "\\u003C" in encoded and "&quot;" in encoded and "\\/" in encoded
    widget = parse_page(page(aipkit_div(9, config)), "https://example.com/chat/").primary()
    assert (widget.bot_id, widget.post_id, widget.nonce) == (9, 31, "abcdef0123")
    assert widget.ajax_url == "https://example.com/wp-admin/admin-ajax.php"
    assert widget.widget_type == "inline"


def test_popup_config_on_the_wrapper() -> None:
    markup = popup_wrapper(7, aipkit_config(7, popupEnabled=True), aipkit_div(7, None))
    info = parse_page(page(markup), "https://example.com/")
    assert len(info.widgets) == 1  # wrapper and container are one bot
    widget = info.primary()
    assert (widget.bot_id, widget.widget_type) == (7, "popup")


def test_popup_with_config_on_both_is_deduplicated() -> None:
    config = aipkit_config(7, popupEnabled=True)
    markup = popup_wrapper(7, config, aipkit_div(7, config))
    info = parse_page(page(markup), "https://example.com/")
    assert [(w.bot_id, w.widget_type) for w in info.widgets] == [(7, "popup")]


def test_container_inside_a_wrapper_without_id_takes_its_config() -> None:
    # Only the container knows the bot: the wrapper has no id, its config no botId.
    config = aipkit_config(7)
    del config["botId"]
    wrapper = (
        "<div class='aipkit_popup_wrapper' "
        f"data-config='{encode_config(config)}'>{aipkit_div(7, None)}</div>"
    )
    info = parse_page(page(wrapper), "https://example.com/")
    assert [(w.bot_id, w.widget_type) for w in info.widgets] == [(7, "popup")]


def test_container_outside_its_wrapper_found_by_id() -> None:
    markup = aipkit_div(8, None) + popup_wrapper(8, aipkit_config(8), "")
    info = parse_page(page(markup), "https://example.com/")
    assert [(w.bot_id, w.widget_type) for w in info.widgets] == [(8, "popup")]


def test_bot_id_falls_back_to_data_bot_id() -> None:
    config = aipkit_config(1)
    del config["botId"]
    widget = parse_page(page(aipkit_div(12, config)), "https://example.com/").primary()
    assert widget.bot_id == 12


def test_several_bots_and_primary_selection() -> None:
    markup = (
        legacy_div(bot_id="0")
        + aipkit_div(3, aipkit_config(3, nonce="3333333333"))
        + popup_wrapper(11, aipkit_config(11, nonce="bbbbbbbbbb"), aipkit_div(11, None))
    )
    info = parse_page(page(markup), "https://example.com/")
    assert [(w.generation, w.bot_id) for w in info.widgets] == [
        ("legacy", 0),
        ("aipkit", 3),
        ("aipkit", 11),
    ]
    assert info.primary().bot_id == 3  # aipkit over legacy, then page order
    assert info.primary(11).nonce == "bbbbbbbbbb"
    assert info.primary(0).generation == "legacy"
    with pytest.raises(NoChatWidgetError) as excinfo:
        info.primary(42)
    message = str(excinfo.value)
    assert "42" in message and "3 (aipkit)" in message and "11 (aipkit)" in message
    assert "0 (legacy)" in message
    assert "3333333333" not in message and "bbbbbbbbbb" not in message


def test_broken_config_is_skipped_and_others_kept(caplog: pytest.LogCaptureFixture) -> None:
    broken = (
        '<div class="aipkit_chat_container" id="aipkit_chat_container_2" data-bot-id="2" '
        "data-config='{&quot;botId&quot;:2,&quot;nonce&quot;:&quot;2222222222&quot;'></div>"
    )
    not_object = "<div class='aipkit_chat_container' data-bot-id='4' data-config='[1,2]'></div>"
    no_nonce_config = aipkit_config(5)
    del no_nonce_config["nonce"]
    no_nonce = aipkit_div(5, no_nonce_config)
    good = aipkit_div(6, aipkit_config(6, nonce="6666666666"))
    with caplog.at_level(logging.DEBUG, logger="scraper.page"):
        info = parse_page(page(broken, not_object, no_nonce, good), "https://example.com/")
    assert [w.bot_id for w in info.widgets] == [6]
    assert "2222222222" not in caplog.text and "6666666666" not in caplog.text


def test_container_without_any_config_is_skipped() -> None:
    with pytest.raises(NoChatWidgetError, match="found 1 such element"):
        parse_page(page(aipkit_div(3, None)), "https://example.com/")


def test_aipkit_preferred_over_legacy_on_a_mixed_page() -> None:
    text = page(LEGACY_TAG, "</div>", AIPKIT_TAG, "</div>")
    info = parse_page(text, LEGACY_URL)
    assert [w.generation for w in info.widgets] == ["legacy", "aipkit"]
    assert info.primary().generation == "aipkit"


# ------------------------------------------------------------------ no widget


def test_no_widget_message_says_what_and_where_without_secrets() -> None:
    url = "https://bob:hunter2@example.com/chat/?token=s3cr3t#frag"
    with pytest.raises(NoChatWidgetError) as excinfo:
        parse_page(page("<p>Welcome</p>", '<input id="wpaicg-img-nonce" value="cafe01">'), url)
    message = str(excinfo.value)
    assert "https://bob:***@example.com/chat/" in message
    for secret in ("hunter2", "s3cr3t", "token", "cafe01"):
        assert secret not in message
    assert "wpaicg-chat-shortcode" in message and "aipkit_chat_container" in message
    assert "shows the chat" in message


def test_empty_page_info_primary_raises() -> None:
    with pytest.raises(NoChatWidgetError):
        PageInfo(()).primary()


@pytest.mark.parametrize(
    "text", ["", " ", "\x00", "<", "not html at all", "<html>", "<!-- wpaicg aipkit -->"]
)
def test_degenerate_input(text: str) -> None:
    with pytest.raises(NoChatWidgetError):
        parse_page(text, "https://example.com/")


def test_bad_page_url_makes_relative_urls_unusable_but_does_not_crash() -> None:
    config = aipkit_config(4, ajaxUrl="/wp-admin/admin-ajax.php")
    with pytest.raises(NoChatWidgetError):
        parse_page(page(aipkit_div(4, config)), "http://[::1")


# ---------------------------------------------------------------- bytes, charset


def test_bytes_decoded_with_meta_charset() -> None:
    tag = legacy_div(url="https://example.com/caf\u00e9")
    text = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-1">'
        f"</head><body>{tag}</body></html>"
    )
    widget = parse_page(text.encode("latin-1"), "https://example.com/").primary()
    assert widget.referer_url == "https://example.com/caf\u00e9"


def test_latin1_label_is_read_as_windows_1252_as_browsers_do() -> None:
    tag = legacy_div(url="https://example.com/\u20ac")  # the euro sign: 0x80 in windows-1252
    text = f'<html><head><meta charset="iso-8859-1"></head><body>{tag}</body></html>'
    widget = parse_page(text.encode("cp1252"), "https://example.com/").primary()
    assert widget.referer_url == "https://example.com/\u20ac"


@pytest.mark.parametrize("label", ["utf-16", "UTF-16LE", "utf-32"])
def test_utf16_label_in_an_ascii_compatible_page_means_utf8(label: str) -> None:
    tag = legacy_div(url="https://example.com/\u00e9")
    text = f'<html><head><meta charset="{label}"></head><body>{tag}</body></html>'
    widget = parse_page(text.encode("utf-8"), "https://example.com/").primary()
    assert widget.referer_url == "https://example.com/\u00e9"


def test_bytes_without_charset_are_utf8_with_replacement() -> None:
    data = page(legacy_div()).encode() + b"\xff\xfe\x80 trailing junk"
    assert parse_page(data, "https://example.com/").primary().nonce == "0a1b2c3d4e"


@pytest.mark.parametrize("charset", ["rot13", "base64", "idna", "no-such-charset", "utf-16"])
def test_unusable_declared_charset_falls_back_to_utf8(charset: str) -> None:
    data = page(legacy_div(), head=f'<meta charset="{charset}">').encode()
    assert parse_page(data, "https://example.com/").primary().nonce == "0a1b2c3d4e"


def test_utf8_bom() -> None:
    data = b"\xef\xbb\xbf" + page(legacy_div()).encode()
    assert parse_page(data, "https://example.com/").primary().post_id == 12


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_page_with_bom(codec: str) -> None:
    # The BOM wins over the (ASCII-compatible) declaration inside.
    data = "\ufeff".encode(codec) + page(legacy_div(url="https://example.com/\u00e9")).encode(codec)
    widget = parse_page(data, "https://example.com/").primary()
    assert (widget.post_id, widget.referer_url) == (12, "https://example.com/\u00e9")


def test_nul_bytes_do_not_hide_a_later_widget() -> None:
    data = b"<html><body>\x00\x00<p>x\x00</p>" + legacy_div().encode()
    assert parse_page(data, "https://example.com/").primary().post_id == 12


def test_page_opening_with_an_xml_declaration_warns_nobody() -> None:
    data = b"<?xml version='1.0' encoding='utf-8'?>" + legacy_div().encode()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        widget = parse_page(data, "https://example.com/").primary()
    assert widget.nonce == "0a1b2c3d4e"
    assert [str(w.message) for w in seen] == []


# --------------------------------------------------------------- size, robustness


def test_huge_attribute_and_url() -> None:
    huge = "x" * 12_000_000  # beyond libxml2's default 10 MB text limit
    tag = legacy_div(extra=f' data-style="{huge}"')
    head = f'<script>var wpaicgParams = {{"ajax_url":"https://e.com/{huge[:9000]}"}};</script>'
    widget = parse_page(page(tag, head=head), "https://example.com/").primary()
    # a 9 KB "URL" is junk: the fallback from data-url is used instead
    assert widget.ajax_url == "https://example.com/wp-admin/admin-ajax.php"


def test_one_megabyte_page_finds_its_widget() -> None:
    # How fast is the benchmark's business (python -m bench --only parse), not a test's.
    filler = "".join(
        f'<div class="post p{i}"><p>Lorem ipsum <a href="/x/{i}">link</a> dolor</p>'
        f'<span data-x="{i}">wpaicg aipkit</span></div>\n'
        for i in range(9000)
    )
    text = page(filler, AIPKIT_TAG, "</div>")
    assert len(text) > 1_000_000
    info = parse_page(text, AIPKIT_URL)
    assert info.primary().bot_id == 5


def test_deep_nesting_still_finds_the_widget() -> None:
    # A page nested 100,000 levels deep around a real widget: the widget is there, so it
    # is found, whole (a parser that gave up on depth would call the page widget-less).
    # Only the widgets and scripts are built (parse_only), so depth costs no recursion.
    text = "<div>" * 100_000 + legacy_div() + "</div>" * 100_000
    widget = parse_page(text, "https://example.com/").primary()
    assert (widget.generation, widget.post_id, widget.bot_id, widget.nonce) == (
        "legacy",
        12,
        0,
        "0a1b2c3d4e",
    )
    assert widget.ajax_url == "https://example.com/wp-admin/admin-ajax.php"


def test_pathological_json_nesting_in_config_and_params() -> None:
    deep = "[" * 200_000
    text = page(
        f'<script>var wpaicgParams = {{"a":{deep}</script>',
        f"<div class='aipkit_chat_container' data-bot-id='1' data-config='{{\"a\":{deep}'></div>",
    )
    with pytest.raises(NoChatWidgetError):
        parse_page(text, "https://example.com/")


FRAGMENTS = [
    LEGACY_TAG,
    AIPKIT_TAG,
    "</div>",
    legacy_div(cls="wpaicg-chatbox", kind="widget"),
    aipkit_div(3, aipkit_config(3)),
    popup_wrapper(4, aipkit_config(4), aipkit_div(4, None)),
    '<script>var wpaicgParams = {"ajax_url":"\\/x"};</script>',
    "<script>var wpaicgParams = ",
    "<div class='aipkit_chat_container' data-config='",
    '<div class="wpaicg-chat-shortcode" data-nonce=',
    "&quot;",
    "\\u003C",
    "<!--",
    "<![CDATA[",
    "<?xml version='1.0' encoding='utf-16'?>",
    '<meta charset="shift_jis">',
    "\x00",
    "\udcff",
]


def mutate(data: bytes, cuts: list[tuple[int, int, bytes]]) -> bytes:
    for position, length, insert in cuts:
        at = position % (len(data) + 1)
        data = data[:at] + insert + data[at + length :]
    return data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.one_of(
        st.binary(max_size=4096),
        st.text(max_size=2048).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=30), max_size=12).map(
            lambda parts: "".join(parts).encode("utf-8", "surrogatepass")
        ),
        st.tuples(
            st.sampled_from([LEGACY_TAG + "</div>", AIPKIT_TAG + "</div>"]),
            st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 40), st.binary(max_size=8))),
        ).map(lambda pair: mutate(pair[0].encode(), pair[1])),
    ),
    as_text=st.booleans(),
    page_url=st.one_of(
        st.just("https://example.com/chat/"), st.text(max_size=40), st.just("http://[::1")
    ),
)
def test_any_input_gives_page_info_or_no_chat_widget(
    data: bytes, as_text: bool, page_url: str
) -> None:
    markup: str | bytes = data.decode("utf-8", "surrogateescape") if as_text else data
    try:
        info = parse_page(markup, page_url)
    except NoChatWidgetError:
        return
    assert info.widgets
    for widget in info.widgets:
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", widget.nonce)
        assert widget.ajax_url.startswith(("http://", "https://"))
        assert widget.post_id >= 0 and widget.bot_id >= 0
    info.primary()


# -- the plugin's release: ?ver= on its scripts and styles --------------------------------

PLUGIN = "https://example.com/wp-content/plugins/gpt3-ai-content-generator"
JQUERY = (
    "<script src='https://example.com/wp-includes/js/jquery/jquery.min.js?ver=3.6.1' "
    "id='jquery-core-js'></script>"
)


def plugin_script(path: str, ver: str) -> str:
    return f"<script src='{PLUGIN}/{path}?ver={ver}' id='x-js'></script>"


def plugin_style(path: str, ver: str) -> str:
    return f"<link rel='stylesheet' id='x-css' href='{PLUGIN}/{path}?ver={ver}' media='all' />"


@pytest.mark.parametrize(
    ("head", "body", "release"),
    [
        # As WordPress 6.1 prints the enqueued files: style and script in the head,
        # the chat script in the footer; jQuery's own version beside them.
        (
            JQUERY + plugin_style("public/css/wpaicg-chat.css", "1.9.18"),
            plugin_script("public/js/wpaicg-chat.js", "1.9.18"),
            "1.9.18",
        ),
        ("", plugin_script("dist/js/public-main.bundle.js", "2.4.71"), "2.4.71"),
        # Scripts combined away by a cache plugin: the stylesheet still says.
        (plugin_style("public/css/wpaicg-chat.css", "2.2"), "", "2.2"),
        # The premium build's folder, a relative URL, another query parameter first.
        (
            "<script src='/wp-content/plugins/gpt3-ai-content-generator-premium/a.js?x=1&ver=2.3'>"
            "</script>",
            "",
            "2.3",
        ),
        # A cache plugin mixing versions: the most common one.
        (
            plugin_style("a.css", "2.4.70"),
            plugin_script("b.js", "2.4.71") + plugin_script("c.js", "2.4.71"),
            "2.4.71",
        ),
        # Nothing that says: unknown, not an error.
        ("", "", None),
        (JQUERY, "", None),
        ("<script src='" + PLUGIN + "/a.js'></script>", "", None),  # enqueued without a version
        (plugin_script("a.js", "latest") + plugin_style("b.css", "1.9<b>"), "", None),
        ("<script>var x = '/plugins/gpt3-ai-content-generator/a.js?ver=1.9';</script>", "", None),
    ],
)
def test_the_plugin_release_is_read_from_its_scripts_and_styles(
    head: str, body: str, release: str | None
) -> None:
    info = parse_page(page(LEGACY_TAG, "</div>", AIPKIT_TAG, "</div>", body, head=head), LEGACY_URL)
    assert info.release == release
    assert {w.release for w in info.widgets} == {release}
    assert info.primary().release == release
