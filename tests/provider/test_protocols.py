"""The two generations' stream interpreters, fed the genuine plugin's captured answers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from provider.errors import (
    AccessError,
    InvalidInputError,
    MessageRejectedError,
    NetworkError,
    ProtocolError,
    ProviderError,
    QuotaExceededError,
    UpstreamError,
)
from provider.protocols import NonceRejected, aipkit, legacy
from provider.protocols._common import texts
from provider.protocols._refusal import MaybeNonce
from tests.capture import capture as load


async def reads(body: bytes, step: int | None = None) -> AsyncIterator[bytes]:
    """The body as the network might deliver it: whole, or in reads of ``step`` bytes."""
    for i in range(0, len(body), step or len(body) or 1):
        yield body[i : i + (step or len(body))]


def legacy_text(body: bytes, step: int | None = None) -> AsyncIterator[str]:
    return texts(reads(body, step), legacy.LegacyStream())


def aipkit_text(body: bytes, step: int | None = None) -> AsyncIterator[str]:
    return texts(reads(body, step), aipkit.AipkitStream())


async def collect(gen: AsyncIterator[str]) -> list[str]:
    return [chunk async for chunk in gen]


@pytest.mark.parametrize("step", [None, 1, 5, 64])
async def test_legacy_stream_capture_yields_the_answer_and_never_the_trailing_json(
    step: int | None,
) -> None:
    chunks = await collect(legacy_text(load("legacy-chat-stream.http").body, step))
    assert "".join(chunks) == "You said: Hello legacy bot"
    # One chunk per network read: whole, one; byte by byte, one per delta's last byte.
    assert len(chunks) == (1 if step is None or step > 300 else 3)


async def test_legacy_get_capture_yields_the_answer() -> None:
    text = "".join(await collect(legacy_text(load("legacy-chat-get.http").body)))
    assert text == "You said: Hello again via EventSource"


async def test_legacy_upstream_failure_is_an_error_not_an_answer() -> None:
    with pytest.raises(UpstreamError, match="Incorrect API key"):
        await collect(legacy_text(load("legacy-upstream-error.http").body))


def test_legacy_json_reply_capture() -> None:
    import json

    assert legacy.answer_from_json(json.loads(load("legacy-json-reply.http").body)) == (
        "You said: Hello non-streaming"
    )


def test_legacy_bad_nonce_capture_asks_for_a_refresh() -> None:
    import json

    with pytest.raises(NonceRejected):
        legacy.answer_from_json(json.loads(load("legacy-bad-nonce.http").body))


@pytest.mark.parametrize(
    ("obj", "error"),
    [
        (
            {"status": "error", "msg": "Invalid nonce. This means we are unable to verify"},
            NonceRejected,
        ),
        ({"status": "error", "msg": "Security check"}, NonceRejected),
        ({"status": "error", "msg": "It appears that nothing was inputted."}, InvalidInputError),
        (
            {"msg": "You have reached your token limit.", "tokenLimitReached": True},
            QuotaExceededError,
        ),
        (
            {"msg": "You are not allowed to access this feature.", "ipBanned": True},
            MessageRejectedError,
        ),
        (
            {"msg": "Your message contains prohibited words.", "messageFlagged": True},
            MessageRejectedError,
        ),
        ({"msg": "flagged", "status": "error", "modflag": True}, MessageRejectedError),
        # Words that name nothing: maybe a translated bad nonce (refresh once), else
        # the site's error.
        ({"status": "error", "msg": "Something else"}, UpstreamError),
    ],
)
def test_legacy_error_objects_map_to_error_classes(obj: dict[str, object], error: type) -> None:
    with pytest.raises(ProviderError) as raised:
        legacy.answer_from_json(obj)
    found = raised.value.final if isinstance(raised.value, MaybeNonce) else raised.value
    assert isinstance(found, error)


async def test_legacy_limited_and_cut_short_streams() -> None:
    with pytest.raises(UpstreamError, match="LIMITED"):
        await collect(legacy_text(b"data: [LIMITED]\n\n"))
    body = load("legacy-chat-stream.http").body
    cut = body[: body.index(b'"Hello legacy')]
    gen = legacy_text(cut)
    with pytest.raises(NetworkError, match="before the answer finished"):
        await collect(gen)


async def test_text_before_an_error_in_the_same_read_is_delivered_first() -> None:
    body = b'data: {"delta":"partial"}\n\nevent: error\ndata: {"error":"API Error: boom"}\n\n'
    gen = aipkit_text(body)
    assert await gen.__anext__() == "partial"
    with pytest.raises(UpstreamError, match="boom"):
        await gen.__anext__()


async def test_legacy_odd_chunks_do_not_crash() -> None:
    body = (
        b'data: {"no_choices": 1}\n\n'
        b'data: {"choices": []}\n\n'
        b'data: {"choices": [{"text": "a"}]}\n\n'
        b"data: not json\n\n"
        b'data: {"choices": [{"delta": {"content": "b"}, "finish_reason": "length"}]}\n\n'
    )
    assert "".join(await collect(legacy_text(body))) == "ab"


@pytest.mark.parametrize("name", ["aipkit-stream.http", "aipkit-stream-chat-completions-mode.http"])
@pytest.mark.parametrize("step", [None, 1, 100])
async def test_aipkit_stream_captures(name: str, step: int | None) -> None:
    text = "".join(await collect(aipkit_text(load(name).body, step)))
    assert text.startswith("You said: Hello ")
    assert text in ("You said: Hello aipkit bot", "You said: Hello via chat_completions mode")


async def test_aipkit_error_is_final_without_done() -> None:
    with pytest.raises(UpstreamError, match="API Error"):
        await collect(aipkit_text(load("aipkit-upstream-error.http").body))


async def test_aipkit_bad_nonce_and_reused_key_captures() -> None:
    with pytest.raises(NonceRejected):
        await collect(aipkit_text(load("aipkit-bad-nonce-stream.http").body))
    with pytest.raises(ProtocolError, match="not found in cache"):
        await collect(aipkit_text(load("aipkit-reused-cache-key.http").body))


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("You have reached your quota for this period.", QuotaExceededError),
        ("Access disabled for guests.", AccessError),
        ("Access from your IP address has been blocked.", MessageRejectedError),
        (
            "Sorry, your message could not be sent as it contains prohibited words.",
            MessageRejectedError,
        ),
        (
            "Your message was flagged by the moderation system and could not be sent.",
            MessageRejectedError,
        ),
        ("Connection error: no data received from AI.", UpstreamError),
        ("Connection Error: timed out", UpstreamError),
        ("Message or image cannot be empty.", InvalidInputError),
        ("Cached message has expired.", ProtocolError),
        ("Invalid chatbot specified.", ProtocolError),
    ],
)
def test_aipkit_error_texts(text: str, error: type) -> None:
    found = aipkit.error_from(text)
    assert isinstance(found, error)


async def test_aipkit_warning_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    body = (
        b'data: {"delta":"a"}\n\nevent: warning\ndata: {"error":" (Warning: Content Filtered)"}\n\n'
        b'data: {"delta":"b"}\n\nevent: done\ndata: {"finished":true}\n\n'
    )
    assert "".join(await collect(aipkit_text(body))) == "ab"
    assert "Content Filtered" in caplog.text
