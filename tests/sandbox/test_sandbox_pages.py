"""The WordPress pages: both generations' widget markup and its variants."""

from __future__ import annotations

import re
from typing import Literal

import aiohttp
import pytest

import sandbox
from tests.capture import CAPTURES
from tests.sandbox.sandbox_testkit import (
    aipkit_configs,
    fetch,
    legacy_attrs,
)

Gen = Literal["legacy", "aipkit"]
NOTICE = "Local imitation for testing"


async def get_page(http: aiohttp.ClientSession, site: sandbox.Site, path: str = "/") -> str:
    reply = await fetch(http, "GET", site.url + path)
    assert reply.status == 200
    assert reply.header("Content-Type") == "text/html; charset=UTF-8"
    assert reply.header("X-Powered-By") == "PHP/8.2.36"
    return reply.text


def opening_tag(page: str, css_class: str) -> str:
    match = re.search(rf'<div class="{css_class}".*?>', page, re.S)
    assert match
    return match.group(0)


async def test_legacy_18_matches_captured_tag(http: aiohttp.ClientSession) -> None:
    captured = (CAPTURES / "legacy-widget.html").read_text()
    async with sandbox.running(generation="legacy") as site:
        page = await get_page(http, site)
        origin = site.url
        nonce = site.nonce()
    tag = opening_tag(page, "wpaicg-chat-shortcode")
    expected = (
        captured.strip()
        .replace("http://127.0.0.1:8081", origin)
        .replace('data-nonce="cd072c0ea6"', f'data-nonce="{nonce}"')
        .replace('data-post-id="4"', 'data-post-id="6"')
    )
    assert tag == expected
    assert 'data-typewriter-effect = ""' in tag


async def test_legacy_page_carries_credentials(http: aiohttp.ClientSession) -> None:
    async with sandbox.running(generation="legacy") as site:
        home = await get_page(http, site, "/")
        chat = await get_page(http, site, "/chat/")
        nonce, decoy = site.nonce(), site.nonce("wpaicg-imagelog")
        assert site.hits["GET /"] == 1 and site.hits["GET /chat/"] == 1
        origin = site.url
    for page, post_id in ((home, "6"), (chat, "12")):
        attrs = legacy_attrs(page)
        assert attrs["data-nonce"] == nonce
        assert attrs["data-post-id"] == post_id
        assert attrs["data-url"] == origin
        assert attrs["data-bot-id"] == "0"
        assert attrs["data-type"] == "shortcode"
        assert attrs["data-openai_stream_nav"] == "1"
        params = re.search(r"var wpaicgParams = (\{.*?\});", page)
        assert params
        assert '"ajax_url":"' + origin.replace("/", "\\/") + '\\/wp-admin\\/admin-ajax.php"' in (
            params.group(1)
        )
        assert f'"search_nonce":"{nonce}"' in params.group(1)
        decoy_input = re.search(r'<input type="hidden" id="wpaicg-img-nonce" value="(\w+)">', page)
        assert decoy_input and decoy_input.group(1) == decoy != nonce
        # Plainly says what it is, visibly, on every page.
        assert NOTICE in page
        assert page.startswith("<!DOCTYPE html>") and "<title>" in page and "<footer" in page


async def test_legacy_17_template(http: aiohttp.ClientSession) -> None:
    async with sandbox.running(generation="legacy", legacy_template="1.7") as site:
        page = await get_page(http, site, "/chat/")
        nonce = site.nonce()
    tag = opening_tag(page, "wpaicg-chat-shortcode")
    assert "data-openai_stream_nav" not in tag
    assert f'data-nonce = "{nonce}"' in tag
    # Older order: the ids come after data-type, data-url before data-post-id.
    assert tag.index("data-type") < tag.index("data-url") < tag.index("data-post-id")
    assert tag.index("data-post-id") < tag.index("data-nonce")
    assert legacy_attrs(page)["data-post-id"] == "12"


async def test_legacy_compact_template(http: aiohttp.ClientSession) -> None:
    async with sandbox.running(generation="legacy", legacy_template="compact") as site:
        page = await get_page(http, site)
    tag = opening_tag(page, "wpaicg-chat-shortcode")
    assert "\n" not in tag and " = " not in tag
    assert legacy_attrs(page)["data-nonce"]


