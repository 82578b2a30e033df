"""The error tree's shapes and ``redact_url`` at its edges (issue 27: survivors of the
mutation run over scraper/errors.py)."""

from __future__ import annotations

import pytest

from scraper import errors
from scraper.errors import redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (None, ""),
        ("", ""),
        ("http://[::1", "<unparseable URL>"),
        ("socks5://bob:hunter2@10.0.0.1:1080", "socks5://bob:***@10.0.0.1:1080"),
        ("http://bob@h.test:3128/", "http://bob@h.test:3128/"),  # no password: nothing hidden
        ("http://bob:p@ss@h.test:3128", "http://bob:***@h.test:3128"),  # '@' in the password
        ("http://bob:@h.test:1", "http://bob:***@h.test:1"),  # an empty one is still hidden
        ("https://s.test/chat/?nonce=abc#frag", "https://s.test/chat/?…"),
        ("https://s.test/chat/", "https://s.test/chat/"),
    ],
)
def test_redact_url(url: str | None, shown: str) -> None:
    assert redact_url(url) == shown


def test_the_tree_and_its_standard_bases() -> None:
    assert issubclass(errors.ProviderTimeoutError, TimeoutError)
    assert issubclass(errors.InvalidInputError, ValueError)
    assert issubclass(errors.QuotaExceededError, errors.RateLimitedError)
    for name in errors.__all__:
        value = getattr(errors, name)
        if isinstance(value, type):
            assert issubclass(value, errors.ProviderError)
            assert value.__doc__, name  # a docstring per class: when it happens


def test_rate_limited_keeps_its_wait() -> None:
    err = errors.RateLimitedError("slow down", retry_after=30)
    assert err.retry_after == 30 and str(err) == "slow down"
    assert errors.QuotaExceededError("used up").retry_after is None
