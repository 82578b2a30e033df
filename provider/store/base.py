"""What every credential store is: the :class:`Store` interface, the entry key,
single-flight within a process, and the export file any store writes and reads.

The backends (:mod:`provider.store.files`, :mod:`provider.store.redis`) build on
this module; nothing here knows them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from scraper.credentials import Credentials
from scraper.errors import InvalidInputError, ProtocolError, ProviderError, redact_url
from scraper.http import Deadline

if TYPE_CHECKING:  # asyncio is imported when a refresh runs, not with the library
    import asyncio

__all__ = ["SingleFlight", "Store", "entry_key", "export_to", "import_from", "value_key"]

#: Which store: unset (or ``file``) for the file store, ``redis://…`` / ``rediss://…`` for Redis.
ENV_STORE = "PROVIDER_STORE"
FILE_VERSION = 1
# How long the last caller to leave a refresh waits for its cancelled fetch to clean
# up (a browser's close and its driver's stop, each bounded in scraper.browser).
CANCEL_GRACE = 12.0
EXPORT_FORMAT = "chatgptfree-provider/credentials"


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

    async def put_value(self, namespace: str, key: str, value: str, ttl: float) -> None:
        """Keep ``value`` under (``namespace``, ``key``) for ``ttl`` seconds, for every
        process (and every host, when the backend is shared). Not credentials: small
        state other parts keep beside them (the endpoint's stored conversations)."""

    async def get_value(self, namespace: str, key: str) -> str | None:
        """What :meth:`put_value` kept under (``namespace``, ``key``), or None once expired."""


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
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if flight.task.cancelled() and current is not None and not current.cancelling():
                # The refresh was stopped, not this caller: a bare CancelledError
                # would read as this caller's own cancellation.
                raise ProviderError(
                    "the credential refresh was stopped before it finished: retry the call"
                ) from None
            raise
        finally:
            flight.waiters -= 1
            if flight.waiters == 0 and not flight.task.done():
                # Nobody wants it any more: stop the fetch (and any browser it runs),
                # and forget it now, so a caller arriving next (with time left)
                # starts its own refresh instead of joining one being cancelled.
                flight.task.cancel()
                if flights.get(key) is flight:
                    del flights[key]
                # ...and see it end before this call returns: a browser it ran is
                # closed in its own cleanup, and no browser may outlive the call
                # that started it. That cleanup is bounded by the browser's close
                # bounds, so this wait is too.
                await asyncio.wait({flight.task}, timeout=CANCEL_GRACE)
                if flight.task.done() and not flight.task.cancelled():
                    flight.task.exception()  # it failed as it stopped: nobody's error now

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


def value_key(namespace: str, key: str) -> str:
    """A name-safe key for a value: hashed, so a caller's key (an id a client sent)
    can never name a path or a Redis key of its own choosing."""
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", namespace):
        raise ValueError(f"bad value namespace {namespace!r}")
    return hashlib.sha256(f"{namespace}\n{key}".encode()).hexdigest()[:32]


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