@pytest.mark.parametrize("markup", ["widget", "both"])
async def test_legacy_widget_markup(http: aiohttp.ClientSession, markup: str) -> None:
    async with sandbox.running(generation="legacy", legacy_markup=markup) as site:
        page = await get_page(http, site)
        nonce = site.nonce()
    widget = legacy_attrs(page, "wpaicg-chatbox")
    assert widget["data-type"] == "widget" and widget["data-nonce"] == nonce
    assert '<div class="wpaicg_chat_widget' in page
    assert ('<div class="wpaicg-chat-shortcode"' in page) == (markup == "both")
    if markup == "both":
        assert page.index("wpaicg-chat-shortcode") < page.index("wpaicg-chatbox")


async def test_legacy_optional_scripts(http: aiohttp.ClientSession) -> None:
    async with sandbox.running(
        generation="legacy",
        legacy_wpaicg_params=False,
        legacy_img_nonce_decoy=False,
        streaming=False,
    ) as site:
        page = await get_page(http, site)
    assert "wpaicgParams" not in page and "wpaicg-img-nonce" not in page
    assert legacy_attrs(page)["data-openai_stream_nav"] == "0"


async def test_aipkit_container_config(http: aiohttp.ClientSession) -> None:
    async with sandbox.running() as site:
        home = await get_page(http, site)
        chat = await get_page(http, site, "/chat/")
        nonce, origin = site.nonce(), site.url
    assert '<div class="aipkit_chat_container' in home
    assert 'id="aipkit_chat_container_5" data-bot-id="5" data-config=\'{&quot;botId&quot;:5' in home
    for page, post_id in ((home, 6), (chat, 12)):
        (config,) = aipkit_configs(page)
        assert config["botId"] == 5
        assert config["nonce"] == nonce
        assert config["postId"] == post_id
        assert config["ajaxUrl"] == origin + "/wp-admin/admin-ajax.php"
        assert config["popupEnabled"] is False
        assert config["text"]["historySidebarEmpty"].startswith("No conversations yet —")
    # WordPress's escaping inside the single-quoted attribute.
    assert "http:\\/\\/" in home and "\\u0027" in home and "\\u003C" in home
    assert "\\u0026" in home and "—" in home


async def test_aipkit_several_bots(http: aiohttp.ClientSession) -> None:
    async with sandbox.running(aipkit_bots=[5, 9, 11]) as site:
        page = await get_page(http, site)
    assert [c["botId"] for c in aipkit_configs(page)] == [5, 9, 11]


async def test_aipkit_popup(http: aiohttp.ClientSession) -> None:
    async with sandbox.running(aipkit_popup=True, aipkit_bots=[5]) as site:
        page = await get_page(http, site)
    assert aipkit_configs(page) == []
    (config,) = aipkit_configs(page, "aipkit_popup_wrapper")
    assert config["popupEnabled"] is True and config["botId"] == 5
    assert 'class="aipkit_popup_wrapper" id="aipkit_popup_wrapper_5"' in page
    assert 'id="aipkit_chat_container_5" data-bot-id="5"' in page


@pytest.mark.parametrize("generation", ["legacy", "aipkit"])
async def test_no_widget(http: aiohttp.ClientSession, generation: Gen) -> None:
    async with sandbox.running(generation=generation, no_widget=True) as site:
        page = await get_page(http, site)
    assert "wpaicg" not in page and "aipkit" not in page
    assert NOTICE in page


async def test_late_widget_is_only_in_the_theme_script(http: aiohttp.ClientSession) -> None:
    from scraper.errors import NoChatWidgetError
    from scraper.page import parse_page

    async with sandbox.running(generation="aipkit", late_widget=True) as site:
        page = await get_page(http, site, "/chat/")
    # No element of the widget in the HTML: only the script that adds it after the load.
    assert 'class="aipkit_chat_container' not in page
    assert '\\u003cdiv class=\\"aipkit_chat_container' in page
    assert 'addEventListener("load"' in page
    with pytest.raises(NoChatWidgetError):
        parse_page(page, site.url + "/chat/")


