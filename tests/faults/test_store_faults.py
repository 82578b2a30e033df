"""The credential store under concurrent writers and without write access."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

import sandbox
from provider.store import CredentialStore
from provider.store.base import entry_key
from tests import procs
from tests.conftest import chat, provider_for
from tests.provider.test_store import SITE

ROOT = Path(__file__).resolve().parents[2]

WRITER = r"""
import sys, time
sys.path.insert(0, sys.argv[3])
from pathlib import Path
from provider.store import CredentialStore
from tests.provider.test_store import make
store = CredentialStore(Path(sys.argv[1]))
tag = sys.argv[2]
for i in range(300):
    store.put(make(nonce=f"{tag}{i:08d}"[-10:], cookies=()), "")
"""


def test_two_processes_writing_at_once_never_tear_the_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writers = [
        procs.popen([sys.executable, "-c", WRITER, str(tmp_path), tag, str(ROOT)])
        for tag in ("a", "b")
    ]
    path = CredentialStore(tmp_path).path(entry_key(SITE, ""))
    reads = 0
    try:
        with caplog.at_level(logging.WARNING):
            while any(w.poll() is None for w in writers):
                if path.exists():
                    data = json.loads(path.read_text())  # a torn file would fail here
                    assert data["credentials"]["nonce"][0] in "ab"
                    reads += 1
    finally:
        procs.stop(writers)
    assert [w.returncode for w in writers] == [0, 0]
    assert reads > 0
    assert "corrupt" not in caplog.text
    leftovers = [p.name for p in path.parent.iterdir() if p.name.startswith(".tmp-")]
    assert leftovers == []


#: Root writes anywhere; drop the capabilities that let it (util-linux's setpriv).
AS_ROOT_WITHOUT_OVERRIDE = [
    "setpriv",
    "--bounding-set=-dac_override,-dac_read_search",
    "--inh-caps=-dac_override,-dac_read_search",
]
READ_ONLY_CHAT = r"""
import asyncio, logging, sys
sys.path.insert(0, sys.argv[3])
logging.basicConfig(level=logging.WARNING, format="WARN %(message)s")
from pathlib import Path
from tests import procs
from tests.conftest import chat, provider_for
provider = provider_for(sys.argv[1], Path(sys.argv[2]))
for _ in range(3):
    print(asyncio.run(chat(provider)))
