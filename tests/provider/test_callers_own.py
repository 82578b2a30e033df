"""What belongs to one call stays with it: a caller's cookies are that call's only, and
its messages reach the site exactly as written (whitespace included)."""

from __future__ import annotations

from pathlib import Path

import pytest

import sandbox
from provider.errors import ChallengeError
from scraper.http import DEFAULT_USER_AGENT
from tests.conftest import chat, provider_for

ANSWER = "You said: Hello sandbox"


async def test_a_callers_cookies_are_never_stored_for_later_callers(cache_dir: Path) -> None:
    """A clearance the caller solved elsewhere lets that caller through the challenge;
    it must not become part of the shared credentials, on disk or on the wire of the
    next caller, who did not send it (and so meets the challenge)."""
    async with sandbox.running(generation="aipkit", challenge=True) as site:
        token = site.issue_clearance(DEFAULT_USER_AGENT)
        provider = provider_for(site.url, cache_dir, browser="never")
        mine = {"cf_clearance": token, "pref": "alice-private-pref"}
        assert await chat(provider, cookies=mine) == ANSWER  # cold: the page was read
        assert site.hits["challenge"] == 0
        stored = provider.stored_credentials()
        assert stored is not None
        assert not {c.name for c in stored.cookies} & set(mine)
        on_disk = b"".join(p.read_bytes() for p in (cache_dir / "credentials").glob("*.json"))
        assert on_disk and token.encode() not in on_disk and b"alice-private-pref" not in on_disk
        # The same caller again: warm, still through (its cookies go with its own call).
        assert await chat(provider, cookies=mine) == ANSWER
        # Another caller, no cookies: the stored credentials carry no clearance.
        with pytest.raises(ChallengeError):
            await chat(provider, timeout=10)
        assert site.hits["challenge"] >= 1


MESSAGES = [
    {"role": "system", "content": "  Keep\tmy   spacing  "},
    {
        "role": "user",
        "content": "Fix this:\n```python\ndef f(x):\n    if x:\n"
        "        return  1 \n\n\treturn 0\n```\n",
    },
    {"role": "assistant", "content": "\n    indented reply\n"},
    {"role": "user", "content": "\r\nthanks\t "},
]
EXPECTED = (
    "System:   Keep\tmy   spacing  \n"
    "User: Fix this:\n```python\ndef f(x):\n    if x:\n        return  1 \n\n\treturn 0\n```\n\n"
    "Assistant: \n    indented reply\n\n"
    "User: \r\nthanks\t \n"
    "Assistant:"
)


@pytest.mark.parametrize("generation", ["legacy", "aipkit"])
async def test_whitespace_inside_messages_reaches_the_site_exactly(
    generation: str, cache_dir: Path
) -> None:
    async with sandbox.running(generation=generation) as site:
        await chat(provider_for(site.url, cache_dir), MESSAGES)
        assert list(site.prompts) == [EXPECTED]
