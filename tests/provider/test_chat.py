"""ChatgptFree over plain HTTP against the sandbox, both plugin generations."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

import sandbox
from provider import ChatgptFree, format_prompt
from provider.errors import (
    AccessError,
    AddressBannedError,
    InvalidInputError,
    MessageRejectedError,
    ModelNotSupportedError,
    NetworkError,
    ProviderTimeoutError,
    QuotaExceededError,
    RequestRefusedError,
    SessionExpiredError,
    UpstreamBusyError,
    UpstreamError,
)
from tests.conftest import USER, chat, provider_for
from tests.releases import REPRESENTATIVES

GENERATIONS = ["legacy", "aipkit"]
#: The first request of a chat, the one a stale nonce is refused at.
CHAT_ACTION = {"legacy": "wpaicg_chat_shortcode_message", "aipkit": "aipkit_cache_sse_message"}


def page_hits(site: sandbox.Site) -> int:
    return site.hits["GET /chat/"] + site.hits["GET /"]


def test_class_contract_matches_the_original() -> None:
    assert ChatgptFree.url == "https://chatgptfree.ai"
    assert ChatgptFree.working is True
    assert ChatgptFree.default_model == "gpt-4o-mini-2024-07-18"
    assert ChatgptFree.models == ["gpt-4o-mini-2024-07-18"]
    assert ChatgptFree.model_aliases == {"gpt-4o-mini": "gpt-4o-mini-2024-07-18"}
    assert ChatgptFree.get_model("") == ChatgptFree.default_model
    assert ChatgptFree.get_model("gpt-4o-mini") == "gpt-4o-mini-2024-07-18"
    with pytest.raises(
        ModelNotSupportedError, match="Model is not supported: gpt-5 in: ChatgptFree"
    ):
        ChatgptFree.get_model("gpt-5")


def test_format_prompt_is_the_originals() -> None:
    assert format_prompt([{"role": "user", "content": "Hi"}]) == "Hi"
    msgs = [
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "Again"},
    ]
    assert format_prompt(msgs) == "System: Be brief\nUser: Hi\nUser: Again\nAssistant:"
    assert format_prompt(msgs, do_continue=True) == "System: Be brief\nUser: Hi\nUser: Again"
    assert format_prompt(msgs, include_system=False) == "User: Hi\nUser: Again\nAssistant:"


@pytest.mark.parametrize("generation", GENERATIONS)
async def test_chat_streams_the_answer_in_chunks(generation: str, cache_dir: Path) -> None:
    # Paced deltas arrive in separate reads: each must reach the caller on its own.
    async with sandbox.running(generation=generation, chunk_delay=0.05) as site:
        provider = provider_for(site.url, cache_dir)
        chunks = [
            c
            async for c in provider.create_async_generator(
                "gpt-4o-mini", USER, stream=True, api_key="ignored"
            )
        ]
        assert "".join(chunks) == "You said: Hello sandbox"
        assert len(chunks) > 1
        assert page_hits(site) == 1


@pytest.mark.parametrize("generation", GENERATIONS)
async def test_multi_message_prompt_reaches_the_site(generation: str, cache_dir: Path) -> None:
    async with sandbox.running(generation=generation) as site:
        provider = provider_for(site.url, cache_dir)
        msgs = [
            {"role": "system", "content": "Be kind"},
            {"role": "user", "content": "Question?"},
            {"role": "assistant", "content": "An answer\nin two lines"},
            {"role": "developer", "content": "Mind the style"},
            {"role": "user", "content": "Follow-up, ünïcode 🙂"},
        ]
        # The answer echoes only the prompt's last line ("Assistant:"): the site's own
        # record of what it received is what proves every message got there.
        assert await chat(provider, msgs) == "You said: Assistant:"
        assert list(site.prompts) == [
            "System: Be kind\nUser: Question?\nAssistant: An answer\nin two lines\n"
            "Developer: Mind the style\nUser: Follow-up, ünïcode 🙂\nAssistant:"
        ]
        site.reset_hits()
        await chat(provider, msgs, do_continue=True, include_system=False)
        assert list(site.prompts) == [
            "User: Question?\nAssistant: An answer\nin two lines\nUser: Follow-up, ünïcode 🙂"
        ]
        site.reset_hits()
        await chat(provider, [{"role": "user", "content": "  One message, as is \n"}])
        assert list(site.prompts) == ["  One message, as is \n"]


@pytest.mark.parametrize("generation", GENERATIONS)
async def test_warm_call_reuses_stored_credentials(generation: str, cache_dir: Path) -> None:
    async with sandbox.running(generation=generation) as site:
        provider = provider_for(site.url, cache_dir)
        await chat(provider)
        await chat(provider)
        other_class = provider_for(site.url, cache_dir)  # shares the store by folder
        await chat(other_class)
        assert page_hits(site) == 1


@pytest.mark.parametrize("generation", GENERATIONS)
async def test_200_concurrent_cold_calls_fetch_the_page_once(
    generation: str, cache_dir: Path
) -> None:
    async with sandbox.running(generation=generation) as site:
        provider = provider_for(site.url, cache_dir)
        answers = await asyncio.gather(*(chat(provider) for _ in range(200)))
        assert set(answers) == {"You said: Hello sandbox"}
        assert page_hits(site) == 1


#: One release per way a site refuses a stale nonce: the legacy plugin's JSON (1.8.x),
#: WordPress's 403 page (1.9.0 through 2.2), aipkit's JSON 403 and error event (2.3+).
#: One release of each of the 12 release classes (PROTOCOL.md), oldest first.
NONCE_REFUSALS = list(REPRESENTATIVES.values())
LEGACY_NONCE_REFUSALS = [r for c, r in REPRESENTATIVES.items() if c.startswith("L")]


@pytest.mark.parametrize("release", NONCE_REFUSALS)
async def test_rotated_nonce_is_recovered_transparently(release: str, cache_dir: Path) -> None:
    async with sandbox.running(release=release) as site:
        provider = provider_for(site.url, cache_dir)
        await chat(provider)
        site.rotate_nonce()
        assert await chat(provider) == "You said: Hello sandbox"
        assert site.hits[f"admin-ajax:{CHAT_ACTION[site.config.generation]}"] == 3
        if site.config.generation == "aipkit":
            # aipkit asks the site for a new nonce, like the plugin's own script: no page
            # read from A4 (2.3.41) on, which has the action; before, the page is read again.
            assert site.hits["admin-ajax:aipkit_get_frontend_chat_nonce"] == 1
            assert page_hits(site) == (1 if site.config.since("A4") else 2)
        else:
            assert page_hits(site) == 2
        assert await chat(provider) == "You said: Hello sandbox"  # the new nonce was stored


@pytest.mark.parametrize("release", NONCE_REFUSALS)
async def test_nonce_expired_by_time_is_recovered(release: str, cache_dir: Path) -> None:
    async with sandbox.running(release=release, tick_seconds=0.3) as site:
        provider = provider_for(site.url, cache_dir)
        await chat(provider)
        first = site.nonce()
        # A nonce verifies for its tick and the next: wait until two ticks have passed.
        seen = {first}
        while len(seen) < 3:
            await asyncio.sleep(0.05)
            seen.add(site.nonce())
        assert await chat(provider) == "You said: Hello sandbox"
        assert site.hits[f"admin-ajax:{CHAT_ACTION[site.config.generation]}"] == 3


@pytest.mark.parametrize("release", LEGACY_NONCE_REFUSALS)
async def test_nonce_rejected_twice_is_a_clear_error(release: str, cache_dir: Path) -> None:
    async with sandbox.running(release=release) as site:
        provider = provider_for(site.url, cache_dir)
        await chat(provider)

        # From now on the page is a stale cached copy: its nonce never verifies.
        site.config.page_nonce = "0123456789"
        site.rotate_nonce()
        with pytest.raises(SessionExpiredError, match="cached page") as err:
            await chat(provider)
        assert "0123456789" not in str(err.value)
        assert page_hits(site) == 2  # one refresh, not a loop


@pytest.mark.parametrize("generation", GENERATIONS)
async def test_stalled_stream_times_out_within_timeout_plus_one(
    generation: str, cache_dir: Path
) -> None:
    async with sandbox.running(generation=generation, stall_after_deltas=1) as site:
        provider = provider_for(site.url, cache_dir)
        got: list[str] = []
        start = time.monotonic()
        with pytest.raises(ProviderTimeoutError):
            async for chunk in provider.create_async_generator("", USER, timeout=1):
                got.append(chunk)
        assert time.monotonic() - start < 1 + 1 + 0.5  # one gap of 1 s, plus slack for the setup
        assert got, "chunks before the stall were delivered"


@pytest.mark.parametrize("generation", GENERATIONS)
async def test_dropped_connection_is_an_error_after_the_chunks(
    generation: str, cache_dir: Path
) -> None:
    async with sandbox.running(
        generation=generation, answer_bytes=20_000, drop_after_bytes=9000
    ) as site:
        provider = provider_for(site.url, cache_dir)
        got: list[str] = []
        with pytest.raises(NetworkError, match=r"before the answer finished|broke"):
            async for chunk in provider.create_async_generator("", USER, timeout=5):
                got.append(chunk)
        assert "".join(got).startswith("You said: ")


@pytest.mark.parametrize("wire_chunk", [1, 3, 7])
async def test_legacy_stream_split_anywhere_yields_the_same_text(
    wire_chunk: int, cache_dir: Path
) -> None:
    async with sandbox.running(generation="legacy", answer_bytes=3000) as site:
        provider = provider_for(site.url, cache_dir)
        whole = await chat(provider)
        site.config.wire_chunk = wire_chunk
        assert await chat(provider) == whole
        assert len(whole.encode()) == 3000


@pytest.mark.parametrize("generation", GENERATIONS)
async def test_garbage_lines_in_the_stream_are_skipped(generation: str, cache_dir: Path) -> None:
    async with sandbox.running(generation=generation, garbage_lines=True) as site:
        assert await chat(provider_for(site.url, cache_dir)) == "You said: Hello sandbox"


async def test_legacy_non_streaming_reply(cache_dir: Path) -> None:
    async with sandbox.running(generation="legacy", streaming=False) as site:
        assert await chat(provider_for(site.url, cache_dir)) == "You said: Hello sandbox"


@pytest.mark.parametrize("markup", ["widget", "both"])
@pytest.mark.parametrize("template", ["1.8", "1.7", "compact"])
async def test_legacy_markup_variants(markup: str, template: str, cache_dir: Path) -> None:
    async with sandbox.running(
        generation="legacy", legacy_markup=markup, legacy_template=template
    ) as site:
        assert await chat(provider_for(site.url, cache_dir)) == "You said: Hello sandbox"
        expected = (
            "admin-ajax:wpaicg_chatbox_message"
            if markup == "widget"
            else ("admin-ajax:wpaicg_chat_shortcode_message")
        )
        assert site.hits[expected] == 1


@pytest.mark.parametrize("popup", [False, True], ids=["inline", "popup"])
@pytest.mark.parametrize("bot_id", [9, 5, None])
async def test_aipkit_several_bots_the_chosen_one_answers(
    popup: bool, bot_id: int | None, cache_dir: Path
) -> None:
    # Every bot echoes alike: the site's record of which bot answered tells them apart.
    async with sandbox.running(generation="aipkit", aipkit_popup=popup, aipkit_bots=[5, 9]) as site:
        provider = provider_for(site.url, cache_dir, bot_id=bot_id)
        assert await chat(provider) == "You said: Hello sandbox"
        assert list(site.bots) == [5 if bot_id is None else bot_id]  # None: the page's first
        # The warm call (stored credentials) and the cheap nonce refresh keep the bot.
        site.rotate_nonce()
        assert await chat(provider) == "You said: Hello sandbox"
        assert list(site.bots) == [5 if bot_id is None else bot_id] * 2


async def test_aipkit_each_call_is_a_new_conversation_with_a_stable_session(
    cache_dir: Path,
) -> None:
    async with sandbox.running(generation="aipkit", guest_quota=2) as site:
        provider = provider_for(site.url, cache_dir)
        await chat(provider)
        await chat(provider)
        # The quota is per guest session: a stable session_id makes the third call hit it.
        with pytest.raises(QuotaExceededError):
            await chat(provider)


LEGACY_ERRORS = {
    "token_limit": QuotaExceededError,
    "ip_ban": MessageRejectedError,
    "banned_words": MessageRejectedError,
    "moderation": MessageRejectedError,
    "limited": UpstreamError,
    "upstream": UpstreamError,
}
AIPKIT_ERRORS = {
    "quota": QuotaExceededError,
    "guest_disabled": AccessError,
    "ip_blocked": MessageRejectedError,
    "banned_words": MessageRejectedError,
    "moderation": MessageRejectedError,
    "api_error": UpstreamError,
    "connection_error": UpstreamError,
    "no_data": UpstreamError,
}


@pytest.mark.parametrize(
    ("generation", "reply_error", "error"),
    [("legacy", k, v) for k, v in LEGACY_ERRORS.items()]
    + [("legacy-json", k, v) for k, v in LEGACY_ERRORS.items() if k not in ("limited", "upstream")]
    + [("aipkit", k, v) for k, v in AIPKIT_ERRORS.items()],
)
async def test_every_error_reply_maps_to_its_class(
    generation: str, reply_error: str, error: type[Exception], cache_dir: Path
) -> None:
    streaming = generation != "legacy-json"
    async with sandbox.running(
        generation=generation.split("-")[0], reply_error=reply_error, streaming=streaming
    ) as site:
        with pytest.raises(error):
            await chat(provider_for(site.url, cache_dir))


#: A refusal of each kind, with the site's own words, and what it must be.
CLASS_REFUSALS = {
    "legacy": [
        ("banned_words", "No such words on this site.", MessageRejectedError),
        ("ip_ban", "We do not serve your network.", AddressBannedError),
        ("token_limit", "Come back tomorrow.", QuotaExceededError),
        ("upstream_429", None, UpstreamBusyError),
    ],
    "aipkit": [
        ("banned_words", "Fixture: your message contains a banned word.", MessageRejectedError),
        ("ip_blocked", "Fixture: your IP address is banned.", AddressBannedError),
        ("quota", "Fixture quota: guests get 10 tokens.", QuotaExceededError),
        ("api_rate_limit", None, UpstreamBusyError),
    ],
}


@pytest.mark.parametrize("release", NONCE_REFUSALS)
async def test_each_class_refuses_in_its_own_words_and_the_class_is_right(
    release: str, cache_dir: Path
) -> None:
    async with sandbox.running(release=release) as site:
        provider = provider_for(site.url, cache_dir)
        for reply_error, words, error in CLASS_REFUSALS[site.config.generation]:
            site.config.reply_error = reply_error
            site.config.texts = {reply_error: words} if words else {}
            with pytest.raises(error) as raised:
                await chat(provider)
            assert type(raised.value) is error, (release, reply_error, raised.value)
            if words:
                assert words in str(raised.value)
        site.config.reply_error = None
        assert await chat(provider) == "You said: Hello sandbox"


@pytest.mark.parametrize("release", ["1.8.79", "2.3.5", "2.3.25", "2.4.71"])
async def test_a_site_in_german_recovers_its_nonce_and_quotes_its_refusals(
    release: str, cache_dir: Path
) -> None:
    async with sandbox.running(release=release, language="de") as site:
        provider = provider_for(site.url, cache_dir)
        await chat(provider)
        site.rotate_nonce()  # refused in German: words that name nothing, refreshed once
        assert await chat(provider) == "You said: Hello sandbox"
        legacy = site.config.generation == "legacy"
        site.config.reply_error = "ip_ban" if legacy else "banned_words"
        pages = page_hits(site)
        with pytest.raises(MessageRejectedError) as raised:
            await chat(provider)
        if legacy:  # the flag says it, in any words
            assert type(raised.value) is AddressBannedError
            assert "Sie dürfen diese Funktion nicht nutzen." in str(raised.value)
        else:  # nothing says which refusal: the site's words, refused again after a refresh
            assert type(raised.value) is RequestRefusedError
            assert "verbotene Wörter" in str(raised.value)
            assert page_hits(site) - pages <= 1


async def test_no_widget_is_a_clear_error(cache_dir: Path) -> None:
    from provider.errors import NoChatWidgetError

    async with sandbox.running(generation="aipkit", no_widget=True) as site:
        with pytest.raises(NoChatWidgetError, match=r"(?i)check that the url"):
            await chat(provider_for(site.url, cache_dir))


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ([], "empty"),
        ("hello", "list"),
        ([{"role": "user"}], "content"),
        ([{"role": "wizard", "content": "x"}], "role"),
        ([{"role": "user", "content": 5}], "string"),
        (["x"], "dict"),
        ([{"role": "user", "content": "x" * 100_001}], "limit"),
        ([{"role": "user", "content": "   "}], "no text"),
    ],
)
async def test_bad_messages_fail_before_any_network_call(
    messages: object, match: str, cache_dir: Path
) -> None:
    async with sandbox.running(generation="aipkit") as site:
        with pytest.raises(InvalidInputError, match=match):
            await chat(provider_for(site.url, cache_dir), messages)
        assert sum(site.hits.values()) == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"timeout": 0}, "positive"),
        ({"timeout": "5"}, "number"),
        ({"cookies": ["a"]}, "dict"),
        ({"cookies": {"a b": "x"}}, "cookie name"),
        ({"proxy": "ftp://x:1"}, "scheme"),
        ({"proxy": "socks5://user:pw-secret@host"}, "port"),
    ],
)
async def test_bad_arguments_are_clear_and_secret_free(
    kwargs: dict[str, object], match: str, cache_dir: Path
) -> None:
    async with sandbox.running(generation="aipkit") as site:
        with pytest.raises(InvalidInputError, match=match) as err:
            await chat(provider_for(site.url, cache_dir), **kwargs)
        assert "pw-secret" not in str(err.value)
        assert sum(site.hits.values()) == 0


async def test_unknown_model_is_refused(cache_dir: Path) -> None:
    with pytest.raises(ModelNotSupportedError):
        await chat(provider_for("http://127.0.0.1:9", cache_dir), model="nope")  # type: ignore[arg-type]


async def test_unreachable_site_is_a_network_error(cache_dir: Path) -> None:
    with pytest.raises(NetworkError, match=r"127\.0\.0\.1"):
        await chat(provider_for("http://127.0.0.1:9", cache_dir), timeout=5)


async def test_unknown_action_answer_is_a_protocol_error(cache_dir: Path) -> None:
    async with sandbox.running(generation="legacy") as site:
        provider = provider_for(site.url, cache_dir)
        await chat(provider)
        # The site switched generation under cached legacy credentials.
        site.config.generation = "aipkit"
        # Self-healing: the "unknown action" answer makes it read the page again.
        assert await chat(provider) == "You said: Hello sandbox"
        assert page_hits(site) == 2
        site.config.generation = "legacy"
