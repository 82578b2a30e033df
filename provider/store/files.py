"""The credential store: one file per (site, proxy), shared by every process of the user.

* Where: ``PROVIDER_CACHE_DIR``, else the user cache dir (platformdirs), in a
  ``credentials`` folder made with mode 0700.
* How: each entry is JSON written to a temporary file in the same folder with
  mode 0600, then renamed over the old one — a reader sees the old or the new
  file, never half of one.
* Refreshing: one refresh at a time per entry, across processes (a lock file
  beside the entry; the OS drops it when its holder dies, so a killed process
  never leaves the others stuck) and within a process (single-flight: every
  task that needs the same refresh awaits the same one).
* Trouble: a corrupt or unreadable entry counts as missing, with a warning;
  a folder we cannot write makes the store work from memory only, with one
  warning. Neither ever fails a chat.

The export file (``--export`` / ``--import``), the interface and single-flight
are in :mod:`provider.store.base`; backend selection in :mod:`provider.store`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from provider.store.base import (
    FILE_VERSION,
    SingleFlight,
    _Flight,
    _same,
    entry_key,
    value_key,
    write_private,
)
from scraper.credentials import Credentials
from scraper.errors import ConfigurationError, ProtocolError, redact_url
from scraper.http import Deadline

if TYPE_CHECKING:  # asyncio is imported when a refresh runs, not with the library
    import asyncio

__all__ = ["CredentialStore", "default_cache_dir", "file_store"]

log = logging.getLogger(__name__)

ENV_CACHE_DIR = "PROVIDER_CACHE_DIR"
#: How often a process waiting for another process's refresh looks at the lock.
LOCK_POLL_SECONDS = 0.02
#: How often writing a value also deletes the expired files of its namespace.
SWEEP_SECONDS = 60.0


def default_cache_dir() -> Path:
    """``$PROVIDER_CACHE_DIR`` if set, else the platform's user cache dir."""
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        path = Path(env).expanduser()
        if path.exists() and not path.is_dir():
            raise ConfigurationError(
                f"{ENV_CACHE_DIR}={env!r} is not a directory: point it at a folder "
                "(it is created if missing) or unset it"
            )
        return path
    import platformdirs  # imported on first use: it pulls in platform and more

    return Path(platformdirs.user_cache_dir("chatgptfree-provider"))


@dataclass
class _Cached:
    stamp: tuple[int, int]  # (mtime_ns, size) of the file it was read from
    creds: Credentials


