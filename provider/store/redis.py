"""The fleet store: credentials shared by every host through one Redis.

Selected by ``PROVIDER_STORE=redis://[user:password@]host:port/db`` (or
``rediss://``), ``store=`` on the provider class, or ``--store`` on a command.

* Entries: the file store's JSON under ``chatgptfree:{<key>}:creds``, with the
  same key (a hash of site and proxy, so no proxy password is in a key) and a
  TTL that ends when the credentials do.
* Single-flight across hosts: a lock ``chatgptfree:{<key>}:lock`` taken with
  ``SET NX PX`` and a random token, extended while a long refresh (a browser
  solve) runs, and released only by its holder (compare-and-delete, in Lua).
  A holder that dies stops extending it; it expires and a waiter takes over.
* Waiting: waiters subscribe to one pub/sub channel before they look, and are
  woken when the entry is written or the lock released — no polling storm —
  or when the lock's own expiry is due; every wait sits under the caller's
  deadline.
* Warm chats skip Redis: each process keeps what it read for
  :data:`LOCAL_SECONDS`. A host that drops rejected credentials publishes it,
  and every other host forgets its copy at once.
* Faults: Redis unreachable (at start or mid-run) → the file store serves,
  with one warning per outage; Redis is tried again every
  :data:`RETRY_SECONDS` and used as soon as it answers.

The optional URL query ``lock_ttl=SECONDS`` sets the lock's expiry (default
:data:`LOCK_SECONDS`): how long a dead holder can keep the fleet waiting.

One idea despite its length: the Redis backend's protocol (its Lua scripts, the
lock, the wake-ups and the fallback to files) only reads right as a whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from provider import _metrics
from provider.store.base import (
    ENV_STORE,
    FILE_VERSION,
    SingleFlight,
    _Flight,
    _same,
    entry_key,
    value_key,
)
from provider.store.files import CredentialStore
from scraper.credentials import Credentials
from scraper.errors import ConfigurationError, ProtocolError, redact_url
from scraper.http import Deadline

__all__ = ["RedisStore", "redis_store"]

log = logging.getLogger(__name__)

#: How long a process trusts what it read from Redis without asking again.
#: Short, because a missed invalidation message (a dropped connection) must not
#: keep rejected credentials in use for long; pub/sub usually clears it sooner.
LOCAL_SECONDS = 5.0
#: The refresh lock's expiry; the holder extends it every third of it.
LOCK_SECONDS = 15.0
#: While Redis is unreachable, how often an operation tries it again.
RETRY_SECONDS = 2.0
#: Connect and per-command socket timeouts: a Redis that stopped answering
#: must not hold a chat for long before the file store takes over.
SOCKET_SECONDS = 2.0
CHANNEL = "chatgptfree:events"
PREFIX = "chatgptfree:"

# One script, three uses (release a lock, drop a rejected entry): delete KEYS[1]
# only if it still holds ARGV[1], then tell the fleet (ARGV[2] on channel ARGV[3]).
_COMPARE_AND_DELETE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[3], ARGV[2])
  return 1
end
return 0
"""
# The entry if one is there (other than the ARGV[3] the caller found wanting),
# else the lock if it is free, else how long the lock has left: one round trip,
# and no window between looking and locking.
_CLAIM = """
local value = redis.call('GET', KEYS[1])
if value and value ~= ARGV[3] then return {1, value} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2, ''} end
return {3, tostring(redis.call('PTTL', KEYS[2]))}
"""
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
# Write the entry, release our lock, wake the waiters: atomically.
_STORE = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
redis.call('PUBLISH', ARGV[5], ARGV[4])
return 1
"""
_FOUND, _LOCKED, _BUSY = 1, 2, 3

T = TypeVar("T")


def entry_name(key: str) -> str:
    # The braces make entry and lock one Redis Cluster hash slot, so the
    # scripts that touch both stay legal there too.
    return f"{PREFIX}{{{key}}}:creds"


def lock_name(key: str) -> str:
    return f"{PREFIX}{{{key}}}:lock"


def encode(creds: Credentials) -> bytes:
    """The file store's JSON, byte for byte the same for the same credentials."""
    payload = {"version": FILE_VERSION, "credentials": creds.to_dict()}
    return json.dumps(payload, separators=(",", ":")).encode()


