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

Which store: this file store by default; ``PROVIDER_STORE=redis://…`` (or
``store=`` on the provider class, ``--store`` on the commands) selects the
fleet store of :mod:`provider.redis_store`, which shares credentials and
single-flight between hosts and falls back to this one while Redis is away.
Both follow :class:`Store`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import re
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from scraper.credentials import Credentials
from scraper.errors import ConfigurationError, InvalidInputError, ProtocolError, redact_url
from scraper.http import Deadline

if TYPE_CHECKING:  # asyncio is imported when a refresh runs, not with the library
    import asyncio

__all__ = [
    "CredentialStore",
    "Store",
    "default_cache_dir",
    "export_to",
    "import_from",
    "store_for",
]

log = logging.getLogger(__name__)

ENV_CACHE_DIR = "PROVIDER_CACHE_DIR"
#: Which store: unset (or ``file``) for the file store, ``redis://…`` / ``rediss://…`` for Redis.
ENV_STORE = "PROVIDER_STORE"
FILE_VERSION = 1
EXPORT_FORMAT = "chatgptfree-provider/credentials"
#: How often a process waiting for another process's refresh looks at the lock.
LOCK_POLL_SECONDS = 0.02


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


@functools.lru_cache(maxsize=1024)
def entry_key(site: str, proxy: str) -> str:
    """A file-name-safe key; hashing keeps the proxy password out of file names."""
    return hashlib.sha256(f"{site}\n{proxy}".encode()).hexdigest()[:32]


class Store(Protocol):
    """What the provider needs from a credential store, whichever backend holds it.

    ``get`` answers from what this process already knows, without waiting on
    I/O beyond a file's stat; ``load`` may ask a server. ``refresh`` runs
    ``fetch`` at most once for everyone waiting on (site, proxy), across
    processes — and across hosts when the backend is shared.
    """

    def get(self, site: str, proxy: str) -> Credentials | None: ...

    async def load(self, site: str, proxy: str) -> Credentials | None: ...

    def invalidate(self, stale: Credentials, proxy: str) -> None: ...

    async def save(self, creds: Credentials, proxy: str) -> None:
        """Replace the entry outside a refresh (the browser transport amending its own)."""

    async def refresh(
        self,
        site: str,
        proxy: str,
        fetch: Callable[[], Awaitable[Credentials]],
        *,
        deadline: Deadline,
        stale: Credentials | None = None,
    ) -> Credentials: ...

    async def dump(self) -> list[tuple[str, Credentials]]: ...

    async def restore(self, entries: list[tuple[str, Credentials]]) -> None: ...

    async def aclose(self) -> None:
        """Close this event loop's connections, if the backend has any."""


@dataclass
class _Cached:
    stamp: tuple[int, int]  # (mtime_ns, size) of the file it was read from
    creds: Credentials


@dataclass
class _Flight:
    task: asyncio.Task[Credentials]
    waiters: int = 0


class SingleFlight:
    """One refresh per entry at a time within a process: every task that needs the
    same refresh awaits the same one. Each backend adds its cross-process lock in
    ``_refresh_locked``."""

    _flights: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Flight]]

    async def refresh(
        self,
        site: str,
        proxy: str,
        fetch: Callable[[], Awaitable[Credentials]],
        *,
        deadline: Deadline,
        stale: Credentials | None = None,
    ) -> Credentials:
        """Fresh credentials for (site, proxy), fetched at most once for everyone waiting.

        ``stale`` is what the caller found wanting (expired, or rejected by the
        site); anything newer that another task or process stored meanwhile is
        used instead of fetching again.
        """
        import asyncio

        from provider import _metrics

        key = entry_key(site, proxy)
        flights = self._flights.setdefault(asyncio.get_running_loop(), {})
        flight = flights.get(key)
        if flight is None or flight.task.done():
            task = asyncio.get_running_loop().create_task(
                self._refresh_locked(key, site, proxy, counted(fetch), deadline, stale),
                name=f"refresh {redact_url(site)}",
            )
            flight = flights[key] = _Flight(task)
            task.add_done_callback(lambda t: _forget(flights, key, t))
        else:
            _metrics.waited("task")
        flight.waiters += 1
        try:
            async with deadline.within("obtaining credentials"):
                return await asyncio.shield(flight.task)
        finally:
            flight.waiters -= 1
            if flight.waiters == 0 and not flight.task.done():
                # Nobody wants it any more: stop the fetch (and any browser it runs).
                flight.task.cancel()

    async def _refresh_locked(
        self,
        key: str,
        site: str,
        proxy: str,
        fetch: Callable[[], Awaitable[Credentials]],
        deadline: Deadline,
        stale: Credentials | None,
    ) -> Credentials:
        raise NotImplementedError