@dataclass
class CredentialStore(SingleFlight):
    """Credentials by (site, proxy), on disk under ``directory`` and in memory.

    >>> store = CredentialStore(Path("/tmp/example-cache"))  # doctest: +SKIP
    >>> store.get("https://chatgptfree.ai", "")  # None until something is stored
    """

    directory: Path
    _memory: dict[str, _Cached] = field(default_factory=dict, repr=False)
    _flights: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Flight]] = field(
        default_factory=weakref.WeakKeyDictionary, repr=False
    )
    _paths: dict[str, Path] = field(default_factory=dict, repr=False)
    _names: dict[str, str] = field(default_factory=dict, repr=False)
    _disk_ok: bool = True
    _warned: set[str] = field(default_factory=set, repr=False)
    #: key → the (mtime_ns, size) of a file found unreadable: warned about once, not
    #: read again until it changes (a chat looks at its entry more than once).
    _unreadable: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)
    #: Values kept in memory while the disk is unusable: key → (expires_at, value).
    _values: dict[str, tuple[float, str]] = field(default_factory=dict, repr=False)
    #: namespace → time.time() of its last sweep of expired value files.
    _swept: dict[str, float] = field(default_factory=dict, repr=False)

    @property
    def folder(self) -> Path:
        return self.directory / "credentials"

    def _name(self, key: str) -> str:
        name = self._names[key] = str(self.path(key))
        return name

    def path(self, key: str) -> Path:
        path = self._paths.get(key)
        if path is None:
            path = self._paths[key] = self.folder / f"{key}.json"
        return path

    # -- reading -----------------------------------------------------------------

    def get(self, site: str, proxy: str) -> Credentials | None:
        """The stored credentials, fresh or not (check :meth:`Credentials.fresh`)."""
        key = entry_key(site, proxy)
        cached = self._memory.get(key)
        if not self._disk_ok and cached is not None and cached.stamp == (0, 0):
            return cached.creds  # written while the disk was unusable: newer than any file
        try:
            # A stat per call (a string path: no Path work) is how a refresh by
            # another process is seen; the file is read only when it changed.
            st = os.stat(self._names.get(key) or self._name(key))
        except FileNotFoundError:
            return self._from_memory_only(key)
        except OSError as exc:
            self._warn_once("stat", f"cannot read the credential store at {self.folder} ({exc})")
            return self._from_memory_only(key)
        stamp = (st.st_mtime_ns, st.st_size)
        if cached is not None and cached.stamp == stamp:
            return cached.creds
        if self._unreadable.get(key) == stamp:
            return None
        creds = self._read(self.path(key))
        if creds is not None:
            self._memory[key] = _Cached(stamp, creds)
            self._unreadable.pop(key, None)
        else:
            self._unreadable[key] = stamp
        return creds

    def _from_memory_only(self, key: str) -> Credentials | None:
        # With no file (never written, deleted, or a read-only folder) only
        # what this process wrote itself while the disk was unusable counts.
        cached = self._memory.get(key)
        if cached is not None and cached.stamp == (0, 0):
            return cached.creds
        self._memory.pop(key, None)
        return None

    def _read(self, path: Path) -> Credentials | None:
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            log.warning(
                "ignoring unreadable credential file %s (%s)", path.name, type(exc).__name__
            )
            return None
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or data.get("version") != FILE_VERSION:
                raise ProtocolError("unknown file version")
            return Credentials.from_dict(data["credentials"])
        except (ValueError, KeyError, TypeError, ProtocolError):
            log.warning(
                "ignoring a corrupt credential file %s: it is treated as empty and will be "
                "replaced on the next refresh",
                path.name,
            )
            return None

    def entries(self) -> list[Credentials]:
        """Every readable entry on disk (fresh or not), for listings and export."""
        found = []
        with contextlib.suppress(OSError):
            for path in sorted(self.folder.glob("*.json")):
                creds = self._read(path)
                if creds is not None:
                    found.append(creds)
        return found

    # -- writing -----------------------------------------------------------------

    def put(self, creds: Credentials, proxy: str) -> None:
        """Store ``creds`` for (creds.site, proxy) atomically, mode 0600."""
        key = entry_key(creds.site, proxy)
        if self._disk_ok:
            try:
                stamp = self._write(self.path(key), creds)
                self._memory[key] = _Cached(stamp, creds)
                return
            except OSError as exc:
                self._disk_failed(exc)
        self._memory[key] = _Cached((0, 0), creds)

    def _disk_failed(self, exc: OSError) -> None:
        """From now on, work from memory: one warning, however often the disk fails."""
        self._disk_ok = False
        self._warn_once(
            "write",
            f"cannot write the credential store at {self.folder} ({type(exc).__name__}: "
            f"{exc.strerror or exc}); credentials are kept in memory for this process only. "
            f"Set {ENV_CACHE_DIR} to a writable folder to share them",
        )

    def _write(self, path: Path, creds: Credentials) -> tuple[int, int]:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        payload = {"version": FILE_VERSION, "credentials": creds.to_dict()}
        write_private(path, json.dumps(payload, separators=(",", ":")).encode())
        st = path.stat()
        return (st.st_mtime_ns, st.st_size)

    # -- moving credentials between hosts ------------------------------------------------

    async def load(self, site: str, proxy: str) -> Credentials | None:
        """:meth:`get`: the file store has nothing slower to ask."""
        return self.get(site, proxy)

    async def save(self, creds: Credentials, proxy: str) -> None:
        """:meth:`put`, for callers that work with any store."""
        self.put(creds, proxy)

    async def dump(self) -> list[tuple[str, Credentials]]:
        """Every readable entry with its store key, for ``--export``."""
        return self.keyed_entries()

    def keyed_entries(self) -> list[tuple[str, Credentials]]:
        pairs = []
        with contextlib.suppress(OSError):
            for file in sorted(self.folder.glob("*.json")):
                creds = self._read(file)
                if creds is not None:
                    pairs.append((file.stem, creds))
        return pairs

    async def restore(self, entries: list[tuple[str, Credentials]]) -> None:
        """Store entries under the keys they came with (an ``--import``)."""
        self.put_keyed(entries)

    async def aclose(self) -> None:
        """Nothing to close: files are opened per operation."""

    # -- values beside the credentials (put_value / get_value) ---------------------------

    def value_path(self, namespace: str, key: str) -> Path:
        return self.directory / "values" / namespace / f"{value_key(namespace, key)}.json"

    async def put_value(self, namespace: str, key: str, value: str, ttl: float) -> None:
        """One file per value (0600, atomic), its expiry inside; expired files of the
        namespace are swept at most every :data:`SWEEP_SECONDS`, so the folder stays bounded."""
        expires_at = time.time() + ttl
        path = self.value_path(namespace, key)
        if self._disk_ok:
            try:
                path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                payload = {"version": FILE_VERSION, "expires_at": expires_at, "value": value}
                write_private(path, json.dumps(payload, separators=(",", ":")).encode())
                self._sweep(path.parent, namespace)
                return
            except OSError as exc:
                self._disk_failed(exc)
        self._values[str(path)] = (expires_at, value)

    async def get_value(self, namespace: str, key: str) -> str | None:
        path = self.value_path(namespace, key)
        kept = self._values.get(str(path))
        if kept is not None:
            if kept[0] > time.time():
                return kept[1]
            del self._values[str(path)]
        try:
            data = json.loads(path.read_bytes())
            expires_at, value = float(data["expires_at"]), data["value"]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("ignoring an unreadable value file %s/%s", namespace, path.name)
            return None
        if expires_at <= time.time() or not isinstance(value, str):
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        return value

    def _sweep(self, folder: Path, namespace: str) -> None:
        now = time.time()
        if now - self._swept.get(namespace, 0.0) < SWEEP_SECONDS:
            return
        self._swept[namespace] = now
        for file in folder.glob("*.json"):
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                if float(json.loads(file.read_bytes())["expires_at"]) <= now:
                    file.unlink()

    def put_keyed(self, entries: list[tuple[str, Credentials]]) -> None:
        for key, creds in entries:
            self._memory.pop(key, None)
            self._memory[key] = _Cached(self._write(self.path(key), creds), creds)

    def holds(self, key: str, creds: Credentials) -> bool:
        """Whether this process last read or wrote exactly ``creds`` under ``key``."""
        cached = self._memory.get(key)
        return cached is not None and _same(cached.creds, creds)

    def invalidate(self, stale: Credentials, proxy: str) -> None:
        """Forget ``stale`` — only if the store still holds exactly it.

        A newer entry written meanwhile (by another task or process) stays.
        """
        key = entry_key(stale.site, proxy)
        current = self.get(stale.site, proxy)
        if current is None or not _same(current, stale):
            return
        self._memory.pop(key, None)
        with contextlib.suppress(OSError):
            self.path(key).unlink()

    def _warn_once(self, what: str, message: str) -> None:
        if what not in self._warned:
            self._warned.add(what)
            log.warning(message)

    # -- refreshing ----------------------------------------------------------------

    async def _refresh_locked(
        self,
        key: str,
        site: str,
        proxy: str,
        fetch: Callable[[], Awaitable[Credentials]],
        deadline: Deadline,
        stale: Credentials | None,
    ) -> Credentials:
        async with self._process_lock(key, deadline):
            current = self.get(site, proxy)
            if (
                current is not None
                and current.fresh()
                and (stale is None or not _same(current, stale))
            ):
                log.debug("credentials for %s were refreshed by someone else", redact_url(site))
                return current
            creds = await fetch()
            self.put(creds, proxy)
            return creds

    @contextlib.asynccontextmanager
    async def _process_lock(self, key: str, deadline: Deadline) -> AsyncIterator[None]:
        import asyncio

        if not self._disk_ok:
            yield
            return
        import filelock  # only a refresh needs it

        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            lock = filelock.FileLock(self.folder / f"{key}.lock", timeout=0, mode=0o600)
        except OSError as exc:
            self._disk_failed(exc)
            yield
            return
        waited = False
        while True:
            try:
                lock.acquire(timeout=0)
                break
            except filelock.Timeout:
                if not waited:
                    waited = True
                    from provider import _metrics

                    _metrics.waited("lock")
                deadline.remaining("waiting for another process's credential refresh")
                await asyncio.sleep(LOCK_POLL_SECONDS)
            except OSError as exc:
                self._disk_failed(exc)
                yield
                return
        try:
            yield
        finally:
            lock.release()


_stores: dict[Path, CredentialStore] = {}


def file_store(directory: str | os.PathLike[str] | None = None) -> CredentialStore:
    """The process-wide file store for ``directory`` (default: :func:`default_cache_dir`)."""
    path = Path(directory).expanduser() if directory is not None else default_cache_dir()
    path = path.absolute()
    store = _stores.get(path)
    if store is None:
        store = _stores[path] = CredentialStore(path)
    return store
