"""The transport a site needs travels with its credentials through the store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provider import ChatgptFree, Credentials, store_for
from provider.errors import InvalidInputError
from tests.conftest import chat, provider_for
from tests.provider.test_store import SITE, make


def test_the_transport_is_stored_and_read_back(cache_dir: Path) -> None:
    store = store_for(cache_dir)
    store.put(make(transport="browser"), "")
    store._memory.clear()  # read the file, not the memory cache
    again = store.get(SITE, "")
    assert again is not None and again.transport == "browser"


def test_entries_written_before_the_transport_existed_read_as_http(cache_dir: Path) -> None:
    data = make().to_dict()
    del data["transport"]
    assert Credentials.from_dict(data).transport == "http"


def test_the_release_is_stored_and_entries_without_it_read_as_unknown(cache_dir: Path) -> None:
    store = store_for(cache_dir)
    store.put(make(release="1.9.18"), "")
    store._memory.clear()
    again = store.get(SITE, "")
    assert again is not None and again.release == "1.9.18"
    data = make(release="1.9.18").to_dict()
    del data["release"]
    assert Credentials.from_dict(data).release is None


def test_unknown_keys_in_a_stored_entry_are_ignored(cache_dir: Path) -> None:
    store = store_for(cache_dir)
    store.put(make(nonce="0123456789"), "")
    (path,) = store.folder.glob("*.json")
    payload = json.loads(path.read_text())
    payload["credentials"]["written_by_a_newer_version"] = {"x": 1}
    payload["credentials"]["cookies"] = [
        {"name": "a", "value": "b", "domain": "127.0.0.1", "partitioned": True}
    ]
    path.write_text(json.dumps(payload))
    store._memory.clear()
    found = store.get(SITE, "")
    assert found is not None and found.nonce == "0123456789"
    assert [c.name for c in found.cookies] == ["a"]


@pytest.mark.parametrize("bad", ["carrier-pigeon", 3])
async def test_an_unknown_transport_is_refused_before_any_request(
    bad: object, cache_dir: Path
) -> None:
    provider = provider_for("http://127.0.0.1:9", cache_dir)
    with pytest.raises(InvalidInputError, match="transport"):
        await chat(provider, transport=bad)


async def test_browser_transport_with_browser_never_is_refused(cache_dir: Path) -> None:
    provider: type[ChatgptFree] = provider_for("http://127.0.0.1:9", cache_dir, browser="never")
    with pytest.raises(InvalidInputError, match="browser='never'"):
        await chat(provider, transport="browser")
