"""The suite's own guards ("Nothing hangs, nothing is left"), proven by running pytest on
small tests that break them, with this suite's conftest as the plugin that guards."""

from __future__ import annotations

import sys
from pathlib import Path

import psutil

from tests import procs

ROOT = Path(__file__).resolve().parents[2]

#: The leaky test writes its child's PID (and start time, so a reused PID is not
#: mistaken for it) to the file named in PID_FILE: the check watches that one
#: process, never the machine, so two suites running at once cannot disturb it.
LEAKY = """
import os
import subprocess
from pathlib import Path

import psutil

def test_leaves_a_child():
    child = subprocess.Popen(["sleep", "987.654"])
    started = psutil.Process(child.pid).create_time()
    Path(os.environ["PID_FILE"]).write_text(f"{child.pid} {started}")
"""

HANGING = """
import asyncio
import pytest

@pytest.mark.timeout(4)
async def test_hangs():
    await asyncio.sleep(600)
"""


async def _pytest_on(
    tmp_path: Path, source: str, env: dict[str, str] | None = None
) -> procs.Result:
    test = tmp_path / "test_broken_guard.py"
    test.write_text(source)
    return await procs.run(
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "tests.conftest",
        "-p",
        "no:cacheprovider",
        "-c",
        str(ROOT / "pyproject.toml"),
        "--rootdir",
        str(ROOT),
        str(test),
        timeout=60,
        merge_stderr=True,
        env=env,
    )


def _alive(pid: int, started: float) -> bool:
    """Whether that very process (same PID, same start time) still runs."""
    try:
        proc = psutil.Process(pid)
        return proc.create_time() == started and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_a_test_leaving_a_child_fails_and_the_child_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    result = await _pytest_on(tmp_path, LEAKY, env={"PID_FILE": str(pid_file)})
    assert result.code == 1, result.out
    assert "the test left processes behind (now killed)" in result.out
    pid, started = pid_file.read_text().split()
    assert not _alive(int(pid), float(started))


async def test_a_hanging_async_test_fails_on_its_timeout(tmp_path: Path) -> None:
    result = await _pytest_on(tmp_path, HANGING)
    assert result.code == 1, result.out
    assert "Timeout" in result.out and "1 failed" in result.out
