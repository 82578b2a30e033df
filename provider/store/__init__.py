"""The credential store, and which one: the file store by default;
``PROVIDER_STORE=redis://…`` (or ``store=`` on the provider class, ``--store``
on the commands) selects the fleet store, which shares credentials and
single-flight between hosts and falls back to the file store while Redis is
away. Both follow :class:`Store`.

* :mod:`provider.store.base`: the :class:`Store` interface, single-flight, the export file.
* :mod:`provider.store.files`: the file store, one file per (site, proxy).
* :mod:`provider.store.redis`: the fleet store (imported only when selected).
"""

from __future__ import annotations

import os

from provider.store.base import ENV_STORE, Store, export_to, import_from
from provider.store.files import ENV_CACHE_DIR, CredentialStore, default_cache_dir, file_store

__all__ = [
    "CredentialStore",
    "Store",
    "default_cache_dir",
    "export_to",
    "import_from",
    "store_for",
]

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
            from provider.store.redis import redis_store  # only a fleet needs redis

            store = redis_store(chosen, files, setting)
        _resolved[given] = store
    return store
