"""Fixtures shared by the client-side tests: an isolated cache dir per test and a
``ChatgptFree`` subclass pointed at a sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from provider import ChatgptFree

#: Proxy settings of the machine running the suite: the tests set their own.
PROXY_VARIABLES = tuple(
    name
    for base in ("https_proxy", "http_proxy", "all_proxy", "no_proxy")
    for name in (base, base.upper())
)


@pytest.fixture(autouse=True)
def _no_proxy_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The library follows HTTPS_PROXY & co.: a developer's or CI's own proxy must
    not carry the suite's loopback traffic (nor the subprocesses it starts)."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh credential store for this test only (also for subprocesses it starts)."""
    path = tmp_path / "cache"
    monkeypatch.setenv("PROVIDER_CACHE_DIR", str(path))
    yield path


def provider_for(url: str, cache: Path, **attrs: object) -> type[ChatgptFree]:
    """A subclass of ChatgptFree talking to ``url`` with its own cache dir."""
    return type("Local", (ChatgptFree,), {"url": url, "cache_dir": cache, **attrs})


USER = [{"role": "user", "content": "Hello sandbox"}]


async def chat(
    provider: type[ChatgptFree], messages: object = None, model: str = "", **kw: object
) -> str:
    return "".join(
        [
            c
            async for c in provider.create_async_generator(
                model, USER if messages is None else messages, **kw
            )
        ]
    )