def decode(raw: bytes) -> Credentials | None:
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("version") != FILE_VERSION:
            raise ProtocolError("unknown entry version")
        return Credentials.from_dict(data["credentials"])
    except (ValueError, KeyError, TypeError, ProtocolError):
        log.warning("ignoring a corrupt credential entry in Redis: it will be replaced")
        return None


@dataclass
class _Local:
    creds: Credentials
    raw: bytes
    at: float  # time.monotonic() when read or written


@dataclass
class _Link:
    """One event loop's connection to Redis: a client, the scripts, the listener."""

    client: aioredis.Redis
    claim: Any
    extend: Any
    store: Any
    compare_and_delete: Any
    listener: asyncio.Task[None] | None = None
    #: set once subscribed, or once the listener failed (``failed`` says why)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    failed: BaseException | None = None
    #: key → events of the tasks waiting for that entry (set on any news of it)
    waiters: dict[str, set[asyncio.Event]] = field(default_factory=dict)
    reads: dict[str, asyncio.Future[Any]] = field(default_factory=dict)

    def watch(self, key: str) -> asyncio.Event:
        event = asyncio.Event()
        self.waiters.setdefault(key, set()).add(event)
        return event

    def unwatch(self, key: str, event: asyncio.Event) -> None:
        events = self.waiters.get(key)
        if events is not None:
            events.discard(event)
            if not events:
                del self.waiters[key]

    def wake(self, key: str | None = None) -> None:
        groups = self.waiters.values() if key is None else [self.waiters.get(key, set())]
        for events in groups:
            for event in events:
                event.set()


