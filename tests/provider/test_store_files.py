"""The file store's promises at their edges: the atomic write stays inside the store's
own folder (whatever TMPDIR says), entries are good until exactly their expiry, and a
corrupt file costs one warning, not one per look."""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import sandbox
from provider.store import CredentialStore
from provider.store.base import entry_key
from tests.conftest import chat, provider_for
from tests.provider.test_store import SITE, make

SHM = Path("/dev/shm")


@pytest.fixture
def tmpdir_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """TMPDIR on another filesystem than the store (tmpfs vs the test's disk)."""
    if not SHM.is_dir() or not os.access(SHM, os.W_OK):
        pytest.skip("no second filesystem: /dev/shm is missing or not writable")
    if os.stat(SHM).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second filesystem: /dev/shm and the test's tmp_path share a device")
    other = Path(tempfile.mkdtemp(prefix="tmpdir-elsewhere-", dir=SHM))
    monkeypatch.setenv("TMPDIR", str(other))
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR, as a new process does
    assert tempfile.gettempdir() == str(other)
    yield other
    for leftover in other.iterdir():
        leftover.unlink()
    other.rmdir()


def test_writes_land_with_tmpdir_on_another_filesystem(
    tmp_path: Path, tmpdir_elsewhere: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = CredentialStore(tmp_path / "cache")
    creds = make(nonce="n-tmpdir-1")
    with caplog.at_level(logging.WARNING):
        store.put(creds, "")
        store.put(make(nonce="n-tmpdir-2"), "")  # a replacement, renamed over the first
    assert caplog.records == []  # no "cannot write": the disk kept working
    path = store.path(entry_key(SITE, ""))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = CredentialStore(tmp_path / "cache").get(SITE, "")  # as another process reads it
    assert again is not None and again.nonce == "n-tmpdir-2"
    assert list(tmpdir_elsewhere.iterdir()) == []
    assert [p.name for p in store.folder.iterdir()] == [path.name]  # no temp file left


async def test_a_chat_persists_with_tmpdir_on_another_filesystem(
    cache_dir: Path, tmpdir_elsewhere: Path
) -> None:
    async with sandbox.running(generation="legacy") as site:
        await chat(provider_for(site.url, cache_dir))
        # A new process (a fresh store on the same folder) finds them on disk.
        assert CredentialStore(cache_dir).get(site.url, "") is not None
    assert list(tmpdir_elsewhere.iterdir()) == []


def test_an_entry_is_good_until_exactly_its_expiry(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    store.put(make(), "")
    got = CredentialStore(tmp_path).get(SITE, "")
    assert got is not None
    assert got.fresh(got.expires_at - 0.001)
    assert not got.fresh(got.expires_at)


def test_a_corrupt_file_is_one_warning_however_often_it_is_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    CredentialStore(tmp_path).put(make(), "")
    store = CredentialStore(tmp_path)
    path = store.path(entry_key(SITE, ""))
    path.write_bytes(b'{"version": 1, "credentials": {"nonce": ')
    with caplog.at_level(logging.WARNING, logger="provider.store.files"):
        for _ in range(3):
            assert store.get(SITE, "") is None
    (warning,) = caplog.records
    assert "corrupt" in warning.getMessage() and path.name in warning.getMessage()
    store.put(make(nonce="n-repaired"), "")  # the next refresh replaces it
    again = CredentialStore(tmp_path).get(SITE, "")
    assert again is not None and again.nonce == "n-repaired"


async def test_a_chat_over_a_corrupt_file_answers_with_one_warning(
    cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with sandbox.running(generation="aipkit") as site:
        provider = provider_for(site.url, cache_dir)
        await chat(provider)
        CredentialStore(cache_dir).path(entry_key(site.url, "")).write_text("{not json")
        with caplog.at_level(logging.WARNING):
            assert await chat(provider) == "You said: Hello sandbox"
        assert site.hits["GET /chat/"] == 2  # counted as empty: read the page again
    (warning,) = caplog.records
    assert "corrupt credential file" in warning.getMessage()


# -- values beside the credentials (the endpoint's stored conversations) -------------------


async def test_values_are_private_files_that_expire(tmp_path: Path) -> None:
    from provider.store import files as store_files

    store = CredentialStore(tmp_path)
    await store.put_value("responses", "resp_../../etc", "kept", ttl=60)
    await store.put_value("responses", "resp_gone", "old", ttl=0)
    kept = store.value_path("responses", "resp_../../etc")
    assert len(list(kept.parent.iterdir())) == 2
    # The client's id never names the file (hashed): no way out of the folder.
    assert kept.parent == tmp_path / "values" / "responses" and "etc" not in kept.name
    assert kept.stat().st_mode & 0o777 == 0o600
    assert await store.get_value("responses", "resp_../../etc") == "kept"
    assert await store.get_value("other", "resp_../../etc") is None
    assert await store.get_value("responses", "resp_gone") is None  # expired: and deleted
    assert len(list(kept.parent.iterdir())) == 1
    # A later write sweeps what expired without ever being asked for again.
    await store.put_value("responses", "resp_stale", "x", ttl=0)
    store._swept.clear()
    await store.put_value("responses", "resp_new", "y", ttl=60)
    assert len(list(kept.parent.iterdir())) == 2
    assert store_files.SWEEP_SECONDS > 0


async def test_values_live_in_memory_when_the_folder_cannot_be_written(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    store = CredentialStore(blocker)
    await store.put_value("responses", "resp_a", "in memory", ttl=60)
    assert await store.get_value("responses", "resp_a") == "in memory"
    await store.put_value("responses", "resp_b", "gone", ttl=0)
    assert await store.get_value("responses", "resp_b") is None
