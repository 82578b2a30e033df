"""Benchmark 6: ``python -c "import provider"``, and that it leaves Playwright out.

Fresh interpreters, interleaved with ``python -c pass`` (the interpreter's own
start); the figure is the median difference. ``-X importtime`` gives the top
cumulative costs.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench._stats import Row, median, p90

ROOT = Path(__file__).resolve().parent.parent
CHECK = "import provider, sys; assert 'playwright' not in sys.modules, 'playwright imported'"


def _run(code: str, *flags: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *flags, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    return time.perf_counter() - t0, done


def top_imports(limit: int = 8) -> list[tuple[str, float]]:
    """(module, cumulative ms) of the costliest top-level imports under ``import provider``."""
    _, done = _run("import provider", "-X", "importtime")
    rows: list[tuple[str, float]] = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = line[len("import time:") :].split("|")
        try:
            cumulative = int(parts[1].strip())
        except ValueError:
            continue
        name = parts[2].rstrip()
        depth = (len(name) - len(name.lstrip())) // 2
        if depth <= 1:
            rows.append((name.strip(), cumulative / 1e3))
    rows.sort(key=lambda r: r[1], reverse=True)
    return rows[:limit]


def measure(runs: int) -> tuple[list[Row], dict[str, Any]]:
    base: list[float] = []
    full: list[float] = []
    failures: list[str] = []
    for _ in range(runs):
        t, _done = _run("pass")
        base.append(t)
        t, done = _run(CHECK)
        full.append(t)
        if done.returncode != 0:
            failures.append(done.stderr.strip().splitlines()[-1])
    diffs = [f - b for f, b in zip(full, base, strict=True)]
    top = top_imports()
    info = {
        "with_import_ms": {"median": median(full) * 1e3, "p90": p90(full) * 1e3},
        "bare_python_ms": {"median": median(base) * 1e3, "p90": p90(base) * 1e3},
        "import_ms": [d * 1e3 for d in diffs],
        "top_cumulative_ms": top,
        "failures": failures,
    }
    note = "top: " + ", ".join(f"{n} {ms:.0f}" for n, ms in top[:4])
    rows = [
        Row(
            "6 import",
            "import provider (minus bare python)",
            "ms",
            median(diffs) * 1e3,
            None,
            "",
            "value<=",
            150,
            note=note,
        ),
        Row(
            "6 import",
            "playwright not imported",
            "",
            1.0 if not failures else 0.0,
            goal="ok",
            status="" if not failures else f"missed: {failures[0][:80]}",
        ),
    ]
    return rows, info
