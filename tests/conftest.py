"""Fixtures shared by the client-side tests: an isolated cache dir per test, a
``ChatgptFree`` subclass pointed at a sandbox, a timeout for every test, and the
guards that fail a test (and the run) leaving a child process behind."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from provider import ChatgptFree
from tests import procs

#: pytest-timeout's default comes from pyproject.toml; a test driving Chromium (slow to
#: start on a shared machine) gets this many seconds unless it sets its own.
BROWSER_TIMEOUT = 180
#: How long a test's children may take to go after it ended before they count as left.
SETTLE_SECONDS = 5.0


def pytest_sessionstart(session: pytest.Session) -> None:
    procs.become_subreaper()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("browser") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(BROWSER_TIMEOUT))
        if isinstance(item, pytest.Function) and inspect.iscoroutinefunction(item.obj):
            seconds = _timeout_of(item, config)
            if seconds > ASYNC_MARGIN:
                item.obj = _cancelled_after(item.obj, seconds - ASYNC_MARGIN)


#: An async test is cancelled this long before pytest-timeout's SIGALRM would fire.
ASYNC_MARGIN = 2.0


def _timeout_of(item: pytest.Item, config: pytest.Config) -> float:
    marker = item.get_closest_marker("timeout")
    if marker is not None and (marker.args or "timeout" in marker.kwargs):
        return float(marker.args[0] if marker.args else marker.kwargs["timeout"])
    return float(config.getini("timeout") or 0)


def _cancelled_after(
    test: Callable[..., Awaitable[Any]], seconds: float
) -> Callable[..., Awaitable[Any]]:
    """Bound an async test by cancelling it. pytest-timeout's SIGALRM raises wherever
    the main thread is; inside one of asyncio's callbacks the loop catches and logs
    it, and a busy loop (a refresh loop without a limit) then runs on. A cancellation
    lands at the test's next ``await`` instead; the signal stays the backstop for
    code that blocks the loop."""

    @functools.wraps(test)
    async def bounded(*args: Any, **kwargs: Any) -> Any:
        try:
            async with asyncio.timeout(seconds) as scope:
                return await test(*args, **kwargs)
        except TimeoutError:
            if scope.expired():
                pytest.fail(f"Timeout: the test ran past {seconds:g} s and was cancelled")
            raise

    return bounded


@pytest.fixture(autouse=True)
def no_leftover_process() -> Iterator[None]:
    """Fail the test if a process it started (a server, Chromium) outlives it; kill it."""
    before = procs.descendants()
    yield
    left = procs.wait_gone(before, SETTLE_SECONDS)
    if left:
        procs.kill_all(left)
        pytest.fail(f"the test left processes behind (now killed): {left}", pytrace=False)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """The run fails if anything under it is still alive at its end (session fixtures too)."""
    left = procs.wait_gone((), SETTLE_SECONDS)
    if not left:
        return
    procs.kill_all(left)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.ensure_newline()
        reporter.write_line(f"FAILED: processes left behind by the run (now killed): {left}")
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


#: Proxy settings of the machine running the suite: the tests set their own.
PROXY_VARIABLES = tuple(
    name
    for base in ("https_proxy", "http_proxy", "all_proxy", "no_proxy")
    for name in (base, base.upper())
)


@pytest.fixture(autouse=True)
def _no_proxy_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The library follows HTTPS_PROXY & co.: a developer's or CI's own proxy must
    not carry the suite's loopback traffic (nor the subprocesses it starts)."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh credential store for this test only (also for subprocesses it starts)."""
    path = tmp_path / "cache"
    monkeypatch.setenv("PROVIDER_CACHE_DIR", str(path))
    yield path


def provider_for(url: str, cache: Path, **attrs: object) -> type[ChatgptFree]:
    """A subclass of ChatgptFree talking to ``url`` with its own cache dir."""
    return type("Local", (ChatgptFree,), {"url": url, "cache_dir": cache, **attrs})


USER = [{"role": "user", "content": "Hello sandbox"}]


async def chat(
    provider: type[ChatgptFree], messages: object = None, model: str = "", **kw: object
) -> str:
    return "".join(
        [
            c
            async for c in provider.create_async_generator(
                model, USER if messages is None else messages, **kw
            )
        ]
    )


async def chat_until(
    error: type[BaseException], provider: type[ChatgptFree], **kw: object
) -> tuple[str, BaseException]:
    """Chat, expecting ``error`` once some (or none) of the answer arrived:
    (the text that reached the caller before it, the error)."""
    got: list[str] = []
    with pytest.raises(error) as caught:
        async for chunk in provider.create_async_generator("", USER, **kw):
            got.append(chunk)
    return "".join(got), caught.value
