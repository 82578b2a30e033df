"""The original client, g4f 0.5.3.1's ChatgptFree, in a virtual environment of its own.

``bench/.venv-g4f`` is made on first use (``python -m venv`` + ``pip install
g4f==0.5.3.1 curl_cffi``, under a timeout) and reused afterwards: a marker
file records a successful install. Any failure becomes a status string
("unavailable: …") shown in the table instead of failing the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-g4f"
MARKER = VENV / "bench-ready.json"
DRIVER = HERE / "g4f_driver.py"
PACKAGES = ["g4f==0.5.3.1", "curl_cffi"]  # curl_cffi: the transport the original used
SETUP_TIMEOUT = 420.0


def _python() -> Path:
    return VENV / "bin" / "python"


def ensure_venv(log: Any = print) -> tuple[Path | None, str]:
    """(python of the g4f venv, "") when usable, else (None, "unavailable: reason")."""
    if MARKER.exists() and _python().exists():
        return _python(), ""
    started = time.monotonic()
    try:
        if not _python().exists():
            log(f"g4f: creating {VENV.relative_to(HERE.parent)} (first run only)")
            subprocess.run(
                [sys.executable, "-m", "venv", str(VENV)],
                check=True,
                capture_output=True,
                timeout=120,
            )
        log(f"g4f: pip install {' '.join(PACKAGES)} (first run only)")
        left = max(30.0, SETUP_TIMEOUT - (time.monotonic() - started))
        pip = subprocess.run(
            [
                str(_python()),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                *PACKAGES,
            ],
            capture_output=True,
            text=True,
            timeout=left,
        )
        if pip.returncode != 0:
            tail = (pip.stderr or pip.stdout).strip().splitlines()[-1:] or ["?"]
            return None, f"unavailable: pip install failed ({tail[0][:120]})"
        check = subprocess.run(
            [
                str(_python()),
                "-c",
                "from g4f.Provider.not_working import ChatgptFree; import g4f.requests as r;"
                "print(r.has_curl_cffi)",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check.returncode != 0:
            tail = check.stderr.strip().splitlines()[-1:] or ["?"]
            return None, f"unavailable: import failed ({tail[0][:120]})"
    except subprocess.TimeoutExpired:
        return None, f"unavailable: setup took over {SETUP_TIMEOUT:.0f} s"
    except (OSError, subprocess.CalledProcessError) as exc:
        return None, f"unavailable: {type(exc).__name__}: {exc}"[:160]
    MARKER.write_text(json.dumps({"packages": PACKAGES, "made": time.time()}))
    return _python(), ""


class G4FClient:
    """A g4f driver process pointed at ``url``; ``chat()`` runs one timed call there."""

    def __init__(self, python: Path, url: str, ca_file: str | None = None) -> None:
        self.python = python
        self.url = url
        self.ca_file = ca_file  # a CA for HTTPS sites (the driver hands it to each request)
        self.info: dict[str, Any] = {}
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> G4FClient:
        self._proc = subprocess.Popen(
            [str(self.python), str(DRIVER), self.url],
            env={**os.environ, **({"BENCH_CA_FILE": self.ca_file} if self.ca_file else {})},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.info = json.loads(self._expect("READY"))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc = self._proc
        if proc is None:
            return
        try:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()

    def _expect(self, tag: str) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        while True:
            line = self._proc.stdout.readline()
            if not line:
                raise RuntimeError("the g4f driver process ended unexpectedly")
            head, _, rest = line.strip().partition(" ")
            if head == tag:
                return rest

    def chat(self) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write("chat\n")
        self._proc.stdin.flush()
        result: dict[str, Any] = json.loads(self._expect("RESULT"))
        return result
