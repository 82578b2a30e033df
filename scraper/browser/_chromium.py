"""Which Chromium to drive: ``PROVIDER_BROWSER``, Playwright's own, or the system's."""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import shutil
import sys
from pathlib import Path

from scraper.errors import BrowserNotFoundError, ConfigurationError

__all__ = ["BROWSER_ENV", "SYSTEM_BROWSERS", "find_chromium"]


#: Environment variable naming the Chromium binary to drive.
BROWSER_ENV = "PROVIDER_BROWSER"

#: Names of a system Chromium on ``PATH``, in the order tried.
SYSTEM_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

_INSTALL_HINT = (
    "install one with `python -m playwright install chromium`, or on Debian/Ubuntu "
    "`apt-get install chromium`, or point PROVIDER_BROWSER=/path at a Chromium binary"
)


def find_chromium() -> str | None:
    """The Chromium binary to launch, or ``None`` for Playwright's own install.

    Looked up, without starting anything: ``PROVIDER_BROWSER`` (a path; set but
    not an executable file raises :class:`ConfigurationError`), then the Chromium
    that ``python -m playwright install chromium`` downloaded, then a system one
    on ``PATH``. Raises :class:`BrowserNotFoundError` when there is none.

    >>> find_chromium()  # doctest: +SKIP
    '/usr/bin/chromium'
    """
    configured = os.environ.get(BROWSER_ENV, "").strip()
    if configured:
        path = Path(configured).expanduser()
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
        found = shutil.which(configured) if os.sep not in configured else None
        if found:
            return found
        raise ConfigurationError(
            f"{BROWSER_ENV}={configured!r} is not an executable file: "
            "point it at a Chromium binary (e.g. /usr/bin/chromium) or unset it"
        )
    shell, full = _playwright_executables()
    if shell is not None and shell.is_file():
        return None  # Playwright launches its own headless shell by itself
    if full is not None and full.is_file():
        return str(full)  # only the full build is there: Playwright would look for the shell
    for name in SYSTEM_BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    raise BrowserNotFoundError(
        "no Chromium found for the browser fallback (needed to pass the site's "
        f"bot-protection challenge): {_INSTALL_HINT}"
    )


#: Where Playwright's registry puts its Chromium builds, per platform
#: (playwright-core's EXECUTABLE_PATHS): (headless shell, full Chromium).
_EXECUTABLE_PATHS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "linux-x64": (
        ("chrome-headless-shell-linux64", "chrome-headless-shell"),
        ("chrome-linux64", "chrome"),
    ),
    "linux-arm64": (
        ("chrome-headless-shell-linux-arm64", "chrome-headless-shell"),
        ("chrome-linux-arm64", "chrome"),
    ),
    "mac-x64": (
        ("chrome-headless-shell-mac-x64", "chrome-headless-shell"),
        (
            "chrome-mac-x64",
            "Google Chrome for Testing.app",
            "Contents",
            "MacOS",
            "Google Chrome for Testing",
        ),
    ),
    "mac-arm64": (
        ("chrome-headless-shell-mac-arm64", "chrome-headless-shell"),
        (
            "chrome-mac-arm64",
            "Google Chrome for Testing.app",
            "Contents",
            "MacOS",
            "Google Chrome for Testing",
        ),
    ),
    "win-x64": (
        ("chrome-headless-shell-win64", "chrome-headless-shell.exe"),
        ("chrome-win64", "chrome.exe"),
    ),
}


def _playwright_executables() -> tuple[Path | None, Path | None]:
    """Where Playwright's own headless shell and full Chromium would be, if installed.

    Read from the installed package's ``browsers.json`` and the registry
    directory rules, instead of asking the Node.js driver (which costs a
    process start) — the same answer as ``playwright.chromium.executable_path``.
    """
    spec = importlib.util.find_spec("playwright")
    if spec is None or not spec.submodule_search_locations:
        return None, None
    package_root = Path(next(iter(spec.submodule_search_locations))) / "driver" / "package"
    try:
        described = json.loads((package_root / "browsers.json").read_text("utf-8"))
        revisions = {
            entry["name"]: str(entry["revision"]) for entry in described.get("browsers", [])
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None, None
    tokens = _EXECUTABLE_PATHS.get(_short_platform())
    registry = _registry_dir(package_root)
    if tokens is None or registry is None:
        return None, None
    shell_rev = revisions.get("chromium-headless-shell")
    full_rev = revisions.get("chromium")
    shell = registry / f"chromium_headless_shell-{shell_rev}" / Path(*tokens[0])
    full = registry / f"chromium-{full_rev}" / Path(*tokens[1])
    return (shell if shell_rev else None), (full if full_rev else None)


def _short_platform() -> str:
    arm = platform.machine().lower() in ("arm64", "aarch64")
    if sys.platform.startswith("linux"):
        return "linux-arm64" if arm else "linux-x64"
    if sys.platform == "darwin":
        return "mac-arm64" if arm else "mac-x64"
    if sys.platform == "win32":
        return "win-x64"
    return "<unknown>"


def _registry_dir(package_root: Path) -> Path | None:
    configured = os.environ.get("PLAYWRIGHT_BROWSERS_PATH")
    if configured == "0":
        return package_root / ".local-browsers"
    if configured:
        return Path(configured).resolve()
    home = Path.home()
    if sys.platform.startswith("linux"):
        cache = Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache")
    elif sys.platform == "darwin":
        cache = home / "Library" / "Caches"
    elif sys.platform == "win32":
        cache = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
    else:
        return None
    return cache / "ms-playwright"
