"""The transport a site needs travels with its credentials through the store."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from provider import ChatgptFree, Credentials, store_for
from provider.errors import InvalidInputError
from tests.conftest import chat, provider_for


def _creds(site: str) -> Credentials:
    now = time.time()
    return Credentials(
        site=site,
        generation="aipkit",
        nonce="0123456789",
        post_id=12,
        bot_id=5,
        ajax_url=site + "/wp-admin/admin-ajax.php",
        page_url=site + "/chat/",
        user_agent="Mozilla/5.0",
        source="browser",
        obtained_at=now,
        expires_at=now + 3600,
    )


def test_the_transport_is_stored_and_read_back(cache_dir: Path) -> None:
    store = store_for(cache_dir)
    store.put(replace(_creds("https://a.example"), transport="browser"), "")
    store._memory.clear()  # read the file, not the memory cache
    again = store.get("https://a.example", "")
    assert again is not None and again.transport == "browser"


def test_entries_written_before_the_transport_existed_read_as_http(cache_dir: Path) -> None:
    data = _creds("https://b.example").to_dict()
    del data["transport"]
    assert Credentials.from_dict(data).transport == "http"


def test_unknown_keys_in_a_stored_entry_are_ignored(cache_dir: Path) -> None:
    store = store_for(cache_dir)
    store.put(_creds("https://c.example"), "")
    (path,) = store.folder.glob("*.json")
    payload = json.loads(path.read_text())
    payload["credentials"]["written_by_a_newer_version"] = {"x": 1}
    payload["credentials"]["cookies"] = [
        {"name": "a", "value": "b", "domain": "c.example", "partitioned": True}
    ]
    path.write_text(json.dumps(payload))
    store._memory.clear()
    found = store.get("https://c.example", "")
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
