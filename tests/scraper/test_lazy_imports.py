"""Importing the library loads no aiohttp: it costs about 0.3 s, and only a request
needs it (issue 27: the mutation tool's ``if not TYPE_CHECKING:`` in
scraper/http_translate.py survived; the browser suite checks the other lazy imports)."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.procs import ROOT


def _loaded(imports: str, names: tuple[str, ...]) -> list[str]:
    """The top-level packages among ``names`` that a fresh interpreter has loaded
    after ``import`` of ``imports``."""
    code = (
        f"import sys, {imports}\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({names!r})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return list(ast.literal_eval(done.stdout.strip()))


def test_importing_the_library_and_its_http_layer_loads_no_aiohttp() -> None:
    """Promise (scraper/http.py, scraper/http_translate.py): aiohttp is imported by
    the first request, not by ``import provider`` or ``import scraper.http``."""
    imports = "provider, provider.commands.cli, scraper.http, scraper.http_translate"
    assert _loaded(imports, ("aiohttp", "yarl")) == []


def test_importing_the_library_and_its_store_loads_no_asyncio() -> None:
    """Promise (provider/store/files.py): asyncio is imported when a refresh runs, not
    with the library (issue 27: ``if not TYPE_CHECKING:`` there survived)."""
    assert _loaded("provider, provider.store.files, scraper.http", ("asyncio",)) == []