class RedisStore(SingleFlight):
    """Credentials by (site, proxy) in Redis, for every host of a fleet.

    >>> store = store_for(url="redis://127.0.0.1:6379/0")   # doctest: +SKIP
    """

    def __init__(
        self, url: str, files: CredentialStore, *, lock_seconds: float = LOCK_SECONDS
    ) -> None:
        self.url = url
        self.shown = redact_url(url)
        self.files = files
        self.lock_ms = max(1, round(lock_seconds * 1000))
        self.local_seconds = LOCAL_SECONDS
        #: Tells this process's own messages from the fleet's.
        self.origin = secrets.token_hex(8)
        self._local: dict[str, _Local] = {}
        self._links: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Link] = (
            weakref.WeakKeyDictionary()
        )
        self._flights: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Flight]] = (
            weakref.WeakKeyDictionary()
        )
        self._down_until = 0.0
        self._down = False
        self._tasks: set[asyncio.Task[Any]] = set()

    def __repr__(self) -> str:
        return f"RedisStore({self.shown!r}, fallback={self.files.directory})"

    # -- reading -------------------------------------------------------------------------

    def get(self, site: str, proxy: str) -> Credentials | None:
        """What this process last read or wrote (fresh or not); the file store's
        entry while Redis is away. Never waits on Redis: see :meth:`load`."""
        if self._down:
            return self.files.get(site, proxy)
        hit = self._local.get(entry_key(site, proxy))
        return hit.creds if hit is not None else self.files.get(site, proxy)

    async def load(self, site: str, proxy: str) -> Credentials | None:
        """The fleet's credentials: from this process's short cache, else from Redis."""
        key = entry_key(site, proxy)
        hit = self._local.get(key)
        if hit is not None and time.monotonic() - hit.at < self.local_seconds:
            return hit.creds
        if not self._usable():
            return self._fallback().get(site, proxy)
        try:
            raw = await self._read(self._link(), key)
        except RedisError as exc:
            self._failed(exc)
            return self._fallback().get(site, proxy)
        self._back()
        if raw is None:
            self._local.pop(key, None)
            return None
        return self._remember(key, raw)

    async def _read(self, link: _Link, key: str) -> Any:
        # Concurrent chats whose cache ran out at the same moment share one GET.
        pending = link.reads.get(key)
        if pending is None:
            pending = link.reads[key] = asyncio.ensure_future(
                bounded(link.client.get(entry_name(key)))
            )
            pending.add_done_callback(lambda f: _settle(link.reads, key, f))
        return await asyncio.shield(pending)

    def _remember(self, key: str, raw: bytes) -> Credentials | None:
        creds = decode(raw)
        if creds is None:
            self._local.pop(key, None)
        else:
            self._local[key] = _Local(creds, raw, time.monotonic())
            self._mirror(key, creds)
        return creds

    def _mirror(self, key: str, creds: Credentials) -> None:
        """Keep a copy in the file store (once per new entry), so that when Redis goes
        away the fallback starts warm instead of reading the page again."""
        if not self.files.holds(key, creds):
            with contextlib.suppress(OSError):
                self.files.put_keyed([(key, creds)])

    # -- dropping rejected credentials ---------------------------------------------------

    def invalidate(self, stale: Credentials, proxy: str) -> None:
        """Forget ``stale`` here, in Redis if it still holds exactly it, and on every host."""
        key = entry_key(stale.site, proxy)
        hit = self._local.get(key)
        raw = hit.raw if hit is not None and _same(hit.creds, stale) else encode(stale)
        if hit is not None and _same(hit.creds, stale):
            del self._local[key]
        self.files.invalidate(stale, proxy)  # it may have come from the fallback
        if not self._usable():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self._drop(key, raw), name="drop rejected credentials")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drop(self, key: str, raw: bytes) -> None:
        link = self._link()
        try:
            await bounded(
                link.compare_and_delete(
                    keys=[entry_name(key)], args=[raw, self._message("dropped", key), CHANNEL]
                )
            )
        except RedisError as exc:
            self._failed(exc)

    # -- refreshing ----------------------------------------------------------------------

    async def _refresh_locked(
        self,
        key: str,
        site: str,
        proxy: str,
        fetch: Callable[[], Awaitable[Credentials]],
        deadline: Deadline,
        stale: Credentials | None,
    ) -> Credentials:
        if self._usable():
            try:
                return await self._refresh_fleet(key, proxy, fetch, deadline, stale)
            except RedisError as exc:
                self._failed(exc)
        return await self._fallback()._refresh_locked(key, site, proxy, fetch, deadline, stale)

    async def _refresh_fleet(
        self,
        key: str,
        proxy: str,
        fetch: Callable[[], Awaitable[Credentials]],
        deadline: Deadline,
        stale: Credentials | None,
    ) -> Credentials:
        link = self._link()
        await self._listening(link, deadline)
        hit = self._local.get(key)
        skip = (
            (hit.raw if hit is not None and _same(hit.creds, stale) else encode(stale))
            if (stale is not None)
            else b""
        )
        token = secrets.token_hex(16)
        waited = False
        while True:
            # Watch before looking: news that lands between the look and the
            # wait still wakes us.
            event = link.watch(key)
            try:
                kind, value = await bounded(
                    link.claim(
                        keys=[entry_name(key), lock_name(key)], args=[token, self.lock_ms, skip]
                    )
                )
                self._back()
                if kind == _FOUND:
                    creds = self._remember(key, value)
                    if (
                        creds is not None
                        and creds.fresh()
                        and (stale is None or not _same(creds, stale))
                    ):
                        return creds
                    skip = value  # wanting: look past it to the lock
                    continue
                if kind == _LOCKED:
                    return await self._fetch_holding(link, key, token, proxy, fetch)
                if not waited:
                    waited = True
                    _metrics.waited("lock")
                # Woken by news of the entry, or when the holder's lock is due
                # to expire (a holder that died never sends news).
                left_ms = int(value)
                due = left_ms / 1000 + 0.01 if left_ms > 0 else 0.01
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(
                        min(due, deadline.remaining("waiting for another host's refresh"))
                    ):
                        await event.wait()
                deadline.remaining("waiting for another host's refresh")
            finally:
                link.unwatch(key, event)

    async def _fetch_holding(
        self,
        link: _Link,
        key: str,
        token: str,
        proxy: str,
        fetch: Callable[[], Awaitable[Credentials]],
    ) -> Credentials:
        keeper = asyncio.get_running_loop().create_task(self._keep(link, key, token))
        try:
            creds = await fetch()
        except BaseException:
            keeper.cancel()
            # Let the next waiter try at once rather than at the lock's expiry.
            with contextlib.suppress(RedisError):
                await bounded(
                    link.compare_and_delete(
                        keys=[lock_name(key)], args=[token, self._message("released", key), CHANNEL]
                    )
                )
            raise
        keeper.cancel()
        raw = encode(creds)
        ttl_ms = round((creds.expires_at - time.time()) * 1000)
        try:
            if ttl_ms > 0:
                await bounded(
                    link.store(
                        keys=[entry_name(key), lock_name(key)],
                        args=[raw, ttl_ms, token, self._message("written", key), CHANNEL],
                    )
                )
        except RedisError as exc:
            # Redis went away during the refresh: the credentials are not lost.
            self._failed(exc)
            self._fallback().put(creds, proxy)
        self._local[key] = _Local(creds, raw, time.monotonic())
        self._mirror(key, creds)
        return creds

    async def _keep(self, link: _Link, key: str, token: str) -> None:
        """Extend the lock while its refresh runs (a browser solve can outlast it)."""
        while True:
            await asyncio.sleep(self.lock_ms / 3000)
            try:
                held = await bounded(link.extend(keys=[lock_name(key)], args=[token, self.lock_ms]))
            except RedisError as exc:
                log.debug("could not extend the refresh lock: %s", type(exc).__name__)
                continue
            if not held:
                log.warning(
                    "the refresh lock expired before the refresh ended (another host may "
                    "refresh too): raise lock_ttl in the store URL above the slowest solve"
                )
                return

    # -- moving credentials between hosts ------------------------------------------------

    async def dump(self) -> list[tuple[str, Credentials]]:
        if not self._usable():
            return await self._fallback().dump()
        link = self._link()
        try:
            async with asyncio.timeout(SOCKET_SECONDS * 5):
                names = sorted(
                    [name async for name in link.client.scan_iter(f"{PREFIX}{{*}}:creds")]
                )
                values = await link.client.mget(names) if names else []
        except (RedisError, TimeoutError) as exc:
            self._failed(exc)
            return await self._fallback().dump()
        pairs = []
        for name, raw in zip(names, values, strict=True):
            creds = decode(raw) if isinstance(raw, bytes) else None
            if creds is not None:
                pairs.append((name.decode().split("{", 1)[1].split("}", 1)[0], creds))
        return pairs

    async def save(self, creds: Credentials, proxy: str) -> None:
        """Write one entry for the fleet (TTL its expiry) and tell the other hosts."""
        await self.restore([(entry_key(creds.site, proxy), creds)])
        self._remember(entry_key(creds.site, proxy), encode(creds))

    async def restore(self, entries: list[tuple[str, Credentials]]) -> None:
        if not self._usable():
            return await self._fallback().restore(entries)
        link = self._link()
        try:
            for key, creds in entries:
                ttl_ms = round((creds.expires_at - time.time()) * 1000)
                if ttl_ms > 0:
                    await bounded(link.client.set(entry_name(key), encode(creds), px=ttl_ms))
                    await bounded(link.client.publish(CHANNEL, self._message("written", key)))
                self._local.pop(key, None)
        except (RedisError, TimeoutError) as exc:
            self._failed(exc)
            await self._fallback().restore(entries)

    async def aclose(self) -> None:
        """Close this event loop's connections (the store stays usable: it reconnects)."""
        link = self._links.pop(asyncio.get_running_loop(), None)
        if link is None:
            return
        if link.listener is not None:
            link.listener.cancel()
            with contextlib.suppress(BaseException):
                await link.listener
        await link.client.aclose()

    # -- values beside the credentials (put_value / get_value) ---------------------------

    async def put_value(self, namespace: str, key: str, value: str, ttl: float) -> None:
        """``SET … PX``: Redis drops the value when its time is up, on every host at once."""
        if self._usable():
            try:
                name = f"{PREFIX}value:{namespace}:{value_key(namespace, key)}"
                await bounded(self._link().client.set(name, value.encode(), px=round(ttl * 1000)))
                self._back()
                return
            except (RedisError, TimeoutError) as exc:
                self._failed(exc)
        await self._fallback().put_value(namespace, key, value, ttl)

    async def get_value(self, namespace: str, key: str) -> str | None:
        if self._usable():
            try:
                name = f"{PREFIX}value:{namespace}:{value_key(namespace, key)}"
                raw = await bounded(self._link().client.get(name))
                self._back()
                return raw.decode() if isinstance(raw, bytes) else None
            except (RedisError, TimeoutError) as exc:
                self._failed(exc)
        # What this host kept while Redis was away (nothing else can be had).
        return await self._fallback().get_value(namespace, key)

    # -- the connection, and what happens when it fails ------------------------------------

    def _link(self) -> _Link:
        loop = asyncio.get_running_loop()
        link = self._links.get(loop)
        if link is None:
            client = _client(self.url)
            link = self._links[loop] = _Link(
                client=client,
                claim=client.register_script(_CLAIM),
                extend=client.register_script(_EXTEND),
                store=client.register_script(_STORE),
                compare_and_delete=client.register_script(_COMPARE_AND_DELETE),
            )
        if link.listener is None or link.listener.done():
            link.ready = asyncio.Event()
            link.failed = None
            link.listener = loop.create_task(self._listen(link), name="redis store events")
        return link

    async def _listening(self, link: _Link, deadline: Deadline) -> None:
        """Wait until this loop hears the fleet's news, so no wake-up is missed."""
        left = min(SOCKET_SECONDS, deadline.remaining("connecting to Redis"))
        try:
            async with asyncio.timeout(left):
                await link.ready.wait()
        except TimeoutError:
            raise RedisTimeoutError("no answer to SUBSCRIBE") from None
        if link.failed is not None:
            raise RedisConnectionError(f"cannot listen ({type(link.failed).__name__})")

    async def _listen(self, link: _Link) -> None:
        pubsub = link.client.pubsub()
        try:
            await pubsub.subscribe(CHANNEL)
            async for message in pubsub.listen():
                if message["type"] == "subscribe":
                    link.ready.set()
                elif message["type"] == "message":
                    self._heard(link, message["data"])
        except RedisError as exc:
            link.failed = exc
            self._failed(exc)
        finally:
            # Whoever waits on news must not wait for news that cannot come.
            if link.failed is None:
                link.failed = RedisConnectionError("stopped listening")
            link.ready.set()
            link.wake()
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    def _heard(self, link: _Link, data: bytes) -> None:
        kind, _, rest = data.decode(errors="replace").partition(" ")
        key, _, origin = rest.partition(" ")
        if origin != self.origin and kind in ("written", "dropped"):
            self._local.pop(key, None)  # another host has newer, or found it rejected
        link.wake(key)

    def _message(self, kind: str, key: str) -> str:
        return f"{kind} {key} {self.origin}"

    def _usable(self) -> bool:
        return not self._down or time.monotonic() >= self._down_until

    def _fallback(self) -> CredentialStore:
        _metrics.fell_back()
        return self.files

    def _failed(self, exc: BaseException) -> None:
        self._down_until = time.monotonic() + RETRY_SECONDS
        if not self._down:
            self._down = True
            self._local.clear()  # nobody tells us what the fleet drops while we are away
            log.warning(
                "the Redis store at %s is unreachable (%s): using the file store in %s "
                "until it answers again",
                self.shown,
                type(exc).__name__,
                self.files.folder,
            )
        self._discard_links()

    def _discard_links(self) -> None:
        """Forget every loop's connections: after a failure their sockets may be dead,
        and a pooled dead socket would fail its next command even once Redis is back."""
        links = list(self._links.items())
        self._links.clear()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        for owner, link in links:
            link.wake()  # whoever waits on this link's news: look again (and fall back)
            if owner is not loop or loop is None:
                continue  # another loop's sockets: closed with that loop
            if link.listener is not None and link.listener is not asyncio.current_task():
                link.listener.cancel()
            task = loop.create_task(_close(link.client), name="close a Redis client")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _back(self) -> None:
        if self._down:
            self._down = False
            log.info("the Redis store at %s answers again: using it", self.shown)


