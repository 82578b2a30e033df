"""Importing the library loads no aiohttp: it costs about 0.3 s, and only a request
needs it (issue 27: the mutation tool's ``if not TYPE_CHECKING:`` in
scraper/http_translate.py survived; the browser suite checks the other lazy imports)."""

from __future__ import annotations

import subprocess
import sys

from tests.procs import ROOT


def test_importing_the_library_and_its_http_layer_loads_no_aiohttp() -> None:
    """Promise (scraper/http.py, scraper/http_translate.py): aiohttp is imported by
    the first request, not by ``import provider`` or ``import scraper.http``."""
    code = (
        "import sys\n"
        "import provider, provider.commands.cli, scraper.http, scraper.http_translate\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('aiohttp', 'yarl')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
