"""Refusals read from the plugin's structure, against the genuine captures (2.4.71, 1.8.79).

Each capture's stream goes through the real interpreter (``texts`` over the bytes,
in several read sizes), and the error must be the right class with the site's own
words quoted, whatever those words are.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from provider.errors import (
    AccessError,
    AddressBannedError,
    BlockedError,
    BotUnavailableError,
    MessageRejectedError,
    ProtocolError,
    QuotaExceededError,
    RateLimitedError,
    RequestRefusedError,
    UpstreamBusyError,
    UpstreamError,
)
from provider.protocols import NonceRejected, aipkit, legacy
from provider.protocols._common import texts
from provider.protocols._refusal import MaybeNonce, aipkit_cache_error, aipkit_error
from scraper.credentials import Credentials
from tests.capture import capture as load


async def reads(body: bytes, step: int) -> AsyncIterator[bytes]:
    for i in range(0, len(body), step):
        yield body[i : i + step]


def creds(bot_id: int = 7, page_bots: tuple[int, ...] = (5, 7, 9)) -> Credentials:
    now = time.time()
    return Credentials(
        site="http://127.0.0.1:1",
        generation="aipkit",
        nonce="0123456789",
        post_id=6,
        bot_id=bot_id,
        ajax_url="http://127.0.0.1:1/wp-admin/admin-ajax.php",
        page_url="http://127.0.0.1:1/",
        user_agent="UA",
        source="http",
        obtained_at=now,
        expires_at=now + 60,
        page_bots=page_bots,
    )


async def aipkit_raises(name: str, step: int = 7) -> BaseException:
    body = load(name).body
    with pytest.raises(Exception) as raised:  # the class is asserted by the callers
        async for _ in texts(reads(body, step), aipkit.AipkitStream(creds())):
            pass
    return raised.value


@pytest.mark.parametrize("step", [1, 64, 100_000])
@pytest.mark.parametrize(
    ("name", "error", "words"),
    [
        ("aipkit-banned-word-custom-text-stream.http", MessageRejectedError, "banned word"),
        ("aipkit-banned-ip-custom-text-stream.http", AddressBannedError, "IP address is banned"),
        ("aipkit-guests-disabled-stream.http", AccessError, "Access disabled for guests."),
        ("aipkit-moderation-flagged-stream.http", MessageRejectedError, "was flagged"),
        ("aipkit-guest-quota-stream.http", QuotaExceededError, "10 tokens per session"),
        ("aipkit-upstream-429-stream.http", UpstreamBusyError, "Rate limit reached"),
        ("aipkit-upstream-error.http", UpstreamError, "Incorrect API key"),
        ("aipkit-draft-bot-stream.http", BotUnavailableError, "Invalid chatbot specified."),
    ],
)
async def test_each_captured_refusal_is_its_class_in_the_sites_words(
    name: str, error: type, words: str, step: int
) -> None:
    found = await aipkit_raises(name, step)
    assert type(found) is error, found
    assert words in str(found)


async def test_the_backend_rate_limit_is_not_the_guest_quota_and_says_retry_shortly() -> None:
    found = await aipkit_raises("aipkit-upstream-429-stream.http")
    assert isinstance(found, UpstreamBusyError) and not isinstance(found, RateLimitedError)
    assert found.retry_after == pytest.approx(0.084)
    assert "retry shortly" in str(found)


async def test_the_quota_quotes_the_quota_notice() -> None:
    found = await aipkit_raises("aipkit-guest-quota-stream.http")
    assert "Fixture quota: guests get 10 tokens per session on this bot." in str(found)


async def test_a_bot_not_for_guests_names_the_bot_and_the_pages_others() -> None:
    found = await aipkit_raises("aipkit-draft-bot-stream.http")
    assert isinstance(found, BotUnavailableError) and isinstance(found, ProtocolError)
    assert found.bot_id == 7 and found.page_bots == (5, 7, 9)
    assert "bot 7" in str(found) and "5, 9" in str(found)
    assert "plugin may have changed" not in str(found)


async def test_a_banned_address_says_so_and_suggests_a_proxy() -> None:
    found = await aipkit_raises("aipkit-banned-ip-custom-text-stream.http")
    assert isinstance(found, AddressBannedError)
    assert isinstance(found, BlockedError) and isinstance(found, MessageRejectedError)
    assert "proxy" in str(found)


@pytest.mark.parametrize(
    "text",
    [
        "Zugriff von Ihrer Adresse gesperrt.",  # words that name nothing this library knows
        "Fixture: you may not chat.",
    ],
)
def test_words_that_name_nothing_are_a_refusal_never_a_guess(text: str) -> None:
    before = aipkit_error({"error": text}, started=False)
    # Maybe a translated bad nonce: refresh once; refused again, the site's words.
    assert isinstance(before, MaybeNonce)
    assert isinstance(before.final, RequestRefusedError)
    assert text in str(before.final)


@pytest.mark.parametrize(
    "text",
    [
        "Access disabled for guests.",
        "Sorry, your message could not be sent as it contains prohibited words.",
        "Invalid chatbot specified.",
        "You have reached your quota for this period.",
    ],
)
def test_after_message_start_the_words_do_not_decide(text: str) -> None:
    # Structure over words: after message_start the request was accepted, so an
    # error is the backend's, whatever it says.
    found = aipkit_error({"error": text}, started=True)
    assert type(found) is UpstreamError


def test_a_quota_notice_decides_over_the_words() -> None:
    found = aipkit_error(
        {"error": "Ihr Kontingent ist erschöpft.", "quota_notice": {"message": "Später."}},
        started=False,
    )
    assert isinstance(found, QuotaExceededError) and "Später." in str(found)


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("nonce_failure_cache_sse", NonceRejected),
        ("cors_denied", BlockedError),
        ("embed_not_available", BlockedError),
        ("invalid_form_resume_session", ProtocolError),
    ],
)
def test_cache_step_codes_decide_whatever_the_words(code: str, error: type) -> None:
    assert isinstance(aipkit_cache_error(code, "Irgendein Text.", 403), error)


def test_the_captured_cross_origin_cache_refusal() -> None:
    import json

    reply = json.loads(load("aipkit-cross-origin-cache.http").body)
    data = reply["data"]
    found = aipkit_cache_error(data["code"], data["message"], 403)
    assert isinstance(found, BlockedError) and "Embed feature" in str(found)


async def test_legacy_openai_chunks_with_refusal_and_service_tier_and_the_trailing_json() -> None:
    body = load("legacy-chat-stream-openai-chunks.http").body
    for step in (1, 50, 100_000):
        got = [t async for t in texts(reads(body, step), legacy.LegacyStream())]
        assert "".join(got) == "You said: Hello"


async def test_legacy_upstream_429_is_the_backend_busy() -> None:
    body = load("legacy-upstream-429.http").body
    with pytest.raises(UpstreamBusyError, match="retry shortly") as raised:
        async for _ in texts(reads(body, 33), legacy.LegacyStream()):
            pass
    assert raised.value.retry_after == pytest.approx(0.084)


@pytest.mark.parametrize(
    ("obj", "error"),
    [
        ({"msg": "Eigener Text.", "ipBanned": True}, AddressBannedError),
        ({"msg": "Eigener Text.", "messageFlagged": True}, MessageRejectedError),
        ({"msg": "Eigener Text.", "status": "error", "modflag": True}, MessageRejectedError),
        ({"msg": "Eigener Text.", "tokenLimitReached": True}, QuotaExceededError),
    ],
)
def test_legacy_flags_decide_in_any_words(obj: dict[str, object], error: type) -> None:
    found = legacy.error_from(obj)
    assert type(found) is error and "Eigener Text." in str(found)