async def bounded(command: Awaitable[T]) -> T:
    """One Redis command under :data:`SOCKET_SECONDS`: a Redis that accepts but never
    answers counts as unreachable (a redis TimeoutError, so the fallback takes over)."""
    try:
        async with asyncio.timeout(SOCKET_SECONDS):
            return await command
    except TimeoutError:
        raise RedisTimeoutError("Redis did not answer in time") from None


async def _close(client: aioredis.Redis) -> None:
    with contextlib.suppress(Exception):
        await client.aclose()


def _settle(reads: dict[str, asyncio.Future[Any]], key: str, done: Any) -> None:
    if reads.get(key) is done:
        del reads[key]
    if not done.cancelled():
        done.exception()  # retrieved: every reader got it already


def _client(url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url,
        socket_connect_timeout=SOCKET_SECONDS,
        socket_timeout=None,  # the listener blocks on purpose; commands have deadlines
        health_check_interval=0,
    )


_stores: dict[tuple[str, str], RedisStore] = {}


def redis_store(url: str, files: CredentialStore, setting: str = ENV_STORE) -> RedisStore:
    """The process-wide Redis store for ``url`` (checked here), falling back to ``files``."""
    found = _stores.get((url, str(files.directory)))
    if found is None:
        plain, lock_seconds = parse_url(url, setting)
        found = _stores[(url, str(files.directory))] = RedisStore(
            plain, files, lock_seconds=lock_seconds
        )
    return found


