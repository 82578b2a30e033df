"""The credential store: atomic 0600 files, corruption tolerance, single-flight refreshes."""

from __future__ import annotations

import asyncio
import json
import logging
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provider.store import CredentialStore
from provider.store.base import entry_key
from scraper.credentials import NONCE_MIN_LIFETIME, Cookie, Credentials, expiry
from scraper.errors import ProviderTimeoutError
from scraper.http import Deadline
from tests import procs

SITE = "http://127.0.0.1:9"


def make(nonce: str = "abcdef0123", obtained: float | None = None, **kw: object) -> Credentials:
    now = time.time() if obtained is None else obtained
    cookies = tuple(kw.pop("cookies", ()))  # type: ignore[arg-type]
    return Credentials(
        site=SITE,
        generation="aipkit",
        nonce=nonce,
        post_id=6,
        bot_id=5,
        ajax_url=SITE + "/wp-admin/admin-ajax.php",
        page_url=SITE + "/chat/",
        user_agent="UA",
        source="http",
        obtained_at=now,
        expires_at=expiry(now, cookies),
        cookies=cookies,
        session_id="sid",
        **kw,  # type: ignore[arg-type]
    )


def test_put_get_roundtrip_file_mode_0600_and_no_secret_in_file_name(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    creds = make(
        cookies=(Cookie("cf_clearance", "secret-value", "127.0.0.1", expires=time.time() + 60),)
    )
    store.put(creds, "socks5://u:hunter2@127.0.0.1:1080")
    files = list(store.folder.glob("*.json"))
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert "hunter2" not in files[0].name
    assert stat.S_IMODE(store.folder.stat().st_mode) == 0o700
    # A second store on the same folder (another process) reads the same thing.
    again = CredentialStore(tmp_path).get(SITE, "socks5://u:hunter2@127.0.0.1:1080")
    assert again == creds
    assert CredentialStore(tmp_path).get(SITE, "") is None  # keyed by proxy too


def test_expiry_is_nonce_lifetime_or_clearance_cookie_whichever_first() -> None:
    now = 1_000_000.0
    assert expiry(now, ()) == now + NONCE_MIN_LIFETIME
    soon = Cookie("cf_clearance", "v", "h", expires=now + 600)
    assert expiry(now, (soon, Cookie("other", "v", "h", expires=now + 5))) == now + 600


def test_repr_never_shows_secrets() -> None:
    creds = make(nonce="n0nc3n0nc3", cookies=(Cookie("c", "cookie-secret", "h"),))
    assert "n0nc3n0nc3" not in repr(creds)
    assert "cookie-secret" not in repr(creds)


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"",
        b'{"version": 1}',
        b"\xff\xfe\x00",
        b'{"version":1,"credentials":{"site":1}}',
    ],
)
def test_corrupt_file_is_empty_with_a_warning(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    store = CredentialStore(tmp_path)
    store.put(make(), "")
    store.path(entry_key(SITE, "")).write_bytes(content)
    with caplog.at_level(logging.WARNING):
        assert CredentialStore(tmp_path).get(SITE, "") is None
    assert "corrupt" in caplog.text or "unreadable" in caplog.text


def test_truncated_file_is_empty(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    store.put(make(), "")
    path = store.path(entry_key(SITE, ""))
    path.write_bytes(path.read_bytes()[:40])
    assert CredentialStore(tmp_path).get(SITE, "") is None


def test_unwritable_dir_keeps_credentials_in_memory_and_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = CredentialStore(blocker)  # "credentials" folder cannot be made under a file
    creds = make()
    with caplog.at_level(logging.WARNING):
        store.put(creds, "")
        store.put(creds, "")
    assert store.get(SITE, "") == creds
    assert caplog.text.count("cannot write the credential store") == 1


def test_invalidate_removes_only_the_stale_entry(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    old = make("aaaaaaaaaa", obtained=time.time() - 10)
    new = make("bbbbbbbbbb")
    store.put(new, "")
    store.invalidate(old, "")  # someone already replaced it: keep the new one
    assert store.get(SITE, "") == new
    store.invalidate(new, "")
    assert store.get(SITE, "") is None


async def test_concurrent_refreshes_in_one_process_fetch_once(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    calls = 0
    gate = asyncio.Event()

    async def fetch() -> Credentials:
        nonlocal calls
        calls += 1
        await gate.wait()
        return make()

    tasks = [
        asyncio.create_task(store.refresh(SITE, "", fetch, deadline=Deadline(10)))
        for _ in range(200)
    ]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks)
    assert calls == 1
    assert all(r == results[0] for r in results)


async def test_refresh_abandoned_by_every_waiter_is_cancelled(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def fetch() -> Credentials:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("unreachable")

    task = asyncio.create_task(store.refresh(SITE, "", fetch, deadline=Deadline(10)))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(cancelled.wait(), 5)


async def test_a_caller_out_of_time_leaves_the_next_caller_a_refresh_of_its_own(
    tmp_path: Path,
) -> None:
    """Issue 27: the first caller's deadline has passed before the refresh task
    starts; a caller arriving right after must get credentials (or a
    ProviderError), never the cancelled task's bare CancelledError."""
    store = CredentialStore(tmp_path)
    calls = 0

    async def fetch() -> Credentials:
        nonlocal calls
        calls += 1
        return make()

    with pytest.raises(ProviderTimeoutError):
        await store.refresh(SITE, "", fetch, deadline=Deadline(0))
    # No await in between: the second caller arrives while the first one's
    # task is still unstarted.
    creds = await store.refresh(SITE, "", fetch, deadline=Deadline(10))
    assert creds.nonce == make().nonce
    assert calls == 1


async def test_a_caller_arriving_while_a_cancelled_refresh_cleans_up_gets_its_own(
    tmp_path: Path,
) -> None:
    """The last caller to leave waits for the refresh it cancelled to clean up (its
    browser closing); a caller arriving meanwhile starts a refresh of its own and
    gets credentials, never joining the one being cancelled."""
    store = CredentialStore(tmp_path)
    cleaning, release = asyncio.Event(), asyncio.Event()
    calls = 0

    async def slow_to_clean_up() -> Credentials:
        try:
            await asyncio.Event().wait()  # until cancelled
        finally:
            cleaning.set()
            await release.wait()  # the cleanup, under way
        raise AssertionError("unreachable")

    async def fetch() -> Credentials:
        nonlocal calls
        calls += 1
        return make()

    first = asyncio.create_task(store.refresh(SITE, "", slow_to_clean_up, deadline=Deadline(0.3)))
    await cleaning.wait()  # the first caller, out of time, has cancelled its refresh
    assert not first.done()  # ...and waits for the cleanup
    second = asyncio.create_task(store.refresh(SITE, "", fetch, deadline=Deadline(10)))
    # One turn of the loop: the second caller runs up to its wait (refresh has no
    # await before it), having joined a flight or started its own.
    await asyncio.sleep(0)
    release.set()
    with pytest.raises(ProviderTimeoutError):
        await first
    creds = await second
    assert creds.nonce == make().nonce
    assert calls == 1


async def test_a_waiter_leaving_does_not_cancel_the_refresh_another_still_awaits(
    tmp_path: Path,
) -> None:
    store = CredentialStore(tmp_path)
    started = asyncio.Event()
    gate = asyncio.Event()

    async def fetch() -> Credentials:
        started.set()
        await gate.wait()
        return make()

    leaving = asyncio.create_task(store.refresh(SITE, "", fetch, deadline=Deadline(10)))
    staying = asyncio.create_task(store.refresh(SITE, "", fetch, deadline=Deadline(10)))
    await started.wait()
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    gate.set()
    assert (await staying).nonce == make().nonce


async def test_refresh_uses_what_another_process_stored(tmp_path: Path) -> None:
    stale = make("aaaaaaaaaa", obtained=time.time() - 100)
    CredentialStore(tmp_path).put(make("cccccccccc"), "")  # "another process" refreshed

    async def fetch() -> Credentials:
        raise AssertionError("must not fetch: the store already holds newer credentials")

    got = await CredentialStore(tmp_path).refresh(
        SITE, "", fetch, deadline=Deadline(5), stale=stale
    )
    assert got.nonce == "cccccccccc"


CHILD = r"""
import asyncio, json, sys, time
sys.path.insert(0, sys.argv[3])
from provider.store import CredentialStore
from scraper.http import Deadline
from tests.provider.test_store import make

async def main():
    store = CredentialStore(__import__("pathlib").Path(sys.argv[1]))
    async def fetch():
        with open(sys.argv[2], "a") as fh:
            fh.write("fetch\n")
        await asyncio.sleep(0.5)   # hold the lock while the other process waits
        return make()
    creds = await store.refresh(make().site, "", fetch, deadline=Deadline(20))
    print(creds.nonce)

asyncio.run(main())
"""


def test_two_processes_starting_cold_fetch_once(tmp_path: Path) -> None:
    log = tmp_path / "fetches.log"
    root = str(Path(__file__).resolve().parents[2])
    children = [
        procs.popen(
            [sys.executable, "-c", CHILD, str(tmp_path / "cache"), str(log), root],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        outs = [p.communicate(timeout=60)[0].strip() for p in children]
    finally:
        procs.stop(children)
    assert [p.returncode for p in children] == [0, 0]
    assert outs[0] == outs[1] == "abcdef0123"
    assert log.read_text().count("fetch") == 1


def lock_holder(store: CredentialStore) -> subprocess.Popen[str]:
    """Another process holding the refresh lock of SITE's entry, until its stdin
    closes (or it is killed); returned once it holds it. Pair it with procs.stop."""
    store.folder.mkdir(parents=True, exist_ok=True)
    holder = procs.popen(
        [
            sys.executable,
            "-c",
            "import filelock,sys; l=filelock.FileLock(sys.argv[1]); l.acquire(); "
            "print('held', flush=True); sys.stdin.read()",
            str(store.folder / f"{entry_key(SITE, '')}.lock"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_lock_held_by_a_killed_process_does_not_block(tmp_path: Path) -> None:
    import filelock

    store = CredentialStore(tmp_path)
    lock_path = store.folder / f"{entry_key(SITE, '')}.lock"
    holder = lock_holder(store)
    try:
        with pytest.raises(filelock.Timeout):
            filelock.FileLock(lock_path).acquire(timeout=0)
    finally:
        procs.stop([holder])  # killed while holding the lock

    async def fetch() -> Credentials:
        return make()

    got = asyncio.run(store.refresh(SITE, "", fetch, deadline=Deadline(5)))
    assert got.nonce == "abcdef0123"


def test_stored_json_is_compact_and_versioned(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    store.put(make(), "")
    data = json.loads(store.path(entry_key(SITE, "")).read_text())
    assert data["version"] == 1
    assert data["credentials"]["generation"] == "aipkit"


def test_a_refresh_by_another_process_is_seen_by_a_warm_store(tmp_path: Path) -> None:
    # This process has read (and holds in memory) the entry; another process then
    # writes a newer one. The next look must return the newer one (a stat tells),
    # without a new store instance.
    store = CredentialStore(tmp_path)
    store.put(make("aaaaaaaaaa"), "")
    assert (held := store.get(SITE, "")) is not None and held.nonce == "aaaaaaaaaa"
    writer = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from provider.store import CredentialStore\n"
        "from tests.provider.test_store import make\n"
        "time.sleep(0.01)  # a later modification time, even on coarse clocks\n"
        "CredentialStore(Path(sys.argv[1])).put(make('bbbbbbbbbb'), '')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", writer, str(tmp_path)],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    seen = store.get(SITE, "")
    assert seen is not None and seen.nonce == "bbbbbbbbbb"