async def test_404_and_redirect(http: aiohttp.ClientSession) -> None:
    async with sandbox.running() as site:
        missing = await fetch(http, "GET", site.url + "/no/such/page")
        redirect = await fetch(http, "GET", site.url + "/chat")
        assert site.hits["GET /no/such/page"] == 1
        assert site.hits["GET /chat"] == 1
        origin = site.url
        site.reset_hits()
        assert not site.hits
    assert missing.status == 404
    assert "<title>Page not found &#8211; ChatGPT Free</title>" in missing.text
    assert 'class="error404' in missing.text and NOTICE in missing.text
    assert redirect.status == 301 and redirect.header("Location") == origin + "/chat/"


async def test_live_config_change_applies_next_request(http: aiohttp.ClientSession) -> None:
    async with sandbox.running(generation="legacy") as site:
        first = await get_page(http, site)
        site.config.legacy_markup = "widget"
        second = await get_page(http, site)
    assert 'wpaicg-chat-shortcode"' in first and "wpaicg-chatbox" not in first
    assert "wpaicg-chatbox" in second


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        sandbox.SiteConfig(generation="modern")
    with pytest.raises(ValueError):
        sandbox.SiteConfig(reply_error="whatever")
    assert sandbox.SiteConfig().aipkit_bots == [5]


def test_config_rejects_unknown_attributes() -> None:
    config = sandbox.SiteConfig()
    with pytest.raises(AttributeError):
        config.no_such_knob = 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("generation", ["legacy", "aipkit"])
async def test_stale_page_nonce(http: aiohttp.ClientSession, generation: Gen) -> None:
    async with sandbox.running(generation=generation, page_nonce="0123456789") as site:
        page = await get_page(http, site)
        assert site.nonce() != "0123456789"
    if generation == "legacy":
        assert legacy_attrs(page)["data-nonce"] == "0123456789"
        assert '"search_nonce":"0123456789"' in page
    else:
        assert aipkit_configs(page)[0]["nonce"] == "0123456789"


# -- the plugin's release, as WordPress prints it ---------------------------------------

PLUGIN_ASSET_VER = re.compile(
    r"<(?:script|link)\b[^>]*(?:src|href)='[^']*/wp-content/plugins/gpt3-ai-content-generator/"
    r"[^'?]*\?ver=([^']*)'"
)


@pytest.mark.parametrize(
    ("settings", "release", "generation"),
    [
        ({"generation": "legacy"}, "1.8.79", "legacy"),
        ({"generation": "aipkit"}, "2.4.71", "aipkit"),
        ({}, "2.4.71", "aipkit"),
        ({"release": "1.9.18"}, "1.9.18", "legacy"),
        ({"release": "2.2", "legacy_markup": "widget"}, "2.2", "legacy"),
        ({"release": "2.3"}, "2.3", "aipkit"),
        ({"release": "2.4.71", "generation": "aipkit", "aipkit_popup": True}, "2.4.71", "aipkit"),
    ],
)
async def test_plugin_scripts_and_styles_carry_the_release(
    http: aiohttp.ClientSession, settings: dict[str, object], release: str, generation: str
) -> None:
    async with sandbox.running(**settings) as site:
        assert site.config.generation == generation
        assert site.config.plugin_release == release
        page = await get_page(http, site, "/chat/")
    versions = PLUGIN_ASSET_VER.findall(page)
    assert len(versions) >= 2 and set(versions) == {release}
    assert "<script src='" in page and "<link rel='stylesheet'" in page
    # WordPress's own scripts carry its versions, not the plugin's.
    assert "/wp-includes/js/jquery/jquery.min.js?ver=3.6.1'" in page


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"generation": "aipkit", "release": "1.9.0"}, "belongs to the legacy generation"),
        ({"release": "2.3.50"}, "not in the plugin's history"),
        ({"generation": "legacy", "release": "2.4.71"}, "belongs to the aipkit generation"),
        ({"release": "3.0"}, "not in the plugin's history"),
        ({"release": "1.9.10"}, "not in the plugin's history"),
        ({"release": "1.9-beta"}, "expected a version"),
    ],
)
async def test_a_release_that_cannot_be_is_refused(settings: dict[str, str], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        async with sandbox.running(**settings):
            pass