def parse_url(url: str, setting: str = ENV_STORE) -> tuple[str, float]:
    """``url`` checked, without our own ``lock_ttl`` query, and that lock's seconds.

    A bad URL is a :class:`ConfigurationError` naming ``setting``, password redacted.
    """
    shown = redact_url(url)

    def bad(why: str) -> ConfigurationError:
        return ConfigurationError(
            f"{setting}={shown!r} is not a usable Redis URL ({why}): use "
            "redis://[user:password@]host:port/db or rediss://…, or 'file' for the file store"
        )

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise bad(str(exc).replace(url, shown)) from None
    if parts.scheme not in ("redis", "rediss"):
        found = f"not {parts.scheme!r}" if parts.scheme else "and there is none"
        raise bad(f"the scheme must be redis or rediss, {found}")
    if not parts.hostname:
        raise bad("no host")
    if port == 0:
        raise bad("port 0")
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise bad(f"the database must be a number, not {db!r}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    lock_seconds = LOCK_SECONDS
    kept = []
    for name, value in query:
        if name == "lock_ttl":
            try:
                lock_seconds = float(value)
            except ValueError:
                raise bad(f"lock_ttl={value!r} is not a number of seconds") from None
            if not 0 < lock_seconds < 86400:
                raise bad(f"lock_ttl={value!r} must be between 0 and 86400 seconds")
        else:
            kept.append((name, value))
    plain = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(kept), ""))
    try:
        aioredis.connection.parse_url(plain)
    except (ValueError, TypeError) as exc:
        raise bad(type(exc).__name__) from None
    return plain, lock_seconds
