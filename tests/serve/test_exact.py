"""What the server promises in exact numbers and bytes: the estimated usage, the
constant-time key check on every keyed request, and messages reaching the site
with their whitespace intact."""

from __future__ import annotations

import hmac
import math
import secrets
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from tests.serve.conftest import ANSWER, KEY, USER

Served = Callable[..., Any]

#: Content parts, a system turn, history, and characters outside ASCII (one code point,
#: several UTF-8 bytes): each would count differently if usage were computed from the
#: last message only, from the prompt the library builds, or from bytes.
MESSAGES: list[dict[str, Any]] = [
    {"role": "system", "content": "Sé breve."},
    {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "2"}]},
    {"role": "assistant", "content": "ok 🙂"},
    {"role": "user", "content": "  indented\n\tand tabbed  "},
]


def expected_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """The documented estimate, computed here on its own: the characters (code points) of
    every message's text as the client sent it (text parts joined by a newline), / 4, up."""
    chars = 0
    for m in messages:
        content = m["content"]
        if isinstance(content, list):
            content = "\n".join(part["text"] for part in content)
        chars += len(content)
    return math.ceil(chars / 4)


def test_the_known_prompt_tells_the_candidate_computations_apart() -> None:
    # The number pinned below is right only if the plausible wrong ones differ from it.
    right = expected_prompt_tokens(MESSAGES)
    assert right == 11  # 42 characters
    last_only = math.ceil(len(MESSAGES[-1]["content"]) / 4)
    utf8 = "".join(
        m["content"]
        if isinstance(m["content"], str)
        else "\n".join(p["text"] for p in m["content"])
        for m in MESSAGES
    ).encode()
    built = (
        "System: Sé breve.\nUser: one\n2\nAssistant: ok 🙂\n"
        "User:   indented\n\tand tabbed  \nAssistant:"
    )
    assert right not in {last_only, math.ceil(len(utf8) / 4), math.ceil(len(built) / 4)}


async def test_usage_prompt_tokens_are_the_messages_characters_over_four(served: Served) -> None:
    """README (server): "Usage is estimated (characters / 4)": of the messages received."""
    want = expected_prompt_tokens(MESSAGES)
    async with served() as s:
        reply = await s.client.chat.completions.create(model="", messages=MESSAGES)  # type: ignore[arg-type]
        stream = await s.client.chat.completions.create(
            model="",
            messages=MESSAGES,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    assert reply.usage is not None and reply.usage.prompt_tokens == want
    text = reply.choices[0].message.content or ""
    assert reply.usage.completion_tokens == math.ceil(len(text) / 4)
    assert reply.usage.total_tokens == want + math.ceil(len(text) / 4)
    usage = chunks[-1].usage
    assert usage is not None and usage.prompt_tokens == want
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == text and usage.completion_tokens == math.ceil(len(text) / 4)


async def test_every_keyed_request_is_checked_with_compare_digest(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A spy test, on purpose: whether ``==`` or a constant-time compare checks the key
    cannot be told by timing on a shared 2-core machine over loopback (the difference is
    nanoseconds under milliseconds of noise). What can be checked is the promise's
    mechanism: every request that presents a key, right or wrong, any length, on every
    keyed route, has it compared by ``hmac.compare_digest`` (or ``secrets``', the same
    function) against the server's key — and the spy's answer is what decides."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append(
            (
                a.encode() if isinstance(a, str) else bytes(a),
                b.encode() if isinstance(b, str) else bytes(b),
            )
        )
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    monkeypatch.setattr(secrets, "compare_digest", spy)
    presented = [KEY, "wrong", KEY + "-longer", KEY[:-1] + "x", KEY]
    routes = [
        ("POST", "/v1/chat/completions"),
        ("GET", "/v1/models"),
        ("GET", "/metrics"),
        ("POST", "/v1/chat/completions"),
        ("GET", "/v1/models/gpt-4o-mini"),
    ]
    body = {"model": "", "messages": USER}
    async with served() as s, aiohttp.ClientSession() as http:
        statuses = []
        for key, (method, path) in zip(presented, routes, strict=True):
            async with http.request(
                method,
                s.server.url + path,
                json=body if method == "POST" else None,
                headers={"Authorization": f"Bearer {key}"},
            ) as response:
                statuses.append(response.status)
                if response.status == 200 and path.endswith("completions"):
                    assert (await response.json())["choices"][0]["message"]["content"] == ANSWER
        # The spy's verdict is the server's: made to say yes, a wrong key gets in.
        monkeypatch.setattr(hmac, "compare_digest", lambda a, b: True)
        monkeypatch.setattr(secrets, "compare_digest", lambda a, b: True)
        async with http.get(
            s.server.url + "/v1/models", headers={"Authorization": "Bearer not-the-key"}
        ) as response:
            forced = response.status
    assert statuses == [200, 401, 401, 401, 200]
    assert forced == 200
    # (The sandbox compares its own nonces and clearances with it too: those are not ours.)
    ours = [pair for pair in calls if KEY.encode() in pair]
    assert [a if b == KEY.encode() else b for a, b in ours] == [k.encode() for k in presented]


async def test_whitespace_inside_messages_reaches_the_site_through_the_server(
    served: Served,
) -> None:
    code = "def f():\n    if x:\n\t\treturn  1   \n\n    return 0\n"
    messages = [
        {"role": "system", "content": "  Keep   spacing.  "},
        {
            "role": "user",
            "content": [{"type": "text", "text": "Fix:\n"}, {"type": "text", "text": code}],
        },
        {"role": "assistant", "content": "\n  Indented answer\n"},
        {"role": "user", "content": "\tThanks  "},
    ]
    expected = (
        "System:   Keep   spacing.  \n"
        f"User: Fix:\n\n{code}\n"
        "Assistant: \n  Indented answer\n\n"
        "User: \tThanks  \n"
        "Assistant:"
    )
    for generation in ("legacy", "aipkit"):
        async with served(generation) as s:
            await s.client.chat.completions.create(model="", messages=messages)  # type: ignore[arg-type]
            stream = await s.client.chat.completions.create(
                model="",
                messages=messages,  # type: ignore[arg-type]
                stream=True,
            )
            async for _ in stream:
                pass
            # Both ways, word for word and space for space, as the site received them.
            assert list(s.site.prompts) == [expected, expected], generation
