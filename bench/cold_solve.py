"""One cold browser solve in a process of its own, from whichever tree is first on PYTHONPATH.

``python bench/cold_solve.py <site url>`` runs ``scraper.browser.solve`` once
against the site's challenge and prints ``RESULT <json>``: ``seconds`` (the solve
call: driver start, Chromium launch, the challenge, the widget, the close),
``cpu`` (the CPU seconds of this process and of every process it started and
reaped — the driver, Chromium and its helpers — over the same span: what the
solve costs, whatever else the machine runs), ``source``, and ``scraper`` (the
package file imported, so the caller can check which tree ran). bench/_cold.py
runs today's tree and an earlier commit's this way, so both go through the
same harness; the drivers' Python modules are imported before the clock
starts, in every variant alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import resource
import sys
import time


async def _main(url: str) -> None:
    for driver in ("playwright.async_api", "patchright.async_api"):
        with contextlib.suppress(ImportError):
            importlib.import_module(driver)
    import scraper
    from scraper.browser import solve
    from scraper.http import Deadline

    cpu0 = _cpu()
    t0 = time.perf_counter()
    creds = await solve(url, url + "/chat/", proxy=None, deadline=Deadline(60))
    seconds = time.perf_counter() - t0
    result = {"seconds": seconds, "cpu": _cpu() - cpu0, "source": creds.source}
    print("RESULT", json.dumps({**result, "scraper": scraper.__file__}), flush=True)


def _cpu() -> float:
    """CPU seconds of this process and of its reaped descendants (the driver reaps Chromium)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1]))
