"""The sandbox in a process of its own, so its CPU never counts against the client's.

``python -m bench._server '<json knobs>'`` serves ``sandbox.running(**knobs)`` on a
free loopback port, prints ``URL <origin>`` and ``CA <file>`` (``-`` without
TLS), and then obeys one command per line on stdin (knob ``relay_rtt``: seconds
of round trip a latency relay in front adds; ``URL`` is then the relay's):

* ``hits``            → prints ``HITS <json Counter>``
* ``set <json dict>`` → changes live ``SiteConfig`` fields, prints ``OK``
* ``cpu``             → prints ``CPU <user+system seconds of this process>``
* ``connections``     → prints ``CONNECTIONS <n>``: connections accepted so far (the
  relay's, when there is one: what the client opened)
* end of input        → stops.

:class:`RemoteSite` drives it from the benchmark process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


async def _serve(knobs: dict[str, Any]) -> None:
    import sandbox

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    rtt = knobs.pop("relay_rtt", None)
    async with sandbox.running(**knobs) as site, contextlib.AsyncExitStack() as stack:
        url = site.url
        wire = None
        if rtt is not None:  # the WAN case: the site behind a latency relay
            from bench._relay import relay

            wire = await stack.enter_async_context(relay(int(url.rsplit(":", 1)[1]), rtt=rtt))
            url = wire.url(url.split(":", 1)[0])
        print("URL", url, flush=True)
        print("CA", site.ca_file or "-", flush=True)
        while True:
            line = (await reader.readline()).decode().strip()
            if not line:
                break
            command, _, arg = line.partition(" ")
            if command == "hits":
                print("HITS", json.dumps(dict(site.hits)), flush=True)
            elif command == "set":
                for name, value in json.loads(arg).items():
                    setattr(site.config, name, value)
                site.config.validate()
                print("OK", flush=True)
            elif command == "reset":
                site.reset_hits()
                print("OK", flush=True)
            elif command == "connections":
                count = wire.connections if wire is not None else site.connections
                print("CONNECTIONS", count, flush=True)
            elif command == "cpu":
                t = os.times()
                print("CPU", t.user + t.system, flush=True)
            else:
                print("ERR unknown command", flush=True)


class RemoteSite:
    """A sandbox in a child process: ``url``, ``hits()``, ``set(**knobs)``, ``cpu()``."""

    def __init__(self, **knobs: Any) -> None:
        self.knobs = knobs
        self.url = ""
        self.ca_file: str | None = None
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> RemoteSite:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench._server", json.dumps(self.knobs)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        self.url = self._expect("URL")
        ca = self._expect("CA")
        self.ca_file = None if ca == "-" else ca
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
        assert proc.stdin is not None
        try:
            proc.stdin.close()
            proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def _send(self, line: str) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(line + "\n")
        self._proc.stdin.flush()

    def _expect(self, tag: str) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self._proc.stdout.readline()
            if not line:
                raise RuntimeError("the sandbox process ended unexpectedly")
            head, _, rest = line.strip().partition(" ")
            if head == tag:
                return rest
            if head == "ERR":
                raise RuntimeError(f"the sandbox process refused a command: {rest}")
        raise RuntimeError(f"the sandbox process did not answer {tag} in time")

    def hits(self) -> Counter[str]:
        self._send("hits")
        return Counter(json.loads(self._expect("HITS")))

    def reset_hits(self) -> None:
        self._send("reset")
        self._expect("OK")

    def set(self, **knobs: Any) -> None:
        self._send("set " + json.dumps(knobs))
        self._expect("OK")

    def connections(self) -> int:
        self._send("connections")
        return int(self._expect("CONNECTIONS"))

    def cpu(self) -> float:
        self._send("cpu")
        return float(self._expect("CPU"))


def main() -> None:
    knobs = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    asyncio.run(_serve(knobs))


if __name__ == "__main__":
    main()
