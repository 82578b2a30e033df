"""The layers as contracts: ``lint-imports`` (import-linter, ``.importlinter``) passes
on the tree, and fails when any kind of contract is broken.

The laziness the contracts cannot see (an import inside a function looks like any
other to them) is proved by ``tests/browser/test_lifecycle.py``'s import-wall test.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PACKAGES = ("provider", "scraper", "sandbox", "bench")


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_import_contracts_hold() -> None:
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "6 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "planted", "broken"),
    [
        ("scraper/page.py", "import provider", "bench > provider > scraper"),
        ("provider/prompt.py", "import bench", "bench > provider > scraper"),
        ("sandbox/_legacy.py", "import scraper.page", "the sandbox imports no client code"),
        ("scraper/verdict.py", "import sandbox", "imports the sandbox only lazily"),
        ("provider/_provider.py", "import playwright", "Playwright only under the browser"),
        ("provider/store/base.py", "import redis", "redis only in the Redis store"),
        ("provider/commands/serve/_app.py", "import prometheus_client", "prometheus-client only"),
    ],
)
def test_a_planted_import_breaks_its_contract(
    tmp_path: Path, module: str, planted: str, broken: str
) -> None:
    # A copy of the sources, one import planted: the check must see it and say which.
    shutil.copy(ROOT / ".importlinter", tmp_path)
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    target = tmp_path / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{planted}  # planted\n")
    done = lint_imports(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    broken_lines = [line for line in done.stdout.splitlines() if " BROKEN" in line]
    assert len(broken_lines) == 1, done.stdout
    assert broken in broken_lines[0]
