"""Subprocesses for tests, never left behind, and the guard that proves it.

Every child a test starts goes through :func:`started`, :func:`run` or
:func:`popen`: each child leads its own process group (``start_new_session``),
so killing the group by the child's PID takes its own children (a server's
Chromium) with it, and the helpers do that on timeout, failure and
cancellation, not only on success.

:func:`descendants` is what the leftover guards in ``tests/conftest.py`` look
at: the living processes under this pytest process, and nothing else — other
people's Chromiums and servers on the same machine are never looked at. The
process is made a child subreaper, so a grandchild whose parent died is
re-parented to pytest rather than to init, and still counts as ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]

#: prctl(2) option: orphaned descendants are re-parented to this process.
_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """Keep orphaned grandchildren under this process (Linux; elsewhere a no-op)."""
    if sys.platform == "linux":
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def descendants() -> dict[int, str]:
    """Living (not zombie) processes under this one: ``{pid: command line}``."""
    found: dict[int, str] = {}
    try:
        children = psutil.Process().children(recursive=True)
    except psutil.Error:
        return found
    for child in children:
        with contextlib.suppress(psutil.Error):
            if child.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
                continue
            found[child.pid] = " ".join(child.cmdline())[:200] or child.name()
    return found


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and, when it leads a process group of its own, that whole group."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid and pid != os.getpgrp():
            os.killpg(pid, signal.SIGKILL)
            return
        os.kill(pid, signal.SIGKILL)


def kill_all(pids: Iterable[int]) -> None:
    for pid in pids:
        kill_tree(pid)


def wait_gone(before: Iterable[int], seconds: float) -> dict[int, str]:
    """Descendants not in ``before`` still alive after polling up to ``seconds``."""
    known = set(before)
    end = time.monotonic() + seconds
    while True:
        left = {pid: cmd for pid, cmd in descendants().items() if pid not in known}
        if not left or time.monotonic() >= end:
            return left
        time.sleep(0.05)


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.out)
        return data


async def _reap(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        kill_tree(proc.pid)
    with contextlib.suppress(ProcessLookupError, TimeoutError):
        await asyncio.wait_for(proc.wait(), 10)


@contextlib.asynccontextmanager
async def started(
    *argv: str, env: dict[str, str] | None = None, cwd: Path = ROOT, **kwargs: Any
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``argv`` as a child in its own process group; on leaving — normally, on an
    error, a timeout or a cancellation — it and its group are killed if still running.

    ``env`` is added to this process's environment; ``kwargs`` go to
    ``asyncio.create_subprocess_exec`` (pipes).
    """
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        start_new_session=True,
        **kwargs,
    )
    try:
        yield proc
    finally:
        # Shielded: a cancelled test must still take its child down.
        await asyncio.shield(_reap(proc))


async def run(
    *argv: str,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 90,
    merge_stderr: bool = False,
    cwd: Path = ROOT,
) -> Result:
    """Run ``argv`` to its end within ``timeout`` seconds (killed past it, and the test fails)."""
    async with started(
        *argv,
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT if merge_stderr else asyncio.subprocess.PIPE,
    ) as proc:
        try:
            out, err = await asyncio.wait_for(
                proc.communicate(stdin.encode() if stdin is not None else None), timeout
            )
        except TimeoutError:
            raise AssertionError(f"{' '.join(argv[:4])}… did not end within {timeout} s") from None
        assert proc.returncode is not None
        return Result(proc.returncode, out.decode(), (err or b"").decode())


async def run_module(*args: str, **kwargs: Any) -> Result:
    """``python -m <args>`` from the project root, with this interpreter."""
    return await run(sys.executable, "-m", *args, **kwargs)


def popen(argv: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen`` in its own process group; pair it with :func:`stop`."""
    return subprocess.Popen(argv, start_new_session=True, **kwargs)


def stop(procs: Iterable[subprocess.Popen[Any]]) -> None:
    """Kill (with their groups) those of ``procs`` still running, and reap them."""
    for proc in procs:
        if proc.poll() is None:
            kill_tree(proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
