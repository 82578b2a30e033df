"""Sync Playwright tests (pytest-playwright's ``page``): run them in their own
pytest invocation (``pytest tests/sync``), because the sync fixture leaves an event
loop marked running that breaks later asyncio tests in the same process."""

from __future__ import annotations

import glob
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BROWSER_ARGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _playwright_chromium_installed() -> bool:
    root = os.environ.get("PLAYWRIGHT_BROWSERS_PATH") or str(
        Path.home() / ".cache" / "ms-playwright"
    )
    return bool(glob.glob(os.path.join(root, "chromium-*")))


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Point pytest-playwright at a system Chromium when its own is not installed
    (``PROVIDER_BROWSER`` wins when set)."""
    args = {**browser_type_launch_args, "args": BROWSER_ARGS}
    executable = os.environ.get("PROVIDER_BROWSER")
    if not executable and not _playwright_chromium_installed():
        executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable:
        args["executable_path"] = executable
    return args


@pytest.fixture(autouse=True)
def no_leftover_process() -> Iterator[None]:
    """pytest-playwright keeps one Chromium for the whole session, so a per-test check
    would take it for a leftover: here only the session-level guard
    (``tests/conftest.py``) looks, once that browser is closed."""
    yield
