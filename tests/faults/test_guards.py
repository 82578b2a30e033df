"""The suite's own guards ("Nothing hangs, nothing is left"), proven by running pytest on
small tests that break them, with this suite's conftest as the plugin that guards."""

from __future__ import annotations

import sys
from pathlib import Path

import psutil

from tests import procs

ROOT = Path(__file__).resolve().parents[2]

LEAKY = """
import subprocess

def test_leaves_a_child():
    subprocess.Popen(["sleep", "987.654"])
"""

HANGING = """
import asyncio
import pytest

@pytest.mark.timeout(4)
async def test_hangs():
    await asyncio.sleep(600)
"""


async def _pytest_on(tmp_path: Path, source: str) -> procs.Result:
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
    )


def _running(marker: str) -> bool:
    return any(
        marker in " ".join(p.info["cmdline"] or ()) for p in psutil.process_iter(["cmdline"])
    )


async def test_a_test_leaving_a_child_fails_and_the_child_is_killed(tmp_path: Path) -> None:
    result = await _pytest_on(tmp_path, LEAKY)
    assert result.code == 1, result.out
    assert "the test left processes behind (now killed)" in result.out
    assert not _running("987.654")


async def test_a_hanging_async_test_fails_on_its_timeout(tmp_path: Path) -> None:
    result = await _pytest_on(tmp_path, HANGING)
    assert result.code == 1, result.out
    assert "Timeout" in result.out and "1 failed" in result.out