def counted(fetch: Callable[[], Awaitable[Credentials]]) -> Callable[[], Awaitable[Credentials]]:
    """``fetch``, counted in the refresh metrics by source and outcome."""
    from provider import _metrics

    async def run() -> Credentials:
        try:
            creds = await fetch()
        except BaseException as exc:
            _metrics.refresh_failed(exc)
            raise
        _metrics.refreshed(creds.source)
        return creds

    return run


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
    _disk_ok: bool = True
    _warned: set[str] = field(default_factory=set, repr=False)

    @property
    def folder(self) -> Path:
        return self.directory / "credentials"

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
        path = self.path(key)
        try:
            st = path.stat()
        except FileNotFoundError:
            return self._from_memory_only(key)
        except OSError as exc:
            self._warn_once("stat", f"cannot read the credential store at {self.folder} ({exc})")
            return self._from_memory_only(key)
        stamp = (st.st_mtime_ns, st.st_size)
        if cached is not None and cached.stamp == stamp:
            return cached.creds
        creds = self._read(path)
        if creds is not None:
            self._memory[key] = _Cached(stamp, creds)
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


async def export_to(store: Store, path: Path) -> int:
    """Write every readable entry of ``store`` to ``path`` (0600: it holds secrets); the count.

    Entries keep their store keys, which hash the proxy URL: the other host
    finds them under the same site and proxy without the proxy password
    ever being written down.
    """
    return write_export(path, await store.dump())


async def import_from(store: Store, path: Path) -> list[Credentials]:
    """Store every entry of an export file; InvalidInputError if it is not one."""
    pairs = read_export(path)
    await store.restore(pairs)
    return [creds for _, creds in pairs]


def write_export(path: Path, pairs: list[tuple[str, Credentials]]) -> int:
    entries = [{"key": key, "credentials": creds.to_dict()} for key, creds in pairs]
    payload = {"format": EXPORT_FORMAT, "version": FILE_VERSION, "entries": entries}
    write_private(path, json.dumps(payload, indent=1).encode())
    return len(entries)


def read_export(path: Path) -> list[tuple[str, Credentials]]:
    try:
        data = json.loads(path.read_bytes())
        if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
            raise ValueError("not an export of this tool")
        if data.get("version") != FILE_VERSION:
            raise ValueError(f"export version {data.get('version')!r} is not {FILE_VERSION}")
        pairs = []
        for entry in data["entries"]:
            key = entry["key"]
            if not isinstance(key, str) or not re.fullmatch(r"[0-9a-f]{32}", key):
                raise ValueError("an entry has a malformed key")
            pairs.append((key, Credentials.from_dict(entry["credentials"])))
    except FileNotFoundError:
        raise InvalidInputError(f"{path}: no such file") from None
    except (OSError, ValueError, KeyError, TypeError, ProtocolError) as exc:
        raise InvalidInputError(
            f"{path} is not a credentials export of this tool ({exc}): "
            "make one with python -m provider.refresh --export FILE"
        ) from None
    return pairs


def write_private(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` atomically, readable by the owner only (0600).

    A temporary file in the same folder, fsynced, then renamed over ``path``:
    a reader sees the old file or the new one, never a torn one.
    """
    import tempfile  # only writes need it (it pulls in shutil and random)

    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _same(a: Credentials, b: Credentials) -> bool:
    return a.obtained_at == b.obtained_at and a.nonce == b.nonce


def _forget(flights: dict[str, _Flight], key: str, task: asyncio.Task[Any]) -> None:
    flight = flights.get(key)
    if flight is not None and flight.task is task:
        del flights[key]
    if not task.cancelled():
        task.exception()  # mark retrieved: waiters got it already, or nobody wanted it


_stores: dict[Path, CredentialStore] = {}
#: (directory as given, store URL as given, $PROVIDER_CACHE_DIR, $PROVIDER_STORE) → store:
#: skips path and URL work on every call.
_resolved: dict[tuple[str | None, str | None, str | None, str | None], Store] = {}


def store_for(directory: str | os.PathLike[str] | None = None, url: str | None = None) -> Store:
    """The process-wide store for ``url`` and ``directory``.

    ``url`` (default ``$PROVIDER_STORE``): ``redis://[user:password@]host:port/db``
    or ``rediss://…`` for the fleet store, unset or ``file`` for the file store
    in ``directory`` (default :func:`default_cache_dir`), which is also the
    Redis store's fallback. One instance per (URL, folder), so every call in
    the process shares its memory cache and its single-flight refreshes.
    """
    env_store = os.environ.get(ENV_STORE)
    given = (
        os.fspath(directory) if directory is not None else None,
        url,
        os.environ.get(ENV_CACHE_DIR),
        env_store,
    )
    store = _resolved.get(given)
    if store is None:
        store = files = file_store(directory)
        setting = "store" if url else ENV_STORE
        chosen = (url if url else env_store or "").strip()
        if chosen and chosen.lower() != "file":
            from provider.redis_store import redis_store  # only a fleet needs redis

            store = redis_store(chosen, files, setting)
        _resolved[given] = store
    return store


def file_store(directory: str | os.PathLike[str] | None = None) -> CredentialStore:
    """The process-wide file store for ``directory`` (default: :func:`default_cache_dir`)."""
    path = Path(directory).expanduser() if directory is not None else default_cache_dir()
    path = path.absolute()
    store = _stores.get(path)
    if store is None:
        store = _stores[path] = CredentialStore(path)
    return store
