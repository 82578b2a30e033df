"""The g4f drop-in, driven by g4f's own ``AsyncClient`` against the sandbox."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

import sandbox
from provider import ChatgptFree as LibraryChatgptFree
from provider.errors import BlockedError, ModelNotSupportedError

# g4f logs usage under its config dir (~/.g4f) from import on: keep tests out of $HOME.
if not os.environ.get("G4F_CONFIG_DIR"):
    os.environ["G4F_CONFIG_DIR"] = tempfile.mkdtemp(prefix="g4f-config-")
    atexit.register(shutil.rmtree, os.environ["G4F_CONFIG_DIR"], ignore_errors=True)
pytest.importorskip("g4f", reason='the g4f drop-in needs g4f: pip install ".[g4f]"')

import g4f.client
from g4f.providers.base_provider import (
    AsyncGeneratorProvider,
    ProviderModelMixin,
)

from provider.g4f_provider import ChatgptFree, make_g4f_provider

USER = [{"role": "user", "content": "Hello sandbox"}]
ANSWER = "You said: Hello sandbox"


def test_it_is_a_genuine_g4f_provider() -> None:
    assert issubclass(ChatgptFree, AsyncGeneratorProvider)
    assert issubclass(ChatgptFree, ProviderModelMixin)
    assert issubclass(ChatgptFree, LibraryChatgptFree)
    assert ChatgptFree.url == "https://chatgptfree.ai" and ChatgptFree.working
    assert ChatgptFree.get_models() == ["gpt-4o-mini-2024-07-18"]
    assert ChatgptFree.get_model("auto") == ChatgptFree.get_model("") == ChatgptFree.default_model
    assert ChatgptFree.get_model("gpt-4o-mini") == "gpt-4o-mini-2024-07-18"
    assert "model" in ChatgptFree.get_parameters()  # g4f's own introspection works
    with pytest.raises(ModelNotSupportedError):
        ChatgptFree.get_model("gpt-9")
    with pytest.raises(TypeError, match="unknown setting"):
        make_g4f_provider("http://127.0.0.1:9", colour="blue")


@pytest.mark.parametrize("generation", ["legacy", "aipkit"])
async def test_async_client_non_streaming(generation: str, cache_dir: Path) -> None:
    async with sandbox.running(generation=generation) as site:
        provider = make_g4f_provider(site.url, cache_dir=cache_dir, browser="never")
        client = g4f.client.AsyncClient(provider=provider)
        reply = await client.chat.completions.create(model="gpt-4o-mini", messages=USER)
        again = await client.chat.completions.create(model="", messages=USER)
        assert site.hits["GET /chat/"] == 1  # the library's credential store, shared
    assert reply.choices[0].message.content == ANSWER
    assert reply.choices[0].finish_reason == "stop"
    assert again.choices[0].message.content == ANSWER
    assert provider.stored_credentials() is not None


@pytest.mark.parametrize("generation", ["legacy", "aipkit"])
async def test_async_client_streaming(generation: str, cache_dir: Path) -> None:
    async with sandbox.running(generation=generation, answer_bytes=300, chunk_delay=0.01) as site:
        provider = make_g4f_provider(site.url, cache_dir=cache_dir)
        client = g4f.client.AsyncClient(provider=provider)
        stream = client.chat.completions.create(model="", messages=USER, stream=True)
        chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert len(text.encode()) == 300
    assert sum(1 for c in chunks if c.choices[0].delta.content) > 5
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_a_subclass_with_url_and_the_library_errors(cache_dir: Path) -> None:
    folder = cache_dir
    async with sandbox.running(generation="aipkit", hard_block=True) as site:

        class MySite(ChatgptFree):
            url = site.url
            cache_dir = folder

        client = g4f.client.AsyncClient(provider=MySite)
        with pytest.raises(BlockedError):
            await client.chat.completions.create(model="", messages=USER)
        with pytest.raises(ModelNotSupportedError):
            await client.chat.completions.create(model="gpt-9", messages=USER)
        site.config.hard_block = False
        reply = await client.chat.completions.create(model="", messages=USER)
    assert reply.choices[0].message.content == ANSWER


@pytest.mark.parametrize("stream", [False, True])
async def test_the_whole_conversation_reaches_the_site(stream: bool, cache_dir: Path) -> None:
    messages = [
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "second"},
    ]
    async with sandbox.running(generation="legacy") as site:
        provider = make_g4f_provider(site.url, cache_dir=cache_dir, browser="never")
        client = g4f.client.AsyncClient(provider=provider)
        if stream:
            async for _ in client.chat.completions.create(model="", messages=messages, stream=True):
                pass
        else:
            await client.chat.completions.create(model="", messages=messages)
        assert list(site.prompts) == [
            "System: Be brief\nUser: first\nAssistant: ok\nUser: second\nAssistant:"
        ]


async def test_the_drop_in_follows_the_environments_proxy(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # g4f's client passes no proxy of ours: the environment's is the only way in.
    from tests.proxies import http_proxy

    async with (
        http_proxy(hosts={"chatgptfree.test": "127.0.0.1"}) as proxy,
        sandbox.running(generation="aipkit") as site,
    ):
        monkeypatch.setenv("HTTP_PROXY", f"http://alice:s3cr3t-pw@127.0.0.1:{proxy.port}")
        url = site.url.replace("127.0.0.1", "chatgptfree.test")
        provider = make_g4f_provider(url, cache_dir=cache_dir, browser="never")
        client = g4f.client.AsyncClient(provider=provider)
        reply = await client.chat.completions.create(model="", messages=USER)
        assert reply.choices[0].message.content == ANSWER
        assert proxy.connections == sum(site.hits.values())
