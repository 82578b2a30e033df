"""The one place that chooses the browser driver: patchright when installed, else Playwright.

The code is written against Playwright's async API. patchright is a maintained
drop-in of that API whose driver never enables the DevTools protocol's
``Runtime`` domain on the pages and workers it drives: with ``Runtime``
enabled, V8 serialises every ``console.*`` argument for the client, and a page
that logs an object with a ``stack`` getter sees the getter run — the best
known sign of an automated browser, which no launch flag or init script hides.

``PROVIDER_DRIVER`` (``patchright`` or ``playwright``) forces one; unset, patchright
wins when it can be imported. scripts/test runs the browser tests under both.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
from types import ModuleType

from scraper.errors import ConfigurationError

__all__ = ["DRIVERS", "DRIVER_ENV", "api", "driver_name"]

DRIVER_ENV = "PROVIDER_DRIVER"
#: Best first: the one that does not enable ``Runtime``, then the design's named package.
DRIVERS = ("patchright", "playwright")


def driver_name() -> str:
    """The driver's package: ``PROVIDER_DRIVER``, else the first of :data:`DRIVERS` installed."""
    chosen = os.environ.get(DRIVER_ENV, "").strip().lower()
    if chosen:
        if chosen not in DRIVERS:
            raise ConfigurationError(
                f"{DRIVER_ENV}={chosen!r} names no known browser driver: "
                f"use one of {', '.join(DRIVERS)}, or unset it"
            )
        return chosen
    for name in DRIVERS:
        if importlib.util.find_spec(name) is not None:
            return name
    return "playwright"  # its import error then says what to install


def api() -> ModuleType:
    """The chosen driver's ``async_api`` (``async_playwright``, ``Error``, ``TimeoutError``)."""
    return _api(driver_name())


@functools.cache
def _api(name: str) -> ModuleType:
    try:
        return importlib.import_module(f"{name}.async_api")
    except ImportError as exc:
        raise ConfigurationError(
            f"the browser driver {name!r} is not installed ({exc}): "
            f"pip install 'chatgptfree-provider[stealth]' (patchright), or pip install {name}"
        ) from None
