"""Runs inside bench/.venv-g4f: drives g4f 0.5.3.1's ChatgptFree against a sandbox.

``python g4f_driver.py <site url>`` prints ``READY <json>``, then for each
``chat`` line on stdin runs one call and prints ``RESULT <json>`` with
``ttfc``, ``total`` (seconds from the call), ``stream`` (first chunk to last),
``cpu_stream`` (this process's CPU seconds over the same span), ``bytes``,
``chunks`` and ``error``. Standalone on purpose: it imports nothing of this project.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sys
import time
from typing import Any

PROMPT = [{"role": "user", "content": "Hello there"}]


async def _one(provider: Any) -> dict[str, Any]:
    t0 = time.perf_counter()
    first = last = None
    cpu0 = 0.0
    size = chunks = 0
    error = None
    try:
        async for chunk in provider.create_async_generator("", PROMPT):
            now = time.perf_counter()
            if first is None:
                first = now
                cpu0 = time.process_time()
            last = now
            size += len(chunk.encode())
            chunks += 1
    except Exception as exc:  # reported, not raised: the bench shows what happened
        error = f"{type(exc).__name__}: {exc}"[:300]
    end = time.perf_counter()
    return {
        "ttfc": None if first is None else first - t0,
        "total": end - t0,
        "stream": None if first is None or last is None else last - first,
        "cpu_stream": None if first is None else time.process_time() - cpu0,
        "bytes": size,
        "chunks": chunks,
        "error": error,
    }


async def _main(url: str) -> None:
    import g4f  # type: ignore[import-untyped,import-not-found,unused-ignore]
    import g4f.requests  # type: ignore[import-untyped,import-not-found,unused-ignore]
    from g4f.Provider.not_working import ChatgptFree  # type: ignore[import-untyped,import-not-found,unused-ignore]

    ChatgptFree.url = url  # the class attribute the original client reads
    ca_file = os.environ.get("BENCH_CA_FILE")
    if ca_file:
        # The WAN case's sandbox CA. curl_cffi's own CA variables did not take
        # here, so hand the file to each request, as a caller would pass verify=.
        session_class = g4f.requests.StreamSession
        plain = session_class.request

        def request(self: Any, method: str, url: str, ssl: Any = None, **kw: Any) -> Any:
            return plain(self, method, url, ssl=ca_file if ssl is None else ssl, **kw)

        session_class.request = request
        for verb in ("get", "post", "put", "delete", "head", "options", "patch"):
            if verb in vars(session_class):  # partialmethods bound to the old request
                setattr(session_class, verb, functools.partialmethod(request, verb.upper()))
    info = {
        "g4f": getattr(getattr(g4f, "version", None), "utils", None)
        and g4f.version.utils.current_version,
        "curl_cffi": bool(getattr(g4f.requests, "has_curl_cffi", False)),
    }
    print("READY", json.dumps(info), flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line.strip():
            break
        print("RESULT", json.dumps(await _one(ChatgptFree)), flush=True)


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1]))