"""


async def test_read_only_cache_dir_works_without_caching_and_warns_once(tmp_path: Path) -> None:
    cache = tmp_path / "ro"
    cache.mkdir()
    cache.chmod(0o555)
    prefix = AS_ROOT_WITHOUT_OVERRIDE if os.geteuid() == 0 else []
    async with sandbox.running(generation="aipkit") as site:
        result = await procs.run(
            *prefix,
            sys.executable,
            "-c",
            READ_ONLY_CHAT,
            site.url,
            str(cache),
            str(ROOT),
            timeout=60,
        )
        assert result.code == 0, result.err
        assert result.out.splitlines() == ["You said: Hello sandbox"] * 3
        # One process, three calls: credentials kept in memory, the page read once.
        assert site.hits["GET /chat/"] == 1
    assert result.err.count("WARN") == 1
    assert "cannot write the credential store" in result.err
    assert list(cache.iterdir()) == []


def test_bad_cache_dir_env_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from provider.errors import ConfigurationError

    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    monkeypatch.setenv("PROVIDER_CACHE_DIR", str(not_a_dir))
    provider = provider_for("http://127.0.0.1:9", None)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="PROVIDER_CACHE_DIR"):
        asyncio.run(chat(provider))


async def test_expired_entry_is_refreshed_not_used(cache_dir: Path) -> None:
    from dataclasses import replace

    async with sandbox.running(generation="legacy") as site:
        provider = provider_for(site.url, cache_dir)
        await chat(provider)
        creds = provider.stored_credentials()
        assert creds is not None
        # Past its expiry (and with a nonce the site would refuse): it must not be sent.
        stale = replace(creds, nonce="0123456789", expires_at=time.time() - 1)
        CredentialStore(cache_dir).put(stale, "")
        assert await chat(provider) == "You said: Hello sandbox"
        assert site.hits["GET /chat/"] == 2  # read afresh, not tried first
        assert site.hits["admin-ajax:wpaicg_chat_shortcode_message"] == 2  # no rejected send


NEWER_IN_MEMORY = r"""
import sys
sys.path.insert(0, sys.argv[2])
from pathlib import Path
from provider.store import CredentialStore
from tests.provider.test_store import SITE, make
store = CredentialStore(Path(sys.argv[1]))
store.put(make(nonce="older-0001"), "")
store.folder.chmod(0o555)  # the disk turns unusable after a first write
store.put(make(nonce="newer-0002"), "")  # kept in memory only
print(store.get(SITE, "").nonce)
print(CredentialStore(store.directory).get(SITE, "").nonce)
"""

#: A store whose credentials folder exists but cannot be written (the lock file
#: cannot be made), then cannot even be searched (stat fails): a refresh still
#: returns, and the entry is then served from memory, with one warning each.
LOCKED_OUT = r"""
import asyncio, logging, sys
sys.path.insert(0, sys.argv[2])
logging.basicConfig(level=logging.WARNING, format="WARN %(message)s")
from pathlib import Path
from provider.store import CredentialStore
from scraper.http import Deadline
from tests.provider.test_store import SITE, make
store = CredentialStore(Path(sys.argv[1]))
store.folder.mkdir(parents=True)
store.folder.chmod(0o555)
async def fetch():
    return make(nonce="fetched-003")
print(asyncio.run(store.refresh(SITE, "", fetch, deadline=Deadline(10))).nonce)
store.folder.chmod(0o000)
print(CredentialStore(store.directory).get(SITE, ""))  # cannot look: nothing, a warning
other = CredentialStore(store.directory)
other.put(make(nonce="memory-0004"), "")
print(other.get(SITE, "").nonce)
"""


async def test_credentials_written_to_memory_win_over_an_older_file(tmp_path: Path) -> None:
    """Promise (the store's "Trouble"): once the folder cannot be written, what this
    process stored in memory is what it uses; the older file on disk (still readable)
    never replaces it (issue 27, a survivor of the mutation tool)."""
    prefix = AS_ROOT_WITHOUT_OVERRIDE if os.geteuid() == 0 else []
    result = await procs.run(
        *prefix,
        sys.executable,
        "-c",
        NEWER_IN_MEMORY,
        str(tmp_path / "cache"),
        str(ROOT),
        timeout=60,
    )
    assert result.code == 0, result.err
    assert result.out.splitlines() == ["newer-0002", "older-0001"]


async def test_a_folder_without_write_or_search_access_never_fails_a_call(
    tmp_path: Path,
) -> None:
    """Promise (the store's "Trouble": "neither ever fails a chat"): a credentials
    folder where no lock file can be made, or that cannot even be searched, leaves a
    refresh and a read working from memory, with a warning that says why in words
    (the OS's reason, not a raw errno tuple) (issue 27, survivors of the mutation tool)."""
    if os.geteuid() == 0 and not shutil.which("setpriv"):
        pytest.skip("root without setpriv: permissions cannot be taken away")
    prefix = AS_ROOT_WITHOUT_OVERRIDE if os.geteuid() == 0 else []
    cache = tmp_path / "cache"
    try:
        result = await procs.run(
            *prefix, sys.executable, "-c", LOCKED_OUT, str(cache), str(ROOT), timeout=60
        )
    finally:
        (cache / "credentials").chmod(0o700)
    assert result.code == 0, result.err
    assert result.out.splitlines() == ["fetched-003", "None", "memory-0004"]
    assert "cannot read the credential store" in result.err
    assert "(PermissionError: Permission denied); credentials are kept in memory" in result.err
