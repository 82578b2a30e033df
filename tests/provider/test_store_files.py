"""The file store's promises at their edges: the atomic write stays inside the store's
own folder (whatever TMPDIR says), entries are good until exactly their expiry, a
corrupt file (or one of another version) costs one warning, not one per look, the
store's repr shows no secret, and a wait for another process's lock is counted."""

from __future__ import annotations

import json
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
from scraper.credentials import Cookie, Credentials
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


# -- issue 27: the mutation tool's survivors on provider/store/files.py ----------------


def test_an_entry_of_another_file_version_counts_as_missing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Promise (the module's "Trouble"): an entry this version cannot read (an older
    or newer file version) counts as missing, with a warning; it is never taken
    for valid credentials."""
    from provider.store.base import FILE_VERSION

    store = CredentialStore(tmp_path)
    store.put(make(), "")
    path = store.path(entry_key(SITE, ""))
    for version in (FILE_VERSION - 1, FILE_VERSION + 1, None):
        data = json.loads(path.read_text(encoding="utf-8"))
        data["version"] = version
        path.write_text(json.dumps(data), encoding="utf-8")
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            assert CredentialStore(tmp_path).get(SITE, "") is None, version
        assert "corrupt credential file" in caplog.text, version


async def test_the_stores_repr_holds_no_secret_even_in_memory(tmp_path: Path) -> None:
    """Promise ("no secret in any text"): a store's repr (in a log line, a traceback)
    shows none of what it keeps, credentials or values, also when an unusable disk
    keeps them in memory."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    store = CredentialStore(blocker / "cache")  # every write fails: memory only
    store.put(make(nonce="n0nce-27-secret", cookies=(Cookie("c", "cookie-27-secret"),)), "")
    await store.put_value("responses", "resp_1", "value-27-secret", ttl=60)
    assert store.get(SITE, "") is not None
    assert await store.get_value("responses", "resp_1") == "value-27-secret"
    text = repr(store)
    for secret in ("n0nce-27-secret", "cookie-27-secret", "value-27-secret"):
        assert secret not in text


async def test_a_refresh_waiting_for_another_processs_lock_is_counted_once(
    tmp_path: Path,
) -> None:
    """Promise (/metrics' single_flight_waits, scope "lock"): a refresh that waits for
    another process's refresh is counted, once however long it polls."""
    import asyncio

    from provider import _metrics
    from provider.store.files import LOCK_POLL_SECONDS
    from scraper.http import Deadline
    from tests import procs
    from tests.provider.test_store import lock_holder

    store = CredentialStore(tmp_path)
    holder = lock_holder(store)
    try:
        before = _metrics.COUNTS.single_flight_waits["lock"]

        async def fetch() -> Credentials:
            return make()

        refresh = asyncio.create_task(store.refresh(SITE, "", fetch, deadline=Deadline(20)))
        async with asyncio.timeout(10):  # the wait is counted while it lasts
            while _metrics.COUNTS.single_flight_waits["lock"] == before:
                await asyncio.sleep(0.01)
        assert not refresh.done()
        # Let it poll a few more times (counted once, however many): a span to pass,
        # not a condition to await.
        await asyncio.sleep(LOCK_POLL_SECONDS * 5)
        assert holder.stdin is not None
        holder.stdin.close()  # the holder ends: its lock goes with it
        got = await refresh
    finally:
        procs.stop([holder])
    assert got.nonce == make().nonce
    assert _metrics.COUNTS.single_flight_waits["lock"] == before + 1


async def test_a_values_folder_is_0700_and_its_files_0600(tmp_path: Path) -> None:
    """Promise (put_value: "one file per value (0600, atomic)", beside credentials
    kept in 0700 folders): a value's folder is the user's alone."""
    store = CredentialStore(tmp_path)
    await store.put_value("responses", "resp_1", "v", ttl=60)
    path = store.value_path("responses", "resp_1")
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_missing_cache_dir_from_the_environment_is_made_not_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Promise (default_cache_dir, the README): $PROVIDER_CACHE_DIR may name a folder
    that does not exist yet: it is created, only a file there is refused."""
    from provider.store.files import default_cache_dir

    missing = tmp_path / "not-yet"
    monkeypatch.setenv("PROVIDER_CACHE_DIR", str(missing))
    assert default_cache_dir() == missing


def test_a_file_written_by_another_process_reads_the_same_every_time(tmp_path: Path) -> None:
    """Promise: an entry another process wrote is read, and read again unchanged by
    each later look (the read is cached by the file's stamp, not lost)."""
    creds = make()
    CredentialStore(tmp_path).put(creds, "")
    reader = CredentialStore(tmp_path)
    for _ in range(3):
        got = reader.get(SITE, "")
        assert got is not None and got.nonce == creds.nonce
    assert reader.holds(entry_key(SITE, ""), creds) is True
    assert reader.holds(entry_key("http://127.0.0.1:8", ""), creds) is False


def test_an_entry_deleted_by_another_process_is_gone_here_too(tmp_path: Path) -> None:
    """Promise (invalidate, across processes): once an entry's file is gone, the
    credentials this process read from it are not used any more."""
    store = CredentialStore(tmp_path)
    store.put(make(), "")
    assert store.get(SITE, "") is not None
    store.path(entry_key(SITE, "")).unlink()  # as another process's invalidate does
    assert store.get(SITE, "") is None


async def test_entries_export_and_import_hold_every_stored_entry(tmp_path: Path) -> None:
    """Promise (``refresh --list``, ``--export`` / ``--import``): every readable entry
    is listed and exported with its key, and an import stores each under that key."""
    store = CredentialStore(tmp_path / "a")
    store.put(make(nonce="first-0001"), "")
    store.put(make(nonce="second-002"), "socks5://127.0.0.1:1080")
    assert sorted(c.nonce for c in store.entries()) == ["first-0001", "second-002"]
    dumped = await store.dump()
    assert sorted(c.nonce for _, c in dumped) == ["first-0001", "second-002"]
    assert {k for k, _ in dumped} == {
        entry_key(SITE, ""),
        entry_key(SITE, "socks5://127.0.0.1:1080"),
    }
    other = CredentialStore(tmp_path / "b")
    await other.restore(dumped)
    again = CredentialStore(tmp_path / "b")
    got = again.get(SITE, "socks5://127.0.0.1:1080")
    assert got is not None and got.nonce == "second-002"
